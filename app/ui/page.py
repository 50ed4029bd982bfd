"""The Gradio page: layout, theme (system fonts only), named API endpoints, launch."""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from app.openai_api import build_router, error_handlers
from app.security import serving_port
from app.shapes import (
    citation_json,
    file_result_json,
    hit_json,
    timing_json,
    unverified_figures,
)
from app.streaming import in_background, split_answer
from app.ui import chat_tab, library_tab, models_tab
from app.ui.errors import ui_error
from app.ui.format import conversation_markdown, placement
from app.wiring import Services
from rag.types import IngestProgress, IngestReport

log = logging.getLogger(__name__)

ASSETS = Path(__file__).parent / "assets"
SYSTEM_FONTS = [
    "system-ui",
    "-apple-system",
    "Segoe UI",
    "Roboto",
    "Helvetica Neue",
    "Arial",
    "sans-serif",
]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]


def theme() -> gr.themes.Base:
    """Soft theme with local fonts (the default themes fetch Google Fonts)."""
    return gr.themes.Soft(primary_hue="indigo", font=SYSTEM_FONTS, font_mono=MONO_FONTS)


def memory_mb() -> float | None:
    """This process's resident memory (model, embedder, library caches), in MB."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError, AttributeError):
        try:
            import resource  # macOS: the peak, in bytes

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        except (ImportError, OSError):
            return None


def model_status(services: Services) -> str:
    """Sidebar lines: which model runs where, and the memory Quipu uses."""
    m = services.model
    if m.info.backend != "llama.cpp":
        where = f"{m.info.backend} at {m.info.path}"
    else:
        where = placement(m.info)
    text = f"**Model:** {m.info.name}  \n{where} · context {m.info.context_length} tokens"
    memory = memory_mb()
    if memory is not None:
        text += f"  \nMemory in use: {memory:,.0f} MB"
    return text


def build_ui(services: Services) -> gr.Blocks:
    """The whole page, wired to `services` (no globals)."""
    with gr.Blocks(title="Quipu", fill_height=True, analytics_enabled=False) as demo:
        with gr.Sidebar(open=True, label="Conversations"):
            gr.Markdown("## Quipu\nAsk your PDFs, offline.")
            new_chat = gr.Button("New chat", variant="secondary", elem_id="quipu-new-chat")
            find_chat = gr.Textbox(
                placeholder="Find a conversation…",
                show_label=False,
                container=False,
                elem_id="quipu-find-chat",
            )
            conversations = gr.Radio(
                choices=[], label="Conversations", elem_id="quipu-conversations"
            )
            delete_chat = gr.Button("Delete this chat", size="sm", variant="stop")
            export_chat = gr.Button("Export this chat (.md)", size="sm", elem_id="quipu-export")
            exported = gr.File(label="Exported chat", visible=False, elem_id="quipu-exported")
            status = gr.Markdown("*Loading model…*", elem_id="quipu-model-status")
            refresh = gr.Timer(10)
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                chat = chat_tab.build(services)
            with gr.Tab("Library", id="library"):
                library = library_tab.build(services)
            with gr.Tab("Models", id="models"):
                models = models_tab.build(services)
        chat_tab.register(chat, services, conversations, find_chat)
        library_tab.register(library, services, chat.doc_filter)
        models_tab.register(models, services, status, model_status)
        _register_sidebar(services, chat, conversations, find_chat, new_chat, delete_chat)
        _register_export(services, chat, export_chat, exported)
        _register_api(services)
        refresh.tick(
            lambda: model_status(services), outputs=[status], queue=False, api_visibility="private"
        )

        def on_load() -> tuple[Any, ...]:
            table, to_delete, doc_filter = library_tab.library_updates(services)
            convs = gr.Radio(choices=chat_tab.conversation_choices(services), value=None)
            ids = [c.id for c in services.registry.choices()]
            return (
                table,
                to_delete,
                doc_filter,
                convs,
                model_status(services),
                gr.Dataframe(value=models_tab.model_rows(services), headers=models_tab.HEADERS),
                gr.Dropdown(choices=ids),
                *models_tab.settings_values(services),
            )

        demo.load(
            on_load,
            outputs=[
                library.table,
                library.to_delete,
                chat.doc_filter,
                conversations,
                status,
                models.table,
                models.choice,
                models.n_ctx,
                models.temperature,
                models.top_p,
                models.max_tokens,
                models.system_prompt,
            ],
            api_visibility="private",
        )
    return demo


def _register_sidebar(
    services: Services,
    chat: chat_tab.ChatTab,
    conversations: gr.Radio,
    find_chat: gr.Textbox,
    new_chat: gr.Button,
    delete_chat: gr.Button,
) -> None:
    link = chat_tab.page_link(services)

    def find(matching: str, chat_id: int | None) -> Any:
        choices = chat_tab.conversation_choices(services, matching, chat_id)
        return gr.Radio(choices=choices, value=chat_id)

    def open_conversation(chat_id: int | None) -> tuple[Any, ...]:
        if chat_id is None:
            return [], "", None
        messages = services.chats.messages(chat_id)
        return chat_tab.display(messages, link), chat_tab.last_sources(messages, link), chat_id

    def start_new() -> tuple[Any, ...]:
        return [], "*Sources of the latest answer appear here.*", None, gr.Radio(value=None)

    def remove(chat_id: int | None, matching: str) -> tuple[Any, ...]:
        if chat_id is not None:
            services.chats.delete(chat_id)
        choices = chat_tab.conversation_choices(services, matching)
        return [], "", None, gr.Radio(choices=choices, value=None)

    find_chat.change(
        find,
        inputs=[find_chat, chat.chat_id],
        outputs=[conversations],
        trigger_mode="always_last",
        api_visibility="private",
    )

    conversations.input(
        open_conversation,
        inputs=[conversations],
        outputs=[chat.chatbot, chat.sources, chat.chat_id],
        api_visibility="private",
    )
    for trigger in (new_chat.click, chat.chatbot.clear):  # the chatbot's own Clear: a new chat
        trigger(
            start_new,
            outputs=[chat.chatbot, chat.sources, chat.chat_id, conversations],
            api_visibility="private",
        )
    delete_chat.click(
        remove,
        inputs=[chat.chat_id, find_chat],
        outputs=[chat.chatbot, chat.sources, chat.chat_id, conversations],
        api_visibility="private",
    )


def _register_export(
    services: Services, chat: chat_tab.ChatTab, button: gr.Button, exported: gr.File
) -> None:
    def export(chat_id: int | None) -> Any:
        if chat_id is None:
            raise gr.Error("Open or start a conversation first.", duration=5)
        try:
            titles = {c.id: c.title for c in services.chats.conversations()}
            title = titles.get(chat_id, "Conversation")
            text = conversation_markdown(title, services.chats.messages(chat_id))
            slug = "-".join(re.findall(r"\w+", title.lower()))[:48] or "conversation"
            path = services.settings.exports_dir / f"quipu-{slug}.md"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except Exception as exc:
            raise ui_error(exc) from exc
        return gr.File(value=str(path), visible=True)

    button.click(export, inputs=[chat.chat_id], outputs=[exported], api_visibility="private")
    chat.chat_id.change(  # another conversation: the file shown belongs to the last one
        lambda: gr.File(value=None, visible=False),
        outputs=[exported],
        queue=False,
        api_visibility="private",
    )


def _register_api(services: Services) -> None:
    """Named endpoints for `gradio_client`: chat, search, ingest (see README)."""

    def chat(message: str, use_documents: bool = True, file_name: str = "") -> Iterator[dict]:
        """Answer one message; streams {"text", "sources", "done"} as the answer grows; the
        last adds "unverified": figures of the answer that its sources do not hold."""
        if not message.strip():
            raise gr.Error("The message is empty.")
        text = ""
        cancel = threading.Event()
        try:
            for batch in in_background(
                lambda: services.answerer.ask(
                    message,
                    use_documents=use_documents,
                    file_names=[file_name] if file_name else None,
                    cancel=cancel,
                ),
                interval_s=services.settings.ui.stream_interval,  # as in the page
                cancel=cancel,
            ):
                pieces, answer = split_answer(batch)
                text += pieces
                if answer is None:
                    yield {"text": text, "sources": [], "done": False}
                else:
                    yield {
                        "text": answer.text,
                        "sources": [citation_json(c) for c in answer.citations],
                        "unverified": unverified_figures(answer, message),
                        "timing": timing_json(answer.timing),
                        "cut": answer.cut,
                        "done": True,
                    }
        except gr.Error:
            raise
        except Exception as exc:
            raise ui_error(exc) from exc

    def search(query: str, k: int = 5, file_name: str = "") -> list[dict]:
        """The top `k` chunks for `query`: file, page, score, text."""
        try:
            hits = services.retriever.search(
                query, k=k, file_names=[file_name] if file_name else None
            )
        except Exception as exc:
            raise ui_error(exc) from exc
        return [hit_json(h) for h in hits]

    gr.api(chat, api_name="chat", concurrency_id="llm", concurrency_limit=1)
    gr.api(search, api_name="search", concurrency_limit=None)

    # File uploads need a File component to carry them, so `ingest` is a hidden event.
    with gr.Row(visible=False):
        files = gr.File(file_count="multiple", file_types=[".pdf"], type="filepath")
        report = gr.JSON()
        trigger = gr.Button()

    def ingest(
        paths: list[str] | None, progress: gr.Progress = gr.Progress()
    ) -> Iterator[list[dict]]:
        """Add the files: streams the outcomes so far, each file's as it ends, and last the
        whole list. Cancelling the job (gradio_client's `Job.cancel`) stops the batch as the
        page's Stop adding does: the file under way is dropped, those done stay."""
        stop = threading.Event()

        def produce() -> Iterator[IngestProgress | IngestReport]:
            yield (yield from library_tab.ingest_uploads(services, paths, cancel=stop))

        progress(0.0, desc="Starting…")
        outcomes: list[dict] = []
        # The reader leaving early (gradio closed it on the client's cancel) sets `stop`.
        for batch in in_background(
            produce, interval_s=_CANCEL_CHECK_S, cancel=stop, idle_s=_CANCEL_CHECK_S
        ):
            for item in batch:
                if isinstance(item, IngestReport):
                    outcomes = [file_result_json(r) for r in item.results]
                elif item.result is not None:
                    outcomes = [*outcomes, file_result_json(item.result)]
                else:
                    library_tab.show_progress(progress, item)
            yield outcomes

    trigger.click(
        ingest,
        inputs=[files],
        outputs=[report],
        api_name="ingest",
        concurrency_id="ingest",
        concurrency_limit=1,
    )


# How often, at most and at least, the `ingest` endpoint sends what it has: gradio can stop it (a
# client's cancel) only then.
_CANCEL_CHECK_S = 0.5

# How often gradio's queue looks for new events, and for progress to send, when it has none: its
# defaults on Linux (1 ms and 10 ms) wake the server ~1,100 times a second, idle or not. That cost
# 7% of a core with nothing to do, and during an answer each wake-up preempts one of llama.cpp's
# threads, which the other then waits for. At 20 ms and 100 ms the idle app still woke 79 times
# a second (1.1% of a core), at 50 ms and 250 ms 45 times (0.7%). A queued click waits at most
# 50 ms longer to start (Stop is not queued), and a progress bar moves four times a second.
QUEUE_POLL_S = 0.05
PROGRESS_POLL_S = 0.25


def _calm_queue(demo: gr.Blocks) -> None:
    """Poll gradio's event queue at `QUEUE_POLL_S` rather than every millisecond."""
    queue = getattr(demo, "_queue", None)
    if queue is None or not hasattr(queue, "sleep_when_free"):
        log.warning("gradio's queue has changed; its polling interval is left as it is")
        return
    queue.sleep_when_free = QUEUE_POLL_S
    queue.progress_update_sleep_when_free = PROGRESS_POLL_S


def launch(
    services: Services,
    *,
    credentials: list[tuple[str, str]] | None = None,
    block: bool = True,
    on_ready: Callable[[], None] | None = None,
) -> gr.Blocks:
    """Serve the page on the configured host and port; call `on_ready` once it is served."""
    ui = services.settings.ui
    demo = build_ui(services)
    demo.queue(default_concurrency_limit=4)
    _calm_queue(demo)
    demo.launch(
        server_name=ui.host,
        server_port=serving_port(ui.host, ui.port, chosen="port" in ui.model_fields_set),
        inbrowser=ui.open_browser,
        prevent_thread_lock=True,
        show_error=True,
        ssr_mode=False,
        theme=theme(),
        css_paths=[ASSETS / "style.css"],
        head_paths=[ASSETS / "clipboard.html"],  # Copy gives an answer's text, not its HTML
        footer_links=["api"],
        max_file_size=f"{ui.max_upload_mb}mb",
        # Only the kept PDFs, for the Sources panel's links to cited pages.
        allowed_paths=[
            str(services.settings.exports_dir),
            *([str(services.originals.folder)] if services.originals else []),
        ],
        auth=credentials or None,
        auth_message="Quipu: sign in to reach this library." if credentials else None,
        quiet=not block,
        # The OpenAI-compatible API shares the server (and the model's one-at-a-time lock); its
        # routes exist from the first request on.
        app_kwargs={
            "routes": list(build_router(services, credentials or []).routes),
            "exception_handlers": error_handlers(),
        },
    )
    if on_ready is not None:
        on_ready()
    if block:
        demo.block_thread()
    return demo
