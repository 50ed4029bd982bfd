"""Ingest -> Chroma on disk -> retrieval, with the real embedder and generated PDFs."""

import re
import threading
import time

import numpy as np
import pytest

from rag.errors import DocumentNotFound, EmbedderMismatch, StoreError
from rag.ingest import Ingestor
from rag.originals import Originals
from rag.retrieve import Retriever
from rag.store import ChunkStore
from tests.conftest import AURORA_PAGE, AURORA_PAGES
from tests.pdf_factory import write_encrypted_pdf, write_pdf, write_truncated_pdf

pytestmark = pytest.mark.integration


@pytest.fixture
def library(tmp_path, real_embedder):
    store = ChunkStore(tmp_path / "chroma", embedder_id=real_embedder.model_id)
    return Ingestor(real_embedder, store, chunk_tokens=120, chunk_overlap=20), Retriever(
        real_embedder, store
    )


def test_answer_page_is_found_on_the_right_page(library, aurora_pdf):
    ingestor, retriever = library
    report = ingestor.ingest([aurora_pdf])
    assert [(r.status, r.pages) for r in report.results] == [("ok", 5)]
    hits = retriever.search("What is the launch code of the Aurora project?", k=3)
    assert hits[0].chunk.file_name == "aurora-report.pdf"
    assert hits[0].chunk.page_start == AURORA_PAGE
    assert "7341" in hits[0].chunk.text
    assert hits[0].score > hits[-1].score


def test_progress_reports_pages_read_and_chunks_embedded(library, aurora_pdf):
    ingestor, _ = library
    events = []
    ingestor.ingest([aurora_pdf], on_progress=events.append)
    stages = [e.stage for e in events]
    assert stages[0] == "reading" and stages[-1] == "done"
    embedding = [e for e in events if e.stage == "embedding"]
    assert embedding[-1].done == embedding[-1].total > 0


def test_library_persists_on_disk_and_reingest_is_skipped(tmp_path, real_embedder, aurora_pdf):
    first = ChunkStore(tmp_path / "chroma", embedder_id=real_embedder.model_id)
    Ingestor(real_embedder, first).ingest([aurora_pdf])
    reopened = ChunkStore(tmp_path / "chroma", embedder_id=real_embedder.model_id)
    docs = reopened.documents()
    assert [(d.file_name, d.pages) for d in docs] == [("aurora-report.pdf", 5)]
    count = reopened.chunk_count()
    report = Ingestor(real_embedder, reopened).ingest([aurora_pdf])
    assert report.results[0].status == "skipped"
    assert reopened.chunk_count() == count


def test_changed_file_with_the_same_name_replaces_the_old_version(library, tmp_path):
    ingestor, retriever = library
    path = write_pdf(tmp_path / "notes.pdf", ["The meeting is on Monday in room four."])
    ingestor.ingest([path])
    write_pdf(path, ["The meeting moved to Friday in the big hall."])
    report = ingestor.ingest([path])
    assert report.results[0].status == "ok" and "replaced" in report.results[0].message
    docs = retriever.store.documents()
    assert len(docs) == 1
    hits = retriever.search("When is the meeting?", k=5)
    assert all("Friday" in h.chunk.text for h in hits)


class _Counting:
    """The real embedder, noting each text it is asked to embed."""

    def __init__(self, inner):
        self.inner = inner
        self.texts = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def embed_array(self, texts):
        self.texts.extend(texts)
        return self.inner.embed_array(texts)


_SEASONS = [
    "Spring: the orchard crew pruned the apple trees and mended the irrigation pipes.",
    "Summer: the beekeepers moved forty hives to the clover fields north of the river.",
    "Autumn: the harvest filled the cider press for nine days and the barn for the winter.",
    "Winter: the team repaired the tractors and planned new plantings of pear trees.",
]


