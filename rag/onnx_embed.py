"""The same sentence-transformers model run by ONNX Runtime, int8 weights by default (the backend
where OpenVINO is not installed; `rag.openvino_embed` is the default, and reuses this export).

The encoder is exported with plain ("eager") attention so that ONNX Runtime's transformer optimizer
can fuse each layer into a few kernels (Attention, BiasGelu), and only then quantized, which turns
the fused attention into its int8 form. The fused GELU is switched to its tanh form (FastGelu).
Residual add + layer norm is left as two nodes, in the file and at load (`SkipLayerNormFusion`
disabled): ONNX Runtime's fused SkipLayerNormalization CPU kernel is slower than Add +
LayerNormalization. The fused attention takes no mask: texts are embedded one per run, never
padded, so the mask would be all ones, and building and adding it cost 5% of a run.

Texts are embedded one per run, on one thread per core, each run on one core: with single texts,
ONNX Runtime splitting each small operator over two cores spends much of its time waiting.

Measured on 2 CPU cores with the 2,514 chunks of the largest dev-set PDF (about 124 tokens each,
November 2026), in chunks/s:
- one run at a time on 2 intra-op threads: 164; two runs at a time on one thread each: 228, with
  identical vectors;
- at two runs of one thread: with the fused layer norm 175; with the attention left in float32
  (only the other MatMuls int8) 155; float32 throughout 79;
- tanh GELU, denormals flushed to zero and the texts tokenized in one call: 4-5% faster;
- no attention mask: 8.28 -> 7.83 ms a run of 124 tokens on one thread, bit-identical vectors.
Tried and not faster here (figures in the README's Benchmarks): OpenVINO (float32, bfloat16),
ONNX Runtime's block-wise `MatMulNBits` (8 and 4 bits), the attention unfused or fused as
`MultiHeadAttention` around the same int8 MatMuls, CTranslate2's int8 encoder (one text per call
or in batches), llama.cpp's BERT support (Q8_0 and float32 GGUF), and two processes instead of
two threads.
The int8 vectors agree with float32's at 0.993 mean cosine with either GELU
(tests/contracts/test_embedder.py checks > 0.95 against torch; `bench/retrieval.py` judges
retrieval quality).

The model is exported once per model and cached (`<cache>/<slug>-<fingerprint>/`), together with
its fast tokenizer and a small `quipu.json`; later runs load only ONNX Runtime and `tokenizers`,
not torch.

Only mean-pooling models are supported (all-MiniLM, most sentence-transformers models); for others
`make_embedder` falls back to torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from rag.embed import BUNDLED_EMBEDDER_ID, SentenceTransformerEmbedder, bundled_embedder_path

log = logging.getLogger(__name__)

EXPORT_VERSION = "5"
_META = "quipu.json"


class UnsupportedModel(ValueError):
    """The model cannot be run by this backend (the caller falls back to torch)."""


def _fingerprint(source: Path | str, flavour: str) -> str:
    """Changes when the weights, the export code or the runtime and quantisation change."""
    parts = [EXPORT_VERSION, flavour, str(source)]
    folder = Path(source)
    if folder.is_dir():
        for weight in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
            stat = weight.stat()
            parts.append(f"{weight.name}:{stat.st_size}:{int(stat.st_mtime)}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def export_model(
    source: Path | str,
    target: Path,
    *,
    quantize: bool = True,
    finish: Callable[[Path, Path, Any], None] | None = None,
) -> None:
    """Export a sentence-transformers model's encoder to ONNX (+ int8) into `target`.

    Written to a temporary sibling folder and renamed into place, so a crash or a concurrent
    export never leaves a half-written model. `finish(fp32_onnx, folder, tokenizer)`, when
    given, turns the plain float32 export (with its attention mask) into what another runtime
    loads, in place of ONNX Runtime's fusion and quantization.

    Raises:
        UnsupportedModel: the pooling is not mean pooling.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    try:  # the optimizer recognises the classic attention graph, not SDPA's
        st = SentenceTransformer(
            str(source),
            device="cpu",
            local_files_only=True,
            model_kwargs={"attn_implementation": "eager"},
        )
    except (TypeError, ValueError):
        st = SentenceTransformer(str(source), device="cpu", local_files_only=True)
    pooling = getattr(st[1], "pooling_mode", None) if len(st) > 1 else None
    if pooling not in ("mean", None) or len(st) < 2:
        raise UnsupportedModel(f"pooling {pooling!r} is not supported by the ONNX backend")
    encoder: Any = st[0].auto_model
    encoder.eval()
    tokenizer = st.tokenizer
    sample = tokenizer(["an example sentence", "two"], padding=True, return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

    class _Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.encoder(**dict(zip(names, inputs, strict=True))).last_hidden_state

    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        fp32 = work / "model.fp32.onnx"
        axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "hidden"]}
        with torch.no_grad():
            torch.onnx.export(
                _Encoder(),
                tuple(sample[n] for n in names),
                str(fp32),
                input_names=names,
                output_names=["hidden"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        if finish is not None:
            finish(fp32, work, tokenizer)
            fp32.unlink()
        elif quantize:
            _fuse(fp32, encoder.config)
            import onnx
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(
                str(fp32),
                str(work / "model.onnx"),
                weight_type=QuantType.QInt8,
                per_channel=True,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
            fp32.unlink()
        else:
            _fuse(fp32, encoder.config)
            fp32.rename(work / "model.onnx")
        tokenizer.save_pretrained(str(work))
        meta = {
            "max_tokens": int(st.max_seq_length or 512),
            "dimension": int(encoder.config.hidden_size),
            "quantized": quantize,
        }
        (work / _META).write_text(json.dumps(meta))
        try:
            work.rename(target)
        except OSError:  # another process finished first; theirs is as good as ours
            shutil.rmtree(work, ignore_errors=True)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


# Fusions ONNX Runtime would apply at load that make the model slower on CPU (see the top).
_SLOWER_FUSIONS = ["SkipLayerNormFusion"]

# Encoders whose layers ONNX Runtime's BERT optimizer fuses.
_FUSABLE = frozenset({"bert", "roberta", "xlm-roberta"})


def _fuse(model: Path, config: Any) -> None:
    """Rewrite `model` with each transformer layer fused into ONNX Runtime's kernels, in place.

    Left as exported when the optimizer does not know the architecture (the model still runs,
    only slower).
    """
    heads = getattr(config, "num_attention_heads", 0)
    hidden = getattr(config, "hidden_size", 0)
    if getattr(config, "model_type", "") not in _FUSABLE or not heads or not hidden:
        return
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import AttentionMaskFormat, FusionOptions

    options = FusionOptions("bert")
    options.enable_skip_layer_norm = False  # slower than Add + LayerNormalization (see above)
    # One unpadded text per run (`OnnxEmbedder.embed_array`): every token is attended to, so
    # the attention needs no mask, and the model no longer takes one.
    options.attention_mask_format = AttentionMaskFormat.NoMask
    try:
        fused = optimizer.optimize_model(
            str(model),
            model_type="bert",
            num_heads=int(heads),
            hidden_size=int(hidden),
            optimization_options=options,
        )
    except Exception as err:  # an unfused model is still correct, only slower
        log.warning("ONNX fusion skipped for %s: %s", model, err)
        return
    for node in fused.model.graph.node:  # tanh GELU: faster, as close to float32 (top)
        if node.op_type == "BiasGelu":
            node.op_type = "FastGelu"
    counts = fused.get_fused_operator_statistics()
    log.info("ONNX fusion: %s", {k: v for k, v in counts.items() if v})
    fused.save_model_to_file(str(model))


class OnnxEmbedder:
    """Embeds with ONNX Runtime; same `Embedder` interface as `SentenceTransformerEmbedder`."""

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        cache_dir: Path,
        model_id: str | None = None,
        quantize: bool = True,
        threads: int | None = None,
    ) -> None:
        """Remember what to load; the export (first time only) and loading happen on first use.

        Args:
            model: a sentence-transformers folder or cached name; None = bundled all-MiniLM-L6-v2.
            cache_dir: where exported models are kept.
            model_id: the id recorded in the store (defaults as for the torch embedder).
            quantize: int8 weights (faster) instead of float32.
            threads: texts embedded at the same time, each on one core (ONNX Runtime runs
                one session from several threads); None = physical cores.
        """
        self._source = model
        self._model_id = model_id or (
            BUNDLED_EMBEDDER_ID if model is None else Path(str(model)).name or str(model)
        )
        self._cache_dir = cache_dir
        self._quantize = quantize
        self._threads = threads
        self._lock = threading.Lock()
        self._session: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._workers = 1
        self._tokenizer: Any = None  # for the model: special tokens, truncated
        self._count_tokenizer: Any = None
        self._meta: dict[str, Any] = {}
        self._inputs: frozenset[str] = frozenset()  # what the loaded model takes

    @property
    def model_id(self) -> str:
        """The id recorded in the store's metadata (the model's, whatever the backend)."""
        return self._model_id

    @property
    def folder(self) -> Path:
        """Where this model's export lives."""
        source = self._source if self._source is not None else bundled_embedder_path()
        slug = "".join(c if c.isalnum() else "-" for c in self._model_id)[-48:]
        return self._cache_dir / f"{slug}-{_fingerprint(source, self._flavour)}"

    @property
    def _flavour(self) -> str:
        """The runtime and precision, part of the export's folder name."""
        return "int8" if self._quantize else "fp32"

    def _export(self, source: Path | str, folder: Path) -> None:
        export_model(source, folder, quantize=self._quantize)

    def warm_up(self) -> None:
        """Export (first time only) and load the model (idempotent, thread-safe).

        Raises:
            UnsupportedModel: the model cannot be exported for this backend.
        """
        with self._lock:
            if self._session is not None:
                return
            from tokenizers import Tokenizer

            folder = self.folder
            if not (folder / _META).exists():
                source = self._source if self._source is not None else bundled_embedder_path()
                log.info("exporting %s to ONNX in %s (once)", self._model_id, folder)
                self._export(source, folder)
            meta = json.loads((folder / _META).read_text())
            self._workers = self._threads or _physical_cores()
            session = self._open(folder)
            counting = Tokenizer.from_file(str(folder / "tokenizer.json"))
            counting.no_truncation()
            counting.no_padding()
            model_input = Tokenizer.from_file(str(folder / "tokenizer.json"))
            model_input.enable_truncation(int(meta["max_tokens"]))
            model_input.no_padding()
            self._meta = meta
            self._count_tokenizer = counting
            self._tokenizer = model_input
            self._session = session

    def _open(self, folder: Path) -> Any:
        """The loaded model (and `_inputs`, and the pool of workers)."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # parallel across texts instead (see the top)
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.set_denormal_as_zero", "1")
        session = ort.InferenceSession(
            str(folder / "model.onnx"),
            options,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=_SLOWER_FUSIONS,
        )
        self._inputs = frozenset(i.name for i in session.get_inputs())
        if self._workers > 1:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="embed")
        return session

    @property
    def dimension(self) -> int:
        """Vector length."""
        self.warm_up()
        return int(self._meta["dimension"])

    @property
    def max_tokens(self) -> int:
        """Longest input the model reads; longer texts are truncated."""
        self.warm_up()
        return int(self._meta["max_tokens"])

    def count_tokens(self, text: str) -> int:
        """Word pieces in `text`, without the special tokens."""
        self.warm_up()
        return len(self._count_tokenizer.encode(text, add_special_tokens=False).ids)

    def count_tokens_many(self, texts: list[str]) -> list[int]:
        """`count_tokens` of each text, in one call to the tokenizer."""
        self.warm_up()
        encodings = self._encode(self._count_tokenizer, texts, add_special_tokens=False)
        return [len(encoding.ids) for encoding in encodings]

    @staticmethod
    def _encode(tokenizer: Any, texts: list[str], **options: Any) -> list[Any]:
        """Token ids of each text, without the character offsets (`encode_batch_fast`, where
        this `tokenizers` has it: 16-18% less time for the same ids)."""
        encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
        return list(encode(texts, **options))

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Normalised mean-pooled embeddings, one per text, in order."""
        if not texts:
            return []
        return [[float(x) for x in row] for row in self.embed_array(texts)]

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        """As `embed`, as a float32 array (rows in input order)."""
        self.warm_up()
        # One text per run: the int8 model quantizes its activations per run, over all it is
        # given, so in a batch a text's vector would depend on the texts beside it (and their
        # padding); alone, a chunk always gets the same vector, in any document, as a query
        # does. It is also the fastest here: on 2 cores, a run per core, 1 text per run gave
        # 228 chunks/s, batches of 4 180, of 8 156.
        encodings = self._encode(self._tokenizer, list(texts))  # one call to Rust
        out = np.zeros((len(texts), int(self._meta["dimension"])), dtype=np.float32)
        with_mask, with_types = "attention_mask" in self._inputs, "token_type_ids" in self._inputs

        def run(rows: range) -> None:
            for row in rows:
                ids = np.array([encodings[row].ids], dtype=np.int64)
                feeds = {"input_ids": ids}
                if with_mask:  # a model whose attention was not fused (see `_fuse`)
                    feeds["attention_mask"] = np.ones_like(ids)
                if with_types:
                    feeds["token_type_ids"] = np.array([encodings[row].type_ids], dtype=np.int64)
                pooled = self._session.run(None, feeds)[0][0].mean(axis=0)  # mean pooling
                out[row] = pooled / max(float(np.linalg.norm(pooled)), 1e-12)

        pool = self._pool
        if pool is None or len(texts) < 2:
            run(range(len(texts)))
            return out
        # Each worker takes every n-th text, so their shares cost about the same.
        workers = min(self._workers, len(texts))
        shares = [pool.submit(run, range(w, len(texts), workers)) for w in range(workers)]
        for share in shares:
            share.result()
        return out

    def close(self) -> None:
        """Drop the session."""
        with self._lock:
            self._session = None
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


def _physical_cores() -> int:
    logical = os.cpu_count() or 2
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            cores = {line.split(":", 1)[1].strip() for line in handle if line.startswith("core id")}
        return max(1, min(logical, len(cores) or logical))
    except OSError:
        return max(1, logical // 2 if logical > 2 else logical)


BACKENDS = ("openvino-int8", "onnx-int8", "onnx", "torch")


def make_embedder(
    model: str | Path | None, *, backend: str, cache_dir: Path
) -> OnnxEmbedder | SentenceTransformerEmbedder:
    """The embedder for a backend name: "openvino-int8" (default), "onnx-int8" (ONNX Runtime),
    "onnx" (ONNX Runtime, float32) or "torch". Without OpenVINO (no wheel for this platform),
    "openvino-int8" runs on ONNX Runtime's int8 model instead."""
    if backend == "torch":
        return SentenceTransformerEmbedder(model)
    if backend not in BACKENDS:
        raise ValueError(f"unknown embedding backend {backend!r}: use one of {', '.join(BACKENDS)}")
    source = Path(model) if model is not None else bundled_embedder_path()
    pooling = _pooling_mode(source)
    if pooling not in ("mean", None):
        log.warning("pooling %r is not supported by ONNX Runtime here; using torch", pooling)
        return SentenceTransformerEmbedder(model)
    if backend == "openvino-int8":
        from rag import openvino_embed

        if openvino_embed.available():
            return openvino_embed.OpenVinoEmbedder(model, cache_dir=cache_dir)
        log.info("OpenVINO is not installed here; embedding with ONNX Runtime (int8)")
        backend = "onnx-int8"
    return OnnxEmbedder(model, cache_dir=cache_dir, quantize=backend == "onnx-int8")


def _pooling_mode(folder: Path) -> str | None:
    """The pooling a local sentence-transformers folder declares (None when unknown)."""
    config = folder / "1_Pooling" / "config.json"
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError):
        return None
    if "pooling_mode" in data:
        return str(data["pooling_mode"])
    for mode in ("cls", "max", "mean"):
        if data.get(f"pooling_mode_{mode}_token") or data.get(f"pooling_mode_{mode}_tokens"):
            return mode
    return None
