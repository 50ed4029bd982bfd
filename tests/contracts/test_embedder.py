"""The embedder contract on the hash fake and the real bundled all-MiniLM-L6-v2."""

import math

import pytest

from tests.fakes import HashEmbedder


@pytest.fixture(params=["hash", "minilm-openvino-int8", "minilm-onnx-int8", "minilm-torch"])
def embedder(request):
    if request.param == "hash":
        return HashEmbedder()
    return request.getfixturevalue(
        {
            "minilm-openvino-int8": "real_embedder",
            "minilm-onnx-int8": "onnx_embedder",
            "minilm-torch": "torch_embedder",
        }[request.param]
    )


def backend_class(name):
    """The embedder class of a fast backend, by its fixture's name."""
    from rag.onnx_embed import OnnxEmbedder
    from rag.openvino_embed import OpenVinoEmbedder

    return {"real_embedder": OpenVinoEmbedder, "onnx_embedder": OnnxEmbedder}[name]


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
@pytest.mark.parametrize("fast", ["real_embedder", "onnx_embedder"], ids=["openvino", "onnx"])
def test_int8_vectors_agree_with_torch(fast, request, torch_embedder, aurora_pdf):
    """The fast backends are the same model: their vectors point where torch's do. Text agrees
    closely; degenerate input (an empty page, one word repeated past the length limit) less so,
    OpenVINO's ranges having been fixed on real text."""
    from rag.pdf import read_pdf

    embedder = request.getfixturevalue(fast)
    texts = [p.text for p in read_pdf(aurora_pdf, file_id="a" * 64) if p.text]
    texts += ["What was the total current liabilities at year end?", "glaciers"]
    odd = ["", "x " * 400]
    reference = torch_embedder.embed(texts + odd)
    agreement = [cosine(a, b) for a, b in zip(embedder.embed(texts + odd), reference)]
    assert min(agreement[: len(texts)]) > 0.99, agreement
    assert min(agreement[len(texts) :]) > 0.85, agreement
    assert embedder.count_tokens("Total current liabilities") == torch_embedder.count_tokens(
        "Total current liabilities"
    )
    assert embedder.dimension == torch_embedder.dimension == 384


@pytest.mark.integration
@pytest.mark.parametrize(
    ("fast", "model_file"),
    [("real_embedder", "model.xml"), ("onnx_embedder", "model.onnx")],
    ids=["openvino", "onnx"],
)
def test_export_is_cached_and_reused(fast, model_file, tmp_path):
    """The first use exports once; a second embedder loads the export without torch."""
    kind = backend_class(fast)
    first = kind(cache_dir=tmp_path)
    first.warm_up()
    (folder,) = list(tmp_path.iterdir())
    stamp = (folder / model_file).stat().st_mtime_ns
    second = kind(cache_dir=tmp_path)
    assert second.embed(["same text"]) == first.embed(["same text"])
    assert (folder / model_file).stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # no leftover temp folders
    first.close()
    second.close()


@pytest.mark.integration
def test_onnx_export_fuses_attention_but_not_the_layer_norms(onnx_embedder):
    """Attention runs as a fused int8 kernel and GELU, with its bias, in its tanh form; add +
    layer norm stay two nodes, because ONNX Runtime's fused SkipLayerNormalization is the slower
    of the two on CPU. Texts are never padded, so the attention takes no mask."""
    import onnx

    graph = onnx.load(str(onnx_embedder.folder / "model.onnx"), load_external_data=False).graph
    ops = {node.op_type for node in graph.node}
    assert {"QAttention", "FastGelu", "LayerNormalization"} <= ops, ops
    assert not {"SkipLayerNormalization", "BiasGelu", "Gelu"} & ops, ops
    assert "attention_mask" not in {i.name for i in graph.input}


@pytest.mark.integration
def test_openvino_model_is_quantized_with_static_ranges(real_embedder):
    """Every matrix product of the layers takes int8 inputs with fixed ranges (FakeQuantize
    before it), which is what lets texts share a run without changing each other's vectors."""
    import openvino as ov

    model = ov.Core().read_model(str(real_embedder.folder / "model.xml"))
    ops = [op.get_type_name() for op in model.get_ordered_ops()]
    assert ops.count("FakeQuantize") >= 6 * 4, ops.count("FakeQuantize")  # 6 layers
    assert {"attention_mask", "input_ids"} <= {p.get_any_name() for p in model.inputs}


@pytest.mark.integration
@pytest.mark.parametrize("fast", ["real_embedder", "onnx_embedder"], ids=["openvino", "onnx"])
def test_a_texts_vector_does_not_depend_on_the_texts_embedded_with_it(fast, request, aurora_pdf):
    """A chunk gets the same vector in any batch, in any document, and as a query: ONNX Runtime
    runs texts one at a time (its int8 activations are scaled per run), OpenVINO batches only
    texts padded to the same length, with ranges fixed at export."""
    from rag.pdf import read_pdf

    embedder = request.getfixturevalue(fast)
    text = read_pdf(aurora_pdf, file_id="a" * 64)[0].text
    others = ["x", "A much longer neighbour, " * 30, "glaciers and drones", text[:40]]
    others += [text[:-3], text + " more", "y" * len(text)]  # the same padded length
    alone = embedder.embed([text])[0]
    assert embedder.embed([*others, text])[-1] == alone
    assert embedder.embed([text, *others[::-1]])[0] == alone


@pytest.mark.integration
@pytest.mark.parametrize("fast", ["real_embedder", "onnx_embedder"], ids=["openvino", "onnx"])
def test_texts_embedded_on_several_threads_match_one_thread_in_order(fast, request):
    """Ingestion embeds texts on one thread per core; each row must still be its own text's."""
    kind = backend_class(fast)
    folder = request.getfixturevalue(fast).folder.parent
    texts = [f"Note {i}: " + "the glacier retreated some metres. " * (i % 7 + 1) for i in range(41)]
    one = kind(cache_dir=folder, threads=1)
    several = kind(cache_dir=folder, threads=3)
    try:
        expected = one.embed(texts)
        assert several.embed(texts) == expected
        assert several.embed(texts[::-1]) == expected[::-1]
        assert len({tuple(v) for v in expected}) == len(texts)
    finally:
        one.close()
        several.close()
