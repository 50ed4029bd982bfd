"""Quipu's application layer: settings, wiring, the command line and the Gradio page."""
