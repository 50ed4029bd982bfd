"""Query text -> ranked hits from the library (vector search, optional per-document filter)."""

from __future__ import annotations

from collections.abc import Sequence

from rag.embed import Embedder
from rag.errors import DocumentNotFound
from rag.store import ChunkStore
from rag.types import Hit


class Retriever:
    """Embeds a query and asks the store for its nearest chunks."""

    def __init__(self, embedder: Embedder, store: ChunkStore, *, top_k: int = 4) -> None:
        """Args: the embedder the library was built with, the store, and the default k."""
        self.embedder = embedder
        self.store = store
        self.top_k = top_k

    def file_ids(self, file_names: Sequence[str]) -> list[str]:
        """Content ids of the named documents.

        Raises:
            DocumentNotFound: a name is not in the library (the message lists what is).
        """
        docs = self.store.documents()
        by_name = {d.file_name: d.file_id for d in docs}
        missing = [n for n in file_names if n not in by_name]
        if missing:
            known = ", ".join(sorted(by_name)) or "(the library is empty)"
            raise DocumentNotFound(f"no document named {missing[0]!r}; the library has: {known}")
        return [by_name[n] for n in file_names]

    def search(
        self, query: str, *, k: int | None = None, file_names: Sequence[str] | None = None
    ) -> list[Hit]:
        """The best `k` chunks for `query`, best first; only from `file_names` when given."""
        if not query.strip():
            return []
        ids = self.file_ids(file_names) if file_names else None
        vector = self.embedder.embed([query])[0]
        return self.store.query(vector, k or self.top_k, file_ids=ids)
