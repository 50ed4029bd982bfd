"""A small C helper for the native decoder: llama.cpp's logits to the top k candidates, directly.

`llama_sampler_sample` first copies the whole vocabulary into a candidate array (49k entries of
12 bytes for SmolLM2), then the chain's first top-k sorts its way through all of them: 185-195 us
of each 9-11 ms token on 2 cores here, mostly cache misses on an array that is read once.
`quipu_top_k` (`top_k.c`) reads the logits once, keeps the best k in a heap, and the chain runs
on those k: the same tokens (the chain's first top-k sorts them as before), in 89 us a token
against 188 (sampling 200 tokens in a throwaway decode loop, 25 November 2026).

Stdlib only: the launcher builds the library (`build`, once per source, with the C compiler
llama.cpp's build needs anyway) into the virtual environment; the decoder uses it when it is
there (`load`) and llama.cpp's own path when it is not (no compiler, another install).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

SOURCE = Path(__file__).with_name("top_k.c")
_FLAGS = ("-O3", "-shared", "-fPIC")


def library_path(prefix: Path) -> Path:
    """Where the library built from the current source lives under `prefix` (a venv)."""
    digest = hashlib.sha256(SOURCE.read_bytes() + " ".join(_FLAGS).encode()).hexdigest()[:16]
    return prefix / "quipu" / f"top_k-{digest}.so"


def build(prefix: Path) -> tuple[Path | None, str]:
    """Compile the library to `library_path(prefix)`: (its path, "") or (None, why not)."""
    target = library_path(prefix)
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        return None, "no C compiler found (cc, gcc, or CC)"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    command = [*shlex.split(compiler), *_FLAGS, "-o", str(partial), str(SOURCE)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as err:
        return None, f"{compiler} did not run: {err}"
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        return None, f"{compiler} failed: {done.stderr.strip()[-300:]}"
    os.replace(partial, target)  # whole or not at all, for a launcher running beside this one
    return target, ""


TopK = Callable[[object, int, int, object], int]


def open_library(path: Path) -> TopK:
    """`quipu_top_k(logits, n, k, out) -> count` from the library at `path`.

    logits: a pointer to n floats; out: room for k llama_token_data.
    """
    function = ctypes.CDLL(str(path)).quipu_top_k
    function.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


@functools.cache
def load() -> TopK | None:
    """The helper built for this environment's current source, or None when there is none."""
    path = library_path(Path(sys.prefix))
    if not path.exists():
        return None
    try:
        return open_library(path)
    except (OSError, AttributeError):  # not loadable here (another platform's build)
        return None
