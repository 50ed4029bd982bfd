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
