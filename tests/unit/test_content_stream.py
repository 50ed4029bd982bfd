"""The fast content-stream parser gives exactly what pypdf's own parser gives, errors included."""

import random
from io import BytesIO

import pytest
from pypdf.generic import ArrayObject, ContentStream, DictionaryObject

from rag import content_stream
from rag.pdf import open_pdf, page_text
from tests.pdf_factory import columns_page, table_page, write_cff_subset_pdf, write_pdf

pytestmark = pytest.mark.unit

# A page as a word processor writes one: text objects, TJ arrays with kerning, hex strings of a
# two-byte font, marked content with property dictionaries, a comment, an inline image.
PAGE = (
    b"q 1 0 0 1 72 720 cm\n"
    b"/Span <</MCID 3 /Lang (en-US)>> BDC\n"
    b"BT /F1 9.5 Tf 0 -11.2 TD [(Net)-250(revenue)-333.5(rose)]TJ T* (3.4%) Tj ET EMC\n"
    b"BT /F2 1 Tf 10 0 0 10 72 600 Tm <0024 0025 00 26> Tj [<00270028>-12<0029>] TJ ET\n"
    b"% a comment line\r\n"
    b"BT /F1 8 Tf (a \\(bracket\\) and \\053 octal) Tj (nested (one) here) ' ET\n"
    b"0.5 0 0 0.5 0 0 cm .25 -.5 +3 d0 [1 2] 0 d /GS1 gs 1 0 0 RG\n"
    b"BI /W 2 /H 2 /BPC 8 /CS /G ID \x01\x02\x03\x04 EI\n"
    b"BT /F#201 12 Tf [null 5 (x)] TJ ET Q"
)

# Everything that must go to pypdf's readers, or be refused exactly as pypdf refuses it.
EDGE_CASES = [
    b"",
    b"   \n ",
    b"BT ET",
    b"12",  # a number at the very end of the stream
    b"123456789012345678901234 Tw",  # longer than read_object's 20-byte peek
    b"1.2.3 Tc 1,5 Tw - Tz",  # malformed numbers: pypdf warns and uses 0
    b"/Name#20With#41Escapes Tf /N\xc3\xa9 Do /" + b"x" * 5000 + b" Do",
    b"(unterminated Tj",
    b"<0A1 Tj",
    b"<0A1G> Tj",
    b"<<",
    b"<< /A 1 /A 2 >> BDC",
    b"[1 [2 3] true false null nullx] TJ",
    b"[1 % a comment\n 2] TJ",
    b"[1\x0b2] TJ",
    b"1\x0b2 Tw",
    b"[1 2",
    b"] Tj",
    b"{ } Tj",
    b"1 0 R Do",
    b"x" * 200 + b" Tj",
    b"Tj" * 70,
    b"(a)(b)(c) Tj\x00\x00/F1\x00 9 Tf",
    b"(\\\n continued \\\r\n line) Tj (\\q odd escape) Tj (\\777) Tj",
    b"%only a comment",
    b"BI /W 1 /H 1 /CS /RGB ID abc EI",
    b"5 BI /W 1 /H 1 ID x EI",
]


def _shape(value):
    """Operations as comparable plain values: every object's type and value, recursively."""
    if isinstance(value, ArrayObject | list):
        return [type(value).__name__, [_shape(v) for v in value]]
    if isinstance(value, DictionaryObject | dict):
        return [type(value).__name__, sorted((repr(k), _shape(v)) for k, v in value.items())]
    if isinstance(value, tuple):
        return tuple(_shape(v) for v in value)
    return [type(value).__name__, repr(value)]


def _parse(data: bytes, parser, forced="bytes"):
    stream = ContentStream(None, None, forced)
    try:
        parser(stream, BytesIO(data))
    except Exception as exc:  # the same error, from the same place, is part of the contract
        return ["error", type(exc).__name__, str(exc), _shape(stream._operations)]
    return _shape(stream._operations)


def _same(data: bytes, forced="bytes") -> None:
    mine = _parse(data, content_stream._parse_content_stream, forced)
    theirs = _parse(data, content_stream._ORIGINAL, forced)
    assert mine == theirs, data


@pytest.mark.parametrize("forced", ["bytes", None, "latin-1"])
def test_a_typical_page_parses_the_same(forced):
    _same(PAGE, forced)
    ops = _parse(PAGE, content_stream._parse_content_stream, forced)
    assert ops[0] == "list" and len(ops[1]) > 30  # parsed, not an error


@pytest.mark.parametrize("data", EDGE_CASES, ids=range(len(EDGE_CASES)))
def test_edge_cases_parse_or_fail_the_same(data):
    _same(data)


def test_mutated_streams_parse_or_fail_the_same():
    """Random damage: bytes replaced by delimiters and digits, cut, spliced."""
    rng = random.Random(7)
    alphabet = b"()<>[]{}/%\\#\x00\x0b\n \t0123456789.-+Ratfnul"
    for _ in range(3000):
        data = bytearray(PAGE)
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(data) + 1)
            action = rng.random()
            if action < 0.5 and at < len(data):
                data[at] = rng.choice(alphabet)
            elif action < 0.75:
                data.insert(at, rng.choice(alphabet))
            elif action < 0.9:
                del data[at : at + rng.randint(1, 8)]
            else:
                data = data[:at]
        _same(bytes(data))


def test_the_fast_path_is_taken_for_a_typical_page():
    """`_parse` itself reads the page (no fallback to pypdf's parser for the whole stream)."""
    stream = ContentStream(None, None, "bytes")
    budget = content_stream.StreamParsingBudget(remaining_budget=10**6)
    content_stream._parse(stream, PAGE, budget)
    assert _shape(stream._operations) == _parse(PAGE, content_stream._ORIGINAL)


def test_pdf_text_is_the_same_with_either_parser(tmp_path, monkeypatch):
    rows = [["Revenue", "1,234", "1,100"], ["Net income (loss)", "(56)", "78"]]
    pdfs = [
        write_pdf(tmp_path / "a.pdf", ["Plain prose (with brackets) \\ and a backslash.", None]),
        write_pdf(tmp_path / "t.pdf", [table_page("Balance sheet", rows)]),
        write_pdf(tmp_path / "c.pdf", [columns_page("Two columns", "left " * 60, "right " * 60)]),
        write_cff_subset_pdf(tmp_path / "f.pdf", "Net revenue rose"),
    ]

    def texts():
        out = []
        for path in pdfs:
            for page in open_pdf(path).pages:
                out.append((page_text(page), page.extract_text()))
        return out

    assert content_stream.install()
    fast = texts()
    monkeypatch.setattr(ContentStream, "_parse_content_stream", content_stream._ORIGINAL)
    assert texts() == fast
    assert "Net revenue rose" in fast[-1][0] and "1,234" in fast[2][0]
