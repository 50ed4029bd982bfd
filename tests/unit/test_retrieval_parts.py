"""Pieces of retrieval that need no model: fusion, keyword index, follow-ups, running lines."""

import pytest

from rag.answer import standalone_query
from rag.lexical import LexicalEntry, LexicalIndex
from rag.pdf import remove_running_lines
from rag.retrieve import fuse_by_page, reciprocal_rank_fusion

pytestmark = pytest.mark.unit


def test_fusion_rewards_items_both_rankings_find():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "d", "a"]])
    assert fused[:2] == ["a", "c"]  # in both lists
    assert set(fused) == {"a", "b", "c", "d"}


def test_a_page_two_rankings_find_through_different_chunks_rises_with_page_scores():
    """Vectors find chunk p1 of page P, keywords its chunk p2; each ranking has another page's
    chunk first (x, y). Chunk by chunk those come first; page by page P is what both found."""
    rankings = [["x", "p1"], ["y", "p2"]]
    page = {"x": "X", "y": "Y", "p1": "P", "p2": "P"}.get
    assert fuse_by_page(rankings, [1.0, 1.0], page, page_weight=0.0) == ["x", "y", "p1", "p2"]
    assert fuse_by_page(rankings, [1.0, 1.0], page, page_weight=0.8)[:2] == ["p1", "p2"]
    assert fuse_by_page(rankings, [1.0, 1.0], page, page_weight=0.0) == reciprocal_rank_fusion(
        rankings
    )


def test_ids_of_unknown_pages_are_pages_of_their_own():
    rankings = [["a", "b"], ["b", "c"]]
    nowhere = {}.get  # no page known for any id: page scores are the ids' own
    assert fuse_by_page(rankings, [1.0, 1.0], nowhere, page_weight=0.8) == (
        reciprocal_rank_fusion(rankings)
    )


def test_keyword_index_ranks_by_shared_words_and_filters_documents():
    entries = [
        LexicalEntry("1", "doc-a", "Consolidated balance sheets: total current liabilities"),
        LexicalEntry("2", "doc-a", "Our employees enjoy the cafeteria"),
        LexicalEntry("3", "doc-b", "Total current liabilities rose in the year"),
    ]
    loads = []
    signature = ["v1"]

    def load():
        loads.append(1)
        return entries

    index = LexicalIndex(lambda: signature[0], load)
    found = index.search("What were total current liabilities?", 5)
    assert {cid for cid, _ in found} == {"1", "3"}  # the cafeteria shares no word
    only_b = index.search("total current liabilities", 5, file_ids=["doc-b"])
    assert [cid for cid, _ in only_b] == ["3"]
    assert index.search("the of and", 5) == []  # only stopwords
    assert len(loads) == 1  # built once while the library is unchanged
    signature[0] = "v2"
    index.search("liabilities", 5)
    assert len(loads) == 2  # rebuilt after a change
    signature[0] = "v3"
    index.prepare()  # what the app does after an ingest, in the background
    assert len(loads) == 3
    index.rankings("liabilities", 5)
    assert len(loads) == 3  # the search found it built


def test_word_pairs_rank_the_passage_with_the_phrase_first():
    entries = [
        LexicalEntry("scattered", "d", "Net sales of equipment rose; the plant sold property"),
        LexicalEntry("phrase", "d", "Property, plant and equipment, net 12,645"),
        LexicalEntry("other", "d", "Equipment leases and other property"),
    ]
    index = LexicalIndex(lambda: "v1", lambda: entries)
    question = "What is net property, plant, and equipment?"
    words = [cid for cid, _ in index.search(question, 5)]
    assert set(words) == {"scattered", "phrase", "other"}  # all share words with the question
    by_words, by_pairs = index.rankings(question, 5)
    assert [cid for cid, _ in by_words] == words
    assert [cid for cid, _ in by_pairs] == ["phrase"]  # only it has "property plant", "plant equip"
    assert index.rankings("equipment", 5)[1] == []  # one word makes no pair
    assert index.rankings("the of and", 5) == [[], []]


