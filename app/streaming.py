"""An answer generated in its own thread and read in batches, so decoding never waits for the web.

A web framework reads a streaming handler one item at a time: it takes an item, sends it, and only
then asks for the next. When the handler itself drives llama.cpp, every update sent is a pause in
token generation. Here the generator runs in a thread of its own and fills a queue; the handler
takes whatever has arrived, at most once per `interval_s`, and the decoder goes on meanwhile.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from rag.types import Answer, Retrieved

T = TypeVar("T")

_END = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def in_background(
    produce: Callable[[], Iterator[T]],
    *,
    interval_s: float = 0.0,
    cancel: threading.Event | None = None,
    idle_s: float | None = None,
) -> Iterator[list[T]]:
    """Run `produce()` in a thread; yield the items it made, oldest first, in batches.

    Args:
        produce: makes the iterator to run (called in the thread).
        interval_s: least time between two batches; the first batch goes out at once, and so
            does the last when the producer ends (a complete answer is not held back).
            0 = each batch is whatever arrived while the previous one was being sent.
        cancel: set when the reader stops early (a closed browser tab), so the producer can stop.
        idle_s: when set, an empty batch comes after this long with nothing new, so that a reader
            that is itself a generator keeps returning to its caller (gradio can stop a
            generator, on a client's cancel, only between two of its values).

    Raises:
        Whatever the producer raised, once the items before it have been yielded.
    """
    items: queue.SimpleQueue[object] = queue.SimpleQueue()
    finished = threading.Event()

    def run() -> None:
        try:
            for item in produce():
                items.put(item)
        except BaseException as exc:  # handed to the reader, raised there
            items.put(_Failed(exc))
        finally:
            items.put(_END)
            finished.set()

    worker = threading.Thread(target=run, name="generation", daemon=True)
    worker.start()
    last = float("-inf")
    ended = False
    try:
        while not ended:
            batch: list[T] = []
            failure: _Failed | None = None
            try:
                pending = [items.get(timeout=idle_s)]  # wait for the next item...
            except queue.Empty:
                yield []
                continue
            wait = last + interval_s - time.monotonic()
            if wait > 0:  # ...then for the interval, without a wake-up per token, or until
                finished.wait(wait)  # the producer ends: its last items go out at once
            while True:
                try:
                    pending.append(items.get_nowait())
                except queue.Empty:
                    break
            for item in pending:
                if item is _END:
                    ended = True
                elif isinstance(item, _Failed):
                    failure = item
                else:
                    batch.append(item)  # type: ignore[arg-type]
            if batch:
                yield batch
                last = time.monotonic()
            if failure is not None:
                raise failure.error
    finally:
        if not ended and cancel is not None:
            cancel.set()  # the reader left early: let the producer stop at its next token


# What `Answerer.ask` streams.
Part = str | Answer | Retrieved


def split_answer(batch: Sequence[Part]) -> tuple[str, Answer | None]:
    """A batch of `Answerer.ask`'s stream: its text joined, and the final `Answer` if in it."""
    text = "".join(part for part in batch if isinstance(part, str))
    return text, next((part for part in batch if isinstance(part, Answer)), None)


def retrieved_in(batch: Sequence[Part]) -> Retrieved | None:
    """The passages given (`Answerer.ask(sources_first=True)`), if this batch has them."""
    return next((part for part in batch if isinstance(part, Retrieved)), None)
