"""Quipu's one entry point: set up everything on first use, then run the app, the CLI or the tests.

    python launch.py                 # set up if needed, then start the app on 127.0.0.1:7860
    python launch.py test [ARGS]     # set up if needed (with test tools), then run the whole suite
    python launch.py lint            # ruff + mypy
    python launch.py bench NAME [ARGS]   # run bench/NAME.py (retrieval, generation, browser, ...)
    python launch.py ingest|ask|search|library ...   # the command-line tools (see README)

Stdlib only until the virtual environment exists. Set-up is skipped when nothing changed: a stamp
in the venv records the dependency list and the llama.cpp build plan; the llama-cpp-python wheel
built for this machine's flags is cached per flag set, so a fresh clone on the same machine
reuses it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
MIN_PYTHON = (3, 10)


def log(message: str) -> None:
    print(f"[quipu] {message}", flush=True)


def load_models_module(name: str):  # -> module; by path, so no package import runs before set-up
    spec = importlib.util.spec_from_file_location(f"_quipu_{name}", ROOT / "models" / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"models/{name}.py is missing")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while building the class
    spec.loader.exec_module(module)
    return module


def ensure_top_k(venv: Path) -> None:
    """Build the decoder's C helper into the venv unless this source's build is there (once per
    source; see models/top_k.py)."""
    top_k = load_models_module("top_k")
    if top_k.library_path(venv).exists():
        return
    built, why = top_k.build(venv)
    if built is None:
        log(f"sampling without the top-k helper (a little slower): {why}")
    else:
        log(f"built the top-k helper: {built.name}")


def read_project() -> dict:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: read the few lists we need by hand

        def grab(name: str) -> list[str]:
            match = re.search(rf"^{name}\s*=\s*\[(.*?)\]", text, re.S | re.M)
            return re.findall(r'"([^"]+)"', match.group(1)) if match else []

        return {
            "dependencies": grab("dependencies"),
            "test": grab("test"),
            "lint": grab("lint"),
            "bundled": grab("bundled"),
        }
    data = tomllib.loads(text)
    extras = data["project"].get("optional-dependencies", {})
    return {
        "dependencies": data["project"]["dependencies"],
        "test": extras.get("test", []),
        "lint": extras.get("lint", []),
        "bundled": data["tool"]["quipu"]["bundled"],
    }


def venv_dir() -> Path:
    return Path(os.environ.get("QUIPU_VENV", ROOT / ".venv"))


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.environ.get("LOCALAPPDATA")
    return Path(base or Path.home() / ".cache") / "quipu"


def run(cmd: list[str], **kwargs) -> None:
    result = subprocess.run(cmd, check=False, **kwargs)
    if result.returncode != 0:
        log(f"command failed ({result.returncode}): {' '.join(map(str, cmd))}")
        sys.exit(result.returncode)


def llama_wheel(python: Path, requirement: str, plan) -> Path:
    """Build (once per flag set) the llama-cpp-python wheel for this machine and return its path."""
    key = hashlib.sha256(f"{requirement}|{plan.key}|{sys.version_info[:2]}".encode()).hexdigest()[
        :16
    ]
    out = cache_dir() / "llama-wheels" / key
    wheels = sorted(out.glob("llama_cpp_python-*.whl"))
    if wheels:
        return wheels[-1]
    # Measured: 4 minutes for the CPU build on 2 cores; 6 minutes for CUDA on 16 cores (H100).
    took = "6 minutes on 16 cores, more on fewer" if plan.backend == "cuda" else "a few minutes"
    log(f"building {requirement} for backend={plan.backend} ({took}, once per machine)")
    log("CMAKE_ARGS=" + " ".join(plan.cmake_args))
    for note in plan.notes:
        log(note)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    env = dict(os.environ, CMAKE_ARGS=" ".join(plan.cmake_args), FORCE_CMAKE="1")
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    run(
        [
            str(python),
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-cache-dir",
            "--no-binary",
            "llama-cpp-python",
            "-w",
            str(tmp),
            requirement,
        ],
        env=env,
    )
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return sorted(out.glob("llama_cpp_python-*.whl"))[-1]


def ensure_env(extras: tuple[str, ...] = ()) -> Path:
    """Create or refresh the venv when the dependencies or the build plan changed; return python."""
    if sys.version_info < MIN_PYTHON:
        sys.exit(
            f"Quipu needs Python {'.'.join(map(str, MIN_PYTHON))}+, "
            f"this is {sys.version.split()[0]}"
        )
    project = read_project()
    plan = load_models_module("build_flags").plan_build()
    venv = venv_dir()
    python = venv_python(venv)
    wanted = {
        "deps": project["dependencies"],
        "extras": {name: project[name] for name in extras},
        "bundled": project["bundled"],
        "plan": plan.key,
        "python": list(sys.version_info[:2]),
    }
    stamp = venv / "quipu-stamp.json"
    if python.exists() and stamp.exists():
        have = json.loads(stamp.read_text(encoding="utf-8"))
        # Extras accumulate: `test` after `run` adds tools, `run` after `test` keeps them.
        if all(have.get(k) == wanted[k] for k in ("deps", "bundled", "plan", "python")) and all(
            have.get("extras", {}).get(name) == project[name] for name in extras
        ):
            ensure_top_k(venv)
            return python
        wanted["extras"] = {**have.get("extras", {}), **wanted["extras"]}
    if not python.exists():
        log(f"creating virtual environment in {venv}")
        run([sys.executable, "-m", "venv", str(venv)])
        run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip", "wheel"])
    llama_req = next(d for d in project["dependencies"] if d.startswith("llama-cpp-python"))
    wheel = llama_wheel(python, llama_req, plan)
    log("installing dependencies (first run only)")
    run([str(python), "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", str(wheel)])
    requirements = list(project["dependencies"])
    for name in wanted["extras"]:
        requirements += project.get(name, [])
    run([str(python), "-m", "pip", "install", "-q", *requirements])
    run([str(python), "-m", "pip", "install", "-q", "--no-deps", *project["bundled"]])
    stamp.write_text(json.dumps(wanted, indent=1), encoding="utf-8")
    ensure_top_k(venv)
    log("environment ready")
    return python


def ensure_chromium() -> None:
    """The browser test drives Debian's Chromium; install it when missing (as root, via apt)."""
    if shutil.which("chromium") or Path("/usr/bin/chromium").exists():
        return
    apt = shutil.which("apt-get")
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if not (apt and is_root):
        log(
            "Chromium is missing: install it (e.g. `sudo apt-get install chromium`); "
            "the browser test needs it"
        )
        return
    log("installing Chromium for the browser test (apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run([apt, "update", "-q"], env=env, stdout=subprocess.DEVNULL)
    run(
        [apt, "install", "-y", "-q", "--no-install-recommends", "chromium"],
        env=env,
        stdout=subprocess.DEVNULL,
    )


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    if command == "test":
        python = ensure_env(("test",))
        ensure_chromium()
        return subprocess.call([str(python), "-m", "pytest", *argv[1:]], cwd=ROOT)
    if command == "lint":
        python = ensure_env(("test", "lint"))
        code = subprocess.call([str(python), "-m", "ruff", "check", "."], cwd=ROOT)
        code |= subprocess.call([str(python), "-m", "mypy", "app", "rag", "models"], cwd=ROOT)
        return code
    if command == "setup":
        ensure_env()
        return 0
    if command == "bench":
        names = sorted(p.stem for p in (ROOT / "bench").glob("*.py"))
        if len(argv) < 2 or argv[1] not in names:
            print(f"usage: python launch.py bench {{{','.join(names)}}} [ARGS]", file=sys.stderr)
            return 2
        python = ensure_env()
        script = str(ROOT / "bench" / f"{argv[1]}.py")
        return subprocess.call([str(python), script, *argv[2:]], cwd=ROOT)
    python = ensure_env()
    # Keep the caller's working directory: `ingest ./docs` means the user's ./docs.
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    command_line = [str(python), "-m", "app", *argv]
    env = dict(os.environ, PYTHONPATH=path)
    if os.name == "posix":
        # The app takes this process's place: `kill`, Ctrl+C and service managers reach it
        # directly, and no launcher is left waiting (a SIGTERM to one used to orphan the app).
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(command_line[0], command_line, env)
    return subprocess.call(command_line, env=env)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
