"""Property-based fuzzing of extraction and chunking: no crash, no hang, only typed errors."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.chunk import split_pages
from rag.errors import PdfError
from rag.pdf import read_pdf
from rag.types import Page
from tests.pdf_factory import pdf_bytes

pytestmark = pytest.mark.unit
VALID = pdf_bytes(["First page about rivers.", "Second page about lakes.", None])


def words(text: str) -> int:
    return len(text.split())


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cut=st.integers(min_value=0, max_value=len(VALID)),
    flips=st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), max_size=12),
    junk=st.binary(max_size=64),
)
def test_damaged_pdfs_raise_only_pdf_errors(tmp_path, cut, flips, junk):
    data = bytearray(VALID[:cut] + junk)
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    path = tmp_path / "fuzz.pdf"
    path.write_bytes(bytes(data))
    try:
        pages = read_pdf(path, file_id="f", max_pages=1000)
    except PdfError:
        return
    assert all(isinstance(p.text, str) and p.page_no >= 1 for p in pages)


page_texts = st.lists(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=400), min_size=1, max_size=6
)


@settings(max_examples=200, deadline=None)
@given(texts=page_texts, size=st.integers(8, 60), overlap=st.integers(0, 7))
def test_chunking_any_text_keeps_budget_pages_and_words(texts, size, overlap):
    pages = [Page("f" * 64, "doc.pdf", n, t) for n, t in enumerate(texts, start=1)]
    chunks = list(split_pages(pages, max_tokens=size, overlap_tokens=overlap, count_tokens=words))
    for c in chunks:
        assert words(c.text) <= size
        assert 1 <= c.page_start == c.page_end <= len(pages)
        assert c.text.strip()
    if overlap == 0:
        expected = [w for t in texts for w in t.split()]
        assert [w for c in chunks for w in c.text.split()] == expected
