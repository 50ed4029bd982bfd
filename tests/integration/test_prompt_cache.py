"""The system prompt's cache: evaluated once, kept in a file, read back by the next start."""

import pytest

from models.base import GenerationOptions
from models.bundled import bundled_model_path
from models.llamacpp import LlamaRuntime
from models.native import NativeDecoder
from rag.prompt import SYSTEM_CHAT, SYSTEM_RAG

pytestmark = pytest.mark.integration

SYSTEM = [{"role": "system", "content": SYSTEM_RAG}]
QUESTION = [*SYSTEM, {"role": "user", "content": "Name three colours of the rainbow."}]
GREEDY = GenerationOptions(temperature=0.0, max_tokens=24)


def runtime() -> LlamaRuntime:
    model = LlamaRuntime(bundled_model_path(), n_ctx=1024, default_options=GREEDY)
    model.warm_up()
    return model


def test_the_next_start_reads_the_system_prompt_from_the_file_and_answers_the_same(
    tmp_path, monkeypatch
):
    state = tmp_path / "prompt-cache"
    first = runtime()
    primed = first.prime(SYSTEM, state)
    assert primed > 20 and len(list(state.glob("*.kv"))) == 1
    expected = "".join(first.stream(QUESTION))
    assert first._native.reused_tokens == primed  # the question only evaluated its own part
    first.close()

    def no_prefill(self, tokens):
        raise AssertionError("the prefix was evaluated, not read from the file")

    second = runtime()
    with monkeypatch.context() as patch:
        patch.setattr(NativeDecoder, "prefill", no_prefill)
        assert second.prime(SYSTEM, state) == primed
    assert "".join(second.stream(QUESTION)) == expected
    assert second._native.reused_tokens == primed
    second.close()


def test_a_damaged_or_foreign_file_is_evaluated_again(tmp_path):
    state = tmp_path / "prompt-cache"
    first = runtime()
    primed = first.prime(SYSTEM, state)
    expected = "".join(first.stream(QUESTION))
    first.close()
    (saved,) = state.glob("*.kv")
    saved.write_bytes(saved.read_bytes()[:1000])  # cut short, as by a full disk

    second = runtime()
    assert second.prime(SYSTEM, state) == primed
    assert "".join(second.stream(QUESTION)) == expected
    assert second.prime([{"role": "system", "content": SYSTEM_CHAT}], state) > 0
    assert len(list(state.glob("*.kv"))) == 2  # one file per system prompt
    second.close()