def test_a_new_version_embeds_only_what_changed_and_gets_the_vectors_a_fresh_add_would(
    tmp_path, real_embedder
):
    counting = _Counting(real_embedder)
    store = ChunkStore(tmp_path / "chroma", embedder_id=real_embedder.model_id)
    ingestor = Ingestor(counting, store, chunk_tokens=120, chunk_overlap=20)
    path = write_pdf(tmp_path / "farm.pdf", _SEASONS)
    ingestor.ingest([path])
    first = store.chunk_count()
    edited = [
        *_SEASONS[:2],
        "Autumn: hail destroyed half of the apples in one afternoon.",
        _SEASONS[3],
    ]
    write_pdf(path, edited)
    counting.texts.clear()

    (result,) = ingestor.ingest([path]).results

    assert result.status == "ok", result.message
    assert f"{first - 1} chunks unchanged, not embedded again" in result.message
    assert len(counting.texts) == 1 and "hail destroyed" in counting.texts[0]
    (document,) = store.documents()
    fresh_store = ChunkStore(tmp_path / "fresh", embedder_id=real_embedder.model_id)
    Ingestor(real_embedder, fresh_store, chunk_tokens=120, chunk_overlap=20).ingest([path])
    (fresh_document,) = fresh_store.documents()
    kept = store.document_chunks(document.file_id)
    fresh = fresh_store.document_chunks(fresh_document.file_id)
    assert [c.indexed_text for c, _ in kept] == [c.indexed_text for c, _ in fresh]
    assert np.allclose([v for _, v in kept], [v for _, v in fresh], atol=1e-6)
    hits = Retriever(real_embedder, store).search("What happened to the apples?", k=1)
    assert "hail" in hits[0].chunk.text


def test_a_new_version_is_embedded_in_full_when_the_old_vectors_cannot_be_read(
    tmp_path, real_embedder, monkeypatch
):
    counting = _Counting(real_embedder)
    store = ChunkStore(tmp_path / "chroma", embedder_id=real_embedder.model_id)
    ingestor = Ingestor(counting, store, chunk_tokens=120, chunk_overlap=20)
    path = write_pdf(tmp_path / "farm.pdf", _SEASONS)
    ingestor.ingest([path])
    write_pdf(path, [*_SEASONS[:3], "Winter: snow closed the roads for a week."])
    counting.texts.clear()

    def broken(file_ids):
        raise StoreError("the disk is unreadable")

    monkeypatch.setattr(store, "vectors_by_text", broken)
    (result,) = ingestor.ingest([path]).results

    assert result.status == "ok" and "replaced" in result.message
    assert "unchanged" not in result.message
    assert len(counting.texts) == store.chunk_count() == 4
    assert "snow closed" in " ".join(
        c.text for c in store.chunk_texts(store.documents()[0].file_id)
    )


def test_bad_files_are_reported_and_the_batch_goes_on(library, tmp_path, aurora_pdf):
    ingestor, retriever = library
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "renamed.pdf").write_bytes(b"PK\x03\x04 this is a zip file")
    write_pdf(bad / "scan.pdf", [None, None, None])
    write_encrypted_pdf(bad / "locked.pdf", ["secret"], user_password="pw")
    write_truncated_pdf(bad / "cut.pdf", ["x y z"] * 3, keep=0.3)
    (bad / "notes.txt").write_text("not a pdf")
    report = ingestor.ingest(
        [
            bad / "renamed.pdf",
            bad / "scan.pdf",
            bad / "locked.pdf",
            bad / "cut.pdf",
            bad / "notes.txt",
            aurora_pdf,
        ]
    )
    by_name = {r.file_name: r for r in report.results}
    assert by_name["aurora-report.pdf"].status == "ok"
    assert by_name["scan.pdf"].status == "failed" and "3 page" in by_name["scan.pdf"].message
    assert by_name["locked.pdf"].status == "failed" and "password" in by_name["locked.pdf"].message
    assert by_name["renamed.pdf"].status == "failed"
    assert by_name["notes.txt"].status == "failed" and "not a PDF" in by_name["notes.txt"].message
    assert by_name["cut.pdf"].status == "failed"
    assert [d.file_name for d in retriever.store.documents()] == ["aurora-report.pdf"]


