"""PDF files/folders -> indexed documents, reported file by file.

`Ingestor.run(paths)` is a generator of `IngestProgress` events that returns an `IngestReport`.
A file's id is the sha256 of its bytes: identical bytes are skipped; a changed file under a name
already in the library replaces the old version (after the new one is fully stored), and the
chunks the two versions share keep their vectors instead of being embedded again. Each file is
processed on its own: a broken PDF is reported as failed and the batch goes on. With `originals`,
each indexed file's bytes are kept too (`rag.originals`), so its cited pages can be opened.

A batch can be stopped (`cancel`): the file being read or embedded is dropped within a fraction
of a second (a document is stored whole or not at all, so nothing of it is left), the files
after it are not started, and the files already added stay.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import logging
import threading
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from rag.chunk import split_pages
from rag.embed import Embedder
from rag.errors import PdfError, RagError
from rag.originals import Originals
from rag.pdf import read_pdf
from rag.store import ChunkStore
from rag.types import (
    Chunk,
    Document,
    FileResult,
    IngestProgress,
    IngestReport,
    Page,
    Stage,
    Status,
)

log = logging.getLogger(__name__)

# A file after the reader thread: its id, pages, size and path, or why it goes no further.
_Loaded = FileResult | tuple[str, list[Page], int, Path]
_STOP_POLL_S = 0.1  # how often a stop is looked for while a file is being read


# The stage of a file's last progress event, which carries its result.
_LAST_STAGE: dict[Status, Stage] = {
    "ok": "done",
    "skipped": "skipped",
    "failed": "failed",
    "stopped": "stopped",
}


class _Stopped(Exception):
    """The batch was stopped while this file was under way (`why` says at which step)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given, folders replaced by the PDFs below them (sorted); order kept, no repeats."""
    out: list[Path] = []
    for path in paths:
        found = (
            sorted(p for p in path.rglob("*") if p.suffix.lower() == ".pdf")
            if path.is_dir()
            else [path]
        )
        out.extend(p for p in found if p not in out)
    return out


def library_names(files: Sequence[Path], given: Mapping[Path, str]) -> dict[Path, str]:
    """Each file's name in the library: the one `given` (an upload's own name), else the file's.

    A file under the name of one already in the library replaces it (a new version). Files of
    one batch that would share a name, though (2022/report.pdf and 2023/report.pdf from one
    folder), are different documents: they are told apart by as many of their folders as it
    takes ("2022/report.pdf"), or, when their names were given (uploads, whose folders mean
    nothing), numbered after the first ("report (2).pdf").
    """
    names = {path: given.get(path) or path.name for path in files}
    alike: dict[str, list[Path]] = {}
    for path in files:
        if path not in given:
            alike.setdefault(path.name, []).append(path)
    for group in alike.values():
        if len(group) < 2:
            continue
        resolved = [path.resolve() for path in group]
        for depth in range(2, max(len(r.parts) for r in resolved) + 1):
            tails = ["/".join(r.parts[-depth:]).lstrip("/") for r in resolved]
            if len(set(tails)) == len(tails):
                break
        names.update(zip(group, tails, strict=True))
    taken: set[str] = set()
    for path in files:
        name = names[path]
        stem, dot, suffix = name.rpartition(".")
        number = 1
        while names[path] in taken:
            number += 1
            names[path] = f"{stem} ({number}).{suffix}" if dot else f"{name} ({number})"
        taken.add(names[path])
    return names


def drain(
    events: Generator[IngestProgress, None, IngestReport],
    on_progress: Callable[[IngestProgress], None] | None = None,
) -> IngestReport:
    """Run an ingest's progress generator to its end, handing each event to `on_progress`."""
    while True:
        try:
            event = next(events)
        except StopIteration as end:
            report: IngestReport = end.value
            return report
        if on_progress:
            on_progress(event)


