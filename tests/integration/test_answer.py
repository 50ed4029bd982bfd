"""Question -> retrieval -> prompt -> the real bundled model, streamed, with page citations."""

import threading

import pytest

from models.errors import ModelNotFound
from models.llamacpp import LlamaRuntime
from rag.answer import Answerer
from rag.ingest import Ingestor
from rag.retrieve import Retriever
from rag.store import ChunkStore
from rag.types import Answer, Retrieved
from tests.conftest import AURORA_PAGE
from tests.fakes import ScriptedChatModel

pytestmark = pytest.mark.integration


@pytest.fixture
def retriever(tmp_path, real_embedder, aurora_pdf):
    store = ChunkStore(tmp_path / "chroma", embedder_id=real_embedder.model_id)
    Ingestor(real_embedder, store).ingest([aurora_pdf])
    return Retriever(real_embedder, store, top_k=3)


def collect(stream):
    deltas = [p for p in stream if isinstance(p, str)]
    return deltas


def test_real_model_streams_a_grounded_answer_citing_the_right_page(retriever, bundled_model):
    answerer = Answerer(retriever, bundled_model, answer_reserve=64)
    parts = list(answerer.ask("What is the launch code of the Aurora project?"))
    answer = parts[-1]
    deltas = parts[:-1]
    assert isinstance(answer, Answer) and answer.used_documents
    assert len(deltas) >= 3 and "".join(deltas) == answer.text
    assert answer.citations[0].number == 1
    assert (answer.citations[0].file_name, answer.citations[0].page_start) == (
        "aurora-report.pdf",
        AURORA_PAGE,
    )
    assert "7341" in answer.text  # the 135M model copies the fact from the source at temperature 0
    # How fast it came: the answer's tokens as the model counts them, at a plausible rate.
    timing = answer.timing
    assert timing is not None and timing.tokens == bundled_model.count_tokens(answer.text)
    assert 0 < timing.first_token_s < 60 and timing.tokens_per_s is not None
    assert 1 < timing.tokens_per_s < 10_000


def test_the_passages_given_can_come_before_the_text(retriever, bundled_model):
    answerer = Answerer(retriever, bundled_model, answer_reserve=64)
    question = "What is the launch code of the Aurora project?"
    first, second, *_, answer = answerer.ask(question, sources_first=True)
    assert isinstance(first, Retrieved) and isinstance(second, str)
    assert [(c.number, c.file_name, c.page_start) for c in first.citations] == [
        (c.number, c.file_name, c.page_start) for c in answer.citations
    ]
    assert not any(c.cited for c in first.citations)  # nothing is written yet
    assert not [p for p in answerer.ask(question) if isinstance(p, Retrieved)]  # unasked


def test_repeated_question_reuses_the_cache_and_stays_grounded(retriever, bundled_model):
    # The second call reuses llama.cpp's cached prompt prefix; its greedy text may differ in
    # rounding-sensitive later tokens, but the fact copied from the source must survive.
    answerer = Answerer(retriever, bundled_model, answer_reserve=64)
    first = list(answerer.ask("Who started the Aurora project?"))[-1]
    second = list(answerer.ask("Who started the Aurora project?"))[-1]
    assert "Marta Silva" in first.text and "Marta Silva" in second.text


def test_stop_ends_generation_and_marks_the_answer(retriever, bundled_model):
    answerer = Answerer(retriever, bundled_model, answer_reserve=64)
    cancel = threading.Event()
    parts = []
    for part in answerer.ask("Describe the Aurora project.", cancel=cancel):
        parts.append(part)
        if len(parts) == 2:
            cancel.set()
    assert parts[-1].stopped and len(parts) == 3


