"""The conversations store's edits: what retry, edit and undo leave behind."""

from app.chats import ChatStore


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
