"""The public JSON shapes of Quipu's values, shared by the CLI (--json) and the web API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from models.registry import ModelChoice
from rag.grounding import unsupported_figures
from rag.types import Answer, Citation, Document, FileResult, Hit, Timing


def hit_json(hit: Hit) -> dict[str, Any]:
    """A search hit: file, 1-based page, score, text."""
    c = hit.chunk
    return {
        "file": c.file_name,
        "file_id": c.file_id,
        "page": c.page_start,
        "page_end": c.page_end,
        "score": round(hit.score, 4),
        "text": c.text,
        "chunk_id": c.id,
    }


def unverified_figures(answer: Answer, *questions: str) -> list[str]:
    """Figures of an answer from documents that its sources and the questions asked (this one,
    and earlier ones in the conversation) do not hold."""
    if not answer.citations:  # plain chat: nothing to check against
        return []
    sources = [citation_json(c) for c in answer.citations]
    return unsupported_figures(answer.text, [*source_texts(sources), *questions])


def source_texts(sources: Sequence[dict[str, Any]]) -> list[str]:
    """What the model read of each source: its text, and its label ("[2] report.pdf, p. 79")
    whose page number it may repeat."""
    pages = [f"p. {s['page']}-{s.get('page_end', s['page'])}" for s in sources]
    return [str(s["text"]) for s in sources] + pages


def document_json(doc: Document) -> dict[str, Any]:
    """A library entry."""
    return {
        "file": doc.file_name,
        "pages": doc.pages,
        "chunks": doc.chunks,
        "added": doc.added,
        "size_bytes": doc.size_bytes,
        "id": doc.file_id,
    }


def citation_json(c: Citation) -> dict[str, Any]:
    """A numbered source of an answer (also stored with chat messages)."""
    return {
        "number": c.number,
        "file": c.file_name,
        "page": c.page_start,
        "page_end": c.page_end,
        "score": round(c.score, 4),
        "cited": c.cited,
        "text": c.text,
        "file_id": c.file_id,
    }


def timing_json(t: Timing | None) -> dict[str, Any] | None:
    """An answer's speed: seconds to its first text, its tokens, tokens per second."""
    if t is None:
        return None
    rate = None if t.tokens_per_s is None else round(t.tokens_per_s, 1)
    return {"first_token_s": round(t.first_token_s, 3), "tokens": t.tokens, "tokens_per_s": rate}


def file_result_json(r: FileResult) -> dict[str, Any]:
    """One file's ingest outcome."""
    return {
        "file": r.file_name,
        "status": r.status,
        "message": r.message,
        "pages": r.pages,
        "chunks": r.chunks,
    }


def model_json(c: ModelChoice, n_ctx: int, active: str) -> dict[str, Any]:
    """A model list entry, with its memory need at `n_ctx` and whether it fits."""
    return {
        "id": c.id,
        "name": c.name,
        "source": c.source,
        "quant": c.quant,
        "size_bytes": c.size_bytes,
        "memory_bytes": c.memory_bytes(n_ctx),
        "fits": c.fits(n_ctx),
        "on_disk": c.on_disk,
        "path": str(c.path) if c.path else None,
        "license": c.license,
        "active": c.id == active,
    }
