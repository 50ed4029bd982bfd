"""The one settings model: defaults, then QUIPU_* environment variables, then command-line flags.

Nested sections read nested variables: QUIPU_MODEL__N_CTX=8192, QUIPU_RAG__TOP_K=6,
QUIPU_UI__PORT=8000; QUIPU_DATA_DIR sets the data folder.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any, Literal

from platformdirs import user_cache_dir, user_data_dir
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class ModelSettings(BaseModel):
    """The local language model and how it samples."""

    path: Path | None = Field(None, description="A .gguf file; empty = the bundled SmolLM2-135M.")
    n_ctx: int = Field(
        4096, ge=256, description="Context window (capped at the model's trained length)."
    )
    n_threads: int | None = Field(None, ge=1, description="CPU threads; empty = physical cores.")
    n_gpu_layers: int | None = Field(
        None, description="Layers on the GPU; empty = all when built with one."
    )
    chat_format: str | None = Field(None, description="Override the GGUF's own chat template.")
    flash_attn: bool = Field(
        True, description="llama.cpp's fused attention: faster prompt evaluation."
    )
    max_tokens: int = Field(512, ge=16, description="Most tokens in one answer.")
    temperature: float = Field(0.2, ge=0.0, le=2.0, description="Sampling temperature.")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    repeat_penalty: float = Field(1.1, ge=1.0, le=2.0, description="Penalty on repeated tokens.")
    seed: int = Field(1337, description="Sampling seed.")
    system_prompt: str | None = Field(None, description="Replaces the default system prompt.")
    hub_endpoint: str | None = Field(
        None,
        description="Hugging Face hub URL for downloads (default: HF_ENDPOINT or the public hub).",
    )
    hub_token: str | None = Field(
        None, description="Hub token for gated repos (default: HF_TOKEN)."
    )
    llm_url: str | None = Field(
        None,
        description="An OpenAI-compatible server (http://HOST:PORT/v1) to generate with, "
        "instead of llama.cpp in this process.",
    )
    llm_api_key: str | None = Field(None, description="API key for the llm_url server.")
    llm_model: str | None = Field(
        None, description="Model id on the llm_url server; empty = the first it lists."
    )
    llm_timeout_s: float = Field(
        60.0, gt=0, description="Longest wait for the server's next piece of an answer."
    )


class RagSettings(BaseModel):
    """Chunking and retrieval."""

    embedder: str | None = Field(
        None, description="A sentence-transformers model folder; empty = bundled all-MiniLM-L6-v2."
    )
    embed_backend: Literal["openvino-int8", "onnx-int8", "onnx", "torch"] = Field(
        "openvino-int8",
        description="How the embedder runs: OpenVINO int8 (fastest), ONNX Runtime with int8 "
        "weights, ONNX Runtime float32, or torch.",
    )
    chunk_tokens: int = Field(128, ge=32, le=512, description="Embedder tokens per chunk.")
    chunk_overlap: int = Field(24, ge=0, description="Tokens repeated between neighbouring chunks.")
    top_k: int = Field(4, ge=1, le=50, description="Passages given to the model per question.")
    hybrid: bool = Field(True, description="Fuse keyword (BM25) search with vector search.")
    min_relevance: float = Field(
        0.3,
        ge=-1.0,
        le=1.0,
        description="Below this cosine similarity no passage counts as relevant, and the answer "
        "says the documents hold nothing on the question.",
    )
    min_relevance_in_document: float = Field(
        0.25,
        ge=-1.0,
        le=1.0,
        description="The same floor for a question asked of one document (picked under "
        "'Search in', or the library's only one): such questions often leave their subject "
        "unnamed, which lowers every passage's similarity.",
    )
    keep_originals: bool = Field(
        True,
        description="Keep a copy of each indexed PDF in the data dir, so that a source opens at "
        "its page; off: only text and vectors are kept.",
    )
    max_file_mb: int = Field(500, ge=1, description="Larger PDFs are refused.")
    max_pages: int = Field(10_000, ge=1, description="Longer PDFs are refused.")
    pdf_timeout_s: float = Field(300.0, gt=0, description="Time allowed to read one PDF.")


class StoreSettings(BaseModel):
    """Where the vectors live."""

    collection: str = Field("quipu", description="Prefix of the Chroma collection names.")
    chroma_url: str | None = Field(
        None, description="A Chroma server instead of the embedded store."
    )


class UiSettings(BaseModel):
    """The web page."""

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(7860, ge=0, le=65535, description="Port to listen on (0 = any free port).")
    open_browser: bool = Field(True, description="Open the page in the default browser on start.")
    auth: str | None = Field(None, description="user:password required to open the app.")
    auth_file: Path | None = Field(None, description="A file of user:password lines.")
    max_upload_mb: int = Field(500, ge=1, description="Largest file accepted by the page.")
    stream_interval_s: float | None = Field(
        None,
        ge=0.0,
        le=2.0,
        description=(
            "Least time between two updates of a streamed answer; unset: by the CPUs, 0.25 s "
            "on 2, 0.125 s on 4 and down to 0.05 s on 10 or more (an update costs the browser "
            "and the server CPU time that generation would use)."
        ),
    )

    @property
    def stream_interval(self) -> float:
        """`stream_interval_s`, or the default for this machine's CPUs when unset."""
        if self.stream_interval_s is not None:
            return self.stream_interval_s
        # `bench browser` on 2 cores: the model wrote at 0.72, 0.87, 0.91, 0.94 and 0.94-0.95 of
        # its API rate while Chromium showed updates every 0.05, 0.15, 0.2, 0.25 and 0.3 s.
        return min(0.3, max(0.05, 0.5 / (os.cpu_count() or 2)))


