"""The command line: `run` (default), `ingest`, `ask`, `search`, `library`.

`--data-dir` and `--model` are accepted before or after the command name.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.messages import describe, is_expected
from app.security import check_bind, load_credentials
from app.settings import Settings, load_settings
from app.shapes import document_json, hit_json, model_json, unverified_figures
from app.wiring import Services, build_registry, build_services, download_by_name
from models.download import DownloadProgress
from rag.ingest import expand_paths
from rag.types import Answer, Document, IngestProgress


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a value given before the command is not overwritten by the subparser's default.
    common.add_argument(
        "--data-dir",
        type=Path,
        default=argparse.SUPPRESS,
        help="folder holding all state (default: the user's data folder)",
    )
    common.add_argument(
        "--model",
        type=Path,
        default=argparse.SUPPRESS,
        help="a .gguf model file (default: the bundled SmolLM2-135M)",
    )
    common.add_argument(
        "--chroma-url",
        default=argparse.SUPPRESS,
        help="keep the library in this Chroma server (http://HOST:PORT) instead of the data dir",
    )
    common.add_argument(
        "--llm-url",
        default=argparse.SUPPRESS,
        help="generate with this OpenAI-compatible server (http://HOST:PORT/v1)",
    )
    common.add_argument("--llm-api-key", default=argparse.SUPPRESS, help="API key for --llm-url")
    common.add_argument(
        "--llm-model", default=argparse.SUPPRESS, help="model id on --llm-url (default: its first)"
    )
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS)
    return common


def build_parser() -> argparse.ArgumentParser:
    """The whole command-line grammar."""
    common = _common()
    parser = argparse.ArgumentParser(
        prog="launch.py", parents=[common], description="Quipu: ask your PDFs questions, offline."
    )
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", parents=[common], help="start the web app (default)")
    _run_flags(run)
    _run_flags(parser)

    ingest = sub.add_parser("ingest", parents=[common], help="add PDFs (files or folders)")
    ingest.add_argument("paths", nargs="+", type=Path)
    ingest.add_argument("--password", help="password for protected PDFs")

    ask = sub.add_parser("ask", parents=[common], help="answer a question, streamed")
    ask.add_argument("question")
    ask.add_argument(
        "--file",
        action="append",
        dest="files",
        help="only this document: its file name or a part of it (repeatable)",
    )
    ask.add_argument("--no-docs", action="store_true", help="plain chat, no retrieval")

    search = sub.add_parser("search", parents=[common], help="top chunks for each query")
    search.add_argument("queries", nargs="+")
    search.add_argument("--k", type=int, default=5)
    search.add_argument(
        "--file", dest="file", help="only this document: its file name or a part of it"
    )
    search.add_argument("--json", action="store_true", help="one JSON list per query and line")

    library = sub.add_parser(
        "library", parents=[common], help="list, delete, export or import documents"
    )
    library.add_argument(
        "action", nargs="?", choices=["list", "delete", "export", "import"], default="list"
    )
    library.add_argument(
        "name", nargs="?", help="document file name (delete), or the .jsonl file (export/import)"
    )
    library.add_argument("--json", action="store_true")
    library.add_argument(
        "--no-pdfs",
        action="store_true",
        help="export: leave out the kept PDFs (a smaller file; cited pages will not open there)",
    )

    models = sub.add_parser("models", parents=[common], help="list, download, add or choose models")
    models.add_argument(
        "action", nargs="?", choices=["list", "download", "use", "add"], default="list"
    )
    models.add_argument("name", nargs="?", help="catalog id, owner/repo/file.gguf, name or path")
    models.add_argument("--json", action="store_true")
    return parser


def _run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default=argparse.SUPPRESS, help="address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=argparse.SUPPRESS, help="port (default 7860)")
    p.add_argument(
        "--no-browser", action="store_true", default=argparse.SUPPRESS, help="do not open a browser"
    )
    p.add_argument(
        "--auth", default=argparse.SUPPRESS, help="user:password required to open the app"
    )
    p.add_argument(
        "--auth-file", type=Path, default=argparse.SUPPRESS, help="file of user:password lines"
    )


# The setting each global flag sets, so that a value that does not fit names its flag.
FLAG_SETTINGS = {
    ("data_dir",): "--data-dir",
    ("model", "path"): "--model",
    ("model", "llm_url"): "--llm-url",
    ("model", "llm_api_key"): "--llm-api-key",
    ("model", "llm_model"): "--llm-model",
    ("store", "chroma_url"): "--chroma-url",
    ("ui", "host"): "--host",
    ("ui", "port"): "--port",
    ("ui", "auth"): "--auth",
    ("ui", "auth_file"): "--auth-file",
}


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from defaults and QUIPU_* variables, then the flags given."""
    overrides: dict[str, Any] = {}
    if "data_dir" in args:
        overrides["data_dir"] = args.data_dir.expanduser().resolve()
    model: dict[str, Any] = {}
    if "model" in args:
        model["path"] = args.model.expanduser().resolve()
    for flag in ("llm_url", "llm_api_key", "llm_model"):
        if flag in args:
            model[flag] = getattr(args, flag)
    if model:
        overrides["model"] = model
    if "chroma_url" in args:
        overrides["store"] = {"chroma_url": args.chroma_url}
    ui = {k: getattr(args, k) for k in ("host", "port", "auth", "auth_file") if k in args}
    if getattr(args, "no_browser", False):
        ui["open_browser"] = False
    if ui:
        overrides["ui"] = ui
    return load_settings(overrides, flags=FLAG_SETTINGS)


