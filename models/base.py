"""The one narrow interface every language model backend implements."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

Message = dict[str, str]  # {"role": ..., "content": ...}


class GenerationOptions(BaseModel):
    """Sampling settings for one answer. Unknown fields are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tokens: int = Field(512, ge=1, description="Most tokens in one answer.")
    temperature: float = Field(0.2, ge=0.0, le=2.0, description="0 = always the likeliest token.")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    repeat_penalty: float = Field(1.1, ge=1.0, le=2.0, description="Penalty for repeated tokens.")
    seed: int = Field(1337, description="Sampling seed, for reproducible answers.")


@dataclass(frozen=True)
class ModelInfo:
    """What is running: shown in the UI and the CLI."""

    name: str
    path: str
    backend: str  # "llama.cpp", ...
    context_length: int
    trained_context_length: int
    gpu_layers: int
    threads: int
    chat_template: str = "from the GGUF"  # or the fallback format used when the file has none


class CancelToken(Protocol):
    """Anything with `is_set()`, e.g. threading.Event."""

    def is_set(self) -> bool:
        """True once the caller asked to stop."""
        ...


class ChatModel(Protocol):
    """A chat model: stream an answer to a list of messages, count tokens, know its window."""

    @property
    def context_length(self) -> int:
        """Tokens the model attends to, prompt and answer together."""
        ...

    @property
    def info(self) -> ModelInfo:
        """Name, path, backend and placement."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes with this model's own tokenizer."""
        ...

    def stream(
        self,
        messages: list[Message],
        options: GenerationOptions | None = None,
        *,
        cancel: CancelToken | None = None,
    ) -> Iterator[str]:
        """Yield the answer's text pieces as they are generated; stop early when `cancel` is set."""
        ...


class FinishReason:
    """Why a model's last answer ended, kept per thread: a generation another request starts
    cannot change it before the thread that streamed the answer reads it."""

    def __init__(self) -> None:
        self._finish = threading.local()

    @property
    def last_finish_reason(self) -> str | None:
        """Why this thread's last answer ended: "stop" (the model), "length" (the token limit),
        "cancelled", or None when not known."""
        return getattr(self._finish, "reason", None)

    def _ended(self, reason: str | None) -> None:
        self._finish.reason = reason
