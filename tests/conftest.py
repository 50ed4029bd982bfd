"""Shared fixtures: isolated data dirs, the real bundled model and embedder, generated PDFs,
and a real running app for the UI tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from app import privacy

privacy.apply()  # the tests are offline too

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"

# A document whose answer sits on a known page (3 of 5): tests check citations against it.
AURORA_PAGES: list[str | None] = [
    "Annual field report. This report describes the work of the northern survey teams during the "
    "year. The teams measured river levels, mapped forest cover and recorded bird populations.",
    "Budget and staffing. The survey employed forty people across six stations. Most of the budget "
    "went to equipment, vehicles and the maintenance of the weather stations.",
    "The Aurora project. The secret launch code of the Aurora project is 7341. The Aurora project "
    "was started in 2019 in Lisbon by the engineer Marta Silva. Its goal is to monitor glaciers "
    "with autonomous drones.",
    "Outlook. Next year the teams will extend the river measurements to the southern valleys and "
    "publish the bird census in an open data portal.",
    None,  # a page with a drawing and no text
]
AURORA_PAGE = 3


@pytest.fixture(autouse=True)
def _isolated_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test gets its own data dir and HF cache; nothing touches the user's folders."""
    base = tmp_path_factory.mktemp("quipu-env")
    monkeypatch.setenv("QUIPU_DATA_DIR", str(base / "data"))
    monkeypatch.setenv("HF_HOME", str(base / "hf"))


@pytest.fixture(scope="session")
def aurora_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.pdf_factory import write_pdf

    return write_pdf(tmp_path_factory.mktemp("pdfs") / "aurora-report.pdf", AURORA_PAGES)


def _loaded(kind):
    """An embedder of class `kind` on the bundled model, loaded, closed after the session."""
    from app.settings import Settings

    embedder = kind(cache_dir=Settings().cache_dir / "embedders")
    embedder.warm_up()
    yield embedder
    embedder.close()


@pytest.fixture(scope="session")
def real_embedder():
    """The app's default: bundled all-MiniLM-L6-v2 run by OpenVINO in int8."""
    from rag.openvino_embed import OpenVinoEmbedder

    yield from _loaded(OpenVinoEmbedder)


@pytest.fixture(scope="session")
def onnx_embedder():
    """The same model run by ONNX Runtime with int8 weights (the backend without OpenVINO)."""
    from rag.onnx_embed import OnnxEmbedder

    yield from _loaded(OnnxEmbedder)


@pytest.fixture(scope="session")
def torch_embedder():
    """The same model through sentence-transformers and torch (the reference)."""
    from rag.embed import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    embedder.warm_up()
    yield embedder
    embedder.close()


@pytest.fixture(scope="session")
def bundled_model():
    from models.base import GenerationOptions
    from models.bundled import bundled_model_path
    from models.llamacpp import LlamaRuntime

    runtime = LlamaRuntime(
        bundled_model_path(),
        n_ctx=2048,
        default_options=GenerationOptions(temperature=0.0, max_tokens=48, seed=1337),
    )
    runtime.warm_up()
    yield runtime
    runtime.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(*args: str, data_dir: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`python -m app ARGS` as the launcher runs it, with its own data dir."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), QUIPU_DATA_DIR=str(data_dir))
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
        check=False,
    )


class RunningApp:
    def __init__(
        self, url: str, data_dir: Path, process: subprocess.Popen[bytes], log: Path
    ) -> None:
        self.url = url
        self.data_dir = data_dir
        self.process = process
        self.log = log


@contextmanager
def start_app(
    data_dir: Path, *flags: str, env: dict[str, str] | None = None
) -> Iterator[RunningApp]:
    """Run the real app (`python -m app`) on a free loopback port until the block ends."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = data_dir / "app.log"
    env = env or dict(os.environ, PYTHONPATH=str(ROOT))
    command = [
        sys.executable,
        "-m",
        "app",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--no-browser",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, *flags], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the app exited early:\n{log.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the app did not start:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except urllib.error.HTTPError:
                break  # it answers (e.g. 401 behind a password)
            except OSError:
                time.sleep(0.5)
        yield RunningApp(url, data_dir, process, log)
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate a server the tests started; kill it if it does not exit in 20 s."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def running_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """The real app (bundled model, real embedder, Chroma on disk), shared by the UI tests."""
    env = dict(
        os.environ, PYTHONPATH=str(ROOT), QUIPU_MODEL__TEMPERATURE="0", QUIPU_MODEL__MAX_TOKENS="96"
    )
    with start_app(tmp_path_factory.mktemp("app-data"), env=env) as app:
        yield app
