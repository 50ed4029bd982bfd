import pytest

from rag.chunk import split_pages, split_sentences
from rag.types import Page

pytestmark = pytest.mark.unit


def words(text: str) -> int:
    return len(text.split())


def page(no: int, text: str) -> Page:
    return Page(file_id="f" * 64, file_name="doc.pdf", page_no=no, text=text)


def chunked(pages: list[Page], **budget) -> list:
    return list(split_pages(pages, count_tokens=words, **budget))


def test_sentences_split_on_terminal_punctuation_and_paragraphs():
    text = "First one. Second one!\nstill second? Third.\n\nNew paragraph"
    assert split_sentences(text) == [
        "First one.",
        "Second one!",
        "still second?",
        "Third.",
        "New paragraph",
    ]


def test_chunks_respect_the_token_budget_and_keep_whole_lines():
    lines = [f"Line number {i} has exactly seven words" for i in range(40)]
    chunks = chunked([page(1, "\n".join(lines))], max_tokens=30, overlap_tokens=0)
    assert len(chunks) > 5
    for chunk in chunks:
        assert words(chunk.text) <= 30
        assert all(line in lines for line in chunk.text.split("\n"))  # table rows stay whole
    assert "\n".join(c.text for c in chunks) == "\n".join(lines)


def test_overlap_repeats_trailing_lines_of_the_previous_chunk():
    lines = [f"Fact {i} is here now." for i in range(20)]
    chunks = chunked([page(1, "\n".join(lines))], max_tokens=20, overlap_tokens=5)
    assert len(chunks) > 3
    for prev, nxt in zip(chunks, chunks[1:]):
        assert nxt.text.split("\n")[0] == prev.text.split("\n")[-1]


def test_context_names_the_document_and_the_page_heading():
    body = "\n".join(f"Total item {i} 1,234 5,678" for i in range(30))
    pages = [
        Page("f" * 64, "ACME_2015_10K.pdf", 1, f"CONSOLIDATED BALANCE SHEETS\n{body}"),
        Page("f" * 64, "ACME_2015_10K.pdf", 2, "12\n$ 4"),
    ]
    chunks = chunked(pages, max_tokens=40, overlap_tokens=0)
    first, later = chunks[0], chunks[1]
    assert first.context == "ACME 2015 10K"  # the page's first chunk holds the heading itself
    assert later.context == "ACME 2015 10K — CONSOLIDATED BALANCE SHEETS / Total item 0 1,234 5,678"
    assert later.indexed_text.startswith(later.context + "\n")
    assert "CONSOLIDATED" not in later.text  # shown text is the page's own
    assert chunks[-1].context == "ACME 2015 10K"  # no heading on a page of figures


def test_chunks_never_cross_pages_and_carry_their_page():
    pages = [
        page(1, "Alpha is on page one."),
        page(2, "Beta is on page two."),
        page(3, ""),
        page(4, "Delta."),
    ]
    chunks = chunked(pages, max_tokens=100, overlap_tokens=10)
    assert [(c.page_start, c.page_end) for c in chunks] == [(1, 1), (2, 2), (4, 4)]
    assert "Beta" in chunks[1].text and "Alpha" not in chunks[1].text


def test_overlong_line_is_split_on_words():
    long = " ".join(f"w{i}" for i in range(95))
    chunks = chunked([page(1, long)], max_tokens=20, overlap_tokens=0)
    assert all(words(c.text) <= 20 for c in chunks)
    assert " ".join(c.text for c in chunks) == long


def test_ids_are_stable_and_derive_from_the_content_hash():
    pages = [page(1, "One. Two. Three.")]
    a = chunked(pages, max_tokens=8, overlap_tokens=0)
    b = chunked(pages, max_tokens=8, overlap_tokens=0)
    assert [c.id for c in a] == [c.id for c in b]
    assert all(c.id.startswith("f" * 24) for c in a)


def test_invalid_sizes_are_rejected():
    with pytest.raises(ValueError, match="overlap"):
        split_pages([page(1, "x")], max_tokens=10, overlap_tokens=10, count_tokens=words)
