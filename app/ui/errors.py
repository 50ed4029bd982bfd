"""Exceptions at the web edge -> Gradio messages (the sentence comes from app.messages)."""

from __future__ import annotations

import gradio as gr

from app.messages import describe


def ui_error(exc: BaseException) -> gr.Error:
    """A `gr.Error` to raise: stops the event and shows the sentence in the page."""
    return gr.Error(describe(exc), duration=None)


def ui_warning(message: str) -> None:
    """A non-blocking notice in the page."""
    gr.Warning(message)
