"""Question (+ history) -> streamed answer with citations: retrieve -> prompt -> model.

`Answerer.ask` yields text deltas (str) and finally one `Answer` carrying the whole text and the
numbered sources the model was given, each marked `cited` when the answer refers to it as [n].
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rag.errors import EmptyQuestion
from rag.prompt import Prompt, build_messages, check_fits
from rag.retrieve import Retriever
from rag.types import (
    Answer,
    CancelToken,
    ChatModel,
    Citation,
    Hit,
    Message,
    Retrieved,
    Timing,
)

_CITE = re.compile(r"\[(\d{1,3})\]")
# Words that point back at an earlier turn ("what about its debt?", "and in 2021?").
_REFERS_BACK = re.compile(
    r"\b(it|its|it's|they|them|their|this|that|these|those|he|she|his|her|there|same|"
    r"above|previous|also|too|what about|how about)\b|^\s*(and|but|or|so)\b",
    re.IGNORECASE,
)
_SHORT_QUESTION_WORDS = 6
_CONVERSATIONS_KEPT = 32
_FOLLOW_UP_NEW_SOURCES = 2  # each new source is ~150 tokens the model must read before answering

NOTHING_RELEVANT = (
    "I found nothing about this in your documents, so I will not guess. "
    'Try other words, pick another document, or turn off "Answer from my documents" '
    "to chat without them."
)


def standalone_query(question: str, history: Sequence[Message]) -> str:
    """The text to search with: a follow-up question gets the previous question prepended.

    "What about 2021?" after "What was Adobe's revenue in 2020?" searches for both, so the
    retriever knows the subject. A question that names its own subject is searched alone.
    """
    previous = next((m["content"] for m in reversed(history) if m.get("role") == "user"), None)
    if not previous:
        return question
    if len(question.split()) > _SHORT_QUESTION_WORDS and not _REFERS_BACK.search(question):
        return question
    return f"{previous}\n{question}"


def cited_numbers(text: str) -> set[int]:
    """Source numbers referred to as [n] in an answer."""
    return {int(n) for n in _CITE.findall(text)}


def to_citations(
    hits: Sequence[Hit], text: str, numbers: Sequence[int] = ()
) -> tuple[Citation, ...]:
    """Number the hits as the prompt did (1..n unless `numbers` says) and mark the cited ones."""
    cited = cited_numbers(text)
    numbers = list(numbers) or list(range(1, len(hits) + 1))
    return tuple(
        Citation(
            number=n,
            file_name=h.chunk.file_name,
            page_start=h.chunk.page_start,
            page_end=h.chunk.page_end,
            text=h.chunk.text,
            score=h.score,
            cited=n in cited,
            file_id=h.chunk.file_id,
        )
        for n, h in zip(numbers, hits, strict=True)
    )


@dataclass(frozen=True)
class _Sent:
    """A conversation as the model last saw it: its turns as sent, and the sources in them."""

    turns: tuple[Message, ...]
    sources: tuple[Hit, ...]


def _conversation_key(history: Sequence[Message]) -> tuple[tuple[str, str], ...]:
    return tuple((m.get("role", ""), m.get("content", "")) for m in history)


def _prefer_given(hits: Sequence[Hit], given: Sequence[Hit], *, k: int) -> list[Hit]:
    """For a follow-up: the found sources the conversation already holds, then at most
    `_FOLLOW_UP_NEW_SOURCES` new ones, `k` in all, in the retriever's order.

    Each new passage costs prompt evaluation (~150 tokens, about a second on a laptop CPU)
    before the first token, while held ones are free (their tokens are cached). So `hits` reaches
    past the first `k` only to find more of the held ones; a new passage must be one a fresh
    question would have got (among the first `k`); and when the conversation already holds at
    least half of those first `k`, a new one must also rank above one of them: a passage the
    search places below everything the model already has is not worth the wait.
    """
    known = {h.chunk.id for h in given}
    top = list(hits[:k])
    held = [i for i, h in enumerate(top) if h.chunk.id in known]
    new = [(i, h) for i, h in enumerate(top) if h.chunk.id not in known]
    if held and 2 * len(held) >= len(top):
        new = [(i, h) for i, h in new if i < held[-1]]
    chosen = {h.chunk.id for _, h in new[:_FOLLOW_UP_NEW_SOURCES]}
    chosen |= {h.chunk.id for h in hits if h.chunk.id in known}
    return [h for h in hits if h.chunk.id in chosen][:k]


class Answerer:
    """Answers questions from the library, or plainly when there is nothing to retrieve from."""

    def __init__(
        self,
        retriever: Retriever,
        model: ChatModel,
        *,
        answer_reserve: int = 512,
        system_prompt: str | None = None,
        min_relevance: float = 0.0,
        min_relevance_in_document: float | None = None,
    ) -> None:
        """Args:
        retriever: finds the passages.
        model: writes the answer.
        answer_reserve: tokens kept free for the answer.
        system_prompt: replaces the default instructions.
        min_relevance: when no passage is at least this similar to the question (cosine), the
            answer says that the documents hold nothing on it instead of asking the model.
        min_relevance_in_document: the floor when the question is asked of one document (the
            only one searched, or the library's only one); default `min_relevance`. Chunks carry
            their document's title, so a question that does not name its subject ("which region
            grew most?", with the report picked) scores lower against all of them.
        """
        self.retriever = retriever
        self.model = model
        self.answer_reserve = answer_reserve
        self.system_prompt = system_prompt
        self.min_relevance = min_relevance
        self.min_relevance_in_document = (
            min_relevance if min_relevance_in_document is None else min_relevance_in_document
        )
        # Follow-ups resend the conversation exactly as the model saw it (sources included), so
        # llama.cpp's cache of that prefix stays valid and only the new turn is evaluated.
        self._sent: OrderedDict[tuple[tuple[str, str], ...], _Sent] = OrderedDict()
        self._sent_lock = threading.Lock()

    def ask(
        self,
        question: str,
        history: Sequence[Message] = (),
        *,
        use_documents: bool | None = None,
        file_names: Sequence[str] | None = None,
        cancel: CancelToken | None = None,
        sources_first: bool = False,
        options: Any = None,
        instructions: str = "",
    ) -> Iterator[str | Answer | Retrieved]:
        """Stream an answer.

        Args:
            question: the new question.
            history: earlier turns, oldest first.
            use_documents: True = retrieve, False = plain chat, None = retrieve if the library
                has documents.
            file_names: restrict retrieval to these documents.
            cancel: set it to stop generation; the answer so far is returned with stopped=True.
            sources_first: yield the passages given (`Retrieved`) before the text, so that a
                reader can see them while the answer is written.
            options: the model's sampling for this answer (None: its own settings). With a
                `json_schema`, nothing relevant in the library does not give the plain-text
                notice: the model answers, in JSON, without passages.
            instructions: the asker's own instructions, added to the system prompt (an API
                client's system message).

        Yields:
            `Retrieved` when asked for and there are passages, then text deltas, then one
            `Answer`.
        """
        asked = time.perf_counter()
        if not question.strip():
            raise EmptyQuestion("the question is empty: type what you want to know")
        if use_documents is None:
            use_documents = bool(file_names) or self.retriever.store.chunk_count() > 0
        check_fits(
            question,
            budget=self.model.context_length - self.answer_reserve,
            count_tokens=self.model.count_tokens,
        )
        with self._sent_lock:
            sent = self._sent.get(_conversation_key(history))
        hits: list[Hit] = []
        if use_documents:
            query = standalone_query(question, history)
            k = self.retriever.top_k
            if sent is not None and query != question:
                # A follow-up: sources the conversation already holds cost nothing to give
                # again, so look further and prefer them to new ones.
                hits = _prefer_given(
                    self.retriever.search(query, k=2 * k, file_names=file_names), sent.sources, k=k
                )
            else:
                hits = self.retriever.search(query, file_names=file_names)
            relevant = bool(hits) and max(h.score for h in hits) >= self._floor(file_names)
            if not relevant and getattr(options, "json_schema", None) is not None:
                hits = []  # the asker reads JSON: the model answers it, without passages
            elif not relevant:
                yield NOTHING_RELEVANT
                yield Answer(text=NOTHING_RELEVANT, used_documents=True)
                return
        prompt, sent = self._prompt(question, hits, history, sent, instructions)
        if sources_first and prompt.hits:
            yield Retrieved(to_citations(prompt.hits, "", prompt.numbers))
        parts: list[str] = []
        first = last = 0.0
        for delta in self.model.stream(prompt.messages, options, cancel=cancel):
            last = time.perf_counter()
            first = first or last
            parts.append(delta)
            yield delta
        text = "".join(parts)
        timing = None
        if parts:
            tokens = self.model.count_tokens(text)
            rate = (tokens - 1) / (last - first) if last > first and tokens > 1 else None
            timing = Timing(first_token_s=first - asked, tokens=tokens, tokens_per_s=rate)
        stopped = cancel is not None and cancel.is_set()
        if not stopped:
            self._remember(
                [
                    *history,
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": text},
                ],
                _Sent(
                    turns=(*prompt.messages[1:], {"role": "assistant", "content": text}),
                    sources=(*(sent.sources if sent else ()), *prompt.new_hits),
                ),
            )
        yield Answer(
            text=text,
            citations=to_citations(prompt.hits, text, prompt.numbers),
            used_documents=bool(prompt.hits),
            stopped=stopped,
            timing=timing,
            cut=not stopped and self.model.last_finish_reason == "length",
            prompt_tokens=self._prompt_length(prompt.messages),
        )

    def _prompt_length(self, messages: Sequence[Message]) -> int:
        """Tokens of the prompt just answered: the model's own count where it keeps one (the
        chat template's tokens included), else the messages' text counted with its tokenizer."""
        known = getattr(self.model, "last_prompt_length", 0)
        if isinstance(known, int) and known > 0:
            return known
        return sum(self.model.count_tokens(m["content"]) for m in messages)

    def _floor(self, file_names: Sequence[str] | None) -> float:
        """The relevance floor for a search of `file_names` (None: the whole library)."""
        if self.min_relevance_in_document == self.min_relevance:
            return self.min_relevance
        one = len(file_names) == 1 if file_names else self.retriever.store.document_count() == 1
        return self.min_relevance_in_document if one else self.min_relevance

    def _prompt(
        self,
        question: str,
        hits: Sequence[Hit],
        history: Sequence[Message],
        sent: _Sent | None,
        instructions: str = "",
    ) -> tuple[Prompt, _Sent | None]:
        """The prompt, continuing the conversation as last sent when it still fits whole."""
        budget = self.model.context_length - self.answer_reserve
        if sent is not None:
            prompt = build_messages(
                question,
                hits,
                sent.turns,
                budget=budget,
                count_tokens=self.model.count_tokens,
                system_prompt=self.system_prompt,
                earlier=sent.sources,
                instructions=instructions,
            )
            if not prompt.history_turns_dropped:
                return prompt, sent
        # A new conversation, or one that outgrew the window: plain history, sources from [1].
        prompt = build_messages(
            question,
            hits,
            history,
            budget=budget,
            count_tokens=self.model.count_tokens,
            system_prompt=self.system_prompt,
            instructions=instructions,
        )
        return prompt, None

    def _remember(self, history: Sequence[Message], sent: _Sent) -> None:
        with self._sent_lock:
            self._sent[_conversation_key(history)] = sent
            while len(self._sent) > _CONVERSATIONS_KEPT:
                self._sent.popitem(last=False)
