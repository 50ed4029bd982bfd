"""Value objects passed between the pipeline stages (frozen dataclasses, no dicts-of-anything)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


@dataclass(frozen=True)
class Page:
    """One PDF page's text; `page_no` is 1-based, as printed in citations."""

    file_id: str
    file_name: str
    page_no: int
    text: str


@dataclass(frozen=True)
class Chunk:
    """A retrievable passage and the page span it came from."""

    id: str
    text: str
    file_id: str
    file_name: str
    page_start: int
    page_end: int
    context: str = ""  # document title and page heading, searched with the text, not shown

    @property
    def indexed_text(self) -> str:
        """What is embedded and keyword-indexed: the context line, then the text."""
        return f"{self.context}\n{self.text}" if self.context else self.text


@dataclass(frozen=True)
class Hit:
    """A chunk found for a query; `score` is cosine similarity to the query (higher is closer)."""

    chunk: Chunk
    score: float


@dataclass(frozen=True)
class Document:
    """One indexed PDF, as listed in the library."""

    file_id: str  # sha256 of the file's bytes
    file_name: str
    pages: int
    chunks: int
    added: str  # ISO-8601, UTC
    size_bytes: int = 0


@dataclass(frozen=True)
class Citation:
    """A numbered source given to the model: `[number]` in the answer refers to it."""

    number: int
    file_name: str
    page_start: int
    page_end: int
    text: str
    score: float
    cited: bool = False  # the answer text refers to it as [number]
    file_id: str = ""  # the document's id (sha256 of its bytes)

    @property
    def pages_label(self) -> str:
        """ "p. 3" or "pp. 3-4"."""
        if self.page_end > self.page_start:
            return f"pp. {self.page_start}-{self.page_end}"
        return f"p. {self.page_start}"


@dataclass(frozen=True)
class Timing:
    """How fast an answer came: from the question to its first piece of text, and the model's
    rate after that (tokens of the answer, as the model counts them, over the seconds from the
    first piece to the last)."""

    first_token_s: float
    tokens: int
    tokens_per_s: float | None  # None: the answer came in one piece


@dataclass(frozen=True)
class Retrieved:
    """The passages an answer is about to be written from, numbered as the model sees them
    (none marked cited yet): streamed before the answer's text when asked for."""

    citations: tuple[Citation, ...]


@dataclass(frozen=True)
class Answer:
    """The end of a streamed answer: its full text and the sources it was given."""

    text: str
    citations: tuple[Citation, ...] = ()
    used_documents: bool = False
    stopped: bool = False
    timing: Timing | None = None  # None when the model wrote nothing
    cut: bool = False  # it ran to the answer's token limit: most likely cut short
    prompt_tokens: int = 0  # what the model read before answering (0: it was not asked)


Stage = Literal[
    "reading", "chunking", "embedding", "storing", "done", "skipped", "failed", "stopped"
]
Status = Literal["ok", "skipped", "failed", "stopped"]  # stopped: the user stopped the batch


@dataclass(frozen=True)
class IngestProgress:
    """One step of an ingest: which file, which stage, how far (`done` of `total` units)."""

    file_name: str
    stage: Stage
    done: int
    total: int
    file_index: int  # 0-based position of this file in the batch
    file_count: int
    result: FileResult | None = None  # on a file's last event (done, skipped, failed, stopped)


@dataclass(frozen=True)
class FileResult:
    """What happened to one file of an ingest batch."""

    file_name: str
    status: Status
    message: str
    pages: int = 0
    chunks: int = 0


@dataclass(frozen=True)
class IngestReport:
    """Per-file outcome of an ingest batch."""

    results: tuple[FileResult, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when no file failed."""
        return all(r.status != "failed" for r in self.results)


Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": str}


class ChatModel(Protocol):
    """What the answerer needs from a language model (models.base.ChatModel satisfies it)."""

    @property
    def context_length(self) -> int:
        """Tokens the model can attend to: prompt and answer together."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes with this model's own tokenizer."""
        ...

    @property
    def last_finish_reason(self) -> str | None:
        """Why the last `stream` ended: "length" when the token limit did (None: not known)."""
        ...

    def stream(
        self, messages: list[Message], options: Any = None, *, cancel: CancelToken | None = None
    ) -> Iterator[str]:
        """Yield the answer's text as it is generated; `options` is the model's own sampling
        type (`models.base.GenerationOptions`), passed through untouched (None: its defaults)."""
        ...


class CancelToken(Protocol):
    """Anything with `is_set()`, e.g. threading.Event."""

    def is_set(self) -> bool:
        """True once the caller asked to stop."""
        ...