def test_pair_index_scores_pairs_as_bm25s_scores_words():
    import random

    import bm25s
    import numpy as np

    from rag.lexical import PairIndex

    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(12)]  # few words, so pairs repeat within and across texts
    docs = [[rng.choice(vocab) for _ in range(rng.randint(0, 30))] for _ in range(200)]
    as_strings = [[f"{a} {b}" for a, b in zip(d, d[1:], strict=False)] for d in docs]
    reference = bm25s.BM25()  # the same formula, over pairs spelled as strings
    reference.index(as_strings, show_progress=False)
    ours = PairIndex(docs)
    for _ in range(20):
        query = [rng.choice([*vocab, "unknown"]) for _ in range(rng.randint(1, 6))]
        pairs = [f"{a} {b}" for a, b in zip(query, query[1:], strict=False)]
        pairs = [p for p in pairs if p in reference.vocab_dict]
        expected = reference.get_scores(pairs) if pairs else np.zeros(len(docs))
        got = np.zeros(len(docs))
        for doc, score in ours.search(query, len(docs)):
            got[doc] = score
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    only_even = np.array([i % 2 == 0 for i in range(len(docs))], dtype=np.float32)
    found = ours.search(["w1", "w2", "w3"], 5, only_even)
    assert found and all(doc % 2 == 0 for doc, _ in found)
    assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)


def test_follow_up_questions_carry_the_previous_question():
    history = [
        {"role": "user", "content": "What was Adobe's revenue in 2015?"},
        {"role": "assistant", "content": "4.8 billion dollars [1]."},
    ]
    assert standalone_query("And in 2014?", history).startswith("What was Adobe's revenue")
    assert "Adobe" in standalone_query("What about its debt?", history)
    own = "How many employees did Boeing have at the end of 2018 in total?"
    assert standalone_query(own, history) == own
    assert standalone_query("And in 2014?", []) == "And in 2014?"


def test_running_headers_and_page_numbers_are_removed():
    topics = ["glaciers", "budgets", "drones", "ports", "mines", "forests", "roads", "rails"]
    pages = [
        f"ACME Corp | Annual Report 2015\nA page about {t}.\nPage {i} of 40"
        for i, t in enumerate(topics, 1)
    ]
    cleaned = remove_running_lines(pages)
    assert all("ACME Corp" not in p and "of 40" not in p for p in cleaned)
    assert cleaned[4] == "A page about mines."
    assert remove_running_lines(pages[:2]) == pages[:2]  # too few pages to tell


def test_pages_made_only_of_repeated_lines_keep_their_text():
    pages = [f"Page {i}. Paper lanterns glow at the festival." for i in range(30)]
    assert remove_running_lines(pages) == pages


def test_a_document_is_named_by_its_name_any_case_its_stem_or_a_unique_part():
    from rag.errors import DocumentNotFound
    from rag.retrieve import _match_name

    names = ["ADOBE_2015_10K.pdf", "ADOBE_2016_10K.pdf", "cooking.pdf"]
    assert _match_name("cooking.pdf", names, partial=True) == "cooking.pdf"
    assert _match_name("Cooking", names, partial=False) == "cooking.pdf"
    assert _match_name("adobe_2015_10k.PDF", names, partial=False) == "ADOBE_2015_10K.pdf"
    assert _match_name("2016", names, partial=True) == "ADOBE_2016_10K.pdf"
    with pytest.raises(DocumentNotFound, match="several documents: ADOBE_2015_10K.pdf, ADOBE_2016"):
        _match_name("adobe", names, partial=True)
    with pytest.raises(DocumentNotFound, match="no document named '2016'; the library has"):
        _match_name("2016", names, partial=False)  # deleting takes whole names only
    with pytest.raises(DocumentNotFound, match="no document named ''"):
        _match_name("", names, partial=True)
