"""Real PDF files made by the tests: text pages (Helvetica), text-less pages, encrypted, broken,
pages of two text columns, tables drawn column by column, text in an embedded subset font.

A minimal PDF writer: one content stream per page, wrapped lines, correct xref offsets, so pypdf
reads it like any PDF from a word processor. Only the subset font needs a library (fontTools, a
dependency of the app through pypdf's `fonts` extra).
"""

from __future__ import annotations

import textwrap
from pathlib import Path


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _content(text: str) -> bytes:
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines.extend(textwrap.wrap(paragraph, 90) or [""])
    ops = ["BT", "/F1 10 Tf", "13 TL", "50 800 Td"]
    for line in lines[:58]:
        safe = _escape(line.encode("latin-1", "replace").decode("latin-1"))
        ops.append(f"({safe}) Tj T*")
    ops.append("ET")
    return "\n".join(ops).encode("latin-1")


def columns_page(title: str, left: str, right: str) -> bytes:
    """A page's content: a title line, then two columns of wrapped prose side by side."""
    ops = ["BT", "/F1 10 Tf", "50 800 Td", f"({_escape(title)}) Tj", "ET"]
    for x, text in ((50, left), (310, right)):
        ops += ["BT", "/F1 10 Tf", "13 TL", f"{x} 770 Td"]
        ops += [f"({_escape(line)}) Tj T*" for line in textwrap.wrap(text, 48)]
        ops.append("ET")
    return "\n".join(ops).encode("latin-1")


def table_page(title: str, rows: list[list[str]]) -> bytes:
    """A page's content: a title, then a table drawn a column at a time (all labels, then all
    figures of the first year...), as many report generators write their tables."""
    ops = ["BT", "/F1 10 Tf", "50 800 Td", f"({_escape(title)}) Tj", "ET"]
    for column in range(len(rows[0])):
        x = 50 if column == 0 else 200 + 100 * column  # labels, then figures 100 pt apart
        ops += ["BT", "/F1 10 Tf", "16 TL", f"{x} 770 Td"]
        ops += [f"({_escape(row[column])}) Tj T*" for row in rows]
        ops.append("ET")
    return "\n".join(ops).encode("latin-1")


def pdf_bytes(pages: list[str | bytes | None]) -> bytes:
    """A PDF with one page per item: text, a content stream (`columns_page`, `table_page`), or
    None for a page with a drawing and no text."""
    objects: list[bytes] = []
    n_pages = len(pages)
    # 1: catalog, 2: pages, 3: font, then per page: page object + content stream.
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n_pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    objects.append(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    )
    for i, text in enumerate(pages):
        if isinstance(text, bytes):
            content = text
        else:
            content = _content(text) if text is not None else b"0.5 g 50 50 400 600 re f"
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(_stream(content))
    return _assemble(objects)


def _assemble(objects: list[bytes]) -> bytes:
    """Numbered objects (1..n, the first the catalog) -> a PDF file with a correct xref."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{off:010d} 00000 n \n" for off in offsets).encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


def write_pdf(path: Path, pages: list[str | bytes | None]) -> Path:
    """Write `pdf_bytes(pages)` to `path` and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pdf_bytes(pages))
    return path


def write_encrypted_pdf(path: Path, pages: list[str], *, user_password: str) -> Path:
    """An AES-encrypted copy of a text PDF (empty `user_password` = opens without one)."""
    from io import BytesIO

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(BytesIO(pdf_bytes(list(pages)))))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="AES-128")
    with path.open("wb") as fh:
        writer.write(fh)
    return path


def write_truncated_pdf(path: Path, pages: list[str], keep: float = 0.4) -> Path:
    """The first `keep` share of a valid PDF's bytes: a download cut off mid-way."""
    data = pdf_bytes(list(pages))
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def write_cff_subset_pdf(path: Path, words: str) -> Path:
    """A one-page PDF whose text is drawn in an embedded subset font as many producers write one:
    a CFF (Type1C) program whose own encoding numbers its glyphs 1, 2, 3..., and no /Encoding in
    the font dictionary, so only the font program says which code is which letter.

    `words`: letters and spaces (glyph names are the letters themselves, and "space").
    """
    import io

    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.t2CharStringPen import T2CharStringPen

    names = {c: ("space" if c == " " else c) for c in words}
    glyphs = [".notdef", *sorted(set(names.values()))]

    def outline():  # every glyph a box; only the encoding matters to text extraction
        pen = T2CharStringPen(500, None)
        pen.moveTo((50, 0))
        pen.lineTo((450, 0))
        pen.lineTo((450, 700))
        pen.lineTo((50, 700))
        pen.closePath()
        return pen.getCharString()

    builder = FontBuilder(1000, isTTF=False)
    builder.setupGlyphOrder(glyphs)
    builder.setupCharacterMap({})
    builder.setupCFF("ABCDEF+Subset", {"FullName": "Subset"}, {g: outline() for g in glyphs}, {})
    cff = builder.font["CFF "].cff
    encoding = [".notdef"] * 256
    for code, glyph in enumerate(glyphs[1:], start=1):
        encoding[code] = glyph
    cff.topDictIndex[0].Encoding = encoding
    program = io.BytesIO()
    cff.compile(program, builder.font)
    data = program.getvalue()
    codes = bytes(encoding.index(names[c]) for c in words)

    widths = " ".join(["500"] * (len(glyphs) - 1))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        f"<< /Type /Font /Subtype /Type1 /BaseFont /ABCDEF+Subset /FirstChar 1 "
        f"/LastChar {len(glyphs) - 1} /Widths [{widths}] /FontDescriptor 6 0 R >>".encode(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 3 0 R >> >> /Contents 5 0 R >>",
        _stream(b"BT /F1 12 Tf 50 800 Td <" + codes.hex().encode() + b"> Tj ET"),
        b"<< /Type /FontDescriptor /FontName /ABCDEF+Subset /Flags 32 /FontBBox [0 0 500 700] "
        b"/ItalicAngle 0 /Ascent 700 /Descent 0 /CapHeight 700 /StemV 80 /FontFile3 7 0 R >>",
        _stream(data, b"/Subtype /Type1C "),
    ]
    path.write_bytes(_assemble(objects))
    return path


def _stream(data: bytes, entries: bytes = b"") -> bytes:
    return b"<< %s/Length %d >>\nstream\n" % (entries, len(data)) + data + b"\nendstream"
