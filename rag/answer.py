"""Question (+ history) -> streamed answer with citations: retrieve -> prompt -> model.

`Answerer.ask` yields text deltas (str) and finally one `Answer` carrying the whole text and the
numbered sources the model was given, each marked `cited` when the answer refers to it as [n].
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from rag.errors import EmptyQuestion
from rag.prompt import build_messages
from rag.retrieve import Retriever
from rag.types import Answer, CancelToken, ChatModel, Citation, Hit, Message

_CITE = re.compile(r"\[(\d{1,3})\]")


def cited_numbers(text: str) -> set[int]:
    """Source numbers referred to as [n] in an answer."""
    return {int(n) for n in _CITE.findall(text)}


def to_citations(hits: Sequence[Hit], text: str) -> tuple[Citation, ...]:
    """Number the hits as the prompt did and mark those the text cites."""
    cited = cited_numbers(text)
    return tuple(
        Citation(
            number=n,
            file_name=h.chunk.file_name,
            page_start=h.chunk.page_start,
            page_end=h.chunk.page_end,
            text=h.chunk.text,
            score=h.score,
            cited=n in cited,
        )
        for n, h in enumerate(hits, start=1)
    )


class Answerer:
    """Answers questions from the library, or plainly when there is nothing to retrieve from."""

    def __init__(
        self,
        retriever: Retriever,
        model: ChatModel,
        *,
        answer_reserve: int = 512,
        system_prompt: str | None = None,
    ) -> None:
        """Args: the retriever, the chat model, the tokens kept free for the answer."""
        self.retriever = retriever
        self.model = model
        self.answer_reserve = answer_reserve
        self.system_prompt = system_prompt

    def ask(
        self,
        question: str,
        history: Sequence[Message] = (),
        *,
        use_documents: bool | None = None,
        file_names: Sequence[str] | None = None,
        cancel: CancelToken | None = None,
    ) -> Iterator[str | Answer]:
        """Stream an answer.

        Args:
            question: the new question.
            history: earlier turns, oldest first.
            use_documents: True = retrieve, False = plain chat, None = retrieve if the library
                has documents.
            file_names: restrict retrieval to these documents.
            cancel: set it to stop generation; the answer so far is returned with stopped=True.

        Yields:
            Text deltas, then one `Answer`.
        """
        if not question.strip():
            raise EmptyQuestion("the question is empty: type what you want to know")
        if use_documents is None:
            use_documents = bool(file_names) or self.retriever.store.chunk_count() > 0
        hits = self.retriever.search(question, file_names=file_names) if use_documents else []
        prompt = build_messages(
            question,
            hits,
            history,
            budget=self.model.context_length - self.answer_reserve,
            count_tokens=self.model.count_tokens,
            system_prompt=self.system_prompt,
        )
        parts: list[str] = []
        for delta in self.model.stream(prompt.messages, cancel=cancel):
            parts.append(delta)
            yield delta
        text = "".join(parts)
        yield Answer(
            text=text,
            citations=to_citations(prompt.hits, text),
            used_documents=bool(prompt.hits),
            stopped=cancel is not None and cancel.is_set(),
        )
