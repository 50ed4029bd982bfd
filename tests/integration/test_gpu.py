"""The GPU build: the bundled model offloaded to CUDA (or Metal) answers as it does on the CPU.

These run where the installed llama.cpp can offload, i.e. on a machine the launcher built for with
CUDA or Metal; on a CPU-only build they are skipped (CI has no GPU). On an NVIDIA machine they also
check, through nvidia-smi, that loading the model with all layers offloaded takes GPU memory that a
CPU-only load does not: asking for offload is not the same as getting it.
"""

from __future__ import annotations

import pytest

from models.base import GenerationOptions
from models.build_flags import nvidia_smi_query
from models.bundled import bundled_model_path
from models.llamacpp import LlamaRuntime

llama_cpp = pytest.importorskip("llama_cpp")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not llama_cpp.llama_supports_gpu_offload(), reason="this llama.cpp build has no GPU backend"
    ),
]

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
GREEDY = GenerationOptions(temperature=0.0, max_tokens=32, seed=1)


def gpu_memory_used_mib() -> int | None:
    """MiB in use on the first NVIDIA GPU, or None where nvidia-smi cannot say."""
    used = nvidia_smi_query("memory.used")
    return int(used[0]) if used else None


def test_the_default_offloads_every_layer_and_answers_like_the_cpu():
    path = bundled_model_path()
    cpu = LlamaRuntime(path, n_ctx=2048, n_gpu_layers=0)
    cpu.warm_up()
    before = gpu_memory_used_mib()
    gpu = LlamaRuntime(path, n_ctx=2048)  # the app's default: all layers where a GPU exists
    try:
        gpu.warm_up()
        after = gpu_memory_used_mib()
        assert gpu.info.gpu_layers == -1
        assert cpu.info.gpu_layers == 0
        if before is not None and after is not None:
            # The weights alone are ~98 MB; the KV cache and compute buffers add more.
            assert after - before >= 0.8 * path.stat().st_size / 2**20, (before, after)
        on_gpu = "".join(gpu.stream(QUESTION, GREEDY))
        on_cpu = "".join(cpu.stream(QUESTION, GREEDY))
    finally:
        gpu.close()
        cpu.close()
    assert "Paris" in on_gpu
    # Greedy decoding on different hardware may part after many tokens (rounding differs);
    # the opening words must agree.
    assert on_gpu.split()[:4] == on_cpu.split()[:4], (on_gpu, on_cpu)


def test_a_follow_up_on_the_gpu_reuses_the_cached_prefix():
    gpu = LlamaRuntime(bundled_model_path(), n_ctx=2048)
    try:
        first = "".join(gpu.stream(QUESTION, GREEDY))
        follow_up = [
            *QUESTION,
            {"role": "assistant", "content": first},
            {"role": "user", "content": "And of Italy?"},
        ]
        second = "".join(gpu.stream(follow_up, GREEDY))
        assert gpu._native is not None
        reused, evaluated = gpu._native.reused_tokens, gpu._native.evaluated_tokens
    finally:
        gpu.close()
    assert "Rome" in second
    assert reused > evaluated, (reused, evaluated)  # the first turn came from the cache