def test_same_named_files_of_one_batch_are_two_documents_named_by_their_folders(library, tmp_path):
    """2022/report.pdf and 2023/report.pdf from one folder: neither replaces the other."""
    ingestor, retriever = library
    folder = tmp_path / "reports"
    write_pdf(folder / "2022" / "report.pdf", ["Revenue in 2022 was 100 million krona."])
    write_pdf(folder / "2023" / "report.pdf", ["Revenue in 2023 was 250 million krona."])
    report = ingestor.ingest([folder])
    assert [(r.file_name, r.status) for r in report.results] == [
        ("2022/report.pdf", "ok"),
        ("2023/report.pdf", "ok"),
    ]
    assert all("replaced" not in r.message for r in report.results)
    hits = retriever.search("revenue", k=5, file_names=["2023/report.pdf"])
    assert [h.chunk.text for h in hits] == ["Revenue in 2023 was 250 million krona."]
    with pytest.raises(DocumentNotFound, match="several documents"):
        retriever.search("revenue", file_names=["report.pdf"])
    again = ingestor.ingest([folder])  # the same names again: nothing new
    assert [r.status for r in again.results] == ["skipped", "skipped"]


def test_folder_ingest_and_per_document_filter(library, tmp_path, aurora_pdf):
    ingestor, retriever = library
    folder = tmp_path / "docs"
    write_pdf(folder / "cooking.pdf", ["Bake the bread for forty minutes at two hundred degrees."])
    write_pdf(folder / "sub" / "aurora-copy.pdf", AURORA_PAGES)
    report = ingestor.ingest([folder])
    assert sorted(r.file_name for r in report.results) == ["aurora-copy.pdf", "cooking.pdf"]
    hits = retriever.search("launch code", k=3, file_names=["cooking.pdf"])
    assert hits and {h.chunk.file_name for h in hits} == {"cooking.pdf"}
    with pytest.raises(DocumentNotFound, match="cooking.pdf"):
        retriever.search("x", file_names=["missing.pdf"])


def test_delete_removes_the_document_and_its_chunks(library, aurora_pdf):
    ingestor, retriever = library
    ingestor.ingest([aurora_pdf])
    (file_id,) = retriever.file_ids(["aurora-report.pdf"])
    retriever.store.delete_document(file_id)
    assert retriever.store.documents() == [] and retriever.store.chunk_count() == 0
    assert retriever.search("launch code") == []


def test_chunk_text_is_kept_out_of_chromas_full_text_index_and_old_libraries_still_read(
    tmp_path, real_embedder, aurora_pdf
):
    store = ChunkStore(tmp_path / "chroma", embedder_id=real_embedder.model_id)
    Ingestor(real_embedder, store).ingest([aurora_pdf])
    (document,) = store.documents()
    pairs = store.document_chunks(document.file_id)
    raw = store._chunks.get(include=["documents", "metadatas"])
    assert set(raw["documents"]) == {None}  # nothing for Chroma's full-text index to do
    assert {m["text"] for m in raw["metadatas"]} == {chunk.text for chunk, _ in pairs}
    # A library written before: the text as Chroma's document, none in the metadata.
    store._chunks.delete(ids=[chunk.id for chunk, _ in pairs])
    store._chunks.add(
        ids=[chunk.id for chunk, _ in pairs],
        documents=[chunk.text for chunk, _ in pairs],
        embeddings=[vector for _, vector in pairs],
        metadatas=[
            {
                "file_id": chunk.file_id,
                "file_name": chunk.file_name,
                "page_start": chunk.page_start,
                "page_end": chunk.page_end,
                "context": chunk.context,
            }
            for chunk, _ in pairs
        ],
    )
    reopened = ChunkStore(tmp_path / "chroma", embedder_id=real_embedder.model_id)
    assert reopened._chunks.get(include=["metadatas"])["metadatas"][0].get("text") is None
    assert [chunk for chunk, _ in reopened.document_chunks(document.file_id)] == [
        chunk for chunk, _ in pairs
    ]
    hits = Retriever(real_embedder, reopened).search("the launch code of the Aurora project", k=3)
    assert hits[0].chunk.page_start == AURORA_PAGE and "7341" in hits[0].chunk.text


def _long_report(pages: int) -> list[str | bytes | None]:
    return [
        f"Section {n}. The station at kilometre {n * 7} logged {n * 13} birds and {n % 9} storms. "
        "Crews checked the river gauges, replaced two batteries and wrote up the weather."
        for n in range(pages)
    ]


