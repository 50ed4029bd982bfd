"""The Chat tab: ask, watch the answer stream, read its sources, stop it; conversations persist."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import gradio as gr

from app.chats import StoredMessage
from app.shapes import citation_json, timing_json
from app.streaming import in_background, retrieved_in, split_answer
from app.ui.errors import ui_error
from app.ui.format import (
    PageLink,
    cite_links,
    figures_note,
    sources_footer,
    sources_markdown,
    timing_note,
    unverified,
)
from app.wiring import Services
from rag.types import Answer


@dataclass
class ChatTab:
    """The components other parts of the page wire to."""

    chatbot: gr.Chatbot
    question: gr.Textbox
    send: gr.Button
    stop: gr.Button
    use_docs: gr.Checkbox
    doc_filter: gr.Dropdown
    sources: gr.Markdown
    chat_id: gr.State


def page_link(services: Services) -> PageLink:
    """Sources -> an address of the kept PDF (served by Gradio, behind the page's sign-in) that
    the browser's PDF viewer opens at the cited page; None when no copy is kept."""

    def link(source: dict[str, Any]) -> str | None:
        path = services.original_pdf(source.get("file_id", ""), source["file"])
        if path is None:
            return None
        return f"gradio_api/file={quote(str(path))}#page={int(source['page'])}"

    return link


def display(messages: list[StoredMessage], link: PageLink | None = None) -> list[dict[str, str]]:
    """Stored turns -> the chatbot's messages."""
    return [
        {"role": m.role, "content": as_shown(m, flagged, link)}
        for m, flagged in zip(messages, unverified(messages), strict=True)
    ]


def as_shown(m: StoredMessage, flagged: list[str], link: PageLink | None) -> str:
    """A turn as the page shows it. An answer's [n] marks open their pages, and under it come
    its sources, the figures nothing the model had holds (`app.ui.format.unverified`), and how
    fast it came."""
    if m.role != "assistant":
        return m.content
    footer = sources_footer(m.sources, link) + figures_note(flagged) + timing_note(m.timing)
    return cite_links(m.content, m.sources, link) + footer


def end_note(answer: Answer | None) -> str:
    """What an answer that did not end by itself gets at its end (kept with it)."""
    if answer is not None and answer.stopped:
        return "\n\n*(stopped)*"
    if answer is not None and answer.cut:
        return (
            "\n\n*(cut short at the answer length limit: raise “Max answer tokens” in the "
            "Models tab's settings)*"
        )
    return ""


def last_sources(messages: list[StoredMessage], link: PageLink | None = None) -> str:
    """The Sources panel for a conversation's latest answer."""
    for m in reversed(messages):
        if m.role == "assistant":
            return sources_markdown(m.sources, link, m.content)
    return ""


def picked_documents(picked: list[str] | None) -> list[str] | None:
    """The documents picked under "Search in" (names), or None for all of them."""
    return [name for name in picked or [] if name] or None


def conversation_choices(
    services: Services, matching: str = "", current: int | None = None
) -> list[tuple[str, int]]:
    """Sidebar entries: (title, id), most recent first; with `matching`, only the conversations
    whose title or turns hold it, and the `current` one."""
    shown = services.chats.conversations(matching)
    if current is not None and all(c.id != current for c in shown):
        ids = {c.id for c in shown} | {current}
        shown = [c for c in services.chats.conversations() if c.id in ids]
    return [(c.title, c.id) for c in shown]


def build(services: Services) -> ChatTab:
    """Lay out the tab (events are registered by `register`)."""
    chat_id = gr.State(None)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(
                label="Conversation",
                show_label=False,  # a floating label covered the top message
                height=520,
                editable="user",  # a question can be edited and asked again
                elem_id="quipu-chatbot",
                buttons=["copy"],
                feedback_options=None,
                placeholder="Ask anything about your PDFs, or just chat.",
            )
            with gr.Row():
                question = gr.Textbox(
                    show_label=False,
                    placeholder="Ask a question…  (Enter to send)",
                    scale=6,
                    elem_id="quipu-question",
                    autofocus=True,
                )
                send = gr.Button(
                    "Send", variant="primary", scale=1, min_width=72, elem_id="quipu-send"
                )
                stop = gr.Button(
                    "Stop", variant="stop", scale=1, min_width=72, elem_id="quipu-stop"
                )
            with gr.Row():
                use_docs = gr.Checkbox(
                    value=True,
                    label="Answer from my documents",
                    info="Off: plain chat with the model. With an empty library it chats plainly.",
                )
                doc_filter = gr.Dropdown(
                    choices=[],
                    value=[],
                    multiselect=True,
                    label="Search in",
                    info="All documents, or only those picked here.",
                    interactive=True,
                    elem_id="quipu-doc-filter",
                )
        with gr.Column(scale=2):
            sources = gr.Markdown(
                "*Sources of the latest answer appear here.*", elem_id="quipu-sources"
            )
    return ChatTab(chatbot, question, send, stop, use_docs, doc_filter, sources, chat_id)


def register(
    tab: ChatTab, services: Services, conversations: gr.Radio, find_chat: gr.Textbox
) -> None:
    """Wire the tab's events: ask (Send, Enter), Stop, and on the conversation itself retry the
    last question, take it back (undo) or edit an earlier one. The last three drop what followed
    that question from the stored conversation, as from the page."""
    link = page_link(services)

    def answer(
        message: str,
        chat_id: int | None,
        use_docs: bool,
        doc_filter: list[str] | None,
        matching: str,
        request: gr.Request,
        *,
        keep: int | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        """Ask `message` in the conversation (a new one when None), after its first `keep` turns
        when given; yields the tab's outputs as the answer streams. The sidebar lists the
        conversations `matching` its search box, and this one."""
        key = request.session_hash or "anonymous"
        cancel = services.cancellations.start(key)
        try:
            if chat_id is None:
                chat_id = services.chats.create(message)
            if keep is not None:
                services.chats.truncate(chat_id, keep)
                if keep == 0:  # the first question changed: so does the title
                    services.chats.retitle(chat_id, message)
            prior = services.chats.messages(chat_id)
            history = [{"role": m.role, "content": m.content} for m in prior]
            shown = [*display(prior, link), {"role": "user", "content": message}]
            services.chats.append(chat_id, "user", message)
            convs = gr.Radio(
                choices=conversation_choices(services, matching, chat_id), value=chat_id
            )
            yield (
                [*shown, {"role": "assistant", "content": "…"}],
                "*Searching your documents…*" if use_docs else "",
                chat_id,
                "" if keep is None else gr.skip(),  # a retry or an edit leaves the box alone
                convs,
            )
            files = picked_documents(doc_filter)
            text, ended = "", None
            for batch in in_background(
                lambda: services.answerer.ask(
                    message,
                    history,
                    # On, with an empty library: plain chat, as the checkbox's note says.
                    use_documents=None if use_docs else False,
                    file_names=files,
                    cancel=cancel,
                    sources_first=True,  # the Sources panel fills before the answer starts
                ),
                interval_s=services.settings.ui.stream_interval,  # coalesced updates
                cancel=cancel,
            ):
                pieces, last = split_answer(batch)
                ended = last or ended
                given = retrieved_in(batch)
                if pieces or given:
                    text += pieces
                    panel = (
                        gr.skip()
                        if given is None
                        else sources_markdown([citation_json(c) for c in given.citations], link)
                    )
                    yield (
                        [*shown, {"role": "assistant", "content": text or "…"}],
                        panel,
                        chat_id,
                        gr.skip(),
                        gr.skip(),
                    )
            sources = [citation_json(c) for c in ended.citations] if ended else []
            final = text + end_note(ended)
            timing = timing_json(ended.timing) if ended else None
            services.chats.append(chat_id, "assistant", final, sources, timing)
            asked = StoredMessage("user", message, [])
            answered = StoredMessage("assistant", final, sources, timing)
            flagged = unverified([*prior, asked, answered])[-1]
            yield (
                [
                    *shown,
                    {
                        "role": "assistant",
                        "content": as_shown(answered, flagged, link),
                    },
                ],
                sources_markdown(sources, link, text),
                chat_id,
                gr.skip(),
                gr.Radio(choices=conversation_choices(services, matching, chat_id), value=chat_id),
            )
        except gr.Error:
            raise
        except Exception as exc:
            raise ui_error(exc) from exc
        finally:
            services.cancellations.finish(key, cancel)

    def respond(
        message: str,
        chat_id: int | None,
        use_docs: bool,
        doc_filter: list[str] | None,
        matching: str,
        request: gr.Request,
    ) -> Iterator[tuple[Any, ...]]:
        message = (message or "").strip()
        if not message:
            raise gr.Error("Type a question first.", duration=5)
        yield from answer(message, chat_id, use_docs, doc_filter, matching, request)

    def asked_at(chat_id: int | None, index: int | tuple[int, int]) -> tuple[int, int, str]:
        """(conversation, position, text) of the stored question the chatbot's message `index`
        shows (the chatbot shows the stored turns one to one)."""
        position = index[0] if isinstance(index, tuple | list) else int(index)
        messages = services.chats.messages(chat_id) if chat_id is not None else []
        if chat_id is None or not 0 <= position < len(messages):
            raise gr.Error("That question is no longer in this conversation.", duration=5)
        if messages[position].role != "user":
            raise gr.Error("Only a question can be asked again.", duration=5)
        return chat_id, position, messages[position].content

    def ask_again(
        index: int | tuple[int, int],
        edited: str | None,
        chat_id: int | None,
        use_docs: bool,
        doc_filter: list[str] | None,
        matching: str,
        request: gr.Request,
    ) -> Iterator[tuple[Any, ...]]:
        """Answer the question at chatbot message `index` again, as `edited` when given, in
        place of it and of everything after it."""
        chat_id, position, question = asked_at(chat_id, index)
        if edited is not None:
            question = edited.strip()
            if not question:
                raise gr.Error("An empty question cannot be asked.", duration=5)
        yield from answer(question, chat_id, use_docs, doc_filter, matching, request, keep=position)

    # Gradio hands event data to a handler by its parameter's type, and matches the inputs to
    # named parameters: hence two handlers with the same inputs.
    def retry(
        data: gr.RetryData,
        chat_id: int | None,
        use_docs: bool,
        doc_filter: list[str] | None,
        matching: str,
        request: gr.Request,
    ) -> Iterator[tuple[Any, ...]]:
        yield from ask_again(data.index, None, chat_id, use_docs, doc_filter, matching, request)

    def edit(
        data: gr.EditData,
        chat_id: int | None,
        use_docs: bool,
        doc_filter: list[str] | None,
        matching: str,
        request: gr.Request,
    ) -> Iterator[tuple[Any, ...]]:
        edited = str(data.value or "")
        yield from ask_again(data.index, edited, chat_id, use_docs, doc_filter, matching, request)

    def undo(data: gr.UndoData, chat_id: int | None) -> tuple[Any, ...]:
        """Take the last question and its answer back; the question returns to the box."""
        chat_id, position, question = asked_at(chat_id, data.index)
        services.chats.truncate(chat_id, position)
        messages = services.chats.messages(chat_id)
        return display(messages, link), last_sources(messages, link), chat_id, question, gr.skip()

    def stop(request: gr.Request) -> None:
        services.cancellations.cancel(request.session_hash or "anonymous")

    outputs = [tab.chatbot, tab.sources, tab.chat_id, tab.question, conversations]
    inputs = [tab.question, tab.chat_id, tab.use_docs, tab.doc_filter, find_chat]
    options: dict[str, Any] = {
        "outputs": outputs,
        "concurrency_id": "llm",  # one answer at a time; an undo waits for the answer it undoes
        "concurrency_limit": 1,
        "show_progress": "minimal",
        "api_visibility": "private",
    }
    for trigger in (tab.send.click, tab.question.submit):
        trigger(respond, inputs=inputs, **options)
    tab.chatbot.retry(retry, inputs=inputs[1:], **options)
    tab.chatbot.edit(edit, inputs=inputs[1:], **options)
    tab.chatbot.undo(undo, inputs=[tab.chat_id], **options)
    tab.stop.click(stop, queue=False, api_visibility="private")
