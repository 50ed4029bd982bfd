"""The Library tab: drop PDFs (with progress), see every document, delete one, find passages."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from app.shapes import hit_json
from app.ui.chat_tab import page_link
from app.ui.errors import ui_error
from app.ui.format import (
    library_rows,
    passages_markdown,
    progress_fraction,
    progress_text,
    report_markdown,
)
from app.wiring import Services
from rag.ingest import drain
from rag.types import FileResult, IngestProgress, IngestReport

HEADERS = ["Document", "Pages", "Chunks", "Added (UTC)"]
FOUND_PASSAGES = 8

# Gradio names an upload's folder by the hash of its bytes, so the same PDF uploaded from two tabs
# at once is one path, and the first ingest to finish deletes it under the other. What each
# deleted upload came to is remembered (the newest few hundred), and a batch that finds its file
# gone reports that outcome instead of "no such file".
_FINISHED: OrderedDict[Path, FileResult] = OrderedDict()
_FINISHED_LOCK = threading.Lock()
_FINISHED_KEPT = 256
# One batch at a time. Gradio's concurrency limit does that while a batch's event runs, but an API
# client's cancel ends the event at once, while its batch is still stopping.
_ONE_BATCH = threading.Lock()


class _Stops:
    """The Stop button's signal for each browser session's uploads, from the moment one is
    dropped (it may wait in the queue behind another user's) until the last of them ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, tuple[threading.Event, int]] = {}

    def arm(self, session: str) -> None:
        """An upload was dropped in `session`."""
        with self._lock:
            event, uploads = self._open.get(session, (threading.Event(), 0))
            self._open[session] = (event, uploads + 1)

    def event(self, session: str) -> threading.Event | None:
        """What the session's running upload watches (None: no upload was armed)."""
        with self._lock:
            found = self._open.get(session)
        return found[0] if found else None

    def disarm(self, session: str) -> None:
        """An upload of `session` ended; with the last one, a later Stop means nothing."""
        with self._lock:
            found = self._open.pop(session, None)
            if found and found[1] > 1:
                self._open[session] = (found[0], found[1] - 1)

    def stop(self, session: str) -> bool:
        """Stop the session's uploads; False when none is under way."""
        event = self.event(session)
        if event is not None:
            event.set()
        return event is not None


_STOPS = _Stops()


@dataclass
class LibraryTab:
    """The components other parts of the page wire to."""

    upload: gr.File
    stop: gr.Button
    password: gr.Textbox
    report: gr.Markdown
    table: gr.Dataframe
    to_delete: gr.Dropdown
    delete: gr.Button
    find: gr.Textbox
    found: gr.Markdown


def build(services: Services) -> LibraryTab:
    """Lay out the tab (events are registered by `register`)."""
    upload = gr.File(
        label="Drop PDFs here (or click to choose)",
        file_count="multiple",
        file_types=[".pdf"],
        type="filepath",
        elem_id="quipu-upload",
        height=140,
    )
    stop = gr.Button(
        "Stop adding", variant="stop", visible=False, elem_id="quipu-ingest-stop", size="sm"
    )
    password = gr.Textbox(
        label="Password for protected PDFs (optional, used for the next upload)",
        type="password",
        elem_id="quipu-pdf-password",
    )
    report = gr.Markdown(elem_id="quipu-ingest-report")
    table = gr.Dataframe(
        headers=HEADERS,
        value=[],
        interactive=False,
        label="Documents in the library",
        elem_id="quipu-library",
        wrap=True,
    )
    with gr.Row():
        to_delete = gr.Dropdown(
            choices=[], label="Document", scale=3, interactive=True, elem_id="quipu-delete-choice"
        )
        delete = gr.Button("Delete from library", variant="stop", scale=1)
    find = gr.Textbox(
        label="Find passages in the library",
        placeholder="Words or a question; Enter to search (no model involved)",
        elem_id="quipu-find",
    )
    found = gr.Markdown(elem_id="quipu-found")
    return LibraryTab(upload, stop, password, report, table, to_delete, delete, find, found)


def library_updates(services: Services, picked: list[str] | None = None) -> tuple[Any, Any, Any]:
    """Fresh table, delete choices and chat filter choices; of the documents `picked` in the
    chat's filter, those still in the library stay picked."""
    docs = services.store.documents()
    names = [d.file_name for d in docs]
    return (
        gr.Dataframe(value=library_rows(docs), headers=HEADERS),
        gr.Dropdown(choices=names, value=None),
        gr.Dropdown(choices=names, value=[n for n in picked or [] if n in names]),
    )


def ingest_files(
    services: Services,
    files: list[str] | None,
    progress: gr.Progress,
    password: str | None = None,
    cancel: threading.Event | None = None,
) -> IngestReport:
    """Run an ingest of uploaded files, reporting progress to the page; `cancel` stops it."""
    progress(0.0, desc="Starting…")
    return drain(
        ingest_uploads(services, files, password, cancel), lambda e: show_progress(progress, e)
    )


def ingest_uploads(
    services: Services,
    files: list[str] | None,
    password: str | None = None,
    cancel: threading.Event | None = None,
) -> Generator[IngestProgress, None, IngestReport]:
    """Ingest uploaded files, yielding the ingestor's progress; returns the per-file report.

    The uploads are deleted afterwards: the library keeps its own copy (`rag.originals`), so a
    document deleted from the library leaves nothing behind in the upload folder. An upload that
    another batch of the same file ingested and deleted meanwhile reports that batch's outcome.
    """
    paths = [Path(f).resolve() for f in files or []]
    with _ONE_BATCH:
        with _FINISHED_LOCK:
            earlier = {p: _FINISHED[p] for p in paths if p in _FINISHED and not p.exists()}
        fresh = [p for p in paths if p not in earlier]
        report = IngestReport()
        try:
            report = yield from services.ingestor.run(
                fresh,
                names={p: p.name for p in fresh},  # an upload's folder is Gradio's, not the user's
                password=password or None,
                cancel=cancel,
            )
        finally:
            services.library_changed()
            _remember(zip(fresh, report.results, strict=False))
            _discard_uploads(fresh, services.settings.uploads_dir)
    results = iter(report.results)
    return IngestReport(
        tuple(_same_file_again(earlier[p]) if p in earlier else next(results) for p in paths)
    )


def show_progress(progress: gr.Progress, event: IngestProgress) -> None:
    """One ingest event on the page's progress bar."""
    progress(progress_fraction(event), desc=progress_text(event))


def _remember(outcomes: Iterable[tuple[Path, FileResult]]) -> None:
    with _FINISHED_LOCK:
        for path, result in outcomes:
            _FINISHED[path] = result
            _FINISHED.move_to_end(path)
        while len(_FINISHED) > _FINISHED_KEPT:
            _FINISHED.popitem(last=False)


def _same_file_again(first: FileResult) -> FileResult:
    """The outcome for a second upload of a file whose first upload was just ingested."""
    if first.status in ("failed", "stopped"):
        return first
    return FileResult(
        first.file_name,
        "skipped",
        "already in the library (the same file was uploaded again while it was being added)",
        first.pages,
        first.chunks,
    )


def _discard_uploads(paths: list[Path], uploads: Path) -> None:
    """Delete uploaded files (and their emptied folders); paths outside `uploads` stay."""
    root = uploads.resolve()
    for path in paths:
        try:
            resolved = path.resolve()
            if not resolved.is_relative_to(root) or resolved == root:
                continue
            resolved.unlink(missing_ok=True)
            parent = resolved.parent
            while parent != root and parent.is_relative_to(root) and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
        except OSError:
            continue  # a file still open elsewhere (Windows) stays until Gradio's own clean-up


def register(tab: LibraryTab, services: Services, doc_filter: gr.Dropdown) -> None:
    """Wire the tab's events; `doc_filter` is the chat tab's document picker, kept in sync."""

    def on_drop(request: gr.Request) -> Any:
        _STOPS.arm(request.session_hash or "")
        return gr.Button(visible=True, interactive=True)

    def on_upload(
        files: list[str] | None,
        password: str,
        picked: list[str] | None,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),
    ) -> tuple[Any, ...]:
        cancel = _STOPS.event(request.session_hash or "")
        try:
            report = ingest_files(services, files, progress, password, cancel)
        except Exception as exc:
            raise ui_error(exc) from exc
        return (None, report_markdown(report.results), *library_updates(services, picked))

    def on_uploaded(request: gr.Request) -> Any:
        session = request.session_hash or ""
        _STOPS.disarm(session)
        return gr.Button(visible=_STOPS.event(session) is not None)  # another batch still waits

    def on_stop(request: gr.Request) -> Any:
        if _STOPS.stop(request.session_hash or ""):
            gr.Info("Stopping: the file under way is dropped, the files already added stay.")
        return gr.Button(interactive=False)  # until the upload has ended and hidden it

    def on_delete(name: str | None, picked: list[str] | None) -> tuple[Any, ...]:
        if not name:
            raise gr.Error("Choose a document to delete.", duration=5)
        try:
            (file_id,) = services.retriever.file_ids([name])
            services.ingestor.remove(file_id)
        except Exception as exc:
            raise ui_error(exc) from exc
        services.library_changed()
        gr.Info(f"Deleted {name}")
        return (f"Deleted **{name}**.", *library_updates(services, picked))

    link = page_link(services)

    def on_find(query: str) -> str:
        query = (query or "").strip()
        if not query:
            return ""
        try:
            hits = services.retriever.search(query, k=FOUND_PASSAGES)
        except Exception as exc:
            raise ui_error(exc) from exc
        return passages_markdown([hit_json(h) for h in hits], query, link)

    tab.find.submit(
        on_find,
        inputs=[tab.find],
        outputs=[tab.found],
        concurrency_limit=None,
        api_visibility="private",
    )
    refresh = [tab.table, tab.to_delete, doc_filter]
    # Armed at once (not queued), so Stop also reaches an upload waiting behind another one.
    tab.upload.upload(on_drop, outputs=[tab.stop], queue=False, api_visibility="private").then(
        on_upload,
        inputs=[tab.upload, tab.password, doc_filter],
        outputs=[tab.upload, tab.report, *refresh],
        show_progress_on=[tab.report],
        concurrency_id="ingest",
        concurrency_limit=1,
        api_visibility="private",
    ).then(on_uploaded, outputs=[tab.stop], queue=False, api_visibility="private")
    tab.stop.click(on_stop, outputs=[tab.stop], queue=False, api_visibility="private")
    tab.delete.click(
        on_delete,
        inputs=[tab.to_delete, doc_filter],
        outputs=[tab.report, *refresh],
        api_visibility="private",
    )
