"""The one narrow interface every language model backend implements."""

from __future__ import annotations

import json
import threading
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

Message = dict[str, str]  # {"role": ..., "content": ...}


class GenerationOptions(BaseModel):
    """Sampling settings for one answer. Unknown fields are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tokens: int = Field(512, ge=1, description="Most tokens in one answer.")
    temperature: float = Field(0.2, ge=0.0, le=2.0, description="0 = always the likeliest token.")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    repeat_penalty: float = Field(1.1, ge=1.0, le=2.0, description="Penalty for repeated tokens.")
    seed: int = Field(1337, description="Sampling seed, for reproducible answers.")
    stop: tuple[str, ...] = Field(
        (), max_length=4, description="Text that ends the answer where it appears (not shown)."
    )
    json_schema: str | None = Field(
        None,
        description="Answer in JSON that follows this JSON Schema (given as JSON text); "
        '\'{"type": "object"}\' for any JSON object. None = free text.',
    )

    @field_validator("stop")
    @classmethod
    def _no_empty_stop(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not text for text in value):
            raise ValueError("a stop sequence cannot be empty")
        return value

    @field_validator("json_schema")
    @classmethod
    def _a_schema(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            schema = json.loads(value)
        except ValueError as exc:
            raise ValueError(f"the JSON schema is not valid JSON: {exc}") from exc
        if not isinstance(schema, dict):
            raise ValueError("a JSON schema is a JSON object")
        return value


Returned = TypeVar("Returned")


def until_stop(
    pieces: Generator[str, None, Returned], stops: Sequence[str]
) -> Generator[str, None, Returned | None]:
    """`pieces` up to the first of `stops`, which is left out; None when a stop ended it (and
    `pieces` is closed there), else what `pieces` returned.

    A stop can arrive split over several pieces, so text that could be the start of one is held
    back until the next piece tells; the reader sees it a token later.
    """
    if not stops:
        return (yield from pieces)
    held = ""
    try:
        while True:
            try:
                held += next(pieces)
            except StopIteration as end:
                if held:
                    yield held
                return end.value  # type: ignore[no-any-return]
            found = [at for at in (held.find(stop) for stop in stops) if at >= 0]
            if found:
                if min(found):
                    yield held[: min(found)]
                return None
            keep = _stop_prefix_length(held, stops)
            if len(held) > keep:
                yield held[: len(held) - keep]
                held = held[len(held) - keep :]
    finally:
        pieces.close()


def _stop_prefix_length(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of `text` that some stop sequence starts with."""
    for size in range(min(len(text), max(map(len, stops)) - 1), 0, -1):
        if any(stop.startswith(text[-size:]) for stop in stops):
            return size
    return 0


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