# -- commands ---------------------------------------------------------------------------------


def cmd_ingest(services: Services, args: argparse.Namespace) -> int:
    missing = [p for p in args.paths if not p.exists()]
    for path in missing:
        print(f"failed   {path.name}: no such file or folder")
    # A folder with no PDF in it (or below) is most likely the wrong folder: say so, and fail.
    empty = [p for p in args.paths if p.is_dir() and not expand_paths([p])]
    for path in empty:
        print(f"failed   {path.name or path}/: no PDF files in this folder or below")
    missing += empty
    stop = threading.Event()

    def show(event: IngestProgress) -> None:  # each file's line as soon as it is done
        if event.result is not None:
            r = event.result
            print(f"{r.status:<8} {r.file_name}: {r.message}", flush=True)

    with _stopping(stop):
        report = services.ingestor.ingest(
            [p for p in args.paths if p.exists()],
            password=args.password,
            on_progress=show,
            cancel=stop,
        )
    if stop.is_set():
        return 130
    return 0 if report.ok and not missing else 1


@contextmanager
def _stopping(stop: threading.Event) -> Iterator[None]:
    """While the block runs, a first Ctrl+C or SIGTERM sets `stop` (the work ends at its next
    step, reporting what it did); a second one stops at once, as outside the block."""

    def first(signum: int, frame: object) -> None:
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, _stop_once)
        stop.set()
        print("stopping: the file under way is dropped, those done stay", file=sys.stderr)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    for number in before:
        signal.signal(number, first)
    try:
        yield
    finally:
        for number, handler in before.items():
            if handler is not None:  # None: not set from Python, so nothing to put back
                signal.signal(number, handler)


def cmd_ask(services: Services, args: argparse.Namespace) -> int:
    answer: Answer | None = None
    for part in services.answerer.ask(
        args.question, use_documents=False if args.no_docs else None, file_names=args.files
    ):
        if isinstance(part, Answer):
            answer = part
        elif isinstance(part, str):
            sys.stdout.write(part)
            sys.stdout.flush()
    print()
    if answer and answer.citations:
        print("\nSources:")
        for c in answer.citations:
            mark = "*" if c.cited else " "
            print(f"{mark}[{c.number}] {c.file_name}, {c.pages_label}  (score {c.score:.2f})")
        unverified = unverified_figures(answer, args.question)
        if unverified:
            print(f"\nNot in the sources: {', '.join(unverified)} (check these figures)")
    return 0


