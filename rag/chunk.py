"""Pages -> chunks: token-budgeted, line-respecting, overlapping, one page each, with context.

PDF text comes out as lines: prose lines of a paragraph, or rows of a table. Lines are packed
greedily into chunks of at most `max_tokens` tokens (counted with the embedder's tokenizer) and
keep their line breaks, so a table row stays whole and beside its neighbours. A line longer than
the budget is cut at sentence ends, then between words. A new chunk starts with the last lines of
the previous one on the same page, up to `overlap_tokens`.

A chunk never crosses a page break, so a citation always names one page. Each chunk also gets a
`context`: the document's title (from its file name) and the page's heading (its first line of
words), which are embedded and keyword-indexed with the chunk, so a row in the middle of a table
still knows it belongs to "Consolidated Balance Sheets" of "Adobe 2015 10K".

Chunk ids derive from the document's content hash and the chunk's position, so re-indexing the
same bytes gives the same ids.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePath

from rag.types import Chunk, Page

CHUNKER_VERSION = "lines-v3"

_PARAGRAPH = re.compile(r"\n\s*\n")
# A sentence ends at . ! ? (optionally closed by a quote or bracket) followed by a space.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+")
_HEADING_MAX_CHARS = 120


@dataclass(frozen=True)
class _Line:
    text: str
    tokens: int


def split_sentences(text: str) -> list[str]:
    """Paragraphs, then sentences inside them; line breaks inside a paragraph become spaces."""
    sentences: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        flat = " ".join(paragraph.split())
        if flat:
            sentences.extend(s.strip() for s in _SENTENCE_END.split(flat) if s.strip())
    return sentences


def document_title(file_name: str) -> str:
    """A file name as words: "ADOBE_2015_10K.pdf" -> "ADOBE 2015 10K"."""
    stem = PurePath(file_name).stem if file_name.lower().endswith(".pdf") else file_name
    return " ".join(re.sub(r"[_\-.]+", " ", stem).split())


def page_heading(text: str, lines: int = 2) -> str:
    """The page's first `lines` lines with words in them (its title, and often its subject).

    Two lines, because a page often starts with the company or chapter and names its subject on
    the next line ("Lockheed Martin Corporation / Consolidated Statements of Earnings").
    """
    found: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if sum(c.isalpha() for c in line) >= 4:
            found.append(line)
            if len(found) == lines:
                break
    return " / ".join(found)[:_HEADING_MAX_CHARS]


def _hard_split(text: str, max_tokens: int, count: Callable[[str], int]) -> list[str]:
    """Cut an over-long run of words (a URL dump, a flattened table) between words."""
    pieces: list[str] = []
    words: list[str] = []
    for word in text.split(" "):
        if words and count(" ".join([*words, word])) > max_tokens:
            pieces.append(" ".join(words))
            words = []
        words.append(word)
    if words:
        pieces.append(" ".join(words))
    return pieces


def _lines(
    text: str,
    max_tokens: int,
    count: Callable[[str], int],
    count_many: Callable[[list[str]], list[int]],
) -> list[_Line]:
    """The page's non-empty lines, each within the budget (long ones cut)."""
    lines: list[_Line] = []
    found = [line for line in (" ".join(raw.split()) for raw in text.splitlines()) if line]
    for line, tokens in zip(found, count_many(found), strict=True):
        if tokens <= max_tokens:
            lines.append(_Line(line, tokens))
            continue
        for sentence in split_sentences(line):
            for piece in _hard_split(sentence, max_tokens, count):
                lines.append(_Line(piece, count(piece)))
    return lines


def _pack(lines: list[_Line], max_tokens: int, overlap_tokens: int) -> list[list[_Line]]:
    """Greedy packing of one page's lines; each group after the first starts with overlap."""
    groups: list[list[_Line]] = []
    current: list[_Line] = []
    size = 0
    fresh = 0  # lines in `current` that are not overlap from the previous chunk
    for line in lines:
        if current and size + line.tokens + 1 > max_tokens:
            groups.append(current)
            current, size = _overlap_tail(current, overlap_tokens, max_tokens - line.tokens - 1)
            fresh = 0
        current.append(line)
        size += line.tokens + (1 if len(current) > 1 else 0)
        fresh += 1
    if current and fresh:
        groups.append(current)
    return groups


def _overlap_tail(lines: list[_Line], overlap: int, room: int) -> tuple[list[_Line], int]:
    """The trailing lines of a finished chunk worth repeating, within `overlap` and `room`."""
    tail: list[_Line] = []
    size = 0
    for line in reversed(lines):
        extra = line.tokens + (1 if tail else 0)
        if size + extra > min(overlap, room):
            break
        tail.insert(0, line)
        size += extra
    return tail, size


def split_pages(
    pages: list[Page],
    *,
    max_tokens: int,
    overlap_tokens: int,
    count_tokens: Callable[[str], int],
    count_many: Callable[[list[str]], list[int]] | None = None,
) -> Iterator[Chunk]:
    """Cut a document's pages into chunks, page by page (lazily: a reader can start on the first
    chunks while the rest are cut).

    Args:
        pages: the document's pages in order (all from one file).
        max_tokens: most tokens per chunk (lines are joined by a newline, counted as one token).
        overlap_tokens: tokens of trailing lines repeated at the start of the next chunk.
        count_tokens: the embedder's token counter.
        count_many: the same for a list of texts at once (one call per page instead of one per
            line; None: `count_tokens` on each).

    Returns:
        The chunks in reading order, each cut when it is asked for; none if the pages hold no
        text.

    Raises:
        ValueError: at once (not on the first chunk) for budgets that cannot work.
    """
    if max_tokens < 8 or not 0 <= overlap_tokens < max_tokens:
        raise ValueError("need max_tokens >= 8 and 0 <= overlap_tokens < max_tokens")
    counter = count_many or (lambda texts: [count_tokens(text) for text in texts])
    return _chunks(pages, max_tokens, overlap_tokens, count_tokens, counter)


def _chunks(
    pages: list[Page],
    max_tokens: int,
    overlap_tokens: int,
    count_tokens: Callable[[str], int],
    count_many: Callable[[list[str]], list[int]],
) -> Iterator[Chunk]:
    if not pages:
        return
    first = pages[0]
    title = document_title(first.file_name)
    made = 0
    for page in pages:
        heading = page_heading(page.text)
        lines = _lines(page.text, max_tokens, count_tokens, count_many)
        groups = _pack(lines, max_tokens, overlap_tokens)
        first_group = groups[0] if groups else None
        for group in groups:
            text = "\n".join(line.text for line in group)
            shown_heading = "" if group is first_group else heading
            yield Chunk(
                id=f"{first.file_id[:24]}-{made:05d}",
                text=text,
                file_id=first.file_id,
                file_name=first.file_name,
                page_start=page.page_no,
                page_end=page.page_no,
                context=" — ".join(part for part in (title, shown_heading) if part),
            )
            made += 1
