import pytest

from models import build_flags

pytestmark = pytest.mark.unit


def test_amx_and_native_are_always_off_even_when_cpuid_claims_amx():
    flags = {
        "avx",
        "avx2",
        "fma",
        "f16c",
        "avx512f",
        "avx512bw",
        "avx512vl",
        "avx512dq",
        "avx512cd",
        "amx_tile",
        "amx_int8",
        "amx_bf16",
    }
    args = build_flags.x86_cmake_args(flags)
    for name in ("GGML_NATIVE", "GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16"):
        assert f"-D{name}=OFF" in args
    assert "-DGGML_AVX512=ON" in args and "-DGGML_AVX2=ON" in args


def test_simd_sets_follow_the_cpu():
    args = build_flags.x86_cmake_args({"avx", "avx2", "fma", "f16c"})
    assert "-DGGML_AVX2=ON" in args
    assert "-DGGML_AVX512=OFF" in args  # an AVX2-only CPU must not get AVX-512 code


def test_cpuinfo_is_parsed(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 fma\n")
    assert {"avx2", "fma", "sse4_2"} <= build_flags.read_cpu_flags(str(cpuinfo))


def test_cuda_needs_a_gpu_not_just_nvcc(monkeypatch):
    monkeypatch.delenv("QUIPU_GPU", raising=False)
    monkeypatch.setattr(build_flags.platform, "system", lambda: "Linux")
    monkeypatch.setattr(
        build_flags.shutil, "which", lambda name: "/usr/bin/nvcc" if name == "nvcc" else None
    )
    monkeypatch.setattr(build_flags.os.path, "exists", lambda p: p == "/usr/bin/nvcc")
    assert build_flags.detect_gpu_backend() == "cpu"
    monkeypatch.setattr(build_flags, "nvidia_gpu_present", lambda: True)
    assert build_flags.detect_gpu_backend() == "cuda"


def test_metal_on_apple_silicon(monkeypatch):
    monkeypatch.delenv("QUIPU_GPU", raising=False)
    monkeypatch.setattr(build_flags.platform, "system", lambda: "Darwin")
    monkeypatch.setattr(build_flags.platform, "machine", lambda: "arm64")
    plan = build_flags.plan_build()
    assert plan.backend == "metal" and "-DGGML_METAL=ON" in plan.cmake_args


def test_override_replaces_the_plan(monkeypatch):
    monkeypatch.setenv("QUIPU_CMAKE_ARGS", "-DGGML_NATIVE=OFF -DGGML_AVX2=OFF")
    plan = build_flags.plan_build()
    assert plan.cmake_args == ("-DGGML_NATIVE=OFF", "-DGGML_AVX2=OFF")


def test_cuda_architectures_come_from_nvidia_smi(tmp_path, monkeypatch):
    smi = tmp_path / "nvidia-smi"
    smi.write_text('#!/bin/sh\necho "$1" > "${0%/*}/asked"\nprintf "9.0\\n8.6\\n9.0\\n"\n')
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert build_flags.cuda_architectures() == "86;90"  # one of each, for nvcc
    assert (tmp_path / "asked").read_text().strip() == "--query-gpu=compute_cap"
    smi.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed'\nexit 9\n")
    assert build_flags.cuda_architectures() is None
