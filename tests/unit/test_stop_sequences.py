"""Stop sequences (`models.base.until_stop`): the answer ends before the first one, which may
arrive split over several pieces, and text that only looked like its start is not lost."""

from collections.abc import Generator

import pytest
from pydantic import ValidationError

from models.base import GenerationOptions, until_stop


def pieces(*texts: str, ended: str = "length") -> Generator[str, None, str]:
    yield from texts
    return ended


def run(stream: Generator[str, None, str], stops: list[str]) -> tuple[list[str], str | None]:
    out: list[str] = []
    gen = until_stop(stream, stops)
    while True:
        try:
            out.append(next(gen))
        except StopIteration as end:
            return out, end.value


def test_text_stops_before_a_stop_sequence_split_over_pieces():
    out, ended = run(pieces("The answer", " is 4", "2.\nQue", "stion: more"), ["\nQuestion:"])
    assert "".join(out) == "The answer is 42."
    assert ended is None  # a stop sequence ended it


def test_the_earliest_of_several_stop_sequences_wins():
    out, ended = run(pieces("a b END c STOP d"), ["STOP", "END"])
    assert "".join(out) == "a b " and ended is None


def test_text_that_only_looked_like_a_stop_is_given_back_in_order():
    out, ended = run(pieces("x\nQu", "ite so.\nQ"), ["\nQuestion:"])
    assert "".join(out) == "x\nQuite so.\nQ"  # the held "\nQ" comes out at the end
    assert ended == "length"  # what the model's own stream returned
    assert out[0] == "x"  # "\nQu" was held back until the next piece told


def test_no_stop_sequences_passes_everything_through_at_once():
    out, ended = run(pieces("a", "b", ended="stop"), [])
    assert out == ["a", "b"] and ended == "stop"


def test_the_models_stream_is_closed_when_a_stop_ends_it():
    closed = []

    def model() -> Generator[str, None, str]:
        try:
            yield "one STOP"
            yield "never read"
        finally:
            closed.append(True)
        return "length"

    out, ended = run(model(), ["STOP"])
    assert out == ["one "] and ended is None and closed == [True]


def test_generation_options_refuse_empty_and_too_many_stops():
    assert GenerationOptions(stop=("\n\n",)).stop == ("\n\n",)
    with pytest.raises(ValidationError, match="cannot be empty"):
        GenerationOptions(stop=("",))
    with pytest.raises(ValidationError):
        GenerationOptions(stop=("a", "b", "c", "d", "e"))
