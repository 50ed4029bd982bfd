"""The conversations store's edits: what retry, edit and undo leave behind."""

import sqlite3

from app.chats import ChatStore
from app.ui.format import timing_note


def test_truncate_keeps_the_first_turns_of_that_conversation_only(tmp_path):
    store = ChatStore(tmp_path / "chats.sqlite3")
    one, two = store.create("first"), store.create("second")
    for n in range(3):
        store.append(one, "user", f"q{n}")
        store.append(one, "assistant", f"a{n}", [{"file": "x.pdf", "page": n + 1}])
        store.append(two, "user", f"other {n}")

    store.truncate(one, 3)
    assert [(m.role, m.content) for m in store.messages(one)] == [
        ("user", "q0"),
        ("assistant", "a0"),
        ("user", "q1"),
    ]
    assert store.messages(one)[1].sources == [{"file": "x.pdf", "page": 1}]
    assert [m.content for m in store.messages(two)] == ["other 0", "other 1", "other 2"]

    store.truncate(one, 0)
    assert store.messages(one) == []


def test_retitle_shortens_like_a_new_title(tmp_path):
    store = ChatStore(tmp_path / "chats.sqlite3")
    chat = store.create("Name a colour.")
    store.retitle(chat, "  Name\nan   animal, " + "very " * 30)
    (conversation,) = store.conversations()
    assert conversation.title.startswith("Name an animal, very very")
    assert len(conversation.title) == 80
    store.retitle(chat, "   ")
    assert store.conversations()[0].title == "New chat"


def test_a_file_from_before_timings_opens_and_keeps_them_from_then_on(tmp_path):
    path = tmp_path / "chats.sqlite3"
    with sqlite3.connect(path) as db:  # the schema before answers kept their speed
        db.executescript(
            "CREATE TABLE conversations (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT "
            "NULL, created TEXT NOT NULL, updated TEXT NOT NULL);"
            "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id "
            "INTEGER NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL, sources TEXT NOT NULL "
            "DEFAULT '[]', created TEXT NOT NULL);"
            "INSERT INTO conversations VALUES (1, 'old', 't', 't');"
            "INSERT INTO messages VALUES (1, 1, 'user', 'q', '[]', 't');"
            "INSERT INTO messages VALUES (2, 1, 'assistant', 'a', '[]', 't');"
        )
    store = ChatStore(path)
    assert [(m.content, m.timing) for m in store.messages(1)] == [("q", None), ("a", None)]
    timing = {"first_token_s": 0.31, "tokens": 96, "tokens_per_s": 84.2}
    store.append(1, "assistant", "b", [], timing)
    assert ChatStore(path).messages(1)[-1].timing == timing


def test_timing_note_reads_as_a_person_would_say_it():
    note = timing_note({"first_token_s": 0.31, "tokens": 96, "tokens_per_s": 84.2})
    assert "first words after 0.3 s · 96 tokens · 84 tokens/s" in note
    assert "tokens/s" not in timing_note({"first_token_s": 2.0, "tokens": 1, "tokens_per_s": None})
    assert timing_note(None) == ""


def test_conversations_matching_a_title_or_a_turn_in_any_case(tmp_path):
    store = ChatStore(tmp_path / "chats.sqlite3")
    rivers = store.create("Name a river.")
    store.append(rivers, "user", "Name a river.")
    store.append(rivers, "assistant", "The Danube, 100% wet_ish.")
    planets = store.create("Name a planet.")
    store.append(planets, "user", "And a MOON?")

    def found(matching: str) -> list[int]:
        return [c.id for c in store.conversations(matching)]

    assert found("") == found("  ") == [planets, rivers]
    assert found("river") == found("danube") == [rivers]  # title, then an answer
    assert found("moon") == [planets]  # a later question, in another case
    assert found("100%") == found("wet_ish") == [rivers]  # % and _ are literal
    assert found("r_ver") == found("Na%river") == []  # as wildcards they would match "river"
    assert found("nothing like it") == []
