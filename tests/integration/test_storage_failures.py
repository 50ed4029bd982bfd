"""Storage that fails: a full disk, a damaged or locked history, damaged settings."""

import os
import sqlite3
import subprocess

import pytest

from app.chats import ChatStore, ChatStoreError
from models.errors import StateFileError
from models.registry import ModelRegistry
from rag.ingest import Ingestor
from rag.store import ChunkStore
from tests.conftest import run_cli
from tests.pdf_factory import write_pdf

pytestmark = pytest.mark.integration


@pytest.fixture
def small_disk(tmp_path):
    """A real 16 MB filesystem (tmpfs), so the disk really fills up. Needs root, as in CI."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.fail("this test mounts a tmpfs and must run as root (CI does)")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16M", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_gives_a_clear_error_and_leaves_the_library_as_it_was(
    small_disk, tmp_path, real_embedder
):
    store = ChunkStore(small_disk / "chroma", embedder_id=real_embedder.model_id)
    ingestor = Ingestor(real_embedder, store)
    first = write_pdf(tmp_path / "small.pdf", ["A short note about the harbour."])
    assert ingestor.ingest([first]).results[0].status == "ok"
    before = (store.documents(), store.chunk_count())
    # Fill the disk almost completely, as other programs would.
    filler = small_disk / "filler.bin"
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    filler.write_bytes(b"\0" * max(0, free - 1_500_000))
    big = write_pdf(
        tmp_path / "big.pdf",
        [f"Page {p}. " + "Harbour cranes lift containers. " * 30 for p in range(40)],
    )
    report = ingestor.ingest([big])
    result = report.results[0]
    assert result.status == "failed"
    assert (
        "not enough disk space to add big.pdf" in result.message and "MB is free" in result.message
    )
    assert (store.documents(), store.chunk_count()) == before
    filler.unlink()  # space again: the same file goes in
    assert ingestor.ingest([big]).results[0].status == "ok"
    store.close()


def test_a_damaged_history_is_reported_not_replaced(tmp_path):
    path = tmp_path / "chats.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ChatStoreError, match="damaged .* left untouched"):
        ChatStore(path)
    assert path.read_bytes() == b"this is not a database" * 100


def test_a_locked_history_is_reported(tmp_path):
    store = ChatStore(tmp_path / "chats.sqlite3", timeout_s=0.2)
    blocker = sqlite3.connect(tmp_path / "chats.sqlite3")
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(ChatStoreError, match="locked by another program"):
            store.create("a question")
    finally:
        blocker.rollback()
        blocker.close()
    assert store.create("a question") > 0


def test_damaged_settings_are_reported_not_replaced(tmp_path):
    state = tmp_path / "state.json"
    state.write_text("{not json")
    with pytest.raises(StateFileError, match="damaged"):
        _ = ModelRegistry(tmp_path / "models", state).active
    assert state.read_text() == "{not json"


def test_the_cli_reports_a_damaged_history_in_one_line(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "chats.sqlite3").write_bytes(b"garbage" * 200)
    result = run_cli("library", data_dir=data)
    assert result.returncode == 1
    assert "conversations file" in result.stderr and "damaged" in result.stderr
    assert "Traceback" not in result.stderr
