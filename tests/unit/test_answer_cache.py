"""Follow-ups resend the conversation as the model last saw it (prefix cache stays valid)."""

import pytest

from rag.answer import Answerer
from rag.types import Answer, Chunk, Hit

pytestmark = pytest.mark.unit


class RecordingModel:
    context_length = 4096

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