def test_a_stop_right_after_a_file_is_done_names_the_next_file_read_ahead_as_under_way(
    library, tmp_path, aurora_pdf
):
    """The next file is read while one is embedded; a stop landing between the first file's
    line and the next file's turn (Ctrl+C just after a line is printed) reports that read as
    stopped under way, not as never started: the user saw the batch working on it."""
    import threading

    ingestor, _ = library
    second = write_pdf(tmp_path / "second.pdf", ["Read ahead, never stored."])
    third = write_pdf(tmp_path / "third.pdf", ["Not reached."])
    read_started, release = threading.Event(), threading.Event()
    load = ingestor._load

    def slow_load(path, name, password):
        if name == "second.pdf":
            read_started.set()
            release.wait(30)  # a long read, still under way when the stop comes
        return load(path, name, password)

    ingestor._load = slow_load
    stop = threading.Event()

    def watch(event):
        if event.result is not None and event.file_name == "aurora-report.pdf":
            assert read_started.wait(30), "the next file was not read ahead"
            stop.set()

    try:
        report = ingestor.ingest([aurora_pdf, second, third], on_progress=watch, cancel=stop)
    finally:
        release.set()
    outcome = {r.file_name: (r.status, r.message) for r in report.results}
    assert outcome == {
        "aurora-report.pdf": ("ok", outcome["aurora-report.pdf"][1]),
        "second.pdf": ("stopped", "not added: stopped while reading"),
        "third.pdf": ("stopped", "not added: not started"),
    }
    assert [d.file_name for d in ingestor.store.documents()] == ["aurora-report.pdf"]


def test_a_stopped_batch_keeps_the_files_done_and_leaves_nothing_of_the_rest(
    library, tmp_path, aurora_pdf
):
    import threading

    ingestor, retriever = library
    ingestor.embed_batch = 16  # the stop is checked between two calls to the embedder
    long = write_pdf(tmp_path / "long.pdf", _long_report(150))
    later = write_pdf(tmp_path / "later.pdf", ["Never read: the batch stops before this file."])
    stop = threading.Event()
    events = []

    def watch(event):
        events.append(event)
        if event.file_name == "long.pdf" and event.stage == "embedding" and event.done > 0:
            stop.set()  # the Stop button, once some of the long file is embedded

    report = ingestor.ingest([aurora_pdf, long, later], on_progress=watch, cancel=stop)
    outcome = {r.file_name: (r.status, r.message) for r in report.results}
    assert outcome["aurora-report.pdf"][0] == "ok"
    assert outcome["long.pdf"][0] == "stopped"
    assert re.fullmatch(
        r"not added: stopped while embedding \(\d+ of \d+ chunks done\)", outcome["long.pdf"][1]
    )
    assert outcome["later.pdf"] == ("stopped", "not added: not started")
    assert [d.file_name for d in retriever.store.documents()] == ["aurora-report.pdf"]
    assert {h.chunk.file_name for h in retriever.search("birds and storms logged", k=10)} == {
        "aurora-report.pdf"
    }  # no chunk of the stopped file was stored
    # The batches of it that were stored while the next ones were embedded were taken back.
    assert retriever.store.chunk_count() == retriever.store.documents()[0].chunks
    # Each file's last event carries its outcome (the CLI prints it at once).
    assert [(e.file_name, e.stage) for e in events if e.result] == [
        ("aurora-report.pdf", "done"),
        ("long.pdf", "stopped"),
        ("later.pdf", "stopped"),
    ]

    # A stop while a file is being read ends the batch without waiting for the read.
    def slow_read(path, **_):
        time.sleep(8)
        return []

    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    slow = Ingestor(ingestor.embedder, ingestor.store, read=slow_read)
    (result,) = slow.ingest([later], cancel=stop).results
    assert (result.status, result.message) == ("stopped", "not added: stopped while reading")
    assert time.monotonic() - started < 3
    # Nothing is left half done: the same files go in whole afterwards.
    report = ingestor.ingest([long, later])
    assert [r.status for r in report.results] == ["ok", "ok"]


