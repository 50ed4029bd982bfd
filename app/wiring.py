"""The composition root: settings in, every service out. Nothing is built at import time."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.chats import ChatStore
from app.settings import Settings, make_data_dir
from models.base import GenerationOptions, ModelInfo
from models.download import DownloadProgress, download
from models.errors import ModelError
from models.llamacpp import LlamaRuntime
from models.registry import BUNDLED_ID, ModelRegistry
from models.remote import RemoteChatModel
from rag.answer import Answerer
from rag.embed import Embedder
from rag.errors import StoreError
from rag.extract import IsolatedPdfReader
from rag.ingest import Ingestor
from rag.onnx_embed import make_embedder
from rag.originals import Originals
from rag.prompt import SYSTEM_CHAT, SYSTEM_RAG
from rag.repair import open_library
from rag.retrieve import Retriever
from rag.store import ChunkStore

log = logging.getLogger(__name__)


class Cancellations:
    """One stop flag per caller (browser session or API call), so Stop ends only your answer."""

    def __init__(self) -> None:
        """An empty registry."""
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def start(self, key: str) -> threading.Event:
        """A fresh, unset flag for `key`'s new generation."""
        with self._lock:
            event = self._events[key] = threading.Event()
            return event

    def cancel(self, key: str) -> bool:
        """Stop `key`'s running generation; False if it has none."""
        with self._lock:
            event = self._events.get(key)
        if event is None:
            return False
        event.set()
        return True

    def finish(self, key: str, event: threading.Event) -> None:
        """Forget `key`'s flag once its generation ended (if it is still this one)."""
        with self._lock:
            if self._events.get(key) is event:
                del self._events[key]


