"""The real download code (huggingface_hub underneath) against a local fake hub."""

import hashlib
import os
import subprocess
import sys
import threading
import time

import pytest

from models.download import download, is_verified, marker
from models.errors import ChecksumMismatch, DownloadCancelled, DownloadError
from tests.conftest import ROOT
from tests.fake_hub import FakeHub

pytestmark = pytest.mark.integration
REPO = "someone/Tiny-GGUF"
DATA = bytes(range(256)) * 4096 * 32  # 32 MiB: several 10 MB reads, so progress moves


@pytest.fixture
def hub():
    with FakeHub() as hub:
        hub.add(REPO, "tiny-Q4.gguf", DATA)
        yield hub


def test_download_reports_progress_and_verifies(hub, tmp_path):
    events = []
    path = download(
        REPO, "tiny-Q4.gguf", models_dir=tmp_path, endpoint=hub.url, progress=events.append
    )
    assert path.read_bytes() == DATA
    assert marker(path).read_text().strip() == hashlib.sha256(DATA).hexdigest()
    assert events[-1].done_bytes == events[-1].total_bytes == len(DATA)
    assert len(events) >= 3 and all(
        a.done_bytes <= b.done_bytes for a, b in zip(events, events[1:])
    )
    assert events[-1].speed_bps > 0
    # A second call finds the verified file and downloads nothing.
    before = len(hub.state.requests)
    assert download(REPO, "tiny-Q4.gguf", models_dir=tmp_path, endpoint=hub.url) == path
    assert len(hub.state.requests) == before


def test_a_killed_download_resumes_where_it_stopped(hub, tmp_path):
    hub.state.delay_per_mb = 0.15  # ~5 s for the whole file: time to kill the client mid-way
    part = tmp_path / "someone--Tiny-GGUF" / "tiny-Q4.gguf.part"
    script = (
        "from app import privacy; privacy.apply()\n"
        "from pathlib import Path\n"
        "from models.download import download\n"
        f"download({REPO!r}, 'tiny-Q4.gguf', models_dir=Path({str(tmp_path)!r}), "
        f"endpoint={hub.url!r})\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (part.exists() and part.stat().st_size > 0):
        time.sleep(0.05)
    child.kill()
    child.wait()
    kept = part.stat().st_size
    assert 0 < kept < len(DATA)
    assert not is_verified(tmp_path / "someone--Tiny-GGUF" / "tiny-Q4.gguf"), (
        "a cut transfer must not look usable"
    )

    hub.state.delay_per_mb = 0.0
    events = []
    path = download(
        REPO, "tiny-Q4.gguf", models_dir=tmp_path, endpoint=hub.url, progress=events.append
    )
    assert path.read_bytes() == DATA and not part.exists()
    last_range = [r for m, _, r in hub.state.requests if m == "GET"][-1]
    assert last_range == f"bytes={kept}-", "the second run asked only for the missing bytes"
    assert events[0].done_bytes == kept, "progress starts from the bytes already on disk"


def test_a_dropped_connection_is_resumed_within_the_same_download(hub, tmp_path):
    hub.state.drop_after, hub.state.drop_times = 12_000_000, 2
    path = download(REPO, "tiny-Q4.gguf", models_dir=tmp_path, endpoint=hub.url)
    assert path.read_bytes() == DATA
    assert any(r and r != "bytes=0-" for m, _, r in hub.state.requests if m == "GET")


def test_corrupt_bytes_are_rejected_and_deleted(hub, tmp_path):
    hub.state.corrupt.add("tiny-Q4.gguf")
    with pytest.raises(ChecksumMismatch, match="sha256"):
        download(REPO, "tiny-Q4.gguf", models_dir=tmp_path, endpoint=hub.url)
    target = tmp_path / "someone--Tiny-GGUF" / "tiny-Q4.gguf"
    assert not target.exists() and not marker(target).exists()


def test_split_gguf_downloads_every_part(hub, tmp_path):
    parts = [f"big/big-{i:05d}-of-00003.gguf" for i in (1, 2, 3)]
    for i, name in enumerate(parts):
        hub.add(REPO, name, bytes([i]) * 300_000)
    seen = set()
    first = download(
        REPO,
        parts,
        models_dir=tmp_path,
        endpoint=hub.url,
        progress=lambda e: seen.add((e.part, e.parts)),
    )
    assert first.name == "big-00001-of-00003.gguf"
    assert all(is_verified(tmp_path / "someone--Tiny-GGUF" / p) for p in parts)
    assert seen >= {(1, 3), (2, 3), (3, 3)}


def test_cancel_stops_and_leaves_nothing_usable(hub, tmp_path):
    cancel = threading.Event()

    def on_progress(event):
        if event.done_bytes > 0:
            cancel.set()

    with pytest.raises(DownloadCancelled):
        download(
            REPO,
            "tiny-Q4.gguf",
            models_dir=tmp_path,
            endpoint=hub.url,
            progress=on_progress,
            cancel=cancel,
        )
    assert not is_verified(tmp_path / "someone--Tiny-GGUF" / "tiny-Q4.gguf")


def test_unknown_file_and_gated_repo_give_clear_errors(hub, tmp_path):
    with pytest.raises(DownloadError, match="no file"):
        download(REPO, "missing.gguf", models_dir=tmp_path, endpoint=hub.url)
    hub.state.token = "hf_secret"
    with pytest.raises(DownloadError, match="token"):
        download(REPO, "tiny-Q4.gguf", models_dir=tmp_path, endpoint=hub.url)
    path = download(REPO, "tiny-Q4.gguf", models_dir=tmp_path, endpoint=hub.url, token="hf_secret")
    assert path.read_bytes() == DATA


def test_offline_fails_fast(tmp_path, monkeypatch):
    import time

    monkeypatch.setenv("QUIPU_USER_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(DownloadError, match="offline"):
        download(REPO, "tiny-Q4.gguf", models_dir=tmp_path, endpoint="http://127.0.0.1:9")
    monkeypatch.setenv("QUIPU_USER_OFFLINE", "0")
    with pytest.raises(DownloadError, match="could not download|no repository"):
        download(
            REPO, "tiny-Q4.gguf", models_dir=tmp_path, endpoint="http://127.0.0.1:9", timeout_s=3
        )
    assert time.monotonic() - start < 20
