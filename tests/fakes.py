"""Fast stand-ins that honour the same contracts as the real parts (see tests/contracts)."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator, Sequence

from models.base import CancelToken, GenerationOptions, Message, ModelInfo


class ScriptedChatModel:
    """Streams queued answers piece by piece and records every prompt it received."""

    def __init__(self, context_length: int = 2048) -> None:
        self._context_length = context_length
        self.queue: list[list[str]] = []
        self.prompts: list[list[Message]] = []
        self.last_finish_reason: str | None = None

    def enqueue(self, *pieces: str) -> None:
        self.queue.append(list(pieces))

    @property
    def context_length(self) -> int:
        return self._context_length

    @property
    def info(self) -> ModelInfo:
        return ModelInfo("scripted", "-", "fake", self._context_length, self._context_length, 0, 1)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(
        self,
        messages: list[Message],
        options: GenerationOptions | None = None,
        *,
        cancel: CancelToken | None = None,
    ) -> Iterator[str]:
        self.prompts.append([dict(m) for m in messages])
        pieces = self.queue.pop(0) if self.queue else ["(no scripted answer)"]
        self.last_finish_reason = None
        for piece in pieces:
            if cancel is not None and cancel.is_set():
                return
            yield piece
        self.last_finish_reason = "stop"


class HashEmbedder:
    """Deterministic bag-of-words vectors: texts sharing words are close."""

    def __init__(self, dimension: int = 64) -> None:
        self._dimension = dimension

    @property
    def model_id(self) -> str:
        return f"hash-{self._dimension}"

    @property
    def dimension(self) -> int:
        return self._dimension

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for text in texts:
            vec = [0.0] * self._dimension
            for word in text.lower().split():
                word = word.strip(".,;:!?()[]\"'")
                if word:
                    slot = int(hashlib.md5(word.encode()).hexdigest(), 16) % self._dimension
                    vec[slot] += 1.0
            norm = math.sqrt(sum(v * v for v in vec)) or 1.0
            out.append([v / norm for v in vec])
        return out


class SeededEmbedder(HashEmbedder):
    """A distinct, repeatable random unit vector per text: no two chunks share a vector, as in
    a real library (a bag-of-words hash gives many identical vectors, which HNSW handles badly)."""

    def __init__(self, dimension: int = 16) -> None:
        super().__init__(dimension)

    @property
    def model_id(self) -> str:
        return f"seeded-{self._dimension}"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for text in texts:
            rng = random.Random(hashlib.md5(text.encode()).digest())
            vec = [rng.gauss(0.0, 1.0) for _ in range(self._dimension)]
            norm = math.sqrt(sum(v * v for v in vec))
            out.append([v / norm for v in vec])
        return out
