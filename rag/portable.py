"""A library <-> one JSON-lines file: move an embedded library into a Chroma server, or back.

The file holds a header line (format, embedder id, vector dimension), then one line per document
with its library record, chunks and vectors, so nothing is re-read or re-embedded on import.
Import goes through `ChunkStore.add_document`, so each document lands whole or not at all, and
documents already in the target (same content hash) are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from rag.errors import EmbedderMismatch, RagError
from rag.store import ChunkStore
from rag.types import Chunk, Document

FORMAT = "quipu-library/1"


def export_library(
    store: ChunkStore, target: Path, *, on_document: Callable[[Document], None] | None = None
) -> int:
    """Write every complete document to `target` (replaced atomically). Returns the count."""
    partial = target.with_name(target.name + ".part")
    documents = store.documents()
    with partial.open("w", encoding="utf-8") as out:
        out.write(json.dumps({"format": FORMAT, "embedder": store.embedder_id}) + "\n")
        for document in documents:
            pairs = store.document_chunks(document.file_id)
            record = {
                "document": asdict(document),
                "chunks": [asdict(chunk) for chunk, _ in pairs],
                "vectors": [vector for _, vector in pairs],
            }
            out.write(json.dumps(record) + "\n")
            if on_document:
                on_document(document)
    partial.replace(target)
    return len(documents)


def import_library(
    store: ChunkStore, source: Path, *, on_document: Callable[[Document, bool], None] | None = None
) -> tuple[int, int]:
    """Add the documents of an export to `store`. Returns (added, skipped as already present).

    Raises:
        RagError: not an export file.
        EmbedderMismatch: the export was made with another embedder than the target's.
    """
    added = skipped = 0
    with source.open(encoding="utf-8") as lines:
        try:
            header = json.loads(next(lines))
        except (StopIteration, ValueError) as exc:
            raise RagError(f"{source.name} is not a Quipu library export") from exc
        if header.get("format") != FORMAT:
            raise RagError(f"{source.name} is not a Quipu library export ({FORMAT})")
        if header.get("embedder") != store.embedder_id:
            raise EmbedderMismatch(
                f"{source.name} was made with embedder '{header.get('embedder')}', "
                f"this library uses '{store.embedder_id}'"
            )
        for line in lines:
            if not line.strip():
                continue
            record = json.loads(line)
            document = Document(**record["document"])
            if store.get_document(document.file_id) is not None:
                skipped += 1
                if on_document:
                    on_document(document, False)
                continue
            chunks = [Chunk(**chunk) for chunk in record["chunks"]]
            store.add_document(document, chunks, record["vectors"])
            added += 1
            if on_document:
                on_document(document, True)
    return added, skipped
