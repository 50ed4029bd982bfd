"""Keyword search (BM25, via bm25s) over the library's chunks, to fuse with vector search.

Vector search finds paraphrases; BM25 finds the exact words a question shares with a passage
(line items, names, figures' labels), which small embedders blur. A second BM25 index
(`PairIndex`) holds word pairs (neighbouring words once stopwords are dropped, stemmed:
"property plant", "plant equip"), so a passage that has a question's phrase ranks above one that
only has its words scattered, as in term-dependence models of retrieval. Both are built in memory
from the store's chunks (their text plus document title and page heading) and rebuilt when the
library changes: 2.9 s and 114 MB for the dev set's 18,104 chunks, reading them included.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_STOPWORDS = "en"


@dataclass(frozen=True)
class LexicalEntry:
    """What the index needs to know about one chunk."""

    chunk_id: str
    file_id: str
    text: str
    page: int = 0  # the chunk's first page


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
        self._pages: dict[str, tuple[str, int]] = {}  # chunk id -> (document, first page)
        self._bm25: object | None = None  # over words
        self._pairs_index: PairIndex | None = None
        self._stemmer: object | None = None

    def invalidate(self) -> None:
        """Forget the index; the next search rebuilds it."""
        with self._lock:
            self._signature = None
            self._bm25 = self._pairs_index = None

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
        words: list[list[str]] = bm25s.tokenize(  # lists of strings with return_ids=False
            list(texts),
            stopwords=_STOPWORDS,
            stemmer=self._stemmer,
            return_ids=False,
            show_progress=False,
        )
        return words

    def _ensure(self) -> None:
        """Build the index if the library changed since the last build."""
        new_signature = self._current()
        if new_signature == self._signature:
            return
        entries = self._load()
        self._ids = [e.chunk_id for e in entries]
        self._file_ids = np.array([e.file_id for e in entries], dtype=object)
        self._pages = {e.chunk_id: (e.file_id, e.page) for e in entries}
        words = self._words([e.text for e in entries])
        self._bm25 = _bm25(words)
        self._pairs_index = PairIndex(words) if any(len(w) > 1 for w in words) else None
        del words, entries
        _give_back_freed_memory()
        self._signature = new_signature

    def page_of(self, chunk_id: str) -> tuple[str, int] | None:
        """(document, first page) of a chunk the last build indexed; None for another."""
        return self._pages.get(chunk_id)

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
        empty: list[list[tuple[str, float]]] = [[], []] if pairs else [[]]
        with self._lock:
            self._ensure()
            index: Any = self._bm25
            if index is None or k <= 0:
                return empty
            mask = None
            if file_ids is not None:
                mask = np.isin(self._file_ids, list(file_ids)).astype(np.float32)
                if not mask.any():
                    return empty
            words = self._words([query])[0]
            k = min(k, len(self._ids))
            found: list[list[tuple[int, float]]] = [[]]
            known = [w for w in words if w in index.vocab_dict]
            if known:  # else only stopwords, or words the library lacks
                rows, scores = index.retrieve(
                    [known], k=k, weight_mask=mask, show_progress=False, n_threads=1
                )
                found = [list(zip(rows[0].tolist(), scores[0].tolist(), strict=True))]
            if pairs:
                found.append(self._pairs_index.search(words, k, mask) if self._pairs_index else [])
        return [[(self._ids[i], s) for i, s in ranking if s > 0] for ranking in found]


def _bm25(corpus: list[list[str]]) -> object | None:
    """A BM25 index over tokenized texts; None when they hold no token at all."""
    if not any(corpus):
        return None
    import bm25s

    index = bm25s.BM25()
    index.index(corpus, show_progress=False)
    return index


class PairIndex:
    """BM25 over word pairs, scored as bm25s scores words (Lucene's formula, k1 1.5, b 0.75).

    A library holds far more distinct pairs than words (270,000 against 12,000 for the dev set's
    18,104 chunks). Indexed by bm25s as strings, they cost a Python object each, and the millions
    made while building left the heap fragmented: 120 MB more in the process than without them.
    Here a pair is one int64 made of its two word ids, and the index is a few numpy arrays.
    """

    _SHIFT = 31  # a pair's key: first word id << 31 | second word id

    def __init__(self, docs: Sequence[Sequence[str]], k1: float = 1.5, b: float = 0.75) -> None:
        """Args: each document's words, in order (a pair is two neighbours)."""
        self._ids: dict[str, int] = {}
        keys = [self._keys(doc, grow=True) for doc in docs]
        self._docs = len(docs)
        lengths = np.array([len(k) for k in keys], dtype=np.float32)
        pair = np.concatenate(keys) if keys else np.empty(0, dtype=np.int64)
        doc = np.repeat(np.arange(len(docs), dtype=np.int64), [len(k) for k in keys])
        order = np.lexsort((doc, pair))  # by pair, then document
        pair, doc = pair[order], doc[order]
        first = np.ones(len(pair), dtype=bool)  # the first entry of each (pair, document)
        first[1:] = (pair[1:] != pair[:-1]) | (doc[1:] != doc[:-1])
        starts = np.flatnonzero(first)
        tf = np.diff(np.append(starts, len(pair))).astype(np.float32)
        pair, doc = pair[starts], doc[starts]
        self._pairs, begin = np.unique(pair, return_index=True)
        self._begin = np.append(begin, len(pair))  # pair i's documents: begin[i]:begin[i + 1]
        df = np.diff(self._begin).astype(np.float32)
        idf = np.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
        average = float(lengths.mean()) if len(docs) and lengths.mean() > 0 else 1.0
        norm = k1 * (1 - b + b * lengths[doc] / average)
        self._doc = doc.astype(np.int32)
        self._score = (np.repeat(idf, np.diff(self._begin)) * tf / (tf + norm)).astype(np.float32)

    def _keys(self, words: Sequence[str], *, grow: bool = False) -> np.ndarray:
        if grow:
            ids = [self._ids.setdefault(w, len(self._ids)) for w in words]
        else:  # a word the library lacks breaks the pairs it is in
            ids = [self._ids.get(w, -1) for w in words]
        a = np.array(ids, dtype=np.int64)
        keys = (a[:-1] << self._SHIFT) | a[1:]
        return keys[(a[:-1] >= 0) & (a[1:] >= 0)] if len(a) > 1 else keys[:0]

    def search(
        self, words: Sequence[str], k: int, mask: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """(document number, score) for the `k` best documents sharing a pair with `words`.

        Args:
            words: the query's words, in order.
            k: most results.
            mask: 1 for the documents that may be returned, 0 for the others.
        """
        keys = self._keys(words)
        at = np.searchsorted(self._pairs, keys)
        scores = np.zeros(self._docs, dtype=np.float32)
        for key, i in zip(keys.tolist(), at.tolist(), strict=True):
            if i < len(self._pairs) and self._pairs[i] == key:
                lo, hi = self._begin[i], self._begin[i + 1]
                scores[self._doc[lo:hi]] += self._score[lo:hi]  # a pair lists a document once
        if mask is not None:
            scores *= mask
        k = min(k, int(np.count_nonzero(scores)))
        if k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(i), float(scores[i])) for i in top]


def _give_back_freed_memory() -> None:
    """Return the heap the build freed to the system (glibc only; elsewhere a no-op).

    Building makes millions of short-lived objects (the chunks' texts and words); once freed,
    glibc keeps their memory in the process: 235 MB more after building the dev set's indexes
    without this, 114-123 MB with it.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass
