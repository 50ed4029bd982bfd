"""PDF -> pages in worker processes, with a time limit per file.

A malformed or hostile PDF can make a parser loop for ever or crash; in a worker it only costs
that file: after `timeout_s` the workers are killed (and replaced) and the file is reported as
failed, while the app and the rest of the batch go on.

pypdf is pure Python and slow (~20-50 pages/s), so a long document is read by a worker per core:
each worker reads every n-th page, and reports the page count. Pages side by side cost
about the same, and runs of pages do not (in the dev set's largest 10-K, pages 9-144 took four
times as long as any later 136), so the workers finish together, and each opens the file once.
That 10-K (549 pages, workers started) took 2.8 s in runs of pages (48 first, while the other
worker waited, then four runs of 136), 2.47 s this way. Starting the workers at once, rather
than after a task that only counted the pages, saves an opening of the file: 16% of the reading
time of the dev set's three shortest PDFs (15-31 pages), 1% of the 10-K's. Cleaning (running
headers need every page) happens once all pages are back.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from rag.errors import PdfUnreadable
from rag.pdf import pages_from_text, read_raw
from rag.types import Page

log = logging.getLogger(__name__)
RawReader = Callable[..., tuple[int, list[str]]]  # read_raw's; must be importable by the worker


def _start_worker() -> None:
    """Each worker's set-up: quiet pypdf, and end with the app.

    pypdf warns on stderr about fonts it half understands and text it lays out roughly; that
    says nothing a user can act on (a page that fails is logged by `read_raw` itself).

    A worker whose app was killed (SIGKILL, a crash) would otherwise wait for its next task for
    ever, holding its memory: a thread waits for the app's end (the sentinel that
    multiprocessing gives every child of a spawned or fork-served pool) and ends the worker.
    """
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    app = multiprocessing.parent_process()
    if app is not None:
        threading.Thread(target=_end_with, args=(app,), name="end-with-app", daemon=True).start()


def _end_with(app: multiprocessing.process.BaseProcess) -> None:
    app.join()
    os._exit(0)


def _ready(hold_s: float) -> int:
    """A worker's first task, for `warm_up`: by now it has imported the reader and pypdf. It
    stays busy for `hold_s`, so that the pool, which starts a worker only when none is idle,
    starts one for each of the tasks submitted meanwhile."""
    time.sleep(hold_s)
    return os.getpid()


class IsolatedPdfReader:
    """Reads one PDF at a time in worker processes; `read` has `read_pdf`'s contract."""

    def __init__(
        self,
        *,
        timeout_s: float = 300.0,
        max_pages: int | None = None,
        reader: RawReader = read_raw,
        workers: int | None = None,
    ) -> None:
        """Args: seconds allowed per file, the page limit, the function the workers run
        (`read_raw`'s signature), and how many workers (None: one per CPU, at most 4)."""
        self.timeout_s = timeout_s
        self.max_pages = max_pages
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self._reader = reader
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Start the workers now, so that the first file is not kept waiting while they start
        and import pypdf (0.15-0.2 s on 2 cores; the app does this at start-up). Never raises:
        workers that fail to start are started again by the first `read`, which reports why."""
        with self._lock:
            try:
                pool = self._executor()
                for started in [pool.submit(_ready, 0.1) for _ in range(self.workers)]:
                    started.result(timeout=self.timeout_s)
            except Exception as exc:
                log.warning("the PDF reader did not start: %s", exc)
                self._discard()

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # forkserver/spawn, never fork: the app has threads (web server, torch) to not copy.
            if sys.platform.startswith("linux"):
                context = multiprocessing.get_context("forkserver")
                # The fork server imports the reader once; each worker, and each one started
                # in place of a killed one, is a fork of it with pypdf already imported.
                context.set_forkserver_preload([__name__])
            else:
                context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=_start_worker
            )
        return self._pool

    def _discard(self, *, wait: bool = False) -> None:
        """Kill the workers; `wait` for the pool's own thread to end too (on close: while it
        still shuts down, Python 3.11's exit can write to the pipe it is closing, and print an
        OSError traceback)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()  # a looping parser ignores polite requests
        pool.shutdown(wait=wait, cancel_futures=True)

    def read(
        self, path: Path, *, file_id: str, file_name: str, password: str | None = None
    ) -> list[Page]:
        """Pages of `path`, or a `PdfError` (including for a timeout or a crashed worker)."""
        with self._lock:  # one file at a time: its workers are the unit that gets killed
            deadline = time.monotonic() + self.timeout_s
            try:
                raw = self._read_pages(path, file_name, password, deadline)
            except FutureTimeout:
                self._discard()
                raise PdfUnreadable(
                    file_name,
                    f"gave up after {self.timeout_s:g} s: reading did not finish "
                    "(a malformed PDF; the limit is QUIPU_RAG__PDF_TIMEOUT_S)",
                ) from None
            except BrokenProcessPool:
                self._discard()
                raise PdfUnreadable(file_name, "the PDF crashed the reader") from None
        return pages_from_text(raw, file_id=file_id, file_name=file_name)

    def _read_pages(
        self, path: Path, file_name: str, password: str | None, deadline: float
    ) -> list[str]:
        """Raw page texts: every n-th page on each worker, which also reports the page count.

        The workers start at once, without a first task to count the pages (which opened the
        file while the other core waited). A file shorter than the workers leaves the extra
        ones with nothing to read.
        """
        pool = self._executor()
        options = {"file_name": file_name, "password": password, "max_pages": self.max_pages}

        def wait(future: Future[tuple[int, list[str]]]) -> tuple[int, list[str]]:
            return future.result(timeout=max(0.0, deadline - time.monotonic()))

        workers = self.workers
        futures = [
            pool.submit(self._reader, path, first=w, step=workers, **options)
            for w in range(workers)
        ]
        counts, shares = zip(*(wait(future) for future in futures), strict=True)
        count = counts[0]
        expected = [len(range(w, count, workers)) for w in range(workers)]
        if set(counts) != {count} or [len(share) for share in shares] != expected:
            # The workers did not read the same file: it was replaced while it was being read.
            raise PdfUnreadable(file_name, "the file changed while it was being read")
        return [shares[index % workers][index // workers] for index in range(count)]

    def close(self) -> None:
        """Stop the workers."""
        with self._lock:
            self._discard(wait=True)
