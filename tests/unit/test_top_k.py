"""The decoder's C helper (`models/top_k.c`), built with this machine's compiler as the launcher
builds it, against numpy's selection of the same logits."""

import os

import numpy as np
import pytest
from llama_cpp import llama_token_data as TokenData  # the layout the decoder hands the C helper

from models import top_k

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def helper(tmp_path_factory):
    built, why = top_k.build(tmp_path_factory.mktemp("venv"))
    assert built is not None, why
    return top_k.open_library(built)


def best(helper, logits: np.ndarray, k: int) -> tuple[list[int], list[float]]:
    logits = np.ascontiguousarray(logits, dtype=np.float32)
    out = (TokenData * max(k, 1))(*[TokenData(-7, 0.0, 1.0)] * max(k, 1))
    count = helper(logits.ctypes.data, len(logits), k, out)
    assert all(row.p == 0.0 for row in out[:count])
    return [row.id for row in out[:count]], [row.logit for row in out[:count]]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 40, 104, 200])
def test_keeps_the_k_highest_logits_with_their_ids(helper, seed, k):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal(49152) * 3).astype(np.float32)
    if seed % 2:  # llama.cpp's logits often repeat values: ties must not lose or double an id
        logits = np.round(logits, 1)
    ids, values = best(helper, logits, k)
    assert len(ids) == k == len(set(ids))
    assert values == [float(logits[i]) for i in ids]
    assert sorted(values, reverse=True) == sorted(np.sort(logits)[::-1][:k].tolist(), reverse=True)


def test_the_best_may_sit_anywhere_even_in_the_last_partial_block(helper):
    logits = np.full(1000, -5.0, dtype=np.float32)
    logits[[0, 63, 64, 500, 998, 999]] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    logits[7] = -np.inf
    ids, _ = best(helper, logits, 5)
    assert sorted(ids) == [63, 64, 500, 998, 999]


def test_more_asked_than_there_are_gives_them_all(helper):
    ids, values = best(helper, np.array([0.5, -np.inf, 2.0], dtype=np.float32), 8)
    assert sorted(ids) == [0, 1, 2] and max(values) == 2.0
    assert best(helper, np.array([1.0], dtype=np.float32), 0) == ([], [])


@pytest.mark.parametrize("compiler", ["no-such-cc", "false"])
def test_a_compiler_that_fails_is_reported_and_leaves_nothing(tmp_path, monkeypatch, compiler):
    monkeypatch.setenv("CC", compiler if compiler == "false" else os.fspath(tmp_path / compiler))
    built, why = top_k.build(tmp_path)
    assert built is None and compiler in why
    assert not list((tmp_path / "quipu").glob("*"))  # nothing half-built left behind
    assert top_k.library_path(tmp_path).parent == tmp_path / "quipu"
