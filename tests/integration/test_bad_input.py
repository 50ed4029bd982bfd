"""Bad input in a real worker process: time limits, crashes, limits, and a batch that goes on."""

import time
from pathlib import Path

import pytest

from rag.errors import PdfEncrypted, PdfNoText, PdfUnreadable
from rag.extract import IsolatedPdfReader
from rag.ingest import Ingestor
from rag.store import ChunkStore
from tests import misbehaving_readers
from tests.pdf_factory import write_encrypted_pdf, write_pdf

pytestmark = pytest.mark.integration


def test_pages_come_back_from_the_worker(aurora_pdf):
    reader = IsolatedPdfReader(timeout_s=60)
    try:
        pages = reader.read(aurora_pdf, file_id="x", file_name="aurora-report.pdf")
        assert [p.page_no for p in pages] == [1, 2, 3, 4, 5] and "7341" in pages[2].text
    finally:
        reader.close()


def test_warm_up_starts_every_worker_before_the_first_file(aurora_pdf):
    reader = IsolatedPdfReader(timeout_s=60, workers=3)
    try:
        reader.warm_up()
        started = dict(reader._pool._processes)
        assert len(started) == 3 and all(p.is_alive() for p in started.values())
        pages = reader.read(aurora_pdf, file_id="x", file_name="aurora-report.pdf")
        assert len(pages) == 5 and dict(reader._pool._processes) == started  # no new workers
    finally:
        reader.close()


KILLED_APP = """
import os, pathlib, signal, sys
from rag.extract import IsolatedPdfReader
reader = IsolatedPdfReader(workers=2)
reader.warm_up()
pathlib.Path(sys.argv[1]).write_text(" ".join(str(pid) for pid in reader._pool._processes))
os.kill(os.getpid(), signal.SIGKILL)
"""


def _running(pid):
    """Whether `pid` is a live process (not gone, not a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_the_workers_end_when_the_app_is_killed(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    pids, output = tmp_path / "pids", tmp_path / "output"
    with output.open("w") as out:  # a file: the workers would hold a pipe open
        killed = subprocess.run(
            [sys.executable, "-c", KILLED_APP, str(pids)], cwd=ROOT, stdout=out, stderr=out
        )
    assert killed.returncode == -9, output.read_text()
    workers = [int(pid) for pid in pids.read_text().split()]
    assert len(workers) == 2
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _running(pid)], "workers outlived their app"


def test_a_long_document_is_read_by_several_workers_in_page_order(tmp_path):
    from rag.pdf import read_pdf

    words = ["harbour", "crane", "ledger", "tariff", "vessel", "quay", "cargo", "pilot"]
    texts = [
        "Annual report 2024\n"
        + "\n".join(f"The {words[(n + k) % 8]} line {k} of part {n}." for k in range(6))
        for n in range(130)
    ]
    path = write_pdf(tmp_path / "long.pdf", texts)
    reader = IsolatedPdfReader(timeout_s=120, workers=3)  # 44, 43 and 43 pages
    try:
        pages = reader.read(path, file_id="x", file_name="long.pdf")
    finally:
        reader.close()
    assert len(pages) == 130
    assert pages == read_pdf(path, file_id="x", file_name="long.pdf")  # same text, same order
    assert [p.page_no for p in pages] == list(range(1, 131)) and "part 129" in pages[129].text
    assert "Annual report 2024" not in pages[5].text  # running header removed across workers


def test_a_file_that_changes_while_it_is_read_fails_with_a_clear_message(aurora_pdf):
    reader = IsolatedPdfReader(timeout_s=60, reader=misbehaving_readers.shrinking, workers=2)
    try:
        with pytest.raises(PdfUnreadable, match="changed while it was being read"):
            reader.read(aurora_pdf, file_id="x", file_name="report.pdf")
    finally:
        reader.close()


def test_typed_errors_cross_the_process_boundary(tmp_path):
    reader = IsolatedPdfReader(timeout_s=60)
    try:
        locked = write_encrypted_pdf(tmp_path / "locked.pdf", ["secret"], user_password="pw")
        with pytest.raises(PdfEncrypted, match="password") as info:
            reader.read(locked, file_id="x", file_name="locked.pdf")
        assert info.value.file_name == "locked.pdf"
        with pytest.raises(PdfNoText) as no_text:
            reader.read(
                write_pdf(tmp_path / "scan.pdf", [None, None]), file_id="x", file_name="scan.pdf"
            )
        assert no_text.value.pages == 2
    finally:
        reader.close()


def test_a_looping_parser_is_stopped_at_the_time_limit_and_the_next_file_works(aurora_pdf):
    reader = IsolatedPdfReader(timeout_s=2, reader=misbehaving_readers.hang)
    start = time.monotonic()
    with pytest.raises(PdfUnreadable, match="gave up after 2 s"):
        reader.read(aurora_pdf, file_id="x", file_name="loop.pdf")
    assert time.monotonic() - start < 15
    reader._reader = IsolatedPdfReader().__dict__["_reader"]  # a healthy parser again
    try:
        assert len(reader.read(aurora_pdf, file_id="x", file_name="ok.pdf")) == 5
    finally:
        reader.close()


def test_a_crashing_parser_fails_only_its_file(aurora_pdf):
    reader = IsolatedPdfReader(timeout_s=60, reader=misbehaving_readers.crash)
    with pytest.raises(PdfUnreadable, match="crashed"):
        reader.read(aurora_pdf, file_id="x", file_name="boom.pdf")
    reader.close()


def test_size_and_page_limits_are_reported_per_file(tmp_path, real_embedder, aurora_pdf):
    reader = IsolatedPdfReader(timeout_s=60, max_pages=3)
    store = ChunkStore(tmp_path / "chroma", embedder_id=real_embedder.model_id)
    small = write_pdf(tmp_path / "short.pdf", ["One page only, about the moon."])
    huge = tmp_path / "huge.pdf"
    huge.write_bytes(b"%PDF-1.4\n" + b"0" * 3_000_000)
    try:
        ingestor = Ingestor(real_embedder, store, read=reader.read, max_file_bytes=2_000_000)
        report = ingestor.ingest([aurora_pdf, huge, small])
    finally:
        reader.close()
    by_name = {r.file_name: r for r in report.results}
    assert by_name["aurora-report.pdf"].status == "failed"
    assert "5 pages is over the limit of 3" in by_name["aurora-report.pdf"].message
    assert (
        by_name["huge.pdf"].status == "failed"
        and "over the 2 MB limit" in by_name["huge.pdf"].message
    )
    assert by_name["short.pdf"].status == "ok"


def test_file_names_with_any_characters(tmp_path, real_embedder):
    store = ChunkStore(tmp_path / "chroma", embedder_id=real_embedder.model_id)
    name = "Rapport d'activité 2024 — «final» (v2) #1 ✓ [draft] ; rm -rf.pdf"
    path = write_pdf(tmp_path / name, ["Le rapport décrit les activités de l'année."])
    report = Ingestor(real_embedder, store).ingest([path])
    assert report.results[0].status == "ok" and report.results[0].file_name == name
    assert [d.file_name for d in store.documents()] == [name]
