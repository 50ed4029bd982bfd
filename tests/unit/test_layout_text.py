"""The faster layout-mode matrix gives what pypdf's own gives, on every kind of operand."""

import pytest
from pypdf.generic import FloatObject, NameObject, NullObject, NumberObject, TextStringObject

from rag import layout_text
from rag.pdf import open_pdf, page_text
from tests.pdf_factory import columns_page, table_page, write_pdf

pytestmark = pytest.mark.unit

OPERANDS = [
    (),
    (2,),
    (1, 0, 0, 1, 72, 720),
    (FloatObject("0.5"), NumberObject(0), 0.0, FloatObject("-0.5"), NumberObject(36), 1e-7),
    (1, 0, 0, 1, NameObject("/F1"), 3),  # a name where a number belongs: pypdf's default
    (1, NullObject(), 0, 1, 0, 0),
    (TextStringObject("12.5"), b"3", "x", None, 7, 8),
    (float("inf"), -0.0, 10**20, True, 1, 2),
]

# Text drawn through scaled, moved and rotated matrices (cm, Tm), then a table and prose.
MATRICES = (
    b"q 0.8 0 0 0.8 20 30 cm BT /F1 12 Tf 1 0 0 1 72 700 Tm (Scaled text here) Tj "
    b"0 1 -1 0 300 400 Tm (Rotated label) Tj 1.5 0 0 1.5 72 500 Tm (Wide line) Tj ET Q"
)


@pytest.mark.parametrize("operands", OPERANDS)
def test_the_matrix_is_pypdfs(operands):
    assert layout_text._ORIGINAL is not None
    mine = layout_text.raw_transform(*operands)
    assert list(mine.items()) == list(layout_text._ORIGINAL(*operands).items())
    assert all(type(v) is float for v in mine.values())


def test_installed_and_pages_read_the_same_text_as_with_pypdfs_own(tmp_path, monkeypatch):
    from pypdf._text_extraction._layout_mode._text_state_manager import TextStateManager

    assert TextStateManager.raw_transform is layout_text.raw_transform  # rag.pdf installed it
    table = table_page("Income", [["Net revenue", "79,474", "70,372"], ["Tax", "2,142", "1,894"]])
    prose = "Revenue grew in every region. " * 12
    pages = [MATRICES, table, columns_page("Review", prose, prose), prose]
    path = write_pdf(tmp_path / "mixed.pdf", pages)
    ours = [page_text(page) for page in open_pdf(path).pages]
    monkeypatch.setattr(TextStateManager, "raw_transform", staticmethod(layout_text._ORIGINAL))
    assert [page_text(page) for page in open_pdf(path).pages] == ours
    assert "Rotated label" in ours[0] and "Wide line" in ours[0]
    assert "79,474" in ours[1] and "every region" in ours[3]
