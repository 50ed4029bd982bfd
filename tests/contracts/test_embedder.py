"""The embedder contract on the hash fake and the real bundled all-MiniLM-L6-v2."""

import math

import pytest

from tests.fakes import HashEmbedder


@pytest.fixture(params=["hash", "minilm-onnx-int8", "minilm-torch"])
def embedder(request):
    if request.param == "hash":
        return HashEmbedder()
    if request.param == "minilm-torch":
        return request.getfixturevalue("torch_embedder")
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


@pytest.mark.integration
def test_onnx_int8_vectors_agree_with_torch(real_embedder, torch_embedder, aurora_pdf):
    """The fast backend is the same model: its vectors point where torch's do."""
    from rag.pdf import read_pdf

    texts = [p.text for p in read_pdf(aurora_pdf, file_id="a" * 64)]
    texts += ["What was the total current liabilities at year end?", "glaciers", "x " * 400]
    fast = real_embedder.embed(texts)
    reference = torch_embedder.embed(texts)
    agreement = [cosine(a, b) for a, b in zip(fast, reference)]
    assert min(agreement) > 0.95, agreement
    assert real_embedder.count_tokens("Total current liabilities") == torch_embedder.count_tokens(
        "Total current liabilities"
    )
    assert real_embedder.dimension == torch_embedder.dimension == 384


@pytest.mark.integration
def test_onnx_export_is_cached_and_reused(tmp_path):
    """The first use exports once; a second embedder loads the export without torch."""
    from rag.onnx_embed import OnnxEmbedder

    first = OnnxEmbedder(cache_dir=tmp_path)
    first.warm_up()
    (folder,) = list(tmp_path.iterdir())
    stamp = (folder / "model.onnx").stat().st_mtime_ns
    second = OnnxEmbedder(cache_dir=tmp_path)
    assert second.embed(["same text"]) == first.embed(["same text"])
    assert (folder / "model.onnx").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # no leftover temp folders


@pytest.mark.integration
def test_onnx_export_fuses_attention_but_not_the_layer_norms(real_embedder):
    """Attention runs as a fused int8 kernel and GELU, with its bias, in its tanh form; add +
    layer norm stay two nodes, because ONNX Runtime's fused SkipLayerNormalization is the slower
    of the two on CPU. Texts are never padded, so the attention takes no mask."""
    import onnx

    graph = onnx.load(str(real_embedder.folder / "model.onnx"), load_external_data=False).graph
    ops = {node.op_type for node in graph.node}
    assert {"QAttention", "FastGelu", "LayerNormalization"} <= ops, ops
    assert not {"SkipLayerNormalization", "BiasGelu", "Gelu"} & ops, ops
    assert "attention_mask" not in {i.name for i in graph.input}


@pytest.mark.integration
def test_a_texts_vector_does_not_depend_on_the_texts_embedded_with_it(real_embedder, aurora_pdf):
    """The int8 model quantizes activations per run: texts are run one at a time, so a chunk
    gets the same vector in any batch, in any document, and as a query."""
    from rag.pdf import read_pdf

    text = read_pdf(aurora_pdf, file_id="a" * 64)[0].text
    others = ["x", "A much longer neighbour, " * 30, "glaciers and drones", text[:40]]
    alone = real_embedder.embed([text])[0]
    assert real_embedder.embed([*others, text])[-1] == alone
    assert real_embedder.embed([text, *others[::-1]])[0] == alone


@pytest.mark.integration
def test_texts_embedded_on_several_threads_match_one_thread_in_order(real_embedder, tmp_path):
    """Ingestion embeds texts on one thread per core; each row must still be its own text's."""
    from rag.onnx_embed import OnnxEmbedder

    texts = [f"Note {i}: " + "the glacier retreated some metres. " * (i % 7 + 1) for i in range(41)]
    one = OnnxEmbedder(cache_dir=real_embedder.folder.parent, threads=1)
    several = OnnxEmbedder(cache_dir=real_embedder.folder.parent, threads=3)
    try:
        expected = one.embed(texts)
        assert several.embed(texts) == expected
        assert several.embed(texts[::-1]) == expected[::-1]
        assert len({tuple(v) for v in expected}) == len(texts)
    finally:
        one.close()
        several.close()
