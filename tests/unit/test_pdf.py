"""PDF reading against real generated files, good and bad."""

import pytest

from rag.errors import PdfEncrypted, PdfNoText, PdfUnreadable
from rag.pdf import clean_text, has_text_columns, read_pdf
from tests.pdf_factory import (
    columns_page,
    table_page,
    write_cff_subset_pdf,
    write_encrypted_pdf,
    write_pdf,
    write_truncated_pdf,
)

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


def test_clean_text_drops_control_characters_but_keeps_lines():
    assert clean_text("Net\x01 sales\x00\n\x02\x03Total\t1,234\x7f") == "Net sales\nTotal 1,234"


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


LEFT = (
    "The aurora borealis appears when charged particles from the solar wind collide with gases "
    "in the upper atmosphere. Oxygen emits green light at lower altitudes, while nitrogen gives "
    "the blue and purple hues along the lower fringe of the curtains."
)
RIGHT = (
    "Glacier retreat in the Alps has accelerated since the nineteen eighties according to the "
    "survey records that the observatory keeps for every valley. Meltwater feeds the rivers "
    "in late summer and the farms that grow barley and potatoes."
)


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_a_table_drawn_column_by_column_reads_a_row_per_line(tmp_path):
    rows = [
        ["Net sales", "11,303", "11,503"],
        ["Cost of sales", "7,772", "7,468"],
        ["Gross margin", "3,531", "4,035"],
    ]
    path = write_pdf(tmp_path / "t.pdf", [table_page("Consolidated Statements of Income", rows)])
    lines = read_pdf(path, file_id="x")[0].text.splitlines()
    assert "Cost of sales 7,772 7,468" in lines  # plain mode gives the labels, then the figures
    assert "Consolidated Statements of Income" in lines


def test_two_text_columns_are_read_one_after_the_other(tmp_path):
    page = columns_page("Field notes", LEFT, RIGHT)
    path = write_pdf(tmp_path / "c.pdf", [page, page])
    for page in read_pdf(path, file_id="x"):
        text = _flat(page.text)
        assert LEFT in text and RIGHT in text  # each column whole, not interleaved line by line


def test_column_detection_tells_text_columns_from_tables_and_justified_prose():
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    # justified lines have wide gaps too, each line at its own places
    justified = "\n".join(
        " ".join(words[: i + 1]) + "   " + "  ".join(words[i + 1 :]) for i in range(2, 9)
    )
    columns = "\n".join(f"{' '.join(words[:6])}{' ' * 6}{' '.join(words[5:])}" for _ in range(8))
    table = "\n".join(f"{' '.join(words)}{' ' * 6}1,234{' ' * 6}5,678" for _ in range(8))
    assert has_text_columns(columns)
    assert not has_text_columns(justified)
    assert not has_text_columns(table)


def test_text_drawn_turned_on_its_side_is_kept(tmp_path):
    content = (
        b"BT /F1 10 Tf 50 800 Td (Quarterly figures) Tj ET\n"
        b"BT /F1 10 Tf 0 1 -1 0 300 300 Tm (Revenue by region, turned sideways) Tj ET"
    )
    text = read_pdf(write_pdf(tmp_path / "r.pdf", [content]), file_id="x")[0].text
    assert "Quarterly figures" in text and "Revenue by region, turned sideways" in text


def test_text_in_an_embedded_subset_font_reads_as_its_letters(tmp_path):
    # The font program alone maps codes 1, 2, 3... to letters; pypdf reads it with fontTools
    # (the `fonts` extra), and without it returns the raw codes as control characters.
    path = write_cff_subset_pdf(tmp_path / "subset.pdf", "Net revenue rose")
    assert read_pdf(path, file_id="x")[0].text == "Net revenue rose"
