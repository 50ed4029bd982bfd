"""Conversations kept across restarts, in SQLite (one short transaction per write)."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content TEXT NOT NULL,
    sources TEXT NOT NULL DEFAULT '[]',
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages(conversation_id, id);
"""


_ALL = "SELECT id, title, updated FROM conversations ORDER BY updated DESC, id DESC"
_MATCHING = (
    "SELECT id, title, updated FROM conversations WHERE title LIKE :like ESCAPE '\\' "
    "OR id IN (SELECT conversation_id FROM messages WHERE content LIKE :like ESCAPE '\\') "
    "ORDER BY updated DESC, id DESC"
)


def _title(text: str) -> str:
    """A conversation's title from its first question: one line, at most 80 characters."""
    return " ".join(text.split())[:80] or "New chat"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ChatStoreError(Exception):
    """The conversations database is damaged, locked or unwritable."""


@dataclass(frozen=True)
class Conversation:
    """A conversation's listing entry."""

    id: int
    title: str
    updated: str


@dataclass(frozen=True)
class StoredMessage:
    """One turn; `sources` holds the citations shown with an answer (plain dicts)."""

    role: str
    content: str
    sources: list[dict[str, Any]]
    timing: dict[str, Any] | None = None  # an answer's speed (`app.shapes.timing_json`)


class ChatStore:
    """Conversations and their messages in one SQLite file."""

    def __init__(self, path: Path, *, timeout_s: float = 10.0) -> None:
        """Open or create the database at `path`; wait up to `timeout_s` for a lock.

        Raises:
            ChatStoreError: the file is damaged or locked; it is left exactly as it is.
        """
        self.path = path
        self.timeout_s = timeout_s
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.executescript(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
            if "timing" not in columns:  # a file from before answers kept their speed
                db.execute("ALTER TABLE messages ADD COLUMN timing TEXT")
            db.execute("SELECT count(*) FROM messages").fetchone()

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=self.timeout_s)
        except sqlite3.Error as exc:
            raise ChatStoreError(f"cannot open the conversations file {self.path}: {exc}") from exc
        try:
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA journal_mode = WAL")
            with db:  # one transaction: committed on success, rolled back on error
                yield db
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise ChatStoreError(
                    f"the conversations file {self.path} is locked by another program: close it "
                    "and try again"
                ) from exc
            raise ChatStoreError(f"the conversations file {self.path} failed: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise ChatStoreError(
                f"the conversations file {self.path} is damaged ({exc}). It was left untouched: "
                "move it aside (or restore a backup) to start with an empty history"
            ) from exc
        finally:
            db.close()

    def create(self, title: str) -> int:
        """A new conversation; returns its id."""
        title = _title(title)
        with self._db() as db:
            now = _now()
            cur = db.execute(
                "INSERT INTO conversations(title, created, updated) VALUES (?, ?, ?)",
                (title, now, now),
            )
            return int(cur.lastrowid or 0)

    def conversations(self, matching: str = "") -> list[Conversation]:
        """All conversations, most recently used first; with `matching`, those whose title or
        turns hold it (in any case, for ASCII letters)."""
        wanted = matching.strip()
        with self._db() as db:
            if wanted:
                like = "%" + re.sub(r"([\\%_])", r"\\\1", wanted) + "%"  # literally
                rows = db.execute(_MATCHING, {"like": like}).fetchall()
            else:
                rows = db.execute(_ALL).fetchall()
        return [Conversation(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    def messages(self, conversation_id: int) -> list[StoredMessage]:
        """A conversation's turns, oldest first."""
        with self._db() as db:
            rows = db.execute(
                "SELECT role, content, sources, timing FROM messages "
                "WHERE conversation_id = ? ORDER BY id",
                (conversation_id,),
            ).fetchall()
        return [
            StoredMessage(r[0], r[1], json.loads(r[2]), json.loads(r[3]) if r[3] else None)
            for r in rows
        ]

    def append(
        self,
        conversation_id: int,
        role: str,
        content: str,
        sources: list[dict[str, Any]] | None = None,
        timing: dict[str, Any] | None = None,
    ) -> None:
        """Add one turn and bump the conversation's `updated` time."""
        with self._db() as db:
            now = _now()
            db.execute(
                "INSERT INTO messages(conversation_id, role, content, sources, timing, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    role,
                    content,
                    json.dumps(sources or []),
                    json.dumps(timing) if timing else None,
                    now,
                ),
            )
            db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, conversation_id))

    def truncate(self, conversation_id: int, keep: int) -> None:
        """Keep a conversation's first `keep` turns and drop the rest (a question asked again,
        edited or taken back drops what followed it)."""
        with self._db() as db:
            db.execute(
                "DELETE FROM messages WHERE conversation_id = ? AND id NOT IN "
                "(SELECT id FROM messages WHERE conversation_id = ? ORDER BY id LIMIT ?)",
                (conversation_id, conversation_id, max(0, keep)),
            )
            db.execute(
                "UPDATE conversations SET updated = ? WHERE id = ?", (_now(), conversation_id)
            )

    def retitle(self, conversation_id: int, title: str) -> None:
        """Rename a conversation (as `create` shortens titles)."""
        with self._db() as db:
            db.execute(
                "UPDATE conversations SET title = ? WHERE id = ?", (_title(title), conversation_id)
            )

    def delete(self, conversation_id: int) -> None:
        """Remove a conversation and its messages."""
        with self._db() as db:
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
