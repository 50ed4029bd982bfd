"""The command-line tools as outside tools call them: a real process, a real data dir."""

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AURORA_PAGE, ROOT, free_port, run_cli, stop_process
from tests.pdf_factory import write_pdf

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def cli_library(tmp_path_factory, aurora_pdf):
    data = tmp_path_factory.mktemp("cli-data")
    docs = tmp_path_factory.mktemp("cli-docs")
    write_pdf(docs / "cooking.pdf", ["Bake the bread for forty minutes at two hundred degrees."])
    (docs / "broken.pdf").write_bytes(b"not a pdf at all")
    result = run_cli("ingest", str(aurora_pdf), str(docs), data_dir=data)
    return data, result


def test_ingest_prints_one_line_per_file_and_fails_on_bad_ones(cli_library):
    _, result = cli_library
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3, result.stdout + result.stderr
    assert any(line.startswith("ok") and "aurora-report.pdf" in line for line in lines)
    assert any(line.startswith("ok") and "cooking.pdf" in line for line in lines)
    assert any(line.startswith("failed") and "broken.pdf" in line for line in lines)
    assert result.returncode == 1


def test_a_folder_without_pdfs_is_reported_and_fails(tmp_path, aurora_pdf):
    """Likely the wrong folder: a line names it, and the exit status is 1, not 0 as for a
    success; PDFs given beside it are still added."""
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("buy milk")
    alone = run_cli("ingest", str(notes), data_dir=tmp_path / "data")
    assert alone.returncode == 1
    assert alone.stdout.strip() == "failed   notes/: no PDF files in this folder or below"
    beside = run_cli("ingest", str(notes), str(aurora_pdf), data_dir=tmp_path / "data")
    assert beside.returncode == 1
    assert any(line.startswith("ok") for line in beside.stdout.splitlines()), beside.stdout


def test_library_json_lists_documents(cli_library):
    data, _ = cli_library
    result = run_cli("library", "--json", data_dir=data)
    docs = {d["file"]: d for d in json.loads(result.stdout)}
    assert set(docs) == {"aurora-report.pdf", "cooking.pdf"}
    assert docs["aurora-report.pdf"]["pages"] == 5 and docs["aurora-report.pdf"]["chunks"] >= 4
    assert docs["cooking.pdf"]["added"]


def test_search_json_one_line_per_query_with_pages(cli_library):
    data, _ = cli_library
    result = run_cli(
        "search",
        "Aurora launch code",
        "baking bread",
        "--k",
        "2",
        "--json",
        "--data-dir",
        str(data),
        data_dir=data,
    )
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2, result.stderr
    first, second = (json.loads(line) for line in lines)
    assert len(first) == 2 and {"file", "page", "score", "text"} <= set(first[0])
    assert (first[0]["file"], first[0]["page"]) == ("aurora-report.pdf", AURORA_PAGE)
    assert second[0]["file"] == "cooking.pdf"


def test_an_empty_query_or_an_empty_library_is_said_so(tmp_path):
    empty = run_cli("search", "   ", data_dir=tmp_path / "data")
    assert empty.returncode == 2 and "query is empty" in empty.stderr
    nothing = run_cli("search", "launch code", data_dir=tmp_path / "data")
    assert nothing.returncode == 0
    said = ["# launch code", "    nothing found: the library is empty"]
    assert nothing.stdout.splitlines() == said
    for k in ("0", "-1", "100000"):  # -1 used to return every page, 100000 to rank everything
        bad = run_cli("search", "launch code", "--k", k, data_dir=tmp_path / "data")
        assert bad.returncode == 1 and "between 1 and 100" in bad.stderr, bad.stderr


def test_search_file_filter(cli_library):
    data, _ = cli_library
    result = run_cli(
        "--data-dir",
        str(data),
        "search",
        "launch code",
        "--k",
        "3",
        "--file",
        "cooking.pdf",
        "--json",
        data_dir=data,
    )
    hits = json.loads(result.stdout)
    assert hits and {h["file"] for h in hits} == {"cooking.pdf"}
    missing = run_cli("search", "x", "--file", "nope.pdf", "--json", data_dir=data)
    assert missing.returncode == 1 and "nope.pdf" in missing.stderr
    by_part = run_cli(
        "search", "launch code", "--k", "3", "--file", "COOK", "--json", data_dir=data
    )
    assert {h["file"] for h in json.loads(by_part.stdout)} == {"cooking.pdf"}


