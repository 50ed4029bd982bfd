"""Chunks + vectors <-> Chroma. The only module that imports chromadb.

Two collections: `<name>_chunks` (one record per chunk: text, vector, file and page span) and
`<name>_documents` (one record per indexed PDF: the library listing). A document's record is
written after all its chunks and deleted before them, so it marks a complete document. The chunk
collection records the embedder id and vector dimension, and a store opened with another embedder
refuses to mix vectors (`EmbedderMismatch`: re-index needed).

Works the same on an embedded `PersistentClient(path)` or a Chroma server (`HttpClient`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import chromadb
from chromadb.config import Settings as ChromaSettings

from rag.errors import EmbedderMismatch, StoreError
from rag.types import Chunk, Document, Hit

log = logging.getLogger(__name__)

_NO_VECTOR = [0.0]  # document records are looked up by id/metadata, never by similarity


def _client(path: Path | None, url: str | None) -> Any:
    settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    try:
        if url:
            parts = urlparse(url)
            return chromadb.HttpClient(
                host=parts.hostname or "localhost",
                port=parts.port or (443 if parts.scheme == "https" else 8000),
                ssl=parts.scheme == "https",
                settings=settings,
            )
        if path is None:
            raise StoreError("a store needs a directory or a server URL")
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=settings)
    except StoreError:
        raise
    except Exception as exc:
        where = url or str(path)
        raise StoreError(f"cannot open the vector store at {where}: {exc}") from exc


class ChunkStore:
    """The library's chunks and documents in Chroma."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        url: str | None = None,
        name: str = "quipu",
        embedder_id: str,
    ) -> None:
        """Open (or create) the collections.

        Args:
            path: folder of an embedded, persistent Chroma.
            url: http(s)://host:port of a Chroma server; used instead of `path` when given.
            name: prefix of the two collection names.
            embedder_id: the embedding model's id; an existing library made with another is refused.

        Raises:
            StoreError: the store cannot be opened.
            EmbedderMismatch: the library was built with a different embedder.
        """
        self._client = _client(path, url)
        self.embedder_id = embedder_id
        try:
            self._chunks = self._client.get_or_create_collection(
                f"{name}_chunks",
                configuration={"hnsw": {"space": "cosine"}},
                metadata={"embedder": embedder_id},
                embedding_function=None,
            )
            self._docs = self._client.get_or_create_collection(
                f"{name}_documents", embedding_function=None
            )
            self._batch = int(self._client.get_max_batch_size())
        except Exception as exc:
            raise StoreError(f"cannot open the collections: {exc}") from exc
        recorded = (self._chunks.metadata or {}).get("embedder")
        if recorded and recorded != embedder_id:
            raise EmbedderMismatch(
                f"this library was indexed with embedder '{recorded}', not '{embedder_id}': "
                "delete and re-add the documents (or use the original embedder)"
            )

    # -- writes ------------------------------------------------------------------------------

    def add_document(
        self, document: Document, chunks: Sequence[Chunk], embeddings: Sequence[Sequence[float]]
    ) -> None:
        """Store a document's chunks, then its library record (which marks it complete)."""
        if len(chunks) != len(embeddings):
            raise ValueError("one embedding per chunk")
        self._check_dimension(len(embeddings[0]) if embeddings else 0)
        try:
            for start in range(0, len(chunks), self._batch):
                part = chunks[start : start + self._batch]
                self._chunks.upsert(
                    ids=[c.id for c in part],
                    documents=[c.text for c in part],
                    embeddings=[list(e) for e in embeddings[start : start + self._batch]],
                    metadatas=[
                        {
                            "file_id": c.file_id,
                            "file_name": c.file_name,
                            "page_start": c.page_start,
                            "page_end": c.page_end,
                        }
                        for c in part
                    ],
                )
            self._docs.upsert(
                ids=[document.file_id],
                embeddings=[_NO_VECTOR],
                metadatas=[
                    {
                        "file_name": document.file_name,
                        "pages": document.pages,
                        "chunks": document.chunks,
                        "added": document.added,
                        "size_bytes": document.size_bytes,
                    }
                ],
            )
        except Exception as exc:
            raise StoreError(f"could not store {document.file_name}: {exc}") from exc

    def _check_dimension(self, dimension: int) -> None:
        meta = dict(self._chunks.metadata or {})
        recorded = meta.get("dimension")
        if recorded is None and dimension:
            meta["dimension"] = dimension
            meta.pop("hnsw:space", None)
            self._chunks.modify(metadata=meta)
        elif recorded is not None and dimension and int(recorded) != dimension:
            raise EmbedderMismatch(
                f"vectors of dimension {dimension} cannot join a library of dimension {recorded}"
            )

    def delete_document(self, file_id: str) -> None:
        """Remove a document: its library record first, then its chunks."""
        try:
            self._docs.delete(ids=[file_id])
            self._chunks.delete(where={"file_id": file_id})
        except Exception as exc:
            raise StoreError(f"could not delete document {file_id[:12]}: {exc}") from exc

    # -- reads -------------------------------------------------------------------------------

    def documents(self) -> list[Document]:
        """Every complete document, oldest first."""
        try:
            got = self._docs.get(include=["metadatas"])
        except Exception as exc:
            raise StoreError(f"could not list documents: {exc}") from exc
        docs = [
            Document(
                file_id=file_id,
                file_name=str(meta["file_name"]),
                pages=int(meta["pages"]),
                chunks=int(meta["chunks"]),
                added=str(meta["added"]),
                size_bytes=int(meta.get("size_bytes", 0)),
            )
            for file_id, meta in zip(got["ids"], got["metadatas"] or [], strict=True)
        ]
        return sorted(docs, key=lambda d: (d.added, d.file_name))

    def get_document(self, file_id: str) -> Document | None:
        """The document with this content hash, if indexed."""
        return next((d for d in self.documents() if d.file_id == file_id), None)

    def chunk_count(self) -> int:
        """Number of stored chunks."""
        return int(self._chunks.count())

    def query(
        self, embedding: Sequence[float], k: int, *, file_ids: Sequence[str] | None = None
    ) -> list[Hit]:
        """The `k` chunks nearest to `embedding`, optionally only from some documents."""
        if k <= 0 or (file_ids is not None and not file_ids):
            return []
        where: dict[str, Any] | None = None
        if file_ids is not None:
            where = (
                {"file_id": file_ids[0]}
                if len(file_ids) == 1
                else {"file_id": {"$in": list(file_ids)}}
            )
        try:
            if self._chunks.count() == 0:
                return []
            got = self._chunks.query(
                query_embeddings=[list(embedding)],
                n_results=k,
                where=where,
                include=["documents", "metadatas", "distances"],
            )
        except Exception as exc:
            raise StoreError(f"search failed: {exc}") from exc
        hits: list[Hit] = []
        for chunk_id, text, meta, distance in zip(
            got["ids"][0],
            got["documents"][0],
            got["metadatas"][0],
            got["distances"][0],
            strict=True,
        ):
            chunk = Chunk(
                id=chunk_id,
                text=text,
                file_id=str(meta["file_id"]),
                file_name=str(meta["file_name"]),
                page_start=int(meta["page_start"]),
                page_end=int(meta["page_end"]),
            )
            hits.append(Hit(chunk=chunk, score=1.0 - float(distance)))
        return hits
