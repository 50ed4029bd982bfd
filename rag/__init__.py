"""Quipu's retrieval core: PDF -> pages -> chunks -> vectors -> store -> hits -> prompt -> answer.

No UI, no model runtime: this package never imports gradio, llama_cpp or huggingface_hub.
"""
