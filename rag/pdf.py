"""PDF file -> one `Page` per page (1-based), with pypdf.

Text comes from pypdf's layout mode, which places each piece of text by its position on the page:
a table row comes out as one line, label beside its figures, and words that the PDF draws in
pieces come out whole. Plain mode follows the content stream instead and breaks both ("Consolidated
Statem" / "ents of Income", a label several lines away from its figures). Layout mode would run
the two columns of a two-column page side by side on each line, so a page whose lines have a
shared gutter with prose on both sides is read in plain mode, which keeps each column together.

Never raises anything but `PdfError` subclasses for a bad file: encrypted files are opened with the
empty password first (AES needs pypdf's `crypto` extra); a page that fails to extract becomes an
empty page rather than failing the document. Does not chunk, embed or store.

Importing this module makes pypdf parse content streams with `rag.content_stream` (same results,
a third less time per page) and build layout mode's matrices and text positions with
`rag.layout_text` (same results, a fifth less).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from pathlib import Path

from pypdf import PageObject, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

from rag import content_stream, layout_text
from rag.errors import PdfEncrypted, PdfNoText, PdfUnreadable
from rag.types import Page

log = logging.getLogger(__name__)
content_stream.install()  # pypdf's pages parsed 2-5x faster, with the same results
layout_text.install()

_HYPHEN_BREAK = re.compile(r"(\w)-\n(\w)")
_SPACES = re.compile(r"[ \t\u00a0]+")
# Control characters: what a font pypdf cannot decode leaves behind; never text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BLANK_LINES = re.compile(r"\n{3,}")
_LEADER_DOTS = re.compile(r"(?: ?\.){4,}")  # "Total assets ........ 1,234" in tables of figures
_DIGITS = re.compile(r"\d+")
_EDGE_LINES = 3  # lines at the top and at the bottom of a page that may be running headers
_WORD = re.compile(r"[^\W\d_]{2,}")  # a word of letters


def _is_prose(text: str, words: int = 5) -> bool:
    return len(_WORD.findall(text)) >= words


def has_text_columns(layout_text: str, *, min_lines: int = 4, share: float = 0.5) -> bool:
    """Whether a page in layout mode holds columns of prose side by side.

    True when, on at least `share` of the lines with ten words or more, one character position
    between a fifth and four fifths of the width is the middle of a gap of three spaces with five
    words on each side of it. Justified prose has wide gaps too, but not at one position on most
    lines; a table's gaps have figures, not prose, on one side.
    """
    lines = [line.rstrip() for line in layout_text.splitlines() if len(_WORD.findall(line)) >= 10]
    if len(lines) < min_lines:
        return False
    width = max(len(line) for line in lines)
    needed = share * len(lines)
    for column in range(int(width * 0.2), int(width * 0.8)):
        gapped = [line for line in lines if line[column - 1 : column + 2] == "   "]
        if len(gapped) < needed:
            continue
        sides = sum(_is_prose(line[:column]) and _is_prose(line[column:]) for line in gapped)
        if sides >= needed:
            return True
    return False


def page_text(page: PageObject) -> str:
    """A page's text: layout mode, or plain mode for a page of text columns (module docstring)."""
    try:
        # Rotated text (a turned table, an axis label) is kept: by default layout mode drops it.
        text = page.extract_text(extraction_mode="layout", layout_mode_strip_rotated=False) or ""
    except Exception:  # layout mode fails on some pages that plain mode reads
        text = ""
    if text.strip() and not has_text_columns(text):
        return text
    return page.extract_text() or ""


def clean_text(text: str) -> str:
    """Normalise extracted text: NFKC, control characters dropped, joined hyphenated line breaks,
    collapsed spaces."""
    text = _CONTROL.sub("", unicodedata.normalize("NFKC", text))
    text = _HYPHEN_BREAK.sub(r"\1\2", text)
    text = _LEADER_DOTS.sub(" ", text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.splitlines())
    return _BLANK_LINES.sub("\n\n", text).strip()


def _edge_indexes(lines: list[str]) -> list[int]:
    filled = [i for i, line in enumerate(lines) if line.strip()]
    return filled[:_EDGE_LINES] + filled[-_EDGE_LINES:]


