"""Query text -> ranked hits from the library: vector and keyword search fused, one hit per page.

1. Vector search (Chroma, cosine), BM25 over words and BM25 over word pairs (`rag.lexical`) each
   rank `candidates` chunks, within the documents the user picked when they picked any.
2. Reciprocal-rank fusion merges the rankings (a chunk's score is the sum of w/(60 + rank),
   w = 1 for vectors, 0.6 for words, 0.2 for word pairs): no score calibration between them is
   needed, and a chunk several find rises to the top. The same fusion of the rankings read as
   rankings of pages gives each page a score, and a chunk's final score mixes its own with its
   page's (`fuse_by_page`): when vectors find one passage of a page and keywords another, the
   page is what they agree on, and what a citation points to.
3. At most `per_page` chunks per page are kept, so k hits cover k pages rather than repeating one.

Every hit carries its cosine similarity to the query (also for chunks only BM25 found), which the
answerer compares with its relevance floor. `bench/retrieval.py` measures each of these steps.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from pathlib import PurePath

import numpy as np

from rag.embed import Embedder
from rag.errors import DocumentNotFound, RagError
from rag.lexical import LexicalIndex
from rag.store import ChunkStore
from rag.types import Hit

RRF_K = 60
# Keyword ranks count a little less than vector ranks: a long question shares many common words
# with unrelated passages. bench/retrieval.py: 0.5-0.7 beat 1.0 (and 0.3) on the dev set.
KEYWORD_WEIGHT = 0.6
# Word pairs only reorder what the other two found, mostly: a passage holding the question's
# phrase ("net property, plant and equipment") above ones with the words apart. bench/retrieval.py:
# 0.1-0.35 raised recall@1 and MRR within a document; above that, recall@5 fell.
PHRASE_WEIGHT = 0.2
# Share of a chunk's score that is its page's (see the top). bench/retrieval.py on the dev set:
# 0.7-0.9 put one more question's evidence page in the top 5 within its document (0.85 against
# 0.81, page MRR the same), 0.3-0.65 changed nothing or cost one, pages alone (1.0) cost one.
PAGE_WEIGHT = 0.8
# Most hits one search returns: each asks every ranking for 3x as many candidates, so an
# unbounded k from the API would make one request rank the whole library. A follow-up searches
# twice its top k, and the settings allow up to 50.
MAX_K = 100


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], weights: Sequence[float] | None = None, k: int = RRF_K
) -> list[str]:
    """Ids ordered by the sum over rankings of weight / (k + rank); ties keep first-seen order."""
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings), strict=True):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores, key=lambda item: -scores[item])


def fuse_by_page(
    rankings: Sequence[Sequence[str]],
    weights: Sequence[float],
    page_of: Callable[[str], Hashable | None],
    *,
    page_weight: float = PAGE_WEIGHT,
    k: int = RRF_K,
) -> list[str]:
    """Ids best first by (1 - page_weight) x their reciprocal-rank fusion score + page_weight x
    their page's: the fusion of the rankings read as rankings of pages, each page at the rank of
    its first id in each. An id whose page is unknown (None) is a page of its own. Ties keep
    first-seen order; with page_weight 0 this is `reciprocal_rank_fusion`."""
    own: dict[str, float] = {}
    pages: dict[Hashable, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        seen: set[Hashable] = set()
        for rank, item in enumerate(ranking, start=1):
            own[item] = own.get(item, 0.0) + weight / (k + rank)
            page = page_of(item) or item
            if page not in seen:
                seen.add(page)
                pages[page] = pages.get(page, 0.0) + weight / (k + len(seen))

    def score(item: str) -> float:
        return (1 - page_weight) * own[item] + page_weight * pages[page_of(item) or item]

    return sorted(own, key=lambda item: -score(item))


class Retriever:
    """Hybrid search over one library."""

    def __init__(
        self,
        embedder: Embedder,
        store: ChunkStore,
        *,
        top_k: int = 4,
        hybrid: bool = True,
        candidates: int = 50,
        per_page: int = 1,
        phrase_weight: float = PHRASE_WEIGHT,
        page_weight: float = PAGE_WEIGHT,
    ) -> None:
        """Args:
        embedder: the embedder the library was built with.
        store: the library.
        top_k: hits returned when the caller does not say.
        hybrid: fuse BM25 with vector search (False: vector search only).
        candidates: how many each search ranks before fusion.
        per_page: most hits from one page (0: no limit).
        phrase_weight: weight of the word-pair ranking in the fusion (0: not searched).
        page_weight: share of a chunk's fused score that is its page's (0: chunks alone).
        """
        self.embedder = embedder
        self.store = store
        self.top_k = top_k
        self.candidates = candidates
        self.per_page = per_page
        self.phrase_weight = phrase_weight
        self.page_weight = page_weight
        self.lexical = LexicalIndex(store.signature, store.lexical_entries) if hybrid else None

    def prepare(self) -> None:
        """Build the keyword indexes now (at start-up, after the library changed) rather than in
        the next search (what that costs: `rag.lexical`).

        Raises:
            StoreError: the library could not be read.
        """
        if self.lexical is not None:
            self.lexical.prepare()

    def file_ids(self, file_names: Sequence[str], *, partial: bool = True) -> list[str]:
        """Content ids of the named documents. A name is the file's name; failing that, its
        name or stem in any case ("mgmresorts_2022q4_earnings"), or with `partial`, a part of
        one name only ("MGMRESORTS").

        Raises:
            DocumentNotFound: a name matches no document, or several (the message lists them).
        """
        by_name = {d.file_name: d.file_id for d in self.store.documents()}
        names = sorted(by_name)
        return [by_name[_match_name(name, names, partial=partial)] for name in file_names]

    def search(
        self, query: str, *, k: int | None = None, file_names: Sequence[str] | None = None
    ) -> list[Hit]:
        """The best `k` chunks for `query`, best first; only from `file_names` when given.

        Raises:
            RagError: `k` is not between 1 and `MAX_K`.
            DocumentNotFound: a name matches no document, or several.
        """
        if k is not None and not 1 <= k <= MAX_K:
            raise RagError(f"the number of passages must be between 1 and {MAX_K}, not {k}")
        if not query.strip():
            return []
        k = k or self.top_k
        ids = self.file_ids(file_names) if file_names else None
        vector = self.embedder.embed([query])[0]
        pool = max(self.candidates, 3 * k)
        dense = self.store.query(vector, pool, file_ids=ids)
        if self.lexical is None:
            return self._diverse(dense, k)
        keywords = self.lexical.rankings(query, pool, file_ids=ids, pairs=self.phrase_weight > 0)
        rankings = [[h.chunk.id for h in dense]] + [[cid for cid, _ in r] for r in keywords]
        weights = [1.0, KEYWORD_WEIGHT, self.phrase_weight][: len(rankings)]
        by_id = {h.chunk.id: h for h in dense}
        pages = {h.chunk.id: (h.chunk.file_id, h.chunk.page_start) for h in dense}
        lexical = self.lexical

        def page_of(chunk_id: str) -> tuple[str, int] | None:
            return pages.get(chunk_id) or lexical.page_of(chunk_id)

        order = fuse_by_page(rankings, weights, page_of, page_weight=self.page_weight)
        # Only chunks that can still make the cut need fetching; a page limit may skip some.
        wanted = order[: 5 * k if self.per_page else k]
        missing = [cid for cid in wanted if cid not in by_id]
        if missing:
            query_vector = np.asarray(vector, dtype=np.float32)
            for chunk, embedding in self.store.get_chunks(missing):
                score = float(np.dot(query_vector, np.asarray(embedding, dtype=np.float32)))
                by_id[chunk.id] = Hit(chunk=chunk, score=score)
        return self._diverse([by_id[cid] for cid in wanted if cid in by_id], k)

    def _diverse(self, hits: Sequence[Hit], k: int) -> list[Hit]:
        """The first `k` hits, at most `per_page` from any one page."""
        if not self.per_page:
            return list(hits[:k])
        kept: list[Hit] = []
        per_page: dict[tuple[str, int], int] = {}
        for hit in hits:
            page = (hit.chunk.file_id, hit.chunk.page_start)
            if per_page.get(page, 0) < self.per_page:
                kept.append(hit)
                per_page[page] = per_page.get(page, 0) + 1
            if len(kept) == k:
                break
        return kept


def _match_name(wanted: str, names: Sequence[str], *, partial: bool) -> str:
    """The one library name `wanted` stands for (see `Retriever.file_ids`)."""
    if wanted in names:
        return wanted
    folded = wanted.strip().casefold()
    rules = [lambda name: folded in (name.casefold(), PurePath(name).stem.casefold())]
    if partial and folded:
        rules.append(lambda name: folded in name.casefold())
    for rule in rules:
        found = [name for name in names if rule(name)]
        if len(found) == 1:
            return found[0]
        if found:
            raise DocumentNotFound(f"{wanted!r} matches several documents: {', '.join(found)}")
    known = ", ".join(names) or "(the library is empty)"
    raise DocumentNotFound(f"no document named {wanted!r}; the library has: {known}")
