"""Plain formatting of domain values for the page (no Gradio, no I/O)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from typing import Any

from app.chats import StoredMessage
from app.shapes import source_texts
from models.base import ModelInfo
from rag.grounding import KnownFigures, supporting_spans
from rag.types import Document, FileResult, IngestProgress

_PASSAGE_CHARS = 700

# A source (as `app.shapes.citation_json` gives it) -> the address that opens its page, if any.
PageLink = Callable[[dict[str, Any]], str | None]


def _pages(source: dict[str, Any], link: PageLink | None) -> str:
    """ "p. 3" (or "pp. 3-4"), as a link that opens the PDF there when `link` gives one."""
    page, end = source["page"], source.get("page_end", source["page"])
    label = f"p. {page}" if end == page else f"pp. {page}-{end}"
    url = link(source) if link else None
    if not url:
        return label
    return (
        f"<a class='quipu-open' href='{html.escape(url)}' target='_blank' rel='noopener' "
        f"title='Open the PDF at this page'>{label}</a>"
    )


def sources_markdown(
    sources: Sequence[dict[str, Any]], link: PageLink | None = None, answer: str = ""
) -> str:
    """The Sources panel: one entry per numbered passage the answer was given, with the numbers
    that give the answer's figures marked."""
    if not sources:
        return "*No sources: this answer did not use your documents.*"
    blocks = ["### Sources"]
    for s in sources:
        cited = " · <b>cited</b>" if s.get("cited") else ""
        blocks.append(_passage(s, link, cited, lambda text: _marked(text, answer)))
    return "\n\n".join(blocks)


def passages_markdown(found: Sequence[dict[str, Any]], query: str, link: PageLink | None) -> str:
    """Passages found in the library (`app.shapes.hit_json`, best first), the query's words
    marked in each."""
    if not found:
        return "*Nothing in the library matches.*"
    terms = sorted(
        {w for w in re.findall(r"\w+", query.casefold()) if len(w) > 2 or w.isdigit()}
        - _COMMON_WORDS,
        key=len,
        reverse=True,
    )
    pattern = (
        re.compile(r"\b(?:" + "|".join(map(re.escape, terms)) + r")\w*", re.I) if terms else None
    )

    def marked(text: str) -> str:
        return _with_marks(text, [m.span() for m in pattern.finditer(text)] if pattern else [])

    return "\n\n".join(
        _passage({**s, "number": n}, link, "", marked) for n, s in enumerate(found, start=1)
    )


# Words too common to mark in a found passage.
_COMMON_WORDS = frozenset(
    {
        *("the", "and", "for", "are", "was", "were", "what", "which", "who", "how", "why"),
        *("when", "where", "does", "did", "has", "have", "had", "its", "this", "that"),
        *("these", "those", "with", "from", "into", "about", "than", "then", "there"),
        *("their", "they", "them", "you", "your", "our", "can", "could", "would", "should"),
        *("will", "not", "any", "all", "per"),
    }
)


# The number beside a passage is its vector similarity alone, while passages are ranked by that
# and by the question's words together, so a lower number can come first: the tooltip says so.
_SIMILARITY_TIP = (
    "How close the passage's meaning is to the question (cosine similarity). Passages are ranked "
    "by meaning and by the question's words together, so the order can differ."
).replace("'", "&#x27;")


def _passage(
    source: dict[str, Any], link: PageLink | None, note: str, marked: Callable[[str], str]
) -> str:
    """One numbered passage: file, page (a link), similarity, and its text (cut at about
    `_PASSAGE_CHARS`) as `marked` renders it."""
    text = " ".join(str(source["text"]).split())
    more = len(text) > _PASSAGE_CHARS
    if more:
        text = text[:_PASSAGE_CHARS].rsplit(" ", 1)[0]
    return (
        f"<div class='quipu-source'><b>[{source['number']}] {html.escape(source['file'])} — "
        f"{_pages(source, link)}</b>"
        f"<span class='quipu-score' title='{_SIMILARITY_TIP}'> · similarity "
        f"{source['score']:.2f}{note}</span>"
        f"<blockquote>{marked(text)}{' …' if more else ''}</blockquote></div>"
    )


def _marked(text: str, answer: str) -> str:
    """`text` as HTML, each number that gives one of the answer's figures in <mark>."""
    return _with_marks(text, supporting_spans(answer, text) if answer else [])


def _with_marks(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """`text` as HTML with the (start, end) `spans`, in order and apart, in <mark>."""
    out, at = [], 0
    for start, end in spans:
        out += [html.escape(text[at:start]), f"<mark>{html.escape(text[start:end])}</mark>"]
        at = end
    return "".join([*out, html.escape(text[at:])])


# "[2]" in an answer, not a Markdown link's text ("[2](…)").
_CITATION = re.compile(r"\[(\d{1,3})\](?!\()")


def cite_links(text: str, sources: Sequence[dict[str, Any]], link: PageLink | None) -> str:
    """An answer with each "[n]" a link that opens source n's page, where a copy is kept."""
    opens = {}
    for s in sources if link else ():
        url = link(s) if link else None
        if url:
            opens[int(s["number"])] = (url, f"{s['file']}, {_pages(s, None)}")

    def linked(found: re.Match[str]) -> str:
        if int(found.group(1)) not in opens:
            return found.group(0)
        url, title = opens[int(found.group(1))]
        return (
            f"<a class='quipu-cite' href='{html.escape(url)}' target='_blank' rel='noopener' "
            f"title='{html.escape(title)}'>{found.group(0)}</a>"
        )

    return _CITATION.sub(linked, text) if opens else text


def sources_footer(sources: Sequence[dict[str, Any]], link: PageLink | None = None) -> str:
    """A one-line list under an answer: the cited sources, or all it was given if none is cited."""
    shown = [s for s in sources if s.get("cited")] or list(sources)
    if not shown:
        return ""
    items = " · ".join(
        f"[{s['number']}] {html.escape(s['file'])}, {_pages(s, link)}" for s in shown
    )
    return f"\n\n<small>Sources: {items}</small>"


def figures_note(flagged: Sequence[str]) -> str:
    """A line under an answer naming the figures its sources do not hold (`unverified`)."""
    if not flagged:
        return ""
    figures = ", ".join(html.escape(f) for f in flagged)
    return (
        f"\n\n<small class='quipu-unverified'>Not in the sources: {figures}. "
        "Check these figures against the pages.</small>"
    )


def timing_note(timing: dict[str, Any] | None) -> str:
    """A line under an answer: how long its first words took, and the model's speed."""
    if not timing:
        return ""
    parts = [f"first words after {timing['first_token_s']:.1f} s", f"{timing['tokens']} tokens"]
    if timing.get("tokens_per_s"):
        parts.append(f"{timing['tokens_per_s']:.0f} tokens/s")
    return f"\n\n<small class='quipu-timing'>{' · '.join(parts)}</small>"


def unverified(messages: Sequence[StoredMessage]) -> list[list[str]]:
    """For each turn of a conversation, the figures of an answer from documents that nothing the
    model had holds: its sources, and from the turns before, the questions and the sources of
    earlier answers (the conversation is sent whole). One pass, each text read once."""
    known = KnownFigures()
    flagged: list[list[str]] = []
    for m in messages:
        if m.role == "user":
            known.add([m.content])
            flagged.append([])
        else:
            known.add(source_texts(m.sources))
            flagged.append(known.unsupported(m.content) if m.sources else [])
    return flagged


def conversation_markdown(title: str, messages: Sequence[StoredMessage]) -> str:
    """A conversation as a Markdown document: each question, and each answer with the sources it
    was given (file and page, cited or not) and the figures they do not hold."""
    lines = [f"# {title}", ""]
    for m, flagged in zip(messages, unverified(messages), strict=True):
        if m.role == "user":
            lines += [f"**You:** {m.content}", ""]
            continue
        lines += [f"**Quipu:** {m.content}", ""]
        for s in m.sources:
            cited = " (cited)" if s.get("cited") else ""
            lines.append(f"- [{s['number']}] {s['file']}, {_pages(s, None)}{cited}")
        if flagged:
            lines.append(f"- Not in the sources: {', '.join(flagged)}")
        if m.sources:
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def library_rows(docs: Sequence[Document]) -> list[list[Any]]:
    """Rows of the library table."""
    return [[d.file_name, d.pages, d.chunks, d.added.replace("T", " ")[:16]] for d in docs]


def report_markdown(results: Sequence[FileResult]) -> str:
    """The per-file outcome of an upload."""
    labels = {"ok": "added", "skipped": "skipped", "failed": "FAILED", "stopped": "stopped"}
    lines = [
        f"- **{labels[r.status]}** {html.escape(r.file_name)}: {html.escape(r.message)}"
        for r in results
    ]
    return "\n".join(lines) or "No PDF files were given."


def progress_text(event: IngestProgress) -> str:
    """One line for the progress bar: which file, what is happening, how far."""
    where = f"{event.file_name} ({event.file_index + 1}/{event.file_count})"
    what = {
        "reading": "reading pages",
        "chunking": f"read {event.total} pages",
        "embedding": f"embedded {event.done}/{event.total} chunks",
        "storing": "saving",
        "done": "done",
        "skipped": "already in the library",
        "failed": "failed",
        "stopped": "stopped",
    }[event.stage]
    return f"{where}: {what}"


def progress_fraction(event: IngestProgress) -> float:
    """Overall progress of the batch in [0, 1]."""
    within = event.done / event.total if event.total else 1.0
    if event.stage in ("reading", "chunking"):
        within *= 0.1  # reading is quick; embedding is most of the work
    elif event.stage == "embedding":
        within = 0.1 + 0.85 * within
    elif event.stage == "storing":
        within = 0.95
    return min(1.0, (event.file_index + within) / max(1, event.file_count))


def placement(info: ModelInfo) -> str:
    """Where a llama.cpp model runs, in words: "GPU, all layers", "GPU, 12 layers", "CPU, 4
    threads" (llama.cpp's -1 means every layer)."""
    if info.gpu_layers < 0:
        return "GPU, all layers"
    if info.gpu_layers:
        return f"GPU, {info.gpu_layers} layers (the rest on {info.threads} CPU threads)"
    return f"CPU, {info.threads} threads"
