"""The same sentence-transformers model run by OpenVINO, int8 throughout (the default backend).

The encoder is exported to ONNX as for ONNX Runtime, then quantized once by NNCF (OpenVINO's
post-training quantizer) with *static* ranges: weights and activations in int8, the ranges taken
from a sample of real chunks (`data/calibration.jsonl`: 200 chunks of three FinanceBench 10-Ks,
SEC filings). OpenVINO then runs each layer as int8 brgemm kernels with GELU, bias and the
attention's scaling fused into them.

Static ranges make a text's vector independent of the texts run beside it, so texts are run in
batches: sorted by length, padded to a multiple of 16 tokens, and grouped only with texts of the
same padded length (a text is then always computed at the same shape, whatever its neighbours,
and gets the same vector in any document and as a query). One OpenVINO stream per core, one
thread each, as with ONNX Runtime.

Measured on 2 CPU cores with 400 chunks of the largest dev-set PDF (November 2026, throwaway
scripts, chunks/s): ONNX Runtime's int8 model, as the app ran it, 170-184; this model one text
per run 170-180, in batches of 4 padded to a multiple of 16 tokens 197-225. In float32 precision
rather than the bfloat16 OpenVINO picks on CPUs that have it for the parts left in float:
185-192 against 198-208. Agreement with torch's float32 vectors: 0.998 mean cosine, against
0.993 for ONNX Runtime's dynamically quantized model. Quantized by ONNX Runtime's static
quantizer instead, the vectors agreed at only 0.82-0.92 (the GELU outputs' range needs NNCF's
handling); NNCF's quantization of the attention's own matrix products too gave 0.63.

Telemetry: `import openvino` reports itself to Google Analytics, and NNCF each quantization,
through the `openvino_telemetry` package; both use a silent stub when it cannot be imported, so
it is made unimportable before either is imported (`_openvino`, as `app.privacy` does).
"""

from __future__ import annotations

import collections
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.onnx_embed import OnnxEmbedder, export_model

CALIBRATION = Path(__file__).with_name("data") / "calibration.jsonl"
_PAD_TO = 16  # padded lengths are multiples of this (a shape per 16 tokens, not per token)
_BATCH = 4  # texts per run; 8 or 16 were no faster


def available() -> bool:
    """Whether OpenVINO and NNCF can be imported here."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("openvino", "nncf"))


def _openvino() -> Any:
    """The `openvino` module, imported without its telemetry (see the top)."""
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
    import openvino

    return openvino


def _quantize(fp32: Path, folder: Path, tokenizer: Any) -> None:
    """`fp32` (ONNX, with its attention mask) -> `folder/model.xml`, int8 with static ranges."""
    ov = _openvino()
    import nncf

    model = ov.Core().read_model(str(fp32))
    names = [port.get_any_name() for port in model.inputs]
    texts = [json.loads(line) for line in CALIBRATION.read_text().splitlines() if line.strip()]

    def feed(text: str) -> dict[str, np.ndarray]:
        encoded = tokenizer([text], truncation=True, return_tensors="np")
        return {name: encoded[name].astype(np.int64) for name in names}

    quantized = nncf.quantize(
        model,
        nncf.Dataset(texts, feed),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(texts),
    )
    ov.save_model(quantized, str(folder / "model.xml"))


class OpenVinoEmbedder(OnnxEmbedder):
    """Embeds with OpenVINO; same `Embedder` interface as the other backends."""

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        cache_dir: Path,
        model_id: str | None = None,
        threads: int | None = None,
    ) -> None:
        """As `OnnxEmbedder`, always int8; `threads`: streams, each on one core."""
        super().__init__(model, cache_dir=cache_dir, model_id=model_id, threads=threads)

    @property
    def _flavour(self) -> str:
        return "openvino-int8"

    def _export(self, source: Path | str, folder: Path) -> None:
        export_model(source, folder, finish=_quantize)

    def _open(self, folder: Path) -> Any:
        ov = _openvino()
        core = ov.Core()
        model = core.read_model(str(folder / "model.xml"))
        self._inputs = frozenset(port.get_any_name() for port in model.inputs)
        config = {
            "NUM_STREAMS": str(self._workers),
            "INFERENCE_NUM_THREADS": str(self._workers),
            "INFERENCE_PRECISION_HINT": "f32",  # faster here than bf16 (see the top)
        }
        return core.compile_model(model, "CPU", config)

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        """As `embed`, as a float32 array (rows in input order)."""
        self.warm_up()
        encodings = self._encode(self._tokenizer, list(texts))
        out = np.zeros((len(texts), int(self._meta["dimension"])), dtype=np.float32)
        # Runs are started, then waited for in order, with no Python callback: OpenVINO's threads
        # never wait for the GIL. (With `AsyncInferQueue`'s callbacks, 1 exit in 4 aborted or
        # hung: a stream thread waited for the GIL while the main thread, holding it, freed the
        # model and waited for that thread.) Twice as many runs as streams are under way, so a
        # stream always has the next one while this thread pools the last.
        free = [self._session.create_infer_request() for _ in range(2 * self._workers)]
        under_way: collections.deque[tuple[Any, list[int]]] = collections.deque()

        def pool_oldest() -> None:
            request, rows = under_way.popleft()
            request.wait()
            hidden = request.get_output_tensor(0).data
            for slot, row in enumerate(rows):
                vector = hidden[slot, : len(encodings[row].ids)].mean(axis=0)  # mean pooling
                out[row] = vector / max(float(np.linalg.norm(vector)), 1e-12)
            free.append(request)

        for rows in _batches([len(e.ids) for e in encodings]):
            if not free:
                pool_oldest()
            request = free.pop()
            request.start_async(self._feeds(encodings, rows))
            under_way.append((request, rows))
        while under_way:
            pool_oldest()
        return out

    def _feeds(self, encodings: list[Any], rows: list[int]) -> dict[str, np.ndarray]:
        size = _padded(max(len(encodings[row].ids) for row in rows))
        ids = np.zeros((len(rows), size), dtype=np.int64)
        mask = np.zeros((len(rows), size), dtype=np.int64)
        for slot, row in enumerate(rows):
            tokens = encodings[row].ids
            ids[slot, : len(tokens)] = tokens
            mask[slot, : len(tokens)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        return feeds


def _padded(length: int) -> int:
    return -(-length // _PAD_TO) * _PAD_TO


def _batches(lengths: list[int]) -> list[list[int]]:
    """Rows grouped by padded length, at most `_BATCH` a group, longest groups first (so the
    streams finish together)."""
    by_size: dict[int, list[int]] = {}
    for row, length in enumerate(lengths):
        by_size.setdefault(_padded(length), []).append(row)
    batches: list[list[int]] = []
    for size in sorted(by_size, reverse=True):
        rows = by_size[size]
        batches.extend(rows[i : i + _BATCH] for i in range(0, len(rows), _BATCH))
    return batches
