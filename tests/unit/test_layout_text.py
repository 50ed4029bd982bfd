"""The faster layout-mode steps give what pypdf's own give: the matrix on every kind of operand,
each drawn text's position and width to the bit, and so the same page text."""

import copy
import math

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


STATE_FIELDS = (
    "text",
    "_raw_chars",
    "transform",
    "tx",
    "ty",
    "displaced_tx",
    "space_tx",
    "font_height",
    "flip_vertical",
    "rotated",
)


def _same(a, b):
    """Equal, and for floats the same float (sign of zero included)."""
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return type(b) is float and a == b and math.copysign(1, a) == math.copysign(1, b)
    return type(a) is type(b) and a == b


def test_each_drawn_texts_state_is_pypdfs_to_the_bit(tmp_path, monkeypatch):
    """Every `TextStateParams` made while reading scaled, rotated, tabular and column pages gets
    from `post_init` the fields pypdf's own `__post_init__` gives it."""
    from pypdf._text_extraction._layout_mode._text_state_params import TextStateParams

    assert TextStateParams.__post_init__ is layout_text.post_init  # rag.pdf installed it
    original = layout_text._ORIGINAL_POST_INIT
    assert original is not None
    compared = []

    def both(state):
        theirs = copy.copy(state)
        theirs.transform = list(state.transform)
        original(theirs)
        layout_text.post_init(state)
        compared.append(
            [f for f in STATE_FIELDS if not _same(getattr(state, f), getattr(theirs, f))]
        )

    monkeypatch.setattr(TextStateParams, "__post_init__", both)
    table = table_page("Income", [["Net revenue", "79,474", "70,372"], ["Tax", "2,142", "1,894"]])
    prose = "Revenue grew in every region, by 4.5% (Europe) and 3% (Asia). " * 6
    path = write_pdf(
        tmp_path / "mixed.pdf", [MATRICES, table, columns_page("Review", prose, prose)]
    )
    for page in open_pdf(path).pages:
        page_text(page)
    assert len(compared) > 20
    assert not any(compared), [d for d in compared if d]


def test_post_init_matches_for_rotations_flips_and_spacing(monkeypatch):
    """Matrices turned by 90, 180 and 270 degrees, flipped, with character and word spacing,
    horizontal scaling, text rise, and a font whose space has no width."""
    from pypdf._text_extraction._layout_mode._text_state_params import TextStateParams

    monkeypatch.setattr(TextStateParams, "__post_init__", lambda self: None)
    cases = [
        ([1.0, 0.0, 0.0, 1.0, 72.0, 700.0], {}),
        ([0.0, 1.0, -1.0, 0.0, 300.0, 400.0], {"Tc": 0.5}),
        ([0.0, -1.0, 1.0, 0.0, 10.0, 20.0], {"Tw": 2.0, "Tz": 90.0}),
        ([-1.0, 0.0, 0.0, -1.0, 500.0, 500.0], {"Ts": 3.0}),
        ([1.0, 0.0, 0.0, -1.0, 72.0, 100.0], {"Tz": 120.0, "Tc": -0.25}),
        ([0.3, 0.1, -0.1, 0.3, 1e-7, -0.0], {}),
    ]
    values = (b"Net revenue 79,474", "Tax  2,142", b"", b"\xe9t\xe9 \x80", b"\x00N\xd8\x00")
    for transform, spacing in cases:
        for value in values:
            for font in (_font(250.0), _font(0.0), _font(250, encoding="utf-16-be")):
                mine = TextStateParams(value, font, 11.0, transform=list(transform), **spacing)
                theirs = TextStateParams(value, font, 11.0, transform=list(transform), **spacing)
                layout_text.post_init(mine)
                layout_text._ORIGINAL_POST_INIT(theirs)
                diff = [f for f in STATE_FIELDS if not _same(getattr(mine, f), getattr(theirs, f))]
                assert not diff, (transform, spacing, value, font, diff)


def _font(space_width, encoding=None):
    """A simple font (a byte encoding, a few mapped characters and widths), or with `encoding`
    a font whose codes are decoded as that codec."""
    from pypdf.generic._font import Font

    return Font(
        name="Test",
        encoding=encoding or {0xE9: "é"},
        character_map={"\x80": "EUR"},
        character_widths={"default": 500.0, "N": 722.0, "e": 444.0, ",": 250.0},
        space_width=space_width,
    )
