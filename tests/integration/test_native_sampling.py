"""The native decoder's sampler cut (top candidates before the repetition penalty) changes no
token: the same prompt gives the same answer as sampling over the whole vocabulary, and the same
with the launcher's C helper picking those candidates as with llama.cpp's own candidate array."""

import pytest

from models import native, top_k
from models.base import GenerationOptions

pytestmark = pytest.mark.integration

PROMPT = "List the colours of the rainbow, then list them again, and again:"


@pytest.fixture(scope="module")
def llm():
    import llama_cpp

    from models.bundled import bundled_model_path

    model = llama_cpp.Llama(str(bundled_model_path()), n_ctx=512, n_threads=2, verbose=False)
    yield model
    model.close()


def answer(llm, options: GenerationOptions) -> str:
    decoder = native.NativeDecoder(llm)
    decoder.reset()
    return "".join(decoder.generate(llm.tokenize(PROMPT.encode()), options))


@pytest.mark.parametrize(
    "options",
    [
        GenerationOptions(temperature=0.0, repeat_penalty=2.0, max_tokens=60),
        GenerationOptions(temperature=0.9, repeat_penalty=1.6, max_tokens=60, seed=7),
    ],
    ids=["greedy", "sampled"],
)
def test_cutting_candidates_before_the_penalty_changes_no_token(llm, options, monkeypatch):
    cut = answer(llm, options)
    monkeypatch.setattr(native, "_PREFILTER_K", llm.n_vocab())  # no cut: the whole vocabulary
    whole = answer(llm, options)
    assert len(whole) > 40  # the penalty had repeats to act on
    assert cut == whole
    monkeypatch.setattr(native, "_PREFILTER_K", 1)  # a cut too small: the test can tell
    assert answer(llm, options) != whole


@pytest.mark.parametrize(
    "options",
    [
        GenerationOptions(temperature=0.0, repeat_penalty=1.3, max_tokens=80),
        GenerationOptions(temperature=0.7, repeat_penalty=1.1, max_tokens=80, seed=11),
        GenerationOptions(temperature=1.5, top_p=1.0, repeat_penalty=1.0, max_tokens=80, seed=3),
    ],
    ids=["greedy", "sampled", "hot"],
)
def test_the_top_k_helper_gives_the_tokens_llama_cpp_itself_gives(llm, options, monkeypatch):
    assert top_k.load() is not None, "the launcher builds the helper into this environment"
    helped = answer(llm, options)
    monkeypatch.setattr(native.top_k, "load", lambda: None)  # llama_sampler_sample's own array
    assert native.NativeDecoder(llm)._top_k is None
    own = answer(llm, options)
    assert len(own) > 100
    assert helped == own


def test_an_answer_cut_by_the_token_limit_does_not_evaluate_its_last_token(llm):
    decoder = native.NativeDecoder(llm)
    decoder.reset()
    prompt = llm.tokenize(PROMPT.encode())
    options = GenerationOptions(temperature=0.0, max_tokens=8)
    gen = decoder.generate(prompt, options)
    text = ""
    ended = None
    while ended is None:
        try:
            text += next(gen)
        except StopIteration as end:
            ended = end.value
    assert ended == "length"
    # nothing is sampled after the 8th token, so it is not run through the model
    assert len(decoder.cached_tokens) == len(prompt) + 7
    longer = answer(llm, options.model_copy(update={"max_tokens": 9}))
    assert longer.startswith(text) and len(longer) > len(text)
