"""Follow-ups resend the conversation as the model last saw it (prefix cache stays valid)."""

import pytest

from rag.answer import Answerer
from rag.types import Answer, Chunk, Hit

pytestmark = pytest.mark.unit


class RecordingModel:
    context_length = 4096
    last_finish_reason = "stop"

    def __init__(self) -> None:
        self.prompts: list[list[dict[str, str]]] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(self, messages, options=None, *, cancel=None):
        self.prompts.append([dict(m) for m in messages])
        yield f"answer {len(self.prompts)}"


class FixedRetriever:
    top_k = 4

    class store:
        @staticmethod
        def chunk_count() -> int:
            return 1

    def search(self, query, k=None, file_names=None):
        chunk = Chunk("c1", "Aurora was started in Lisbon.", "f", "a.pdf", 3, 3)
        return [Hit(chunk, 0.7)]


def ask(answerer: Answerer, question: str, history) -> Answer:
    *_, answer = answerer.ask(question, history)
    return answer


def test_a_follow_up_extends_the_previous_prompt_and_does_not_resend_its_sources():
    model = RecordingModel()
    answerer = Answerer(FixedRetriever(), model, answer_reserve=100)
    first = ask(answerer, "Where was Aurora started?", [])
    history = [
        {"role": "user", "content": "Where was Aurora started?"},
        {"role": "assistant", "content": first.text},
    ]
    second = ask(answerer, "And when?", history)
    before, after = model.prompts
    assert after[: len(before)] == before  # same prefix, token for token
    assert after[len(before)] == {"role": "assistant", "content": "answer 1"}
    assert "Aurora was started in Lisbon" not in after[-1]["content"]  # named, not resent
    assert second.citations[0].number == 1 and second.citations[0].page_start == 3
    # Another conversation with a different history starts fresh.
    ask(
        answerer,
        "And when?",
        [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}],
    )
    assert "Aurora was started in Lisbon" in model.prompts[-1][-1]["content"]


def test_a_follow_up_adds_only_new_sources_a_fresh_search_would_give():
    from rag.answer import _prefer_given

    hits = [Hit(Chunk(f"c{i}", f"text {i}", "f", "a.pdf", i, i), 0.9 - i / 100) for i in range(8)]
    given = [hits[1], hits[6]]
    chosen = [h.chunk.id for h in _prefer_given(hits, given, k=4)]
    # held ones wherever they rank; new ones only from the first four, at most two
    assert chosen == ["c0", "c1", "c2", "c6"]
    assert [h.chunk.id for h in _prefer_given(hits, hits[:4], k=4)] == ["c0", "c1", "c2", "c3"]


def test_a_follow_up_skips_a_new_source_ranked_below_all_it_already_holds():
    from rag.answer import _prefer_given

    hits = [Hit(Chunk(f"c{i}", f"text {i}", "f", "a.pdf", i, i), 0.9 - i / 100) for i in range(8)]
    # Three of the first four are held: the fourth, new, ranks below them all.
    chosen = [h.chunk.id for h in _prefer_given(hits, [hits[0], hits[1], hits[2]], k=4)]
    assert chosen == ["c0", "c1", "c2"]
    # A new one that outranks a held one is still added.
    chosen = [h.chunk.id for h in _prefer_given(hits, [hits[0], hits[2], hits[3]], k=4)]
    assert chosen == ["c0", "c1", "c2", "c3"]
    # Half held: the new ones above the lowest held one only.
    chosen = [h.chunk.id for h in _prefer_given(hits, [hits[0], hits[2]], k=4)]
    assert chosen == ["c0", "c1", "c2"]