def default_data_dir() -> Path:
    """The user's data folder for Quipu (never the source tree)."""
    return Path(user_data_dir("quipu", appauthor=False))


class Settings(BaseSettings):
    """Everything configurable in Quipu."""

    model_config = SettingsConfigDict(
        env_prefix="QUIPU_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    data_dir: Path = Field(
        default_factory=default_data_dir, description="All state: library, chats."
    )
    cache_dir: Path = Field(
        default_factory=lambda: Path(user_cache_dir("quipu", appauthor=False)),
        description="Rebuildable files shared by every library (the embedder's one-time export).",
    )
    model: ModelSettings = Field(default_factory=ModelSettings)
    rag: RagSettings = Field(default_factory=RagSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    ui: UiSettings = Field(default_factory=UiSettings)

    @property
    def chroma_dir(self) -> Path:
        """The embedded vector store."""
        return self.data_dir / "chroma"

    @property
    def originals_dir(self) -> Path:
        """Copies of the indexed PDFs, by document id."""
        return self.data_dir / "files"

    @property
    def models_dir(self) -> Path:
        """Downloaded and dropped-in GGUF files."""
        return self.data_dir / "models"

    @property
    def state_file(self) -> Path:
        """Choices made in the app (active model, added local models)."""
        return self.data_dir / "state.json"

    @property
    def uploads_dir(self) -> Path:
        """Where the page stores uploaded files (Gradio's cache lives here, not in /tmp)."""
        return self.data_dir / "uploads"

    @property
    def exports_dir(self) -> Path:
        """Conversations exported from the page (which may serve files from here)."""
        return self.data_dir / "exports"

    @property
    def chats_db(self) -> Path:
        """The conversations database."""
        return self.data_dir / "chats.sqlite3"


class SettingsError(ValueError):
    """A setting (a flag, a QUIPU_* variable) has a value Quipu cannot use."""


def load_settings(
    overrides: dict[str, Any], *, flags: dict[tuple[str, ...], str] | None = None
) -> Settings:
    """`Settings(**overrides)` (flags over QUIPU_* variables over defaults), with a value that
    does not fit reported as the setting to change, not as a validation traceback. `flags`
    names the command-line flag of a setting (by its path, ("ui", "port")), said beside it.

    Raises:
        SettingsError: a value is out of range or of the wrong kind (every such one is named).
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = tuple(str(part) for part in error["loc"])
            name = "QUIPU_" + "__".join(part.upper() for part in where)
            flag = (flags or {}).get(where)
            message = error["msg"][:1].lower() + error["msg"][1:]
            named = f"{name} ({flag})" if flag else name
            secret = any(word in name for word in ("AUTH", "KEY", "TOKEN", "PASSWORD"))
            given = "(hidden)" if secret else repr(error.get("input"))
            problems.append(f"{named} = {given}: {message}")
        raise SettingsError("invalid setting: " + "; ".join(problems)) from None


def make_data_dir(settings: Settings) -> None:
    """Create the data folder (and its parents) if needed.

    Raises:
        SettingsError: it cannot be created or written (the message names it and the way out).
    """
    folder = settings.data_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SettingsError(
            f"cannot use {folder} as the data folder ({reason}): choose another with "
            "--data-dir or QUIPU_DATA_DIR"
        ) from None