class Ingestor:
    """Reads, chunks, embeds and stores PDFs."""

    def __init__(
        self,
        embedder: Embedder,
        store: ChunkStore,
        *,
        chunk_tokens: int = 128,
        chunk_overlap: int = 24,
        embed_batch: int = 256,
        read: Callable[..., list[Page]] = read_pdf,
        max_file_bytes: int | None = None,
        originals: Originals | None = None,
    ) -> None:
        """Set up an ingestor.

        Args:
            embedder: turns chunk texts into vectors.
            store: where chunks and documents go.
            chunk_tokens: chunk size in embedder tokens.
            chunk_overlap: tokens repeated between neighbouring chunks.
            embed_batch: chunks per embedding call (and per progress event, and per check of
                `cancel`): about a second's work on 2 cores. The next call is made while one
                is under way, so that the embedder's workers go from one to the next without
                waiting: the ONNX embedder queues the texts of both on its workers, in order
                (batches of 256 of the dev set's largest PDF: 4% less time than one call after
                another); the torch embedder runs one call at a time.
            read: PDF -> pages (`read_pdf`, or an `IsolatedPdfReader.read` with a time limit).
            max_file_bytes: larger files are refused before they are read.
            originals: where to keep a copy of each indexed file (None: keep none).
        """
        self.embedder = embedder
        self.store = store
        self.read = read
        self.max_file_bytes = max_file_bytes
        self.chunk_tokens = chunk_tokens
        self.chunk_overlap = chunk_overlap
        self.embed_batch = embed_batch
        self.originals = originals
        # The batch waited for and the one queued behind it (`_one`).
        self._ahead = ThreadPoolExecutor(max_workers=2, thread_name_prefix="embed-ahead")

    def run(
        self,
        paths: Iterable[Path],
        *,
        names: dict[Path, str] | None = None,
        password: str | None = None,
        cancel: threading.Event | None = None,
    ) -> Generator[IngestProgress, None, IngestReport]:
        """Ingest files and folders, yielding progress; returns the per-file report.

        Args:
            paths: PDF files or folders of PDFs.
            names: display names for some paths (uploads arrive under temporary names).
            password: tried on encrypted PDFs (after the empty password).
            cancel: when set, the batch stops (see the module's doc); the files it did not add
                are reported as "stopped".
        """
        files = expand_paths(Path(p) for p in paths)
        names = library_names(files, names or {})
        stop = cancel or threading.Event()
        results: list[FileResult] = []
        # While one file is embedded (both cores busy in ONNX Runtime, which releases the GIL),
        # the next one is already being read: one reader thread, files in order.
        reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pdf-read")
        try:
            loads: dict[int, Future[_Loaded]] = {}

            def load(i: int) -> None:
                if i < len(files) and i not in loads and not stop.is_set():
                    path = files[i]
                    loads[i] = reader.submit(self._load, path, names[path], password)

            for index, path in enumerate(files):
                name = names[path]
                try:
                    if stop.is_set():
                        # This file may already be being read ahead, while the last one was
                        # embedded: then the stop caught it under way, as the user would put it.
                        ahead = loads.get(index)
                        reading = ahead is not None and not ahead.done()
                        raise _Stopped("stopped while reading" if reading else "not started")
                    load(index)
                    result = yield from self._one(
                        loads.pop(index), name, index, len(files), load, stop
                    )
                except _Stopped as stopped:
                    result = FileResult(name, "stopped", f"not added: {stopped.why}")
                except PdfError as exc:
                    result = FileResult(name, "failed", exc.reason)
                except RagError as exc:
                    result = FileResult(name, "failed", str(exc))
                except OSError as exc:
                    result = FileResult(
                        name, "failed", f"cannot read the file: {exc.strerror or exc}"
                    )
                except Exception as exc:  # never let one file end the batch
                    log.exception("ingest of %s failed", name)
                    result = FileResult(
                        name, "failed", f"unexpected error: {type(exc).__name__}: {exc}"
                    )
                results.append(result)
                yield IngestProgress(
                    name, _LAST_STAGE[result.status], 1, 1, index, len(files), result
                )
        finally:
            # No more reads. When stopped, a read under way finishes in the background rather
            # than holding the caller up; otherwise (the batch ended, or its caller gave up on
            # the generator) it is waited for, as before.
            reader.shutdown(wait=not stop.is_set(), cancel_futures=True)
        return IngestReport(tuple(results))

    def ingest(
        self,
        paths: Iterable[Path],
        *,
        names: dict[Path, str] | None = None,
        on_progress: Callable[[IngestProgress], None] | None = None,
        password: str | None = None,
        cancel: threading.Event | None = None,
    ) -> IngestReport:
        """`run` without the generator: progress goes to `on_progress`."""
        return drain(self.run(paths, names=names, password=password, cancel=cancel), on_progress)

    def remove(self, file_id: str) -> None:
        """Take a document out of the library: its chunks, vectors and kept copy.

        Raises:
            StoreError: the store could not delete it (the copy is then kept too).
        """
        self.store.delete_document(file_id)
        if self.originals is not None:
            self.originals.remove(file_id)

    def _load(self, path: Path, name: str, password: str | None) -> _Loaded:
        """Checks, hashing and reading of one file (runs in the reader thread)."""
        if not path.is_file():
            return FileResult(name, "failed", "no such file")
        if path.suffix.lower() != ".pdf":
            return FileResult(name, "failed", "not a PDF (only .pdf files are indexed)")
        size = path.stat().st_size
        if self.max_file_bytes is not None and size > self.max_file_bytes:
            return FileResult(
                name,
                "failed",
                f"{size / 1e6:.0f} MB is over the {self.max_file_bytes / 1e6:.0f} MB limit "
                "(QUIPU_RAG__MAX_FILE_MB)",
            )
        file_id = file_sha256(path)
        skipped = self._already_indexed(file_id, name)
        if skipped is not None:
            if self.originals is not None:  # indexed before copies were kept, or one was lost
                self.originals.keep(file_id, path)
            return skipped
        pages = self.read(path, file_id=file_id, file_name=name, password=password)
        return file_id, pages, size, path

    def _already_indexed(self, file_id: str, name: str) -> FileResult | None:
        existing = self.store.get_document(file_id)
        if existing is None:
            return None
        return FileResult(
            name,
            "skipped",
            f"already in the library as {existing.file_name} "
            f"({existing.pages} pages, {existing.chunks} chunks)",
            existing.pages,
            existing.chunks,
        )

    def _vectors_of(self, earlier: list[Document], name: str) -> dict[str, np.ndarray]:
        """The vectors of the documents this file replaces, by embedded text: the chunks the new
        version shares with them keep theirs instead of being embedded again (the same text gets
        the same vector). Empty when they cannot be read: then everything is embedded, as for a
        new file."""
        try:
            return self.store.vectors_by_text([d.file_id for d in earlier])
        except RagError as exc:
            log.warning("embedding %s in full: %s", name, exc)
            return {}

    def _one(
        self,
        loading: Future[_Loaded],
        name: str,
        index: int,
        count: int,
        load_next: Callable[[int], None],
        stop: threading.Event,
    ) -> Generator[IngestProgress, None, FileResult]:
        def progress(stage: str, done: int, total: int) -> IngestProgress:
            return IngestProgress(name, stage, done, total, index, count)  # type: ignore[arg-type]

        yield progress("reading", 0, 1)
        while True:
            try:
                loaded = loading.result(timeout=_STOP_POLL_S)
                break
            except FutureTimeout:
                if stop.is_set():
                    raise _Stopped("stopped while reading") from None
        load_next(index + 1)  # read the next file while this one is embedded
        if isinstance(loaded, FileResult):
            return loaded
        file_id, pages, size, path = loaded
        # The same bytes may have been added meanwhile (twice in one batch): check again.
        skipped = self._already_indexed(file_id, name)
        if skipped is not None:
            return skipped
        yield progress("chunking", len(pages), len(pages))
        cutting = split_pages(
            pages,
            max_tokens=self.chunk_tokens,
            overlap_tokens=self.chunk_overlap,
            count_tokens=self.embedder.count_tokens,
            count_many=getattr(self.embedder, "count_tokens_many", None),  # see `Embedder`
        )
        embed = getattr(self.embedder, "embed_array", self.embedder.embed)
        replaced = self.store.documents_named(name)  # a changed file under the same name
        known = self._vectors_of(replaced, name)

        def vectors_of(batch: Sequence[Chunk]) -> np.ndarray:
            texts = [c.indexed_text for c in batch]
            new = [text for text in texts if text not in known]
            fresh = iter(np.asarray(embed(new), dtype=np.float32) if new else ())
            return np.array([known[t] if t in known else next(fresh) for t in texts], np.float32)

        # Cutting is one thread of Python: the first batch is embedded meanwhile, on the cores
        # it would leave idle. Then the next batch is queued while one is waited for (why:
        # `embed_batch` in `Ingestor.__init__`), and each batch is stored as it comes back,
        # while the next ones are embedded: OpenVINO's and ONNX Runtime's runs need no GIL, so
        # the single thread that Chroma's `add` holds it for does not stall them.
        first = list(itertools.islice(cutting, self.embed_batch))
        queued = collections.deque([self._ahead.submit(vectors_of, first)])
        chunks = first + list(cutting)  # a new list: `first` is being read by the other thread
        document = Document(
            file_id=file_id,
            file_name=name,
            pages=len(pages),
            chunks=len(chunks),
            added=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            size_bytes=size,
        )
        yield progress("embedding", 0, len(chunks))
        try:
            # Stored whole or not at all: the parts written are taken back if anything fails
            # or the batch is stopped, and are not searched before the document is complete.
            with self.store.writing(document, chunks, self.embedder.dimension) as write:
                for start in range(0, len(chunks), self.embed_batch):
                    if stop.is_set():
                        done = f"{start} of {len(chunks)} chunks done"
                        raise _Stopped(f"stopped while embedding ({done})")
                    batch = chunks[start : start + self.embed_batch]
                    following = chunks[start + self.embed_batch : start + 2 * self.embed_batch]
                    if following:
                        queued.append(self._ahead.submit(vectors_of, following))
                    write(batch, queued.popleft().result())
                    yield progress("embedding", start + len(batch), len(chunks))
                if stop.is_set():
                    raise _Stopped("stopped before it was stored")
                yield progress("storing", 0, 1)  # from here on the document is stored whole
        finally:
            for call in queued:  # stopped or failed: drop the batch queued ahead (if not begun)
                call.cancel()
        if self.originals is not None:
            self.originals.keep(file_id, path)
        for old in replaced:  # a changed file under the same name: the new version wins
            self.remove(old.file_id)
        note = ""
        if replaced:
            kept = sum(c.indexed_text in known for c in chunks)
            unchanged = f"; {kept} chunks unchanged, not embedded again" if kept else ""
            note = f" (replaced the earlier version of {name}{unchanged})"
        return FileResult(
            name, "ok", f"{len(pages)} pages, {len(chunks)} chunks{note}", len(pages), len(chunks)
        )
