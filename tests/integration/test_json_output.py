"""JSON answers: a JSON Schema in the sampling options becomes a llama.cpp grammar, so the real
bundled model can only write JSON that follows it, on both decode paths."""

from __future__ import annotations

import json

import pytest

from models.base import GenerationOptions
from models.bundled import bundled_model_path
from models.errors import GenerationError
from models.llamacpp import LlamaRuntime

pytestmark = pytest.mark.integration

ASKED = [{"role": "user", "content": "Which city is the capital of France, in which country?"}]
CITY = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
}


def json_answer(runtime: LlamaRuntime, schema: dict) -> object:
    options = GenerationOptions(temperature=0.0, max_tokens=80, json_schema=json.dumps(schema))
    text = "".join(runtime.stream(ASKED, options))
    assert runtime.last_finish_reason == "stop", text  # the grammar let it end, complete
    return json.loads(text)


@pytest.fixture(scope="module", params=["native", "llama-cpp-python"])
def runtime(request):
    # With chat_format given, generation goes through llama-cpp-python's own loop instead.
    chat_format = None if request.param == "native" else "chatml"
    model = LlamaRuntime(bundled_model_path(), n_ctx=2048, chat_format=chat_format)
    yield model
    model.close()


def test_the_answer_follows_the_schema(runtime):
    answer = json_answer(runtime, CITY)
    assert isinstance(answer, dict) and set(answer) == {"city", "population"}, answer
    assert isinstance(answer["city"], str) and isinstance(answer["population"], int)


def test_any_object_for_json_mode_and_free_text_without_a_schema(runtime):
    assert isinstance(json_answer(runtime, {"type": "object"}), dict)
    free = "".join(runtime.stream(ASKED, GenerationOptions(temperature=0.0, max_tokens=40)))
    with pytest.raises(ValueError):
        json.loads(free)  # without the grammar this model answers in prose


def test_a_schema_the_converter_cannot_read_is_a_clear_error():
    runtime = LlamaRuntime(bundled_model_path(), n_ctx=512)
    try:
        options = GenerationOptions(json_schema='{"type": "no-such-type"}')
        with pytest.raises(GenerationError, match="JSON schema is not supported"):
            list(runtime.stream(ASKED, options))
        assert "".join(runtime.stream(ASKED, GenerationOptions(max_tokens=4)))  # still works
    finally:
        runtime.close()


def test_options_refuse_a_schema_that_is_not_a_json_object():
    with pytest.raises(ValueError, match="not valid JSON"):
        GenerationOptions(json_schema="{")
    with pytest.raises(ValueError, match="a JSON object"):
        GenerationOptions(json_schema="[1]")


def test_checking_the_free_pick_first_changes_no_token(monkeypatch):
    """The fast path (the chain's own pick, kept where the grammar allows it) writes what masking
    the whole vocabulary before every pick writes. (Sampled answers draw the same distribution,
    p(t) + (1 - Z) p(t) / Z = p(t) / Z over the allowed tokens, but not the same random draws.)"""
    from models.native import NativeDecoder

    schema = json.dumps({"type": "array", "minItems": 6, "items": CITY})
    options = GenerationOptions(temperature=0.0, max_tokens=120, json_schema=schema)
    runtime = LlamaRuntime(bundled_model_path(), n_ctx=2048)
    try:
        fast = "".join(runtime.stream(ASKED, options))
        monkeypatch.setattr(NativeDecoder, "_check_first", False)
        masked = "".join(runtime.stream(ASKED, options))
    finally:
        runtime.close()
    assert fast == masked
    assert len(fast) > 200, fast  # long enough that the grammar had to step in


def test_a_sampled_json_answer_follows_the_schema_and_its_seed():
    schema = json.dumps({"type": "array", "minItems": 3, "items": CITY})
    runtime = LlamaRuntime(bundled_model_path(), n_ctx=2048)
    try:
        answers = [
            "".join(
                runtime.stream(
                    ASKED,
                    GenerationOptions(
                        temperature=0.9, max_tokens=200, seed=seed, json_schema=schema
                    ),
                )
            )
            for seed in (1, 1, 2)
        ]
    finally:
        runtime.close()
    assert answers[0] == answers[1] != answers[2]
    for answer in answers:
        cities = json.loads(answer)
        assert len(cities) >= 3 and all(set(c) == {"city", "population"} for c in cities)
