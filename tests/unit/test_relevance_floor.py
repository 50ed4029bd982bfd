"""The relevance floor: lower for a question asked of one document than across a library."""

import pytest

from rag.answer import NOTHING_RELEVANT, Answerer
from rag.types import Chunk, Hit

pytestmark = pytest.mark.unit


class EchoModel:
    context_length = 4096
    last_finish_reason = "stop"

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(self, messages, options=None, *, cancel=None):
        yield "answered"


class Library:
    """A retriever whose best passage scores `score`, over `documents` documents."""

    top_k = 4

    def __init__(self, score: float, documents: int) -> None:
        self.score = score
        self.store = type(
            "Store", (), {"document_count": lambda _: documents, "chunk_count": lambda _: 1}
        )()

    def search(self, query, k=None, file_names=None):
        return [Hit(Chunk("c1", "Some passage.", "f", "d0.pdf", 1, 1), self.score)]


def answer(score: float, documents: int, file_names=None) -> str:
    answerer = Answerer(
        Library(score, documents), EchoModel(), min_relevance=0.3, min_relevance_in_document=0.25
    )
    *_, final = answerer.ask("Which region grew most?", file_names=file_names)
    return final.text


def test_a_passage_between_the_two_floors_counts_only_within_one_document():
    assert answer(0.27, documents=5) == NOTHING_RELEVANT  # across a library: not enough
    assert answer(0.27, documents=5, file_names=["d0.pdf"]) == "answered"  # the picked one
    assert answer(0.27, documents=1) == "answered"  # the library's only document
    assert answer(0.27, documents=5, file_names=["d0.pdf", "d1.pdf"]) == NOTHING_RELEVANT


def test_below_both_floors_nothing_is_relevant_and_above_both_everything_is():
    for documents, names in ((5, None), (1, None), (5, ["d0.pdf"])):
        assert answer(0.2, documents, names) == NOTHING_RELEVANT
        assert answer(0.35, documents, names) == "answered"
