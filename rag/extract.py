"""PDF -> pages in a separate worker process, with a time limit per file.

A malformed or hostile PDF can make a parser loop for ever or crash; in the worker it only costs
that file: after `timeout_s` the worker is killed (and replaced) and the file is reported as
failed, while the app and the rest of the batch go on.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from rag.errors import PdfUnreadable
from rag.pdf import read_pdf
from rag.types import Page

Reader = Callable[..., list[Page]]  # read_pdf's signature; must be importable by the worker


class IsolatedPdfReader:
    """Reads one PDF at a time in a worker process; `read` has `read_pdf`'s contract."""

    def __init__(
        self, *, timeout_s: float = 300.0, max_pages: int | None = None, reader: Reader = read_pdf
    ) -> None:
        """Args: seconds allowed per file, the page limit, and the function the worker runs."""
        self.timeout_s = timeout_s
        self.max_pages = max_pages
        self._reader = reader
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # forkserver/spawn, never fork: the app has threads (web server, torch) to not copy.
            method = "forkserver" if sys.platform.startswith("linux") else "spawn"
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context(method))
        return self._pool

    def _discard(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()  # a looping parser ignores polite requests
        pool.shutdown(wait=False, cancel_futures=True)

    def read(
        self, path: Path, *, file_id: str, file_name: str, password: str | None = None
    ) -> list[Page]:
        """Pages of `path`, or a `PdfError` (including for a timeout or a crashed worker)."""
        with self._lock:  # one file at a time: the worker is the unit that gets killed
            future = self._executor().submit(
                self._reader,
                path,
                file_id=file_id,
                file_name=file_name,
                password=password,
                max_pages=self.max_pages,
            )
            try:
                return future.result(timeout=self.timeout_s)
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

    def close(self) -> None:
        """Stop the worker."""
        with self._lock:
            self._discard()