def cmd_search(services: Services, args: argparse.Namespace) -> int:
    files = [args.file] if args.file else None
    if not all(query.strip() for query in args.queries):
        print("error: a query is empty: search 'words to look for'", file=sys.stderr)
        return 2
    for query in args.queries:
        hits = services.retriever.search(query, k=args.k, file_names=files)
        if args.json:
            print(json.dumps([hit_json(h) for h in hits], ensure_ascii=False), flush=True)
            continue
        print(f"# {query}")
        if not hits:
            empty = not services.store.documents()
            print("    nothing found" + (": the library is empty" if empty else ""))
        for rank, h in enumerate(hits, start=1):
            snippet = " ".join(h.chunk.text.split())[:160]
            print(
                f"{rank:>2}. {h.score:.3f}  {h.chunk.file_name} p.{h.chunk.page_start}  {snippet}"
            )
    return 0


def cmd_library(services: Services, args: argparse.Namespace) -> int:
    if args.action in ("export", "import"):
        return _library_file(services, args.action, args.name, pdfs=not args.no_pdfs)
    if args.action == "delete":
        if not args.name:
            print("error: give the document's file name: library delete NAME", file=sys.stderr)
            return 2
        # Deleting takes a whole name (any case, .pdf optional), never a part of one.
        (file_id,) = services.retriever.file_ids([args.name], partial=False)
        document = services.store.get_document(file_id)
        services.ingestor.remove(file_id)
        print(f"deleted  {document.file_name if document else args.name}")
        return 0
    docs = services.store.documents()
    if args.json:
        print(json.dumps([document_json(d) for d in docs], ensure_ascii=False))
        return 0
    if not docs:
        print("The library is empty. Add PDFs with: python launch.py ingest PATH...")
    for d in docs:
        print(f"{d.file_name}\t{d.pages} pages\t{d.chunks} chunks\tadded {d.added}")
    return 0


def _library_file(services: Services, action: str, name: str | None, *, pdfs: bool) -> int:
    """`library export FILE` / `library import FILE` (see rag.portable)."""
    from rag.portable import export_library, import_library

    if not name:
        print(f"error: give the file: library {action} FILE.jsonl", file=sys.stderr)
        return 2
    path = Path(name).expanduser()
    if action == "export":
        count = export_library(
            services.store,
            path,
            originals=services.originals if pdfs else None,
            on_document=lambda d: print(f"exported {d.file_name}"),
        )
        print(f"{count} documents written to {path}")
        return 0

    def show(document: Document, added: bool) -> None:
        print(f"{'imported' if added else 'skipped '} {document.file_name}")

    added, skipped = import_library(
        services.store, path, originals=services.originals, on_document=show
    )
    print(f"{added} documents imported, {skipped} already in the library")
    return 0


def _server_models(settings: Settings, as_json: bool) -> int:
    """`models list --llm-url URL`: what the OpenAI-compatible server offers (its /v1/models)."""
    from models.remote import RemoteChatModel

    server = RemoteChatModel(settings.model.llm_url or "", api_key=settings.model.llm_api_key)
    try:
        names = server.list_models()
    finally:
        server.close()
    chosen = settings.model.llm_model or (names[0] if names else None)
    if as_json:
        print(json.dumps([{"id": n, "active": n == chosen} for n in names]))
        return 0
    for name in names:
        print(f"{'*' if name == chosen else ' '} {name}")
    return 0


def _size(n: int) -> str:
    return f"{n / 1024**3:.1f} GB" if n >= 1024**3 else f"{n / 1024**2:.0f} MB"


