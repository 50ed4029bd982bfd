"""Exceptions -> one sentence a person can act on. Shared by the CLI and the web page."""

from __future__ import annotations

import logging

from app.chats import ChatStoreError
from app.security import InsecureBindError, PortInUse
from app.settings import SettingsError
from models.errors import GenerationError, ModelError, ModelLoadError, ModelNotFound
from rag.errors import ContextTooLong, EmbedderMismatch, PdfError, RagError, StoreError

log = logging.getLogger(__name__)

_HINTS: tuple[tuple[type[BaseException], str], ...] = (
    (InsecureBindError, "{e}"),
    (PortInUse, "{e}"),
    (SettingsError, "{e}"),
    (ChatStoreError, "{e}"),
    (ModelNotFound, "Model not found: {e}"),
    (ModelLoadError, "The model could not be loaded: {e}"),
    (GenerationError, "The model failed while answering: {e}"),
    (ContextTooLong, "{e}"),
    (EmbedderMismatch, "{e}"),
    (StoreError, "The library store failed: {e}"),
    (PdfError, "{e}"),
    (RagError, "{e}"),
    (ModelError, "{e}"),
)


def is_expected(exc: BaseException) -> bool:
    """True for errors raised on purpose (bad input, missing files), not bugs."""
    expected = (RagError, ModelError, InsecureBindError, PortInUse, SettingsError, ChatStoreError)
    return isinstance(exc, expected)


def describe(exc: BaseException) -> str:
    """A user-facing sentence; unexpected exceptions are logged with their traceback."""
    for kind, template in _HINTS:
        if isinstance(exc, kind):
            return template.format(e=exc)
    log.error("unexpected error", exc_info=exc)
    return f"Something went wrong ({type(exc).__name__}: {exc}). Details are in the log."
