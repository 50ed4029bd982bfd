"""The embedder contract on the hash fake and the real bundled all-MiniLM-L6-v2."""

import math

import pytest

from tests.fakes import HashEmbedder


@pytest.fixture(params=["hash", "minilm"])
def embedder(request):
    if request.param == "hash":
        return HashEmbedder()
    return request.getfixturevalue("real_embedder")


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b))


@pytest.mark.integration
class TestEmbedderContract:
    def test_vectors_are_unit_length_with_the_declared_dimension(self, embedder):
        vectors = embedder.embed(["glaciers melt in summer", "the budget paid for vehicles"])
        assert len(vectors) == 2
        for v in vectors:
            assert len(v) == embedder.dimension
            assert math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, rel_tol=1e-3)

    def test_related_texts_are_closer_than_unrelated_ones(self, embedder):
        q, near, far = embedder.embed(
            [
                "glacier drones monitor glaciers",
                "drones monitor the glaciers",
                "the budget paid for vehicles",
            ]
        )
        assert cosine(q, near) > cosine(q, far)

    def test_empty_input_gives_no_vectors(self, embedder):
        assert embedder.embed([]) == []
