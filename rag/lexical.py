"""Keyword search (BM25, via bm25s) over the library's chunks, to fuse with vector search.

Vector search finds paraphrases; BM25 finds the exact words a question shares with a passage
(line items, names, figures' labels), which small embedders blur. The index is built in memory
from the store's chunks (their text plus document title and page heading) and rebuilt when the
library changes; building takes about a second per 10,000 chunks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

_STOPWORDS = "en"


@dataclass(frozen=True)
class LexicalEntry:
    """What the index needs to know about one chunk."""

    chunk_id: str
    file_id: str
    text: str


class LexicalIndex:
    """BM25 over chunks, with an optional restriction to some documents."""

    def __init__(
        self, signature: Callable[[], str], load: Callable[[], list[LexicalEntry]]
    ) -> None:
        """Args: the library's signature (cheap; changes with its content) and its chunks."""
        self._current = signature
        self._load = load
        self._lock = threading.Lock()
        self._signature: str | None = None
        self._ids: list[str] = []
        self._file_ids: np.ndarray = np.array([], dtype=object)
        self._bm25: object | None = None
        self._stemmer: object | None = None

    def invalidate(self) -> None:
        """Forget the index; the next search rebuilds it."""
        with self._lock:
            self._signature = None
            self._bm25 = None

    def _tokenize(self, texts: Sequence[str]) -> object:
        import bm25s

        if self._stemmer is None:
            import Stemmer

            logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets itself to DEBUG

            self._stemmer = Stemmer.Stemmer("english")
        return bm25s.tokenize(
            list(texts), stopwords=_STOPWORDS, stemmer=self._stemmer, show_progress=False
        )

    def _ensure(self) -> None:
        """Build the index if the library changed since the last build."""
        new_signature = self._current()
        if new_signature == self._signature:
            return
        import bm25s

        entries = self._load()
        self._ids = [e.chunk_id for e in entries]
        self._file_ids = np.array([e.file_id for e in entries], dtype=object)
        if entries:
            index = bm25s.BM25()
            index.index(self._tokenize([e.text for e in entries]), show_progress=False)
            self._bm25 = index
        else:
            self._bm25 = None
        self._signature = new_signature

    def search(
        self,
        query: str,
        k: int,
        *,
        file_ids: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        """Chunk ids and BM25 scores, best first; only chunks sharing a word with the query.

        Args:
            query: the question.
            k: most results.
            file_ids: only chunks of these documents.
        """
        with self._lock:
            self._ensure()
            if self._bm25 is None or k <= 0:
                return []
            mask = None
            if file_ids is not None:
                mask = np.isin(self._file_ids, list(file_ids)).astype(np.float32)
                if not mask.any():
                    return []
            tokens = self._tokenize([query])
            if not tokens.ids or not tokens.ids[0]:  # type: ignore[attr-defined]
                return []  # only stopwords
            k = min(k, len(self._ids))
            found, scores = self._bm25.retrieve(  # type: ignore[attr-defined]
                tokens, k=k, weight_mask=mask, show_progress=False, n_threads=1
            )
        return [
            (self._ids[int(i)], float(s)) for i, s in zip(found[0], scores[0], strict=True) if s > 0
        ]
