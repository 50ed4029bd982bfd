"""Quipu's model side: the bundled GGUF, the llama.cpp runtime and (later) the catalog.

Never imports gradio or rag.
"""
