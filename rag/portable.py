"""A library <-> one JSON-lines file: move an embedded library into a Chroma server, or back.

The file holds a header line (format, embedder id), then one line per document with its library
record, chunks and vectors, so nothing is re-read or re-embedded on import, and the PDF itself
(base64, under "pdf") when the library kept a copy (`rag.originals`), so cited pages still open
after the move. Import goes through `ChunkStore.add_document`, so each document lands whole or not
at all; documents already in the target (same content hash) are skipped, and get the PDF if the
target had no copy of it. Files written without PDFs (no `originals` given, or by Quipu before
they were carried) import the same way, without the copies.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from rag.errors import EmbedderMismatch, RagError
from rag.originals import Originals
from rag.store import ChunkStore
from rag.types import Chunk, Document

FORMAT = "quipu-library/1"


def export_library(
    store: ChunkStore,
    target: Path,
    *,
    originals: Originals | None = None,
    on_document: Callable[[Document], None] | None = None,
) -> int:
    """Write every complete document to `target` (replaced atomically). Returns the count.

    Args:
        store: the library.
        target: the .jsonl file to write.
        originals: the library's kept PDFs, written with their documents (None: text and
            vectors only, a smaller file).
        on_document: called after each document is written.

    Raises:
        RagError: the file cannot be written (no such folder, no permission, disk full); no
            partial file is left behind.
    """
    partial = target.with_name(target.name + ".part")
    documents = store.documents()
    try:
        with partial.open("w", encoding="utf-8") as out:
            out.write(json.dumps({"format": FORMAT, "embedder": store.embedder_id}) + "\n")
            for document in documents:
                pairs = store.document_chunks(document.file_id)
                record = {
                    "document": asdict(document),
                    "chunks": [asdict(chunk) for chunk, _ in pairs],
                    "vectors": [vector for _, vector in pairs],
                }
                kept = originals.path(document.file_id) if originals is not None else None
                if kept is not None:
                    record["pdf"] = base64.b64encode(kept.read_bytes()).decode("ascii")
                out.write(json.dumps(record) + "\n")
                if on_document:
                    on_document(document)
        partial.replace(target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise RagError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return len(documents)


def import_library(
    store: ChunkStore,
    source: Path,
    *,
    originals: Originals | None = None,
    on_document: Callable[[Document, bool], None] | None = None,
) -> tuple[int, int]:
    """Add the documents of an export to `store`. Returns (added, skipped as already present).

    With `originals`, the PDFs the export carries are kept there (each checked against its
    document's content hash).

    Raises:
        RagError: the file cannot be read, is not an export, or is damaged part-way (the
            documents before the damage are added, and the message says how many).
        EmbedderMismatch: the export was made with another embedder than the target's.
    """
    added = skipped = 0
    try:
        lines = source.open(encoding="utf-8", errors="replace")  # damage: a bad line, below
    except OSError as exc:
        raise RagError(f"cannot read {source}: {exc.strerror or exc}") from exc
    with lines:
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
        for number, line in enumerate(lines, start=2):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                document = Document(**record["document"])
                chunks = [Chunk(**chunk) for chunk in record["chunks"]]
                vectors = record["vectors"]
            except (ValueError, KeyError, TypeError) as exc:
                raise RagError(
                    f"{source.name} is damaged at line {number} (cut short, or edited): "
                    f"{added} documents were added before it, {skipped} were there already"
                ) from exc
            new = store.get_document(document.file_id) is None
            if new:
                store.add_document(document, chunks, vectors)
                added += 1
            else:
                skipped += 1
            pdf = record.get("pdf")
            if pdf and originals is not None:  # also gives a skipped document a missing copy
                _keep(originals, document, pdf)
            if on_document:
                on_document(document, new)
    return added, skipped


def _keep(originals: Originals, document: Document, pdf: str) -> None:
    """Keep an export's base64 PDF for `document` (a damaged one is logged and skipped)."""
    if originals.path(document.file_id) is not None:
        return  # kept already: nothing to decode
    try:
        data = base64.b64decode(pdf, validate=True)
    except (binascii.Error, ValueError):
        data = b""
    originals.keep_bytes(document.file_id, data, document.file_name)