class _Overlapping:
    """The real embedder; its first call waits (up to 10 s) until a second call has begun."""

    def __init__(self, inner):
        self.inner = inner
        self.calls = 0
        self.most_at_once = 0
        self._at_once = 0
        self._lock = threading.Lock()
        self._second = threading.Event()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def embed_array(self, texts):
        with self._lock:
            self.calls += 1
            first = self.calls == 1
            self._at_once += 1
            self.most_at_once = max(self.most_at_once, self._at_once)
            if self.calls == 2:
                self._second.set()
        try:
            if first:
                self._second.wait(10)
            return self.inner.embed_array(texts)
        finally:
            with self._lock:
                self._at_once -= 1


def test_the_next_batch_is_embedded_while_one_is_under_way_and_each_chunk_keeps_its_vector(
    tmp_path, real_embedder
):
    overlapping = _Overlapping(real_embedder)
    store = ChunkStore(tmp_path / "chroma", embedder_id=real_embedder.model_id)
    ingestor = Ingestor(overlapping, store, chunk_tokens=120, chunk_overlap=20, embed_batch=8)
    path = write_pdf(tmp_path / "long.pdf", _long_report(40))

    (result,) = ingestor.ingest([path]).results

    assert result.status == "ok", result.message
    assert overlapping.most_at_once == 2 and overlapping.calls == -(-result.chunks // 8)
    stored = store.document_chunks(store.documents()[0].file_id)
    assert len(stored) == result.chunks
    expected = real_embedder.embed_array([chunk.indexed_text for chunk, _ in stored])
    np.testing.assert_allclose(np.array([v for _, v in stored]), expected, atol=1e-6)


class _WaitsForTheStore:
    """The real embedder; its second call first waits (up to 10 s) until the store holds some
    chunks, and notes whether it saw them: they were stored while embedding went on."""

    def __init__(self, inner, store):
        self.inner = inner
        self.store = store
        self.calls = 0
        self.saw_stored_chunks = False

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def embed_array(self, texts):
        self.calls += 1
        if self.calls == 2:
            deadline = time.monotonic() + 10
            while not self.saw_stored_chunks and time.monotonic() < deadline:
                self.saw_stored_chunks = self.store.chunk_count() > 0
                time.sleep(0.02)
        return self.inner.embed_array(texts)


def test_each_batch_is_stored_while_the_next_is_embedded_and_searched_only_once_complete(
    tmp_path, real_embedder
):
    store = ChunkStore(tmp_path / "chroma", embedder_id=real_embedder.model_id)
    embedder = _WaitsForTheStore(real_embedder, store)
    ingestor = Ingestor(embedder, store, chunk_tokens=120, chunk_overlap=20, embed_batch=8)
    retriever = Retriever(real_embedder, store)
    searched: list[set[str]] = []

    def watch(event):
        if event.stage == "embedding" and event.done:  # some of it stored, not all of it
            searched.append({h.chunk.file_name for h in retriever.search("birds logged", k=5)})

    path = write_pdf(tmp_path / "long.pdf", _long_report(40))
    (result,) = ingestor.ingest([path], on_progress=watch).results

    assert result.status == "ok", result.message
    assert embedder.saw_stored_chunks
    assert searched and all(not names for names in searched)  # the half-stored file: not found
    assert {h.chunk.file_name for h in retriever.search("birds logged", k=5)} == {"long.pdf"}
    stored = store.document_chunks(store.documents()[0].file_id)
    assert len(stored) == result.chunks == store.chunk_count()
    expected = real_embedder.embed_array([chunk.indexed_text for chunk, _ in stored])
    np.testing.assert_allclose(np.array([v for _, v in stored]), expected, atol=1e-6)


def test_a_write_that_fails_midway_is_taken_back_and_was_never_searched(
    tmp_path, real_embedder, aurora_pdf
):
    from rag.types import Chunk, Document

    store = ChunkStore(tmp_path / "chroma", embedder_id=real_embedder.model_id)
    Ingestor(real_embedder, store).ingest([aurora_pdf])
    before = (store.documents(), store.chunk_count(), store.signature())
    file_id = "e" * 64
    chunks = [
        Chunk(f"{file_id[:24]}-{i:05d}", f"Glacier survey note {i}.", file_id, "half.pdf", 1, 1)
        for i in range(6)
    ]
    vectors = real_embedder.embed_array([c.indexed_text for c in chunks])
    document = Document(file_id, "half.pdf", 1, len(chunks), "2026-12-06")
    query = real_embedder.embed(["Glacier survey note"])[0]

    def write_half_then_fail():
        with store.writing(document, chunks, vectors.shape[1]) as write:
            write(chunks[:3], vectors[:3])
            assert store.chunk_count() == before[1] + 3
            assert {h.chunk.file_name for h in store.query(query, 10)} == {"aurora-report.pdf"}
            assert store.query(query, 10, file_ids=[file_id]) == []
            assert store.signature() == before[2]  # the keyword index is not rebuilt for it
            raise RuntimeError("the disk went away")

    with pytest.raises(RuntimeError, match="the disk went away"):
        write_half_then_fail()

    assert (store.documents(), store.chunk_count(), store.signature()) == before
    assert store._docs.get(ids=[file_id])["ids"] == []  # no journal record left either
    with store.writing(document, chunks, vectors.shape[1]) as write:
        write(chunks[3:], vectors[3:])
        write(chunks[:3], vectors[:3])
    assert sorted(d.file_name for d in store.documents()) == ["aurora-report.pdf", "half.pdf"]
    assert store.query(query, 1)[0].chunk.file_name == "half.pdf"


def test_a_library_built_with_another_embedder_is_refused(tmp_path, real_embedder, aurora_pdf):
    store = ChunkStore(tmp_path / "chroma", embedder_id=real_embedder.model_id)
    Ingestor(real_embedder, store).ingest([aurora_pdf])
    with pytest.raises(EmbedderMismatch, match="re-add"):
        ChunkStore(tmp_path / "chroma", embedder_id="some-other-model")


def test_the_library_keeps_each_indexed_pdf_until_its_document_goes(
    tmp_path, real_embedder, aurora_pdf
):
    store = ChunkStore(tmp_path / "chroma", embedder_id=real_embedder.model_id)
    originals = Originals(tmp_path / "files")
    ingestor = Ingestor(real_embedder, store, originals=originals)
    notes = write_pdf(tmp_path / "in" / "notes.pdf", ["The meeting is on Monday in room four."])
    broken = write_truncated_pdf(tmp_path / "in" / "broken.pdf", ["Cut off."])

    report = ingestor.ingest([aurora_pdf, notes, broken])
    assert [r.status for r in report.results] == ["ok", "ok", "failed"]
    ids = {d.file_name: d.file_id for d in store.documents()}
    for name, source in (("aurora-report.pdf", aurora_pdf), ("notes.pdf", notes)):
        assert originals.path(ids[name]).read_bytes() == source.read_bytes()
    assert len(list((tmp_path / "files").iterdir())) == 2  # nothing for the broken file
    assert store.document_count() == 2

    # A copy lost (or a library indexed before copies were kept) comes back when the file is
    # added again, though the document itself is skipped.
    originals.path(ids["aurora-report.pdf"]).unlink()
    assert ingestor.ingest([aurora_pdf]).results[0].status == "skipped"
    assert originals.path(ids["aurora-report.pdf"]).read_bytes() == aurora_pdf.read_bytes()

    # A changed file under the same name: the new version's copy replaces the old one's.
    write_pdf(notes, ["The meeting moved to Friday in the big hall."])
    assert "replaced" in ingestor.ingest([notes]).results[0].message
    new_id = next(d.file_id for d in store.documents() if d.file_name == "notes.pdf")
    assert originals.path(ids["notes.pdf"]) is None
    assert originals.path(new_id).read_bytes() == notes.read_bytes()

    ingestor.remove(new_id)
    assert originals.path(new_id) is None
    assert [d.file_name for d in store.documents()] == ["aurora-report.pdf"]
    assert store.document_count() == 1
    store.close()


@pytest.mark.parametrize("keep", [True, False])
def test_the_app_finds_a_cited_documents_copy_by_id_or_by_the_name_of_an_old_source(
    tmp_path, aurora_pdf, keep
):
    from app.settings import Settings
    from app.wiring import build_services

    services = build_services(Settings(data_dir=tmp_path / "data", rag={"keep_originals": keep}))
    try:
        services.ingestor.ingest([aurora_pdf])
        (doc,) = services.store.documents()
        found = services.original_pdf(doc.file_id, "renamed.pdf")
        if not keep:
            assert found is None and not (tmp_path / "data" / "files").exists()
            return
        assert found is not None and found.read_bytes() == aurora_pdf.read_bytes()
        assert services.original_pdf("", "aurora-report.pdf") == found  # saved without an id
        assert services.original_pdf("", "other.pdf") is None
        assert services.original_pdf("b" * 64, "aurora-report.pdf") is None  # another version
    finally:
        services.close()


def test_an_exported_library_carries_its_pdfs_so_cited_pages_open_after_an_import(
    tmp_path, real_embedder, aurora_pdf
):
    import json

    from rag.portable import export_library, import_library

    def library(name):
        store = ChunkStore(tmp_path / name / "chroma", embedder_id=real_embedder.model_id)
        return store, Originals(tmp_path / name / "files")

    store, originals = library("laptop")
    Ingestor(real_embedder, store, originals=originals).ingest([aurora_pdf])
    (doc,) = store.documents()
    export = tmp_path / "library.jsonl"
    assert export_library(store, export, originals=originals) == 1
    lean = tmp_path / "lean.jsonl"
    export_library(store, lean)
    assert "pdf" in json.loads(export.read_text().splitlines()[1])
    assert "pdf" not in json.loads(lean.read_text().splitlines()[1])
    store.close()

    # Without the PDFs: text and vectors only; adding the full export later brings the copy.
    target, copies = library("team")
    assert import_library(target, lean, originals=copies) == (1, 0)
    assert copies.path(doc.file_id) is None
    assert import_library(target, export, originals=copies) == (0, 1)
    assert copies.path(doc.file_id).read_bytes() == aurora_pdf.read_bytes()
    target.close()

    # A PDF that is not the indexed file (edited, damaged) is refused; the document still lands.
    record = json.loads(export.read_text().splitlines()[1])
    record["pdf"] = record["pdf"][:-8] + "AAAAAAA="
    forged = tmp_path / "forged.jsonl"
    forged.write_text(export.read_text().splitlines()[0] + "\n" + json.dumps(record) + "\n")
    other, other_copies = library("other")
    assert import_library(other, forged, originals=other_copies) == (1, 0)
    assert other_copies.path(doc.file_id) is None
    assert [d.file_name for d in other.documents()] == ["aurora-report.pdf"]
    other.close()


def test_export_and_import_problems_get_clear_messages_and_lose_nothing(
    tmp_path, real_embedder, aurora_pdf
):
    import json

    from rag.errors import RagError
    from rag.portable import export_library, import_library

    store = ChunkStore(tmp_path / "laptop" / "chroma", embedder_id=real_embedder.model_id)
    Ingestor(real_embedder, store).ingest([aurora_pdf])
    nowhere = tmp_path / "no-such-folder" / "library.jsonl"
    with pytest.raises(RagError, match="cannot write .*no-such-folder"):
        export_library(store, nowhere)
    assert not nowhere.parent.exists()
    export = tmp_path / "library.jsonl"
    export_library(store, export)
    store.close()

    target = ChunkStore(tmp_path / "team" / "chroma", embedder_id=real_embedder.model_id)
    with pytest.raises(RagError, match="cannot read .*missing.jsonl"):
        import_library(target, tmp_path / "missing.jsonl")
    # Cut short while copying: the second record breaks off; the first document still lands.
    header, record = export.read_text().splitlines()[:2]
    second = json.loads(record)
    second["document"]["file_id"] = "f" * 64
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join([header, record, json.dumps(second)[:300]]) + "\n")
    with pytest.raises(RagError, match="damaged at line 3.*1 documents were added"):
        import_library(target, cut)
    assert [d.file_name for d in target.documents()] == ["aurora-report.pdf"]
    target.close()