def test_ask_streams_an_answer_then_its_sources(cli_library):
    data, _ = cli_library
    result = run_cli("ask", "What is the launch code of the Aurora project?", data_dir=data)
    assert result.returncode == 0, result.stderr
    answer, _, sources = result.stdout.partition("\nSources:\n")
    assert "7341" in answer
    assert f"[1] aurora-report.pdf, p. {AURORA_PAGE}" in sources


def test_model_flag_with_a_missing_file_is_a_clear_error(cli_library, tmp_path):
    data, _ = cli_library
    result = run_cli("ask", "hi", "--model", str(tmp_path / "missing.gguf"), data_dir=data)
    assert result.returncode == 1
    assert "error: Model not found" in result.stderr and "Traceback" not in result.stderr


def test_a_model_cut_short_is_refused_when_added_and_when_used(tmp_path):
    """A download that stopped half way: `models add` and `--model` both say what is wrong."""
    from models.bundled import bundled_model_path

    folder = tmp_path / "models-here"
    folder.mkdir()
    whole = folder / "whole.gguf"
    whole.write_bytes(bundled_model_path().read_bytes())
    (folder / "half.gguf").write_bytes(whole.read_bytes()[:100_000])
    added = run_cli("models", "add", str(folder), data_dir=tmp_path / "data")
    assert added.returncode == 0, added.stderr
    assert f"added    {whole}" in added.stdout
    assert "left out half.gguf: the GGUF header is cut short or damaged" in added.stdout
    used = run_cli("ask", "hi", "--model", str(folder / "half.gguf"), data_dir=tmp_path / "data")
    assert used.returncode == 1
    assert "half.gguf cannot be read: the GGUF header is cut short" in used.stderr
    assert "Traceback" not in used.stderr


def test_library_delete(tmp_path, aurora_pdf):
    data = tmp_path / "data"
    assert run_cli("ingest", str(aurora_pdf), data_dir=data).returncode == 0
    result = run_cli("library", "delete", "aurora-report.pdf", data_dir=data)
    assert result.returncode == 0 and "deleted" in result.stdout
    assert json.loads(run_cli("library", "--json", data_dir=data).stdout) == []
    again = run_cli("library", "delete", "aurora-report.pdf", data_dir=data)
    assert again.returncode == 1 and "no document named" in again.stderr
    assert run_cli("ingest", str(aurora_pdf), data_dir=data).returncode == 0
    part = run_cli("library", "delete", "aurora", data_dir=data)
    assert part.returncode == 1 and "no document named 'aurora'" in part.stderr
    stem = run_cli("library", "delete", "Aurora-Report", data_dir=data)
    assert stem.returncode == 0 and "deleted  aurora-report.pdf" in stem.stdout


def test_a_protected_pdf_is_explained_then_opened_with_its_password(tmp_path):
    from tests.pdf_factory import write_encrypted_pdf

    path = write_encrypted_pdf(
        tmp_path / "locked.pdf", ["The vault code is 4455."], user_password="pw"
    )
    data = tmp_path / "data"
    first = run_cli("ingest", str(path), data_dir=data)
    assert first.returncode == 1 and "ingest --password" in first.stdout
    wrong = run_cli("ingest", str(path), "--password", "nope", data_dir=data)
    assert "does not open it" in wrong.stdout
    right = run_cli("ingest", str(path), "--password", "pw", data_dir=data)
    assert right.returncode == 0 and right.stdout.startswith("ok")


def test_overlong_and_empty_questions_get_clear_messages(cli_library):
    data, _ = cli_library
    long = run_cli("ask", "why " * 30_000, data_dir=data)
    assert long.returncode == 1 and "too long for the model's context window" in long.stderr
    assert "Traceback" not in long.stderr


def test_unusable_settings_get_one_line_each_not_a_traceback(tmp_path):
    bad_port = run_cli("--port", "99999", "--no-browser", data_dir=tmp_path / "data")
    assert bad_port.returncode == 1
    assert "invalid setting: QUIPU_UI__PORT (--port) = 99999" in bad_port.stderr
    (tmp_path / "a-file").write_text("not a folder")
    no_folder = run_cli("library", data_dir=tmp_path / "a-file" / "library")
    assert no_folder.returncode == 1
    assert "as the data folder" in no_folder.stderr and "--data-dir" in no_folder.stderr
    for result in (bad_port, no_folder):
        assert "Traceback" not in result.stderr and "Something went wrong" not in result.stderr


