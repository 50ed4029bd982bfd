"""Pages -> chunks: token-budgeted, sentence-respecting, overlapping, with page spans.

Text is cut into paragraphs and sentences per page (so every unit knows its page), then packed
greedily into chunks of at most `max_tokens` tokens (counted with the embedder's tokenizer). A new
chunk starts with the last sentences of the previous one on the same page, up to `overlap_tokens`.
A chunk never crosses a page break, so a citation always names one page (`page_start ==
page_end` today; the span is kept in the type for structure-aware chunkers). Chunk ids derive
from the
document's content hash and the chunk's position, so re-indexing the same bytes gives the same ids.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rag.types import Chunk, Page

CHUNKER_VERSION = "sentences-v2"

_PARAGRAPH = re.compile(r"\n\s*\n")
# A sentence ends at . ! ? (optionally closed by a quote or bracket) followed by a space.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+")


@dataclass(frozen=True)
class _Unit:
    text: str
    page_no: int
    tokens: int


def split_sentences(text: str) -> list[str]:
    """Paragraphs, then sentences inside them; line breaks inside a paragraph become spaces."""
    sentences: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        flat = " ".join(paragraph.split())
        if flat:
            sentences.extend(s.strip() for s in _SENTENCE_END.split(flat) if s.strip())
    return sentences


def _hard_split(sentence: str, max_tokens: int, count: Callable[[str], int]) -> list[str]:
    """Cut an over-long sentence (a table row run, a URL dump) on word boundaries."""
    pieces: list[str] = []
    words: list[str] = []
    for word in sentence.split(" "):
        if words and count(" ".join([*words, word])) > max_tokens:
            pieces.append(" ".join(words))
            words = []
        words.append(word)
    if words:
        pieces.append(" ".join(words))
    return pieces


def _units(pages: Iterable[Page], max_tokens: int, count: Callable[[str], int]) -> list[_Unit]:
    units: list[_Unit] = []
    for page in pages:
        for sentence in split_sentences(page.text):
            tokens = count(sentence)
            if tokens <= max_tokens:
                units.append(_Unit(sentence, page.page_no, tokens))
                continue
            for piece in _hard_split(sentence, max_tokens, count):
                units.append(_Unit(piece, page.page_no, count(piece)))
    return units


def split_pages(
    pages: list[Page],
    *,
    max_tokens: int,
    overlap_tokens: int,
    count_tokens: Callable[[str], int],
) -> list[Chunk]:
    """Cut a document's pages into chunks.

    Args:
        pages: the document's pages in order (all from one file).
        max_tokens: most tokens per chunk (units are joined by one space, counted as one token).
        overlap_tokens: tokens of trailing sentences repeated at the start of the next chunk.
        count_tokens: the embedder's token counter.

    Returns:
        Chunks in reading order; empty if the pages hold no text.
    """
    if max_tokens < 8 or not 0 <= overlap_tokens < max_tokens:
        raise ValueError("need max_tokens >= 8 and 0 <= overlap_tokens < max_tokens")
    if not pages:
        return []
    units = _units(pages, max_tokens, count_tokens)
    groups: list[list[_Unit]] = []
    current: list[_Unit] = []
    size = 0
    fresh = 0  # units in `current` that are not overlap from the previous chunk
    for unit in units:
        if current and unit.page_no != current[-1].page_no:
            # A chunk never spans a page break, so every citation names exactly one page.
            if fresh:
                groups.append(current)
            current, size, fresh = [], 0, 0
        elif current and size + unit.tokens + 1 > max_tokens:
            groups.append(current)
            current, size = _overlap_tail(current, overlap_tokens, max_tokens - unit.tokens - 1)
            fresh = 0
        current.append(unit)
        size += unit.tokens + (1 if len(current) > 1 else 0)
        fresh += 1
    if current and fresh:
        groups.append(current)
    first = pages[0]
    return [
        Chunk(
            id=f"{first.file_id[:24]}-{index:05d}",
            text=" ".join(u.text for u in group),
            file_id=first.file_id,
            file_name=first.file_name,
            page_start=group[0].page_no,
            page_end=group[-1].page_no,
        )
        for index, group in enumerate(groups)
    ]


def _overlap_tail(units: list[_Unit], overlap: int, room: int) -> tuple[list[_Unit], int]:
    """The trailing units of a finished chunk worth repeating, within `overlap` and `room`."""
    tail: list[_Unit] = []
    size = 0
    for unit in reversed(units):
        extra = unit.tokens + (1 if tail else 0)
        if size + extra > min(overlap, room):
            break
        tail.insert(0, unit)
        size += extra
    return tail, size