def _print_download(event: DownloadProgress) -> None:
    pct = 100 * event.done_bytes / event.total_bytes if event.total_bytes else 0
    eta = f"ETA {event.eta_s:.0f}s" if event.eta_s is not None else ""
    sys.stderr.write(
        f"\r{event.file} [{event.part}/{event.parts}] {pct:5.1f}% "
        f"{_size(event.done_bytes)}/{_size(event.total_bytes)} "
        f"{event.speed_bps / 1e6:.1f} MB/s {eta}   "
    )
    sys.stderr.flush()


def cmd_models(settings: Settings, args: argparse.Namespace) -> int:
    if settings.model.llm_url and args.action == "list":
        return _server_models(settings, args.json)
    registry = build_registry(settings)
    if args.action in ("download", "use", "add") and not args.name:
        print(f"error: models {args.action} needs a NAME", file=sys.stderr)
        return 2
    if args.action == "download":
        path = download_by_name(settings, registry, args.name, progress=_print_download)
        print(f"\ndownloaded {path}")
        return 0
    if args.action == "add":
        result = registry.add_local(Path(args.name))
        for choice in result.added:
            print(f"added    {choice.id}")
        for reason in result.left_out:
            print(f"left out {reason}")
        return 0
    if args.action == "use":
        choice = registry.get(args.name)
        registry.resolve(choice.id)  # must be on disk
        registry.set_active(choice.id)
        print(f"active model: {choice.id} ({choice.path})")
        return 0
    active = registry.active
    rows = registry.choices()
    n_ctx = settings.model.n_ctx
    if args.json:
        print(json.dumps([model_json(c, n_ctx, active) for c in rows], ensure_ascii=False))
        return 0
    for c in rows:
        mark = "*" if c.id == active else " "
        state = "on disk" if c.on_disk else "download"
        fits = "fits" if c.fits(n_ctx) else "too large"
        print(
            f"{mark} {c.id:<22} {c.name:<34} {c.quant:<7} {_size(c.size_bytes):>8} "
            f"needs {_size(c.memory_bytes(n_ctx)):>8} {fits:<9} {state:<8} {c.license}"
        )
    return 0


def cmd_run(services: Services, args: argparse.Namespace) -> int:
    ui = services.settings.ui
    credentials = load_credentials(ui.auth, ui.auth_file)
    check_bind(ui.host, credentials)
    # Uploads land under the data folder; Gradio reads this when it is imported.
    services.settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(services.settings.uploads_dir)
    from app.ui.page import launch  # gradio is imported only when the page is wanted

    # The model and embedder load once the page is served, not in competition with building it.
    warm_up = threading.Thread(target=services.warm_up, name="warm-up", daemon=True)
    launch(services, credentials=credentials, on_ready=warm_up.start)
    return 0


HANDLERS = {
    "run": cmd_run,
    "ingest": cmd_ingest,
    "ask": cmd_ask,
    "search": cmd_search,
    "library": cmd_library,
}


def _stop_once(signum: int, frame: object) -> None:
    """`kill`, systemd, Ctrl+C and the tests stop the app, and the library is closed cleanly.

    Only the first signal counts: a second one (Ctrl+C pressed twice, `kill` repeated) would
    otherwise land inside the close and end the process halfway through it, with a traceback.
    """
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, signal.SIG_IGN)
    raise KeyboardInterrupt


def main(argv: Sequence[str]) -> int:
    """Parse, build the services, run one command; errors become one clear line and exit 1."""
    args = build_parser().parse_args(list(argv))
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    command = args.command or "run"
    services: Services | None = None
    if threading.current_thread() is threading.main_thread():
        for stop in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop, _stop_once)
    try:
        settings = settings_from(args)
        if command == "models":
            return cmd_models(settings, args)
        services = build_services(settings)
        return HANDLERS[command](services, args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if not is_expected(exc):
            logging.getLogger("quipu").exception("command %s failed", command)
        print(f"error: {describe(exc)}", file=sys.stderr)
        return 1
    finally:
        if services is not None:
            services.close()