def remove_running_lines(texts: list[str], *, min_pages: int = 4, share: float = 0.3) -> list[str]:
    """Drop running headers and footers: lines at a page's top or bottom that recur on many pages.

    Lines are compared with their digits masked, so "Page 7 of 90" and "Page 8 of 90" match.
    A line counts as running when it is on at least `share` of the pages (and `min_pages`).
    """
    if len(texts) < min_pages:
        return texts
    split = [text.splitlines() for text in texts]
    seen: dict[str, int] = {}
    for lines in split:
        for key in {_DIGITS.sub("#", lines[i].strip().lower()) for i in _edge_indexes(lines)}:
            seen[key] = seen.get(key, 0) + 1
    limit = max(min_pages, int(share * len(texts)))
    running = {key for key, count in seen.items() if count >= limit}
    if not running:
        return texts
    cleaned = []
    for text, lines in zip(texts, split, strict=True):
        drop = {
            i for i in _edge_indexes(lines) if _DIGITS.sub("#", lines[i].strip().lower()) in running
        }
        kept = "\n".join(line for i, line in enumerate(lines) if i not in drop).strip()
        cleaned.append(kept or text)  # a page that is nothing but such lines keeps them
    return cleaned


def _locked_message(password: str | None) -> str:
    if password:
        return "password protected, and the password given does not open it"
    return (
        "password protected: enter its password (Library tab, or ingest --password) "
        "and add it again"
    )


def open_pdf(path: Path, *, password: str | None = None) -> PdfReader:
    """Open a PDF, decrypting it with `password` or else the empty password.

    Raises:
        PdfUnreadable: not a PDF, or damaged beyond what pypdf tolerates.
        PdfEncrypted: a password is needed and the one given (or the empty one) is wrong.
    """
    name = path.name
    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted:
            try:
                ok = reader.decrypt(password or "")
            except DependencyError as exc:  # AES without the crypto extra
                raise PdfUnreadable(name, f"encryption not supported: {exc}") from exc
            if not ok:
                raise PdfEncrypted(name, _locked_message(password))
        _ = len(reader.pages)  # forces the page tree to parse now, inside this try
    except (PdfEncrypted, PdfUnreadable):
        raise
    except FileNotDecryptedError as exc:
        raise PdfEncrypted(name, _locked_message(password)) from exc
    except PdfReadError as exc:
        raise PdfUnreadable(name, f"not a readable PDF ({exc})") from exc
    except Exception as exc:  # pypdf raises many types on damaged input
        raise PdfUnreadable(name, f"damaged PDF ({type(exc).__name__}: {exc})") from exc
    return reader


def read_raw(
    path: Path,
    *,
    file_name: str | None = None,
    password: str | None = None,
    max_pages: int | None = None,
    first: int = 0,
    stop: int | None = None,
    step: int = 1,
) -> tuple[int, list[str]]:
    """`page_text` of every `step`-th page from `first` up to `stop` (0-based; None: to the
    end), uncleaned.

    Returns:
        (the document's page count, one text per page read; "" for a page that fails).

    Raises:
        PdfUnreadable, PdfEncrypted: see `open_pdf`; also no pages, or over `max_pages`.
    """
    name = file_name or path.name
    reader = open_pdf(path, password=password)
    try:
        count = len(reader.pages)
    except Exception as exc:
        raise PdfUnreadable(name, f"damaged page tree ({exc})") from exc
    if count == 0:
        raise PdfUnreadable(name, "the PDF has no pages")
    if max_pages is not None and count > max_pages:
        raise PdfUnreadable(
            name, f"{count} pages is over the limit of {max_pages} (QUIPU_RAG__MAX_PAGES)"
        )
    raw: list[str] = []
    for index in range(first, count if stop is None else min(stop, count), step):
        try:
            raw.append(page_text(reader.pages[index]))
        except Exception as exc:  # one bad page must not lose the document
            log.warning("%s: page %d could not be read: %s", name, index + 1, exc)
            raw.append("")
    return count, raw


def read_pdf(
    path: Path,
    *,
    file_id: str,
    file_name: str | None = None,
    password: str | None = None,
    max_pages: int | None = None,
) -> list[Page]:
    """Extract every page's text.

    Args:
        path: the PDF on disk.
        file_id: the document's id (its sha256), copied into each page.
        file_name: the name shown in citations; defaults to the path's name.
        password: tried before the empty password when the file is encrypted.
        max_pages: refuse longer documents (a configurable limit).

    Returns:
        One `Page` per PDF page, in order, including pages with empty text.

    Raises:
        PdfUnreadable, PdfEncrypted: see `open_pdf`.
        PdfNoText: the file has pages but not one character of text.
    """
    name = file_name or path.name
    _, raw = read_raw(path, file_name=name, password=password, max_pages=max_pages)
    return pages_from_text(raw, file_id=file_id, file_name=name)


def pages_from_text(raw: list[str], *, file_id: str, file_name: str) -> list[Page]:
    """Pages from pypdf's text of each page: cleaned, running headers and footers removed.

    Raises:
        PdfNoText: not one page has text.
    """
    texts = remove_running_lines([clean_text(text) for text in raw])
    if not any(texts):
        raise PdfNoText(file_name, len(raw))
    return [
        Page(file_id=file_id, file_name=file_name, page_no=number, text=text)
        for number, text in enumerate(texts, start=1)
    ]
