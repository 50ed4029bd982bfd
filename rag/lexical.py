"""Keyword search (BM25, via bm25s) over the library's chunks, to fuse with vector search.

Vector search finds paraphrases; BM25 finds the exact words a question shares with a passage
(line items, names, figures' labels), which small embedders blur. A second BM25 index holds word
pairs (neighbouring words once stopwords are dropped, stemmed: "property plant", "plant equip"),
so a passage that has a question's phrase ranks above one that only has its words scattered, as
in term-dependence models of retrieval. Both are built in memory from the store's chunks (their
text plus document title and page heading) and rebuilt when the library changes; building both
takes about two seconds per 10,000 chunks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

_STOPWORDS = "en"


@dataclass(frozen=True)
class LexicalEntry:
    """What the index needs to know about one chunk."""

    chunk_id: str
    file_id: str
    text: str


class LexicalIndex:
    """BM25 over chunks, with an optional restriction to some documents."""

    def __init__(
        self, signature: Callable[[], str], load: Callable[[], list[LexicalEntry]]
    ) -> None:
        """Args: the library's signature (cheap; changes with its content) and its chunks."""
        self._current = signature
        self._load = load
        self._lock = threading.Lock()
        self._signature: str | None = None
        self._ids: list[str] = []
        self._file_ids: np.ndarray = np.array([], dtype=object)
        self._bm25: object | None = None  # over words
        self._pairs_bm25: object | None = None  # over word pairs
        self._stemmer: object | None = None

    def invalidate(self) -> None:
        """Forget the index; the next search rebuilds it."""
        with self._lock:
            self._signature = None
            self._bm25 = self._pairs_bm25 = None

    def prepare(self) -> None:
        """Build the index now if the library changed, so that the next search need not."""
        with self._lock:
            self._ensure()

    def _words(self, texts: Sequence[str]) -> list[list[str]]:
        """Each text's words: lowercased, stopwords dropped, stemmed."""
        import bm25s

        if self._stemmer is None:
            import Stemmer

            logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets itself to DEBUG

            self._stemmer = Stemmer.Stemmer("english")
        words = bm25s.tokenize(
            list(texts),
            stopwords=_STOPWORDS,
            stemmer=self._stemmer,
            return_ids=False,
            show_progress=False,
        )
        return [list(w) for w in words]

    def _ensure(self) -> None:
        """Build the index if the library changed since the last build."""
        new_signature = self._current()
        if new_signature == self._signature:
            return
        entries = self._load()
        self._ids = [e.chunk_id for e in entries]
        self._file_ids = np.array([e.file_id for e in entries], dtype=object)
        words = self._words([e.text for e in entries])
        self._bm25 = _bm25(words)
        self._pairs_bm25 = _bm25([_pairs(w) for w in words])
        self._signature = new_signature

    def search(
        self,
        query: str,
        k: int,
        *,
        file_ids: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        """Chunk ids and BM25 scores, best first; only chunks sharing a word with the query.

        Args:
            query: the question.
            k: most results.
            file_ids: only chunks of these documents.
        """
        return self.rankings(query, k, file_ids=file_ids, pairs=False)[0]

    def rankings(
        self,
        query: str,
        k: int,
        *,
        file_ids: Sequence[str] | None = None,
        pairs: bool = True,
    ) -> list[list[tuple[str, float]]]:
        """`search`'s ranking by words, then (with `pairs`) the ranking by the query's word
        pairs, which holds only chunks sharing a pair with it."""
        with self._lock:
            self._ensure()
            indexes: list[Any] = [self._bm25, self._pairs_bm25] if pairs else [self._bm25]
            if self._bm25 is None or k <= 0:
                return [[] for _ in indexes]
            mask = None
            if file_ids is not None:
                mask = np.isin(self._file_ids, list(file_ids)).astype(np.float32)
                if not mask.any():
                    return [[] for _ in indexes]
            words = self._words([query])[0]
            k = min(k, len(self._ids))
            return [
                self._retrieve(index, terms, k, mask)
                for index, terms in zip(indexes, [words, _pairs(words)], strict=False)
            ]

    def _retrieve(
        self, index: Any, terms: list[str], k: int, mask: np.ndarray | None
    ) -> list[tuple[str, float]]:
        known = [t for t in terms if index is not None and t in index.vocab_dict]
        if not known:
            return []  # only stopwords, or nothing the library has
        found, scores = index.retrieve(
            [known], k=k, weight_mask=mask, show_progress=False, n_threads=1
        )
        return [
            (self._ids[int(i)], float(s)) for i, s in zip(found[0], scores[0], strict=True) if s > 0
        ]


def _pairs(words: Sequence[str]) -> list[str]:
    """Neighbouring words joined by a space (which no word contains)."""
    return [f"{a} {b}" for a, b in pairwise(words)]


def _bm25(corpus: list[list[str]]) -> object | None:
    """A BM25 index over tokenized texts; None when they hold no token at all."""
    if not any(corpus):
        return None
    import bm25s

    index = bm25s.BM25()
    index.index(corpus, show_progress=False)
    return index
