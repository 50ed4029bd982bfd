"""PDF reading against real generated files, good and bad."""

import pytest

from rag.errors import PdfEncrypted, PdfNoText, PdfUnreadable
from rag.pdf import clean_text, read_pdf
from tests.pdf_factory import write_encrypted_pdf, write_pdf, write_truncated_pdf

pytestmark = pytest.mark.unit
TEXT = ["First page says hello.", "Second page talks about glaciers.", "Third page ends it."]


def test_pages_are_one_based_and_keep_their_text(tmp_path):
    pages = read_pdf(write_pdf(tmp_path / "a.pdf", [*TEXT, None]), file_id="abc")
    assert [p.page_no for p in pages] == [1, 2, 3, 4]
    assert "glaciers" in pages[1].text and pages[3].text == ""
    assert {p.file_name for p in pages} == {"a.pdf"}


def test_pdf_encrypted_with_the_empty_password_opens(tmp_path):
    pages = read_pdf(write_encrypted_pdf(tmp_path / "e.pdf", TEXT, user_password=""), file_id="x")
    assert "glaciers" in pages[1].text


def test_pdf_with_a_password_is_reported_and_opens_with_it(tmp_path):
    path = write_encrypted_pdf(tmp_path / "locked.pdf", TEXT, user_password="s3cret")
    with pytest.raises(PdfEncrypted, match="password"):
        read_pdf(path, file_id="x")
    assert "glaciers" in read_pdf(path, file_id="x", password="s3cret")[1].text


def test_text_less_pdf_is_reported_with_its_page_count(tmp_path):
    with pytest.raises(PdfNoText, match="2 page") as info:
        read_pdf(write_pdf(tmp_path / "scan.pdf", [None, None]), file_id="x")
    assert info.value.pages == 2


@pytest.mark.parametrize("payload", [b"", b"hello, I am not a PDF", b"%PDF-1.4\n%%EOF"])
def test_non_pdf_bytes_are_unreadable(tmp_path, payload):
    path = tmp_path / "fake.pdf"
    path.write_bytes(payload)
    with pytest.raises(PdfUnreadable):
        read_pdf(path, file_id="x")


def test_truncated_pdf_fails_cleanly_or_keeps_what_it_can(tmp_path):
    path = write_truncated_pdf(tmp_path / "cut.pdf", TEXT * 5, keep=0.5)
    try:
        pages = read_pdf(path, file_id="x")
    except (PdfUnreadable, PdfNoText):
        return
    assert pages and all(p.page_no >= 1 for p in pages)


def test_clean_text_joins_hyphenated_line_breaks_and_spaces():
    assert clean_text("exam-\nple   text\x00 here") == "example text here"


def test_a_pdf_with_zero_pages_is_reported(tmp_path):
    with pytest.raises(PdfUnreadable, match="no pages"):
        read_pdf(write_pdf(tmp_path / "empty.pdf", []), file_id="x")


def test_thousands_of_pages_are_refused_over_the_limit_without_reading_them(tmp_path):
    import time

    path = write_pdf(tmp_path / "huge.pdf", [f"Page {n}." for n in range(3000)])
    start = time.monotonic()
    with pytest.raises(PdfUnreadable, match="3000 pages is over the limit of 2000"):
        read_pdf(path, file_id="x", max_pages=2000)
    assert time.monotonic() - start < 10
