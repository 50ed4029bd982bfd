"""llama.cpp's own `llama-bench`, built from the llama.cpp sources vendored in the pinned
llama-cpp-python sdist, with the same CPU/GPU flags the launcher used for the wheel.

    python launch.py bench llama_bench [--tokens 128]    # build once (minutes), then run it

The binary is cached in ~/.cache/quipu/llama-bench/<flags hash>/ ; `bench/generation.py` uses it
as the baseline for streamed tokens/s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _requirement() -> str:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return next(d for d in project["dependencies"] if d.startswith("llama-cpp-python=="))


def ensure_llama_bench() -> Path:
    """The llama-bench binary for this machine's build plan (built on first call)."""
    from models.build_flags import plan_build

    plan = plan_build()
    requirement = _requirement()
    key = hashlib.sha256(f"{requirement}|{plan.key}".encode()).hexdigest()[:16]
    home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    out = home / "quipu" / "llama-bench" / key
    binary = out / "llama-bench"
    if binary.exists():
        return binary
    work = out.with_name(key + ".build")  # kept on failure: a second try continues the build
    work.mkdir(parents=True, exist_ok=True)
    if not list(work.glob("llama_cpp_python-*.tar.gz")):
        print(f"downloading the {requirement} sources (sdist)", flush=True)
        pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:"]
        subprocess.run([*pip, requirement, "-d", str(work)], check=True)
    if not list(work.glob("llama_cpp_python-*/vendor/llama.cpp")):
        (sdist,) = work.glob("llama_cpp_python-*.tar.gz")
        with tarfile.open(sdist) as archive:
            archive.extractall(work, filter="data")
    (source,) = work.glob("llama_cpp_python-*/vendor/llama.cpp")
    build = work / "build"
    print("building llama-bench with " + " ".join(plan.cmake_args), flush=True)
    # The wheel's CPU/GPU flags, with llama.cpp's tools (llama-bench) switched back on.
    flags = [a for a in plan.cmake_args if not a.startswith("-DLLAMA_BUILD_")]
    options = ["-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TOOLS=ON"]
    _run_logged(
        ["cmake", "-S", str(source), "-B", str(build), *options, *flags],
        work / "configure.log",
    )
    jobs = str(os.cpu_count() or 2)
    _run_logged(
        ["cmake", "--build", str(build), "--target", "llama-bench", "-j", jobs],
        work / "build.log",
    )
    out.mkdir(parents=True, exist_ok=True)
    for built in build.glob("bin/*"):  # llama-bench and the shared libraries it links
        shutil.copy2(built, out / built.name)
    for library in build.rglob("*.so*"):
        shutil.copy2(library, out / library.name)
    shutil.rmtree(work, ignore_errors=True)
    return binary


def _run_logged(command: list[str], log: Path) -> None:
    with log.open("w") as output:
        done = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, check=False)
    if done.returncode:
        tail = log.read_text(errors="replace").splitlines()[-30:]
        raise SystemExit(f"{' '.join(command[:2])} failed (log: {log}):\n" + "\n".join(tail))


def run_llama_bench(
    model: Path,
    threads: int,
    *,
    tokens: int = 128,
    prompt: int = 0,
    depth: int = 0,
    repetitions: int = 3,
) -> dict:
    """llama-bench's JSON record for text generation (`-n tokens`) or prompt processing.

    `depth` tokens are evaluated into the cache, untimed, before the timed part (`-d`): text
    generation after a prompt of that length, as in a chat, where each token attends to more.
    """
    binary = ensure_llama_bench()
    args = [str(binary), "-m", str(model), "-t", str(threads), "-r", str(repetitions)]
    args += ["-o", "json", "-p", str(prompt), "-n", str(tokens if not prompt else 0)]
    args += ["-d", str(depth)]
    env = dict(os.environ, LD_LIBRARY_PATH=str(binary.parent))  # its libllama/libggml copies
    done = subprocess.run(args, check=True, capture_output=True, text=True, env=env)
    records = json.loads(done.stdout)
    return records[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    from models.bundled import bundled_model_path
    from models.llamacpp import physical_cores

    model, threads = bundled_model_path(), physical_cores()
    tg = run_llama_bench(model, threads, tokens=args.tokens)
    pp = run_llama_bench(model, threads, prompt=512)
    print(f"llama-bench {model.name}, {threads} threads:")
    print(f"  text generation  tg{args.tokens}: {tg['avg_ts']:.1f} tokens/s")
    print(f"  prompt processing pp512: {pp['avg_ts']:.1f} tokens/s")


if __name__ == "__main__":
    main()
