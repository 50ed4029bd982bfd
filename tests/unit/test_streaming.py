"""Generation in its own thread: the reader gets everything, in order, in batches, and never
holds the producer up; errors and early exits travel the right way."""

import threading
import time

import pytest

from app.streaming import in_background


def test_every_item_arrives_in_order_and_the_first_at_once():
    def produce():
        yield "a"
        time.sleep(0.05)
        yield from "bcd"

    started = time.monotonic()
    stream = in_background(produce, interval_s=0.5)
    assert next(stream) == ["a"]
    assert time.monotonic() - started < 0.4  # not held back by the interval
    assert [item for batch in stream for item in batch] == ["b", "c", "d"]


def test_the_producer_goes_on_while_the_reader_is_busy():
    made: list[float] = []

    def produce():
        yield 0
        time.sleep(0.05)
        for i in range(1, 5):
            made.append(time.monotonic())
            yield i

    stream = in_background(produce, interval_s=0.0)
    assert next(stream) == [0]
    time.sleep(0.3)  # the reader is sending its first update
    resumed = time.monotonic()
    rest = [item for batch in stream for item in batch]
    assert rest == [1, 2, 3, 4]
    assert made[-1] < resumed  # everything was made while the reader was away


def test_updates_are_coalesced_to_the_interval():
    def produce():
        for i in range(40):
            time.sleep(0.005)
            yield i

    batches = list(in_background(produce, interval_s=0.05))
    assert [i for b in batches for i in b] == list(range(40))
    assert len(batches) <= 8  # about 0.2 s of items in 0.05 s batches, not 40 updates


def test_the_last_batch_goes_out_when_the_producer_ends_not_after_the_interval():
    def produce():
        yield "a"
        time.sleep(0.05)
        yield "b"  # then the answer is complete

    stream = in_background(produce, interval_s=2.0)
    assert next(stream) == ["a"]
    started = time.monotonic()
    assert list(stream) == [["b"]]
    assert time.monotonic() - started < 1.0  # not the rest of the 2 s interval


def test_a_producer_error_is_raised_after_what_came_before():
    def produce():
        yield 1
        raise ValueError("broken PDF")

    stream = in_background(produce)
    assert next(stream) == [1]
    with pytest.raises(ValueError, match="broken PDF"):
        next(stream)


def test_a_reader_that_leaves_early_stops_the_producer():
    cancel = threading.Event()
    stopped = threading.Event()

    def produce():
        try:
            while not cancel.is_set():
                yield "token"
                time.sleep(0.01)
        finally:
            stopped.set()

    stream = in_background(produce, cancel=cancel)
    next(stream)
    stream.close()  # the browser tab was closed
    assert cancel.is_set()
    assert stopped.wait(2)


def test_with_idle_s_a_silent_producer_still_gives_the_reader_empty_batches():
    """So that a reader which is itself a generator returns to its caller, who can close it."""

    def slow():
        time.sleep(0.35)
        yield "done"

    batches = list(in_background(slow, idle_s=0.1))
    assert batches[-1] == ["done"]
    assert 2 <= batches.count([]) <= 4 and len(batches) == batches.count([]) + 1
