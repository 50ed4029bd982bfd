"""The curated catalog of Llama-family GGUFs (data plus a lookup) and the memory each needs.

Sizes are the published file sizes; the download verifies the exact size and sha256 against the
hub's own metadata, so nothing here has to be trusted for integrity. Architecture numbers feed the
memory estimate: weights + KV cache (f16) at the chosen context + a fixed overhead.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from models.errors import UnknownModelError

GIB = 1024**3
RUNTIME_OVERHEAD_BYTES = 300 * 1024**2  # compute buffers, scratch, the process itself


@dataclass(frozen=True)
class Architecture:
    """What the KV-cache size depends on."""

    layers: int
    kv_heads: int
    head_dim: int
    trained_context: int

    def kv_cache_bytes(self, n_ctx: int) -> int:
        """Keys and values, f16, for `n_ctx` tokens."""
        return 2 * self.layers * n_ctx * self.kv_heads * self.head_dim * 2

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str]) -> Architecture | None:
        """The numbers in a GGUF header (`models.gguf.read_metadata`); None where they are missing.

        A per-layer KV head count (an array, which the header reader leaves out) counts as the
        full head count: an estimate on the high side.
        """
        arch = meta.get("general.architecture", "llama")

        def number(key: str, default: int = 0) -> int:
            try:
                return int(meta.get(f"{arch}.{key}", default))
            except ValueError:
                return default

        layers, heads = number("block_count"), number("attention.head_count")
        if not layers or not heads:
            return None
        head_dim = number("attention.key_length") or number("embedding_length") // heads
        return cls(
            layers=layers,
            kv_heads=number("attention.head_count_kv", heads) or heads,
            head_dim=head_dim,
            trained_context=number("context_length"),
        )


def memory_estimate(weights_bytes: int, arch: Architecture | None, n_ctx: int) -> int:
    """Weights + f16 KV cache at `n_ctx` (capped at the trained context) + runtime overhead;
    without architecture numbers, a tenth of the weights stands in for the cache."""
    if arch is None:
        return int(weights_bytes * 1.1) + RUNTIME_OVERHEAD_BYTES
    ctx = min(n_ctx, arch.trained_context) if arch.trained_context else n_ctx
    return weights_bytes + arch.kv_cache_bytes(ctx) + RUNTIME_OVERHEAD_BYTES


LLAMA_32_1B = Architecture(layers=16, kv_heads=8, head_dim=64, trained_context=131072)
LLAMA_32_3B = Architecture(layers=28, kv_heads=8, head_dim=128, trained_context=131072)
LLAMA_31_8B = Architecture(layers=32, kv_heads=8, head_dim=128, trained_context=131072)
LLAMA_31_70B = Architecture(layers=80, kv_heads=8, head_dim=128, trained_context=131072)
SMOLLM2_135M = Architecture(layers=30, kv_heads=3, head_dim=64, trained_context=8192)


@dataclass(frozen=True)
class CatalogEntry:
    """One downloadable model: a hub repo and its file(s) (several for a split GGUF)."""

    id: str
    name: str
    repo_id: str
    files: tuple[str, ...]
    size_bytes: int
    quant: str
    license: str
    arch: Architecture
    chat_format: str | None = None  # None: the template stored in the GGUF

    @property
    def first_file(self) -> str:
        """The file llama.cpp opens; it finds the other parts of a split GGUF by name."""
        return self.files[0]

    def memory_bytes(self, n_ctx: int) -> int:
        """Estimated resident memory at this context length."""
        return memory_estimate(self.size_bytes, self.arch, n_ctx)


def _split(stem: str, parts: int) -> tuple[str, ...]:
    return tuple(f"{stem}/{stem}-{i:05d}-of-{parts:05d}.gguf" for i in range(1, parts + 1))


_L32 = "Llama 3.2 Community License"
_L31 = "Llama 3.1 Community License"

CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        "llama-3.2-1b-q4",
        "Llama 3.2 1B Instruct",
        "bartowski/Llama-3.2-1B-Instruct-GGUF",
        ("Llama-3.2-1B-Instruct-Q4_K_M.gguf",),
        807_690_656,
        "Q4_K_M",
        _L32,
        LLAMA_32_1B,
    ),
    CatalogEntry(
        "llama-3.2-1b-q8",
        "Llama 3.2 1B Instruct",
        "bartowski/Llama-3.2-1B-Instruct-GGUF",
        ("Llama-3.2-1B-Instruct-Q8_0.gguf",),
        1_321_083_200,
        "Q8_0",
        _L32,
        LLAMA_32_1B,
    ),
    CatalogEntry(
        "llama-3.2-3b-q4",
        "Llama 3.2 3B Instruct",
        "bartowski/Llama-3.2-3B-Instruct-GGUF",
        ("Llama-3.2-3B-Instruct-Q4_K_M.gguf",),
        2_019_377_696,
        "Q4_K_M",
        _L32,
        LLAMA_32_3B,
    ),
    CatalogEntry(
        "llama-3.2-3b-q8",
        "Llama 3.2 3B Instruct",
        "bartowski/Llama-3.2-3B-Instruct-GGUF",
        ("Llama-3.2-3B-Instruct-Q8_0.gguf",),
        3_421_899_168,
        "Q8_0",
        _L32,
        LLAMA_32_3B,
    ),
    CatalogEntry(
        "llama-3.1-8b-q4",
        "Llama 3.1 8B Instruct",
        "bartowski/Meta-Llama-3.1-8B-Instruct-GGUF",
        ("Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf",),
        4_920_734_016,
        "Q4_K_M",
        _L31,
        LLAMA_31_8B,
    ),
    CatalogEntry(
        "llama-3.1-8b-q8",
        "Llama 3.1 8B Instruct",
        "bartowski/Meta-Llama-3.1-8B-Instruct-GGUF",
        ("Meta-Llama-3.1-8B-Instruct-Q8_0.gguf",),
        8_540_770_592,
        "Q8_0",
        _L31,
        LLAMA_31_8B,
    ),
    CatalogEntry(
        "llama-3.1-70b-q4",
        "Llama 3.1 70B Instruct",
        "bartowski/Meta-Llama-3.1-70B-Instruct-GGUF",
        _split("Meta-Llama-3.1-70B-Instruct-Q4_K_M", 2),
        42_520_395_584,
        "Q4_K_M",
        _L31,
        LLAMA_31_70B,
    ),
)


def get_entry(model_id: str, catalog: tuple[CatalogEntry, ...] = CATALOG) -> CatalogEntry:
    """The catalog entry with this id.

    Raises:
        UnknownModelError: no such id; the message lists the valid ones.
    """
    for entry in catalog:
        if entry.id == model_id:
            return entry
    raise UnknownModelError(model_id, [e.id for e in catalog])


def total_memory_bytes() -> int:
    """Physical RAM of this machine (0 if it cannot be read)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        pass
    if platform.system() == "Darwin":
        out = subprocess.run(
            ["sysctl", "-n", "hw.memsize"], capture_output=True, text=True, check=False
        )
        return int(out.stdout.strip() or 0)
    return 0


def available_memory_bytes() -> int:
    """RAM available to a new model now (MemAvailable on Linux; total RAM elsewhere)."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return total_memory_bytes()
