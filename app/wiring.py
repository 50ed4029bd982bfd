"""The composition root: settings in, every service out. Nothing is built at import time."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from app.chats import ChatStore
from app.settings import Settings
from models.base import GenerationOptions
from models.bundled import bundled_model_path
from models.llamacpp import LlamaRuntime
from rag.answer import Answerer
from rag.embed import SentenceTransformerEmbedder
from rag.ingest import Ingestor
from rag.retrieve import Retriever
from rag.store import ChunkStore


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
    embedder: SentenceTransformerEmbedder
    store: ChunkStore
    model: LlamaRuntime
    retriever: Retriever
    ingestor: Ingestor
    answerer: Answerer
    chats: ChatStore
    cancellations: Cancellations = field(default_factory=Cancellations)

    def warm_up(self) -> None:
        """Load the embedder and the model now rather than on the first question."""
        self.embedder.warm_up()
        self.model.warm_up()

    def close(self) -> None:
        """Release the model and the embedder."""
        self.model.close()
        self.embedder.close()


def build_model(settings: Settings) -> LlamaRuntime:
    """The local llama.cpp model named by the settings (the bundled one by default)."""
    m = settings.model
    options = GenerationOptions(
        max_tokens=m.max_tokens,
        temperature=m.temperature,
        top_p=m.top_p,
        repeat_penalty=m.repeat_penalty,
        seed=m.seed,
    )
    return LlamaRuntime(
        Path(m.path) if m.path else bundled_model_path(),
        n_ctx=m.n_ctx,
        n_threads=m.n_threads,
        n_gpu_layers=m.n_gpu_layers,
        chat_format=m.chat_format,
        default_options=options,
    )


def build_services(settings: Settings) -> Services:
    """Construct every service; heavy weights load lazily (see `Services.warm_up`)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    embedder = SentenceTransformerEmbedder(settings.rag.embedder)
    store = ChunkStore(
        None if settings.store.chroma_url else settings.chroma_dir,
        url=settings.store.chroma_url,
        name=settings.store.collection,
        embedder_id=embedder.model_id,
    )
    model = build_model(settings)
    retriever = Retriever(embedder, store, top_k=settings.rag.top_k)
    ingestor = Ingestor(
        embedder,
        store,
        chunk_tokens=settings.rag.chunk_tokens,
        chunk_overlap=min(settings.rag.chunk_overlap, settings.rag.chunk_tokens // 2),
    )
    answerer = Answerer(
        retriever,
        model,
        answer_reserve=settings.model.max_tokens,
        system_prompt=settings.model.system_prompt,
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
    )