def test_an_answer_that_runs_to_the_token_limit_says_it_was_cut(retriever, bundled_model):
    answerer = Answerer(retriever, bundled_model, answer_reserve=64)
    *_, story = answerer.ask("Write a long story about a lighthouse.", use_documents=False)
    assert story.cut and story.timing.tokens == bundled_model.default_options.max_tokens
    *_, short = answerer.ask("What is the launch code of the Aurora project?")
    assert not short.cut and "7341" in short.text  # the model ended it


def test_plain_chat_when_asked_or_when_the_library_is_empty(tmp_path, real_embedder):
    model = ScriptedChatModel()
    model.enqueue("Hi", " there")
    empty = Retriever(real_embedder, ChunkStore(tmp_path / "c", embedder_id=real_embedder.model_id))
    answer = list(Answerer(empty, model).ask("Hello"))[-1]
    assert answer.text == "Hi there" and not answer.used_documents and answer.citations == ()
    assert "Sources" not in model.prompts[0][-1]["content"]


def test_history_reaches_the_model_and_citations_are_marked(retriever):
    model = ScriptedChatModel()
    model.enqueue("The code is 7341 [1].")
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    answer = list(Answerer(retriever, model).ask("Launch code?", history))[-1]
    assert [m["role"] for m in model.prompts[0]] == ["system", "user", "assistant", "user"]
    assert answer.citations[0].cited and not any(c.cited for c in answer.citations[1:])


def test_missing_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFound, match="no model file"):
        LlamaRuntime(tmp_path / "nope.gguf")


def test_context_is_capped_at_the_trained_length(bundled_model):
    from models.bundled import bundled_model_path

    runtime = LlamaRuntime(bundled_model_path(), n_ctx=1_000_000)
    try:
        info = runtime.info
        assert info.context_length == info.trained_context_length == 8192
    finally:
        runtime.close()


def test_follow_up_evaluates_only_the_new_turn_on_the_real_model(retriever, bundled_model):
    """The conversation goes back to llama.cpp exactly as it saw it: the cache covers it."""
    answerer = Answerer(retriever, bundled_model, answer_reserve=64)
    first = list(answerer.ask("Who started the Aurora project?"))[-1]
    decoder = bundled_model._native
    assert decoder is not None  # the GGUF's template: native decoding
    first_prompt = decoder.reused_tokens + decoder.evaluated_tokens
    history = [
        {"role": "user", "content": "Who started the Aurora project?"},
        {"role": "assistant", "content": first.text},
    ]
    follow = list(answerer.ask("And in which city?", history))[-1]
    assert decoder.reused_tokens >= first_prompt  # the whole first prompt came from the cache
    assert decoder.evaluated_tokens < first_prompt / 2
    assert follow.text and follow.citations  # the sources still stand behind the answer


def test_a_question_the_documents_do_not_cover_gets_no_invented_answer(retriever):
    model = ScriptedChatModel()
    answerer = Answerer(retriever, model, min_relevance=0.3)
    parts = list(answerer.ask("What is the capital of Mongolia?", use_documents=True))
    answer = parts[-1]
    assert "found nothing about this in your documents" in answer.text
    assert answer.citations == () and model.prompts == []  # the model was not asked to guess
    covered = list(answerer.ask("Who started the Aurora project?", use_documents=True))[-1]
    assert covered.citations and model.prompts  # a covered question goes to the model


def test_json_asked_gets_json_even_when_the_documents_do_not_cover_it(retriever, bundled_model):
    """A program that asked for JSON is not handed the plain-text notice: the model answers in
    JSON, without passages (the grammar holds it to the schema)."""
    import json

    from models.base import GenerationOptions

    answerer = Answerer(retriever, bundled_model, min_relevance=0.3)
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    options = GenerationOptions(temperature=0.0, max_tokens=40, json_schema=json.dumps(schema))
    asked = "What is the capital of Mongolia?"
    answer = list(answerer.ask(asked, use_documents=True, options=options))[-1]
    assert isinstance(answer, Answer) and answer.citations == ()
    assert set(json.loads(answer.text)) == {"city"}, answer.text
