"""Offline by construction: every phone-home switch in one place.

`apply()` must run before gradio, huggingface_hub, transformers or chromadb are imported, since
some of them read these variables at import time. Downloads the user asks for lift HF_HUB_OFFLINE
for their own duration only.
"""

from __future__ import annotations

import os
import sys

OFFLINE_ENV = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "ANONYMIZED_TELEMETRY": "False",  # chromadb; the store also passes anonymized_telemetry=False
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}


def apply() -> None:
    """Switch off telemetry and hub access for this process and its children.

    Whether the *user* had asked for offline mode is remembered first (QUIPU_USER_OFFLINE), so an
    explicit download can tell our own switch from theirs.
    """
    if "QUIPU_USER_OFFLINE" not in os.environ:
        asked = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
        os.environ["QUIPU_USER_OFFLINE"] = "1" if asked else "0"
    os.environ.update(OFFLINE_ENV)
    block_openvino_telemetry()


def block_openvino_telemetry() -> None:
    """OpenVINO reports each `import openvino` (and NNCF each quantization) to Google Analytics
    through the `openvino_telemetry` package, unless a consent file in the user's home says no.
    Both fall back to a silent stub when that package cannot be imported, so it is made
    unimportable in this process instead of writing to the user's home."""
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
