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
