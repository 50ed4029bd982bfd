"""Typed errors of the retrieval core. The UI and CLI turn them into sentences for people."""

from __future__ import annotations


class RagError(Exception):
    """Base of every error raised on purpose by `rag`."""


class PdfError(RagError):
    """A PDF could not be turned into text. `file_name` names it for the report."""

    def __init__(self, file_name: str, reason: str) -> None:
        super().__init__(f"{file_name}: {reason}")
        self.file_name = file_name
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Rebuilt from its fields when it crosses from the PDF-reader process.
        return (type(self), (self.file_name, self.reason))


class PdfUnreadable(PdfError):
    """Not a PDF, truncated, or too damaged for the parser."""


class PdfEncrypted(PdfError):
    """Protected by a password that was not given (the empty password was tried)."""


class PdfNoText(PdfError):
    """No text layer at all, e.g. scanned pages (OCR is not done)."""

    def __init__(self, file_name: str, pages: int) -> None:
        super().__init__(
            file_name, f"no extractable text in {pages} page(s): scanned images need OCR first"
        )
        self.pages = pages

    def __reduce__(self) -> tuple[type, tuple[str, int]]:  # type: ignore[override]
        return (type(self), (self.file_name, self.pages))


class StoreError(RagError):
    """The vector store failed or is unreachable."""


class DiskFull(StoreError):
    """Not enough free disk space to store a document; nothing was written."""


class EmbedderMismatch(StoreError):
    """The library was indexed with another embedder or chunker: it must be re-indexed."""


class DocumentNotFound(RagError, KeyError):
    """No document of that name in the library."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "document not found"


class ContextTooLong(RagError):
    """The question alone does not fit the model's context window."""


class EmptyQuestion(RagError):
    """Nothing to answer."""
