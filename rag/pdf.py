"""PDF file -> one `Page` per page (1-based), with pypdf.

Never raises anything but `PdfError` subclasses for a bad file: encrypted files are opened with the
empty password first (AES needs pypdf's `crypto` extra); a page that fails to extract becomes an
empty page rather than failing the document. Does not chunk, embed or store.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

from rag.errors import PdfEncrypted, PdfNoText, PdfUnreadable
from rag.types import Page

log = logging.getLogger(__name__)

_HYPHEN_BREAK = re.compile(r"(\w)-\n(\w)")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """Normalise extracted text: NFKC, joined hyphenated line breaks, collapsed spaces."""
    text = unicodedata.normalize("NFKC", text).replace("\x00", "")
    text = _HYPHEN_BREAK.sub(r"\1\2", text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.splitlines())
    return _BLANK_LINES.sub("\n\n", text).strip()


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
    reader = open_pdf(path, password=password)
    pages: list[Page] = []
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
    for index in range(count):
        try:
            text = reader.pages[index].extract_text() or ""
        except Exception as exc:  # one bad page must not lose the document
            log.warning("%s: page %d could not be read: %s", name, index + 1, exc)
            text = ""
        pages.append(
            Page(file_id=file_id, file_name=name, page_no=index + 1, text=clean_text(text))
        )
    if not any(p.text for p in pages):
        raise PdfNoText(name, count)
    return pages
