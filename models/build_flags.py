"""Choose llama.cpp build flags that run on *this* machine.

Input: the CPU's feature flags and the GPU toolchain found here. Output: the CMAKE_ARGS list that
`launch.py` hands to the llama-cpp-python source build.

Stdlib only: the launcher imports this module before any dependency is installed.

Why not `GGML_NATIVE=ON` (llama.cpp's default)? Some virtual machines report AMX in cpuid while the
hypervisor forbids it, and the native build then dies with SIGSEGV in `ggml_backend_amx_mul_mat`.
So we always build with `GGML_NATIVE=OFF`, switch AMX off, and turn on exactly the SIMD sets the
kernel says this CPU has.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import dataclass, field

# llama.cpp option -> the /proc/cpuinfo flags that must all be present to enable it.
_X86_OPTIONS: dict[str, tuple[str, ...]] = {
    "GGML_SSE42": ("sse4_2",),
    "GGML_AVX": ("avx",),
    "GGML_F16C": ("f16c",),
    "GGML_FMA": ("fma",),
    "GGML_BMI2": ("bmi2",),
    "GGML_AVX2": ("avx2",),
    "GGML_AVX_VNNI": ("avx_vnni",),
    "GGML_AVX512": ("avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"),
    "GGML_AVX512_VBMI": ("avx512f", "avx512_vbmi"),
    "GGML_AVX512_VNNI": ("avx512f", "avx512_vnni"),
    "GGML_AVX512_BF16": ("avx512f", "avx512_bf16"),
}
# Never enabled, whatever cpuid claims (see the module docstring).
_ALWAYS_OFF = ("GGML_NATIVE", "GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16")
_COMMON = ("-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_TOOLS=OFF")


@dataclass(frozen=True)
class BuildPlan:
    """What the launcher will build: a backend name and its CMake arguments."""

    backend: str  # "cpu", "cuda" or "metal"
    cmake_args: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def key(self) -> str:
        """A stable string that changes whenever the build would change."""
        return self.backend + ":" + " ".join(sorted(self.cmake_args))


def read_cpu_flags(cpuinfo_path: str = "/proc/cpuinfo") -> set[str]:
    """Return the CPU feature flags the OS reports (empty when it reports none we can read)."""
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return set(value.split())
    except OSError:
        pass
    if platform.system() == "Darwin" and platform.machine() == "x86_64":
        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.features", "machdep.cpu.leaf7_features"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
        except OSError:
            return set()
        # macOS spells them AVX2, AVX512F, ...; map to the Linux names used above.
        return {f.lower().replace(".", "_") for f in out.split()}
    return set()


def x86_cmake_args(flags: set[str]) -> list[str]:
    """CMake switches for an x86-64 CPU with these flags: each SIMD set on only if present."""
    args = [f"-D{name}=OFF" for name in _ALWAYS_OFF]
    for option, required in _X86_OPTIONS.items():
        on = all(req in flags for req in required)
        args.append(f"-D{option}={'ON' if on else 'OFF'}")
    return args


def nvidia_smi_query(field: str) -> list[str] | None:
    """One line per NVIDIA GPU of `nvidia-smi --query-gpu=FIELD` (no header, no units), or None
    where nvidia-smi is missing or fails."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    try:
        done = subprocess.run(
            [smi, f"--query-gpu={field}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    return lines if done.returncode == 0 else None


def cuda_architectures() -> str | None:
    """The compute capability of the installed NVIDIA GPU(s), e.g. "90", so nvcc builds one arch."""
    caps = sorted({cap.replace(".", "") for cap in nvidia_smi_query("compute_cap") or []})
    return ";".join(caps) or None


def nvidia_gpu_present() -> bool:
    """True when an NVIDIA GPU is visible (a CUDA toolkit alone, with no card, does not count)."""
    if any(os.path.exists(p) for p in ("/dev/nvidia0", "/proc/driver/nvidia/gpus")):
        return True
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def detect_gpu_backend() -> str:
    """ "cuda" when nvcc and an NVIDIA GPU are present, "metal" on Apple silicon, else "cpu".

    `QUIPU_GPU=cpu|cuda|metal` overrides the detection.
    """
    forced = os.environ.get("QUIPU_GPU", "").strip().lower()
    if forced in ("cpu", "cuda", "metal"):
        return forced
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return "metal"
    cuda_home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    nvcc = shutil.which("nvcc") or (os.path.join(cuda_home, "bin", "nvcc") if cuda_home else None)
    if nvcc and os.path.exists(nvcc) and nvidia_gpu_present():
        return "cuda"
    return "cpu"


def plan_build() -> BuildPlan:
    """Decide the llama.cpp build for this machine.

    `QUIPU_CMAKE_ARGS` (space separated) replaces the whole decision, for unusual machines.
    """
    override = os.environ.get("QUIPU_CMAKE_ARGS")
    if override:
        return BuildPlan("custom", tuple(override.split()), ("QUIPU_CMAKE_ARGS override",))
    backend = detect_gpu_backend()
    machine = platform.machine().lower()
    args: list[str] = list(_COMMON)
    notes: list[str] = []
    if machine in ("x86_64", "amd64", "i686", "x86"):
        flags = read_cpu_flags()
        if flags:
            args += x86_cmake_args(flags)
        else:
            # Unknown CPU (e.g. Windows without cpuinfo): a portable AVX2-free build.
            args += [f"-D{name}=OFF" for name in _ALWAYS_OFF]
            notes.append("CPU flags unreadable: portable build without AVX2")
    if backend == "cuda":
        args.append("-DGGML_CUDA=ON")
        arch = cuda_architectures()
        if arch:
            args.append(f"-DCMAKE_CUDA_ARCHITECTURES={arch}")
    elif backend == "metal":
        args.append("-DGGML_METAL=ON")
    return BuildPlan(backend, tuple(args), tuple(notes))


if __name__ == "__main__":
    plan = plan_build()
    print(plan.backend)
    print(" ".join(plan.cmake_args))