@contextmanager
def launched(data_dir: Path, *flags: str) -> Iterator[tuple[subprocess.Popen, Path]]:
    """`python launch.py --no-browser` started as a user starts it: (the process, its log)."""
    log_path = data_dir.parent / f"{data_dir.name}.log"
    command = [sys.executable, "launch.py", "--data-dir", str(data_dir), "--no-browser", *flags]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log)
    try:
        yield process, log_path
    finally:
        stop_process(process)


def wait_until(ready: Callable[[], object], process: subprocess.Popen, log_path: Path) -> Any:
    """`ready()`'s first true value, while the app runs (its log is the failure message)."""
    deadline = time.monotonic() + 180
    while not (found := ready()):
        assert process.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, f"not ready: {log_path.read_text()}"
        time.sleep(0.5)
    return found


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_the_launcher_serves_the_page_and_a_sigterm_stops_the_app(tmp_path):
    """`python launch.py` becomes the app: stopping it (systemd, `kill`) leaves nothing serving."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with launched(tmp_path / "data", "--port", str(port)) as (process, log_path):
        wait_until(lambda: _serves(url), process, log_path)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) is not None
        assert not _serves(url)  # no orphaned app still holding the port


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_signals_repeated_while_the_app_closes_do_not_break_the_close(tmp_path):
    """Ctrl+C pressed again, or `kill` repeated, while the app shuts down: it still closes the
    library and exits quietly instead of dying inside the close with a traceback."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with launched(tmp_path / "data", "--port", str(port)) as (process, log_path):
        wait_until(lambda: _serves(url), process, log_path)
        time.sleep(3)  # the model is loaded once the page is up: closing has it to free
        stopped_by = time.monotonic() + 30
        while process.poll() is None:
            assert time.monotonic() < stopped_by, "the app did not stop"
            process.send_signal(signal.SIGTERM)
            time.sleep(0.02)
        assert process.returncode in (0, 130), log_path.read_text()  # as for one signal
        assert "Traceback" not in log_path.read_text()
        assert not _serves(url)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_during_an_ingest_keeps_the_files_done_and_says_what_was_not_added(
    tmp_path, aurora_pdf
):
    """Each file's line comes as soon as it is done; Ctrl+C then drops the file under way
    (nothing of it stored), skips the rest, reports all three and exits 130."""
    long = write_pdf(
        tmp_path / "long.pdf",
        [f"Entry {n}: the gauge at mile {n * 3} read {n * 11} centimetres." for n in range(900)],
    )
    later = write_pdf(tmp_path / "later.pdf", ["Not reached."])
    data = tmp_path / "data"
    command = [sys.executable, "launch.py", "ingest", str(aurora_pdf), str(long), str(later)]
    process = subprocess.Popen(
        [*command, "--data-dir", str(data)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = process.stdout.readline()  # printed before the batch ends
        assert first.startswith("ok       aurora-report.pdf: 5 pages"), first
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=60)
    finally:
        stop_process(process)
    assert process.returncode == 130, errors
    assert re.search(r"^stopped  long\.pdf: not added: stopped while \w+", rest, re.M), rest
    assert "stopped  later.pdf: not added: not started" in rest
    assert "Traceback" not in errors and "stopping:" in errors
    listed = run_cli("library", "--json", data_dir=data)
    assert [d["file"] for d in json.loads(listed.stdout)] == ["aurora-report.pdf"]


def test_a_taken_port_gets_a_clear_message_or_for_the_default_port_the_next_free_one(tmp_path):
    """Another program on the port: `--port N` explains itself; the default port (7860, often
    another Gradio app's) moves on to the next free one, which the log names."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        chosen = subprocess.run(
            [sys.executable, "launch.py", "--data-dir", str(tmp_path / "a"), "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert chosen.returncode == 1
    assert f"port {port} is in use" in chosen.stderr and "--port" in chosen.stderr
    assert "Traceback" not in chosen.stderr

    default = 7860
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:  # the default port taken, by this test unless something else already has it
            blocker.bind(("127.0.0.1", default))
            blocker.listen()
        except OSError:
            pass
        with launched(tmp_path / "b") as (process, log_path):
            found = wait_until(
                lambda: re.search(r"http://127\.0\.0\.1:(\d+)", log_path.read_text()),
                process,
                log_path,
            )
            served = int(found.group(1))
            assert served != default
            assert _serves(f"http://127.0.0.1:{served}/")


def _serves(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False
