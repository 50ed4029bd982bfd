"""One contract, two implementations: the scripted fake and the real bundled GGUF."""

import threading

import pytest

from tests.fakes import ScriptedChatModel

MESSAGES = [{"role": "user", "content": "Count from one to ten, in words."}]


@pytest.fixture(params=["fake", "llama.cpp"])
def chat_model(request):
    if request.param == "fake":
        model = ScriptedChatModel()
        for _ in range(3):
            model.enqueue("One", ", two", ", three", ", four", ", five")
        return model
    return request.getfixturevalue("bundled_model")


@pytest.mark.integration
class TestChatModelContract:
    def test_streams_several_nonempty_pieces(self, chat_model):
        pieces = list(chat_model.stream(MESSAGES))
        assert len(pieces) >= 3
        assert all(isinstance(p, str) and p for p in pieces)

    def test_cancel_stops_the_stream_early(self, chat_model):
        cancel = threading.Event()
        got = []
        for piece in chat_model.stream(MESSAGES, cancel=cancel):
            got.append(piece)
            cancel.set()
        assert len(got) == 1

    def test_counts_tokens_and_knows_its_window(self, chat_model):
        assert chat_model.count_tokens("") == 0
        assert (
            0
            < chat_model.count_tokens("hello there, world")
            < chat_model.count_tokens("hello there, world " * 5)
        )
        assert chat_model.context_length >= 1024

    def test_says_why_the_answer_ended(self, chat_model):
        list(chat_model.stream(MESSAGES))
        assert chat_model.last_finish_reason in ("stop", "length")