@dataclass
class Services:
    """Everything the UI and CLI use, built once per process."""

    settings: Settings
    embedder: Embedder
    store: ChunkStore
    model: LlamaRuntime | RemoteChatModel
    retriever: Retriever
    ingestor: Ingestor
    answerer: Answerer
    chats: ChatStore
    registry: ModelRegistry
    reader: IsolatedPdfReader
    originals: Originals | None
    active_id: str
    cancellations: Cancellations = field(default_factory=Cancellations)
    _switch_lock: threading.Lock = field(default_factory=threading.Lock)
    _closed: threading.Event = field(default_factory=threading.Event)

    def switch_model(self, name: str) -> ModelInfo:
        """Make `name` the active model without restarting: free the old one, load the new one.

        If the new model is refused (too large) or fails to load, the old one is brought back and
        the error is raised. The choice is remembered across restarts.
        """
        with self._switch_lock:
            path = self.registry.resolve(name)
            model_id = self.registry.get(name).id
            old = self.model
            new = build_model(self.settings, path, self.registry.model_settings(model_id))
            old.close()  # one resident model: free it before loading the next
            try:
                new.warm_up()
            except Exception:
                old.warm_up()
                raise
            self.model = new
            self.answerer.model = new
            self.answerer.answer_reserve = new.default_options.max_tokens
            self.answerer.system_prompt = self._system_prompt(model_id)
            self.active_id = model_id
            self.registry.set_active(model_id)
            self._prime()
            return new.info

    def _system_prompt(self, model_id: str) -> str | None:
        saved = self.registry.model_settings(model_id).get("system_prompt")
        return str(saved) if saved else self.settings.model.system_prompt

    def apply_model_settings(self, values: dict[str, object]) -> ModelInfo:
        """Save settings for the active model and apply them; a new context length reloads it."""
        self.registry.save_model_settings(self.active_id, values)
        current = self.model.info.context_length
        wanted = int(str(values.get("n_ctx", current)))
        if wanted != current:
            return self.switch_model(self.active_id)
        self.model.default_options = generation_options(self.settings, values)
        self.answerer.answer_reserve = self.model.default_options.max_tokens
        self.answerer.system_prompt = self._system_prompt(self.active_id)
        return self.model.info

    def download_model(
        self,
        name: str,
        *,
        progress: Callable[[DownloadProgress], None] | None = None,
        cancel: threading.Event | None = None,
        token: str | None = None,
    ) -> Path:
        """Fetch a catalog model (by id) or a hub file (`owner/repo/file.gguf`)."""
        return download_by_name(
            self.settings, self.registry, name, progress=progress, cancel=cancel, token=token
        )

    def warm_up(self) -> None:
        """Load the embedder and the model now rather than on the first question, have the
        model's cache hold the system prompt the first question will start with, build the
        keyword indexes, and start the PDF reader's workers."""
        for step in (
            self.embedder.warm_up,
            self.model.warm_up,
            self._prime,
            self._prepare_search,
            self._tidy_originals,
            self.reader.warm_up,
        ):
            if self._closed.is_set():  # stopped while starting (Ctrl+C): nothing left to do
                return
            step()

    def library_changed(self) -> None:
        """Rebuild the keyword indexes in the background, so the next question does not wait."""
        threading.Thread(
            target=self._prepare_search, name="quipu-search-index", daemon=True
        ).start()

    def _prepare_search(self) -> None:
        try:
            self.retriever.prepare()
        except StoreError as exc:  # the next search reports it to the user
            if not self._closed.is_set():  # the library closed under it: nothing is wrong
                log.warning("could not build the keyword index: %s", exc)

    def original_pdf(self, file_id: str, file_name: str) -> Path | None:
        """The kept copy of a cited document, if any. A source saved before sources carried
        their document's id (`file_id` empty) is looked up by its file name."""
        if self.originals is None:
            return None
        if not file_id:
            file_id = next((d.file_id for d in self.store.documents_named(file_name)), "")
        return self.originals.path(file_id)

    def _tidy_originals(self) -> None:
        """Drop kept PDFs whose document left the library (a crash between the two deletes)."""
        if self.originals is None:
            return
        try:
            removed = self.originals.prune(d.file_id for d in self.store.documents())
        except (StoreError, OSError) as exc:
            if not self._closed.is_set():
                log.warning("could not tidy the kept PDFs: %s", exc)
            return
        if removed:
            log.info("removed %d kept PDF(s) of documents no longer in the library", removed)

    def _prime(self) -> None:
        """Put the system prompt in the model's cache; a failure only costs the first question
        the time to evaluate it."""
        if isinstance(self.model, LlamaRuntime):
            default = SYSTEM_RAG if self.store.documents() else SYSTEM_CHAT
            system = self.answerer.system_prompt or default
            try:
                self.model.prime(
                    [{"role": "system", "content": system}],
                    self.settings.cache_dir / "prompt-cache",
                )
            except ModelError as exc:
                log.warning("could not prepare the system prompt's cache: %s", exc)

    def close(self) -> None:
        """Release the model, the embedder and the library."""
        self._closed.set()
        self.model.close()
        self.embedder.close()
        self.reader.close()
        self.store.close()


def build_registry(settings: Settings) -> ModelRegistry:
    """The model list and the remembered choice, under the data folder."""
    return ModelRegistry(settings.models_dir, settings.state_file)


def download_by_name(
    settings: Settings,
    registry: ModelRegistry,
    name: str,
    *,
    progress: Callable[[DownloadProgress], None] | None = None,
    cancel: threading.Event | None = None,
    token: str | None = None,
) -> Path:
    """Download a catalog id, or `owner/repo/path/in/repo.gguf` from the hub."""
    from models.catalog import get_entry
    from models.errors import UnknownModelError

    try:
        entry = get_entry(name)
        repo_id, files = entry.repo_id, list(entry.files)
    except UnknownModelError:
        parts = name.split("/")
        if len(parts) < 3 or not name.endswith(".gguf"):
            raise
        repo_id, files = "/".join(parts[:2]), ["/".join(parts[2:])]
    return download(
        repo_id,
        files,
        models_dir=settings.models_dir,
        endpoint=settings.model.hub_endpoint,
        token=token or settings.model.hub_token or os.environ.get("HF_TOKEN"),
        progress=progress,
        cancel=cancel,
    )


