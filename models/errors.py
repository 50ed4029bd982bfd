"""Typed errors of the model side; the UI and CLI turn them into sentences for people."""

from __future__ import annotations


class ModelError(Exception):
    """Base of every error raised on purpose by `models`."""


class ModelNotFound(ModelError, FileNotFoundError):
    """No GGUF at the given path, or the bundled model is not installed."""


class ModelLoadError(ModelError):
    """llama.cpp could not load the file (not a GGUF, unsupported architecture, no memory)."""


class GenerationError(ModelError):
    """llama.cpp failed while generating."""


class UnknownModelError(ModelError, KeyError):
    """A model name that is neither in the catalog nor a known local file."""

    def __init__(self, name: str, choices: list[str]) -> None:
        super().__init__(name, choices)
        self.name = name
        self.choices = choices

    def __str__(self) -> str:
        return f"unknown model {self.name!r}; choose one of: {', '.join(self.choices)}"


class ModelTooLarge(ModelError):
    """The model would not fit in this machine's memory; refused before loading."""


class DownloadError(ModelError):
    """A download failed (network, hub error, offline mode); no usable file was left behind."""


class ChecksumMismatch(DownloadError):
    """The downloaded bytes do not match the size or sha256 the hub announced."""


class DownloadCancelled(DownloadError):
    """The user stopped the download; the partial file is kept only for resuming."""


class StateFileError(ModelError):
    """The saved model choices are damaged or unreadable; the file is left as it is."""
