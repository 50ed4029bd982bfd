"""The Models tab: the catalog with sizes, memory needs and fit; download with progress; add a
local .gguf; switch the active model without restarting; per-model generation settings."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from app.ui.errors import ui_error
from app.wiring import Services
from models.download import DownloadProgress

HEADERS = ["Model", "Quant", "Size", "Memory needed", "Fits here", "Status", "Licence", "Id"]


@dataclass
class ModelsTab:
    """The components other parts of the page wire to."""

    table: gr.Dataframe
    choice: gr.Dropdown
    download: gr.Button
    cancel: gr.Button
    use: gr.Button
    local_path: gr.Textbox
    add_local: gr.Button
    message: gr.Markdown
    token: gr.Textbox
    n_ctx: gr.Slider
    temperature: gr.Slider
    top_p: gr.Slider
    max_tokens: gr.Slider
    system_prompt: gr.Textbox
    apply: gr.Button


def _size(n: int) -> str:
    return f"{n / 1024**3:.1f} GB" if n >= 1024**3 else f"{n / 1024**2:.0f} MB"


def model_rows(services: Services) -> list[list[Any]]:
    """Rows of the model table."""
    n_ctx = services.settings.model.n_ctx
    active = str(services.model.model_path)
    rows = []
    for c in services.registry.choices():
        if c.path is not None and str(c.path) == active:
            status = "active"
        else:
            status = "on disk" if c.on_disk else "not downloaded"
        fits = "yes" if c.fits(n_ctx) else "no: too large"
        rows.append(
            [
                c.name,
                c.quant,
                _size(c.size_bytes),
                _size(c.memory_bytes(n_ctx)),
                fits,
                status,
                c.license,
                c.id,
            ]
        )
    return rows


def build(services: Services) -> ModelsTab:
    """Lay out the tab (events are registered by `register`)."""
    table = gr.Dataframe(headers=HEADERS, value=[], interactive=False, label="Models", wrap=True)
    with gr.Row():
        choice = gr.Dropdown(
            choices=[],
            label="Model",
            scale=3,
            interactive=True,
            allow_custom_value=True,
            info="A catalog id, or owner/repo/file.gguf from the hub",
        )
        download = gr.Button("Download", scale=1)
        cancel = gr.Button("Cancel download", scale=1, variant="stop")
        use = gr.Button("Use this model", variant="primary", scale=1)
    token = gr.Textbox(
        label="Hub token (only for gated or private repos; kept for this session only)",
        type="password",
    )
    with gr.Row():
        local_path = gr.Textbox(label="Add a local .gguf file or a folder of them", scale=4)
        add_local = gr.Button("Add", scale=1)
    message = gr.Markdown(elem_id="quipu-models-message")
    with gr.Accordion("Settings of the active model (saved per model)", open=False):
        n_ctx = gr.Slider(256, 8192, value=4096, step=256, label="Context length (tokens)")
        temperature = gr.Slider(
            0.0, 2.0, value=0.2, step=0.05, label="Temperature", elem_id="quipu-temperature"
        )
        top_p = gr.Slider(0.05, 1.0, value=0.95, step=0.05, label="Top-p")
        max_tokens = gr.Slider(
            16, 4096, value=512, step=16, label="Max answer tokens", elem_id="quipu-max-tokens"
        )
        system_prompt = gr.Textbox(label="System prompt (empty = Quipu's default)", lines=3)
        apply = gr.Button("Apply")
    return ModelsTab(
        table, choice, download, cancel, use, local_path, add_local, message, token,
        n_ctx, temperature, top_p, max_tokens, system_prompt, apply,
    )  # fmt: skip


def settings_values(services: Services) -> tuple[Any, ...]:
    """The settings controls for the active model: its values and its trained maximum context."""
    info = services.model.info
    opts = services.model.default_options
    return (
        gr.Slider(maximum=max(info.trained_context_length, 256), value=info.context_length),
        opts.temperature,
        opts.top_p,
        opts.max_tokens,
        services.answerer.system_prompt or "",
    )


def register(tab: ModelsTab, services: Services, status: gr.Markdown, status_text: Any) -> None:
    """Wire the tab's events; `status` is the sidebar's model line, refreshed after a switch."""
    cancels: dict[str, threading.Event] = {}

    def refresh() -> tuple[Any, Any]:
        ids = [c.id for c in services.registry.choices()]
        return gr.Dataframe(value=model_rows(services), headers=HEADERS), gr.Dropdown(choices=ids)

    def on_download(
        name: str | None, token: str, request: gr.Request, progress: gr.Progress = gr.Progress()
    ) -> tuple:
        if not name:
            raise gr.Error("Choose a model to download.", duration=5)
        key = request.session_hash or "anonymous"
        cancel = cancels[key] = threading.Event()

        def show(e: DownloadProgress) -> None:
            eta = f", {e.eta_s:.0f} s left" if e.eta_s is not None else ""
            desc = (
                f"{e.file} ({e.part}/{e.parts}): {_size(e.done_bytes)} of {_size(e.total_bytes)}, "
                f"{e.speed_bps / 1e6:.1f} MB/s{eta}"
            )
            fraction = (
                e.part - 1 + (e.done_bytes / e.total_bytes if e.total_bytes else 0)
            ) / e.parts
            progress(fraction, desc=desc)

        try:
            path = services.download_model(name, progress=show, cancel=cancel, token=token or None)
        except Exception as exc:
            raise ui_error(exc) from exc
        finally:
            cancels.pop(key, None)
        return (
            f"Downloaded and verified **{path.name}**. Choose *Use this model* to switch.",
            *refresh(),
        )

    def on_cancel(request: gr.Request) -> None:
        event = cancels.get(request.session_hash or "anonymous")
        if event:
            event.set()

    def on_use(name: str | None) -> tuple:
        if not name:
            raise gr.Error("Choose a model to use.", duration=5)
        gr.Info(f"Loading {name}…")
        try:
            info = services.switch_model(name)
        except Exception as exc:
            raise ui_error(exc) from exc
        return (
            f"Now using **{info.name}** (chat template {info.chat_template}).",
            *refresh(),
            status_text(services),
        )

    def on_add(path: str) -> tuple:
        if not path.strip():
            raise gr.Error("Type the path of a .gguf file or a folder.", duration=5)
        try:
            result = services.registry.add_local(Path(path.strip()))
        except Exception as exc:
            raise ui_error(exc) from exc
        message = f"Added {len(result.added)} model(s): " + ", ".join(c.name for c in result.added)
        if result.left_out:
            message += ". Left out (damaged or incomplete): " + "; ".join(result.left_out)
        return (message, *refresh())

    def on_apply(
        n_ctx: float, temperature: float, top_p: float, max_tokens: float, system: str
    ) -> tuple:
        values = {
            "n_ctx": int(n_ctx),
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": int(max_tokens),
            "system_prompt": system.strip(),
        }
        try:
            info = services.apply_model_settings(values)
        except Exception as exc:
            raise ui_error(exc) from exc
        return (
            f"Saved for **{info.name}**; context {info.context_length} tokens.",
            status_text(services),
        )

    tab.download.click(
        on_download,
        inputs=[tab.choice, tab.token],
        outputs=[tab.message, tab.table, tab.choice],
        concurrency_id="download",
        concurrency_limit=2,
        show_progress_on=[tab.message],
        api_visibility="private",
    )
    tab.cancel.click(on_cancel, queue=False, api_visibility="private")
    settings = [tab.n_ctx, tab.temperature, tab.top_p, tab.max_tokens, tab.system_prompt]
    tab.use.click(
        on_use,
        inputs=[tab.choice],
        outputs=[tab.message, tab.table, tab.choice, status, *settings],
        concurrency_id="llm",
        concurrency_limit=1,
        api_visibility="private",
    )
    tab.add_local.click(
        on_add,
        inputs=[tab.local_path],
        outputs=[tab.message, tab.table, tab.choice],
        api_visibility="private",
    )
    tab.apply.click(
        on_apply,
        inputs=settings,
        outputs=[tab.message, status],
        concurrency_id="llm",
        concurrency_limit=1,
        api_visibility="private",
    )