def active_model(settings: Settings, registry: ModelRegistry) -> tuple[str, Path]:
    """--model / QUIPU_MODEL__PATH if given, else the remembered choice, else the bundled model."""
    if settings.model.path:
        return str(settings.model.path), Path(settings.model.path)
    try:
        return registry.get(registry.active).id, registry.resolve(registry.active)
    except ModelError as exc:
        log.warning("the remembered model is unavailable (%s): using the bundled one", exc)
        return BUNDLED_ID, registry.resolve(BUNDLED_ID)


def generation_options(settings: Settings, saved: dict[str, object]) -> GenerationOptions:
    """Sampling from the settings, overridden by what was saved for the model."""
    m = settings.model
    return GenerationOptions(
        max_tokens=int(str(saved.get("max_tokens", m.max_tokens))),
        temperature=float(str(saved.get("temperature", m.temperature))),
        top_p=float(str(saved.get("top_p", m.top_p))),
        repeat_penalty=m.repeat_penalty,
        seed=m.seed,
    )


def build_model(
    settings: Settings, path: Path, saved: dict[str, object] | None = None
) -> LlamaRuntime | RemoteChatModel:
    """A llama.cpp runtime for `path` (the settings' window and sampling, then the model's own),
    or the OpenAI-compatible server of `settings.model.llm_url` when one is set."""
    m = settings.model
    saved = saved or {}
    options = generation_options(settings, saved)
    if m.llm_url:
        return RemoteChatModel(
            m.llm_url,
            api_key=m.llm_api_key,
            model=m.llm_model,
            n_ctx=m.n_ctx,
            default_options=options,
            read_timeout_s=m.llm_timeout_s,
        )
    return LlamaRuntime(
        path,
        n_ctx=int(str(saved.get("n_ctx", m.n_ctx))),
        n_threads=m.n_threads,
        n_gpu_layers=m.n_gpu_layers,
        chat_format=m.chat_format,
        default_options=options,
        flash_attn=m.flash_attn,
    )


def _log_rebuild_progress(done: int, total: int) -> None:
    if done == total or done % 2048 < 64:
        log.warning("rebuilding the search index: %d of %d passages", done, total)


def build_services(settings: Settings) -> Services:
    """Construct every service; heavy weights load lazily (see `Services.warm_up`)."""
    make_data_dir(settings)
    embedder = make_embedder(
        settings.rag.embedder,
        backend=settings.rag.embed_backend,
        cache_dir=settings.cache_dir / "embedders",
    )
    store = open_library(
        settings.chroma_dir,
        url=settings.store.chroma_url,
        name=settings.store.collection,
        embedder=embedder,
        on_progress=_log_rebuild_progress,
    )
    registry = build_registry(settings)
    active_id, model_path = active_model(settings, registry)
    if settings.model.llm_url:
        active_id = f"server {settings.model.llm_url}"
    saved = registry.model_settings(active_id)
    model = build_model(settings, model_path, saved)
    retriever = Retriever(embedder, store, top_k=settings.rag.top_k, hybrid=settings.rag.hybrid)
    originals = Originals(settings.originals_dir) if settings.rag.keep_originals else None
    reader = IsolatedPdfReader(
        timeout_s=settings.rag.pdf_timeout_s, max_pages=settings.rag.max_pages
    )
    ingestor = Ingestor(
        embedder,
        store,
        read=reader.read,
        max_file_bytes=settings.rag.max_file_mb * 1_000_000,
        chunk_tokens=settings.rag.chunk_tokens,
        chunk_overlap=min(settings.rag.chunk_overlap, settings.rag.chunk_tokens // 2),
        originals=originals,
    )
    answerer = Answerer(
        retriever,
        model,
        answer_reserve=model.default_options.max_tokens,
        system_prompt=str(saved.get("system_prompt") or "") or settings.model.system_prompt,
        min_relevance=settings.rag.min_relevance,
        min_relevance_in_document=settings.rag.min_relevance_in_document,
    )
    return Services(
        settings=settings,
        embedder=embedder,
        store=store,
        model=model,
        retriever=retriever,
        ingestor=ingestor,
        answerer=answerer,
        chats=ChatStore(settings.chats_db),
        registry=registry,
        reader=reader,
        originals=originals,
        active_id=active_id,
    )
