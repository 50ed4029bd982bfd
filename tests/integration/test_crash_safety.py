"""Nothing lost: a real ingest killed with SIGKILL at random moments leaves a consistent library."""

import json
import os
import random
import signal
import struct
import subprocess
import sys
import time
from collections import Counter

import pytest

from rag.errors import StoreError
from rag.store import ChunkStore
from tests.conftest import ROOT, run_cli
from tests.pdf_factory import write_pdf

pytestmark = [pytest.mark.integration, pytest.mark.slow]
KILLS = 5


def library_state(data_dir, embedder_id):
    """(documents, chunk counts per file id, unfinished journal records) as found on disk."""
    store = ChunkStore(data_dir / "chroma", embedder_id=embedder_id)
    unfinished = store._docs.get(where={"status": {"$ne": "complete"}})["ids"]
    chunks = Counter(m["file_id"] for m in store._chunks.get(include=["metadatas"])["metadatas"])
    return store, unfinished, chunks


def assert_consistent(store):
    docs = {d.file_id: d for d in store.documents()}
    chunks = Counter(m["file_id"] for m in store._chunks.get(include=["metadatas"])["metadatas"])
    assert set(chunks) <= set(docs), "chunks of a document that is not in the library"
    for file_id, doc in docs.items():
        assert chunks[file_id] == doc.chunks, f"{doc.file_name} is half present"


def test_sigkill_at_random_points_never_leaves_half_a_document(tmp_path, real_embedder):
    docs = tmp_path / "docs"
    for n in range(3):
        pages = [
            f"Document {n} page {p}. "
            + " ".join(f"Sentence {s} about topic {n}-{p}." for s in range(40))
            for p in range(25)
        ]
        write_pdf(docs / f"doc{n}.pdf", pages)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    data = tmp_path / "data"

    start = time.monotonic()
    full = run_cli("ingest", str(docs), data_dir=tmp_path / "timing")
    duration = time.monotonic() - start
    assert full.returncode == 0, full.stderr

    rng = random.Random(20261122)
    mid_write = 0
    for _ in range(KILLS):
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "ingest", str(docs), "--data-dir", str(data)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.3, 1.0) * duration)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        mid_write += restart_and_check(data / "chroma", "real")
    print(f"\n{KILLS} kills, {mid_write} of them during a write; library consistent after each")

    final = run_cli("ingest", str(docs), data_dir=data)
    assert final.returncode == 0, final.stderr
    store, unfinished, _ = library_state(data, real_embedder.model_id)
    assert not unfinished
    assert sorted(d.file_name for d in store.documents()) == ["doc0.pdf", "doc1.pdf", "doc2.pdf"]
    assert_consistent(store)


WRITER = """
import sys
from rag.store import ChunkStore
from rag.types import Chunk, Document
from tests.fakes import SeededEmbedder
embedder = SeededEmbedder(16)
store = ChunkStore(__import__("pathlib").Path(sys.argv[1]), embedder_id=embedder.model_id)
for n in range(100):
    file_id = f"{n:024x}" + "0" * 40
    chunks = [Chunk(f"{file_id[:24]}-{i:05d}", f"text {n} {i} run {sys.argv[2]}", file_id,
                    f"doc{n}.pdf", 1, 1) for i in range(3000)]
    vectors = embedder.embed([c.text for c in chunks])
    doc = Document(file_id, f"doc{n}.pdf", 1, len(chunks), "2026-01-01")
    store.add_document(doc, chunks, vectors)
    if n % 2:
        store.delete_document(f"{n - 1:024x}" + "0" * 40)
"""


def test_sigkill_during_chroma_writes_and_deletes_is_rolled_back(tmp_path):
    path = tmp_path / "chroma"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    rng = random.Random(7)
    mid_write = 0
    for attempt in range(10):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(attempt)], env=env, cwd=ROOT
        )
        time.sleep(rng.uniform(3.5, 8.0))  # start-up is ~3 s; then it writes without pause
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        mid_write += restart_and_check(path)
    print(f"\n10 kills of a Chroma writer, {mid_write} with a write or delete in flight")
    assert mid_write >= 5, "the kills should mostly land inside writes"


CHECKER = """
import logging, sys
from collections import Counter
from pathlib import Path
from rag.repair import open_library
from rag.store import ChunkStore
from tests.fakes import SeededEmbedder
logging.basicConfig(level=logging.INFO, format="%(message)s")
path = Path(sys.argv[1])
if sys.argv[2] == "real":
    from app.settings import Settings
    from rag.onnx_embed import make_embedder
    settings = Settings()
    embedder = make_embedder(None, backend=settings.rag.embed_backend,
                             cache_dir=settings.cache_dir / "embedders")
else:
    embedder = SeededEmbedder(16)
store = open_library(path, embedder=embedder)
docs = {d.file_id: d for d in store.documents()}
chunks = Counter(m["file_id"] for m in store._chunks.get(include=["metadatas"])["metadatas"])
assert set(chunks) <= set(docs), ("orphan chunks", set(chunks) - set(docs))
for file_id, doc in docs.items():
    assert chunks[file_id] == doc.chunks, (doc.file_name, chunks[file_id], doc.chunks)
    sample = store.chunk_texts(file_id)[:: max(1, doc.chunks // 3)]
    for chunk, vector in store.get_chunks([c.id for c in sample]):
        expected = embedder.embed([chunk.indexed_text])[0]
        # embedded again in this process: the same vector, within rounding
        assert sum(a * b for a, b in zip(vector, expected)) > 0.99, chunk.id
        # Found by its own vector. HNSW is approximate, and the writer re-adds the same ids with
        # new vectors run after run, which leaves those points harder to reach: look in the top
        # 10 (a search ranks 50) rather than at the top 1.
        hits = store.query(vector, 10)
        assert any(h.chunk.id == chunk.id and h.score > 0.999 for h in hits), chunk.id
"""


def reopen(path, embedder="seeded") -> subprocess.CompletedProcess[str]:
    """Restart as the app would: a fresh process opens the library (checking, repairing and
    recovering it as needed), then checks that every document is whole and searchable."""
    return subprocess.run(
        [sys.executable, "-c", CHECKER, str(path), embedder],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def restart_and_check(path, embedder="seeded") -> bool:
    """`reopen`, which must succeed. Returns whether that start had to roll back a write or
    delete in flight."""
    check = reopen(path, embedder)
    assert check.returncode == 0, check.stdout + check.stderr
    return "finished or undid interrupted work" in check.stderr


def test_recovery_leaves_a_live_writer_alone(tmp_path, real_embedder):
    store = ChunkStore(tmp_path / "chroma", embedder_id=real_embedder.model_id)
    store._mark("f" * 64, "pending", "busy.pdf")  # this very process: alive
    assert store.recover() == []
    store._docs.upsert(
        ids=["e" * 64],
        embeddings=[[0.0]],
        metadatas=[
            {
                "file_name": "dead.pdf",
                "status": "pending",
                "pid": 2**22 + 7,
                "host": __import__("socket").gethostname(),
                "since": time.time(),
            }
        ],
    )
    assert store.recover() == ["dead.pdf"]


def test_a_second_process_cannot_open_the_same_embedded_library(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from rag.store import ChunkStore; "
            "ChunkStore(Path(sys.argv[1]), embedder_id='e'); "
            "print('ready', flush=True); time.sleep(60)",
            str(tmp_path / "chroma"),
        ],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(
            StoreError, match=rf"open in another Quipu process \(pid {holder.pid}\)"
        ):
            ChunkStore(tmp_path / "chroma", embedder_id="e")
    finally:
        holder.kill()
        holder.wait()
    store = ChunkStore(tmp_path / "chroma", embedder_id="e")  # free again once it is gone
    store.close()


BUILDER = """
import os, sys
from pathlib import Path
from rag.store import ChunkStore
from rag.types import Chunk, Document
from tests.fakes import SeededEmbedder
embedder = SeededEmbedder(16)
store = ChunkStore(Path(sys.argv[1]), embedder_id=embedder.model_id)
for n in range(3):
    file_id = f"{n:024x}" + "0" * 40
    chunks = [Chunk(f"{file_id[:24]}-{i:05d}", f"text {n} {i}", file_id, f"doc{n}.pdf", 1, 1)
              for i in range(1500)]  # past Chroma's sync threshold: the index is written to disk
    store.add_document(Document(file_id, f"doc{n}.pdf", 1, len(chunks), "2026-01-01"),
                       chunks, embedder.embed([c.text for c in chunks]))
os._exit(0)  # no clean close, as if killed
"""


def hnsw_layout(folder):
    """(elements, bytes per element, offset of the vector in one) of an hnswlib index folder.

    The header holds: version, level-0 offset, capacity, elements, bytes per element, offset of
    the label, offset of the vector; each element: link count, links, vector, label."""
    header = struct.unpack_from("<IQQQQQQ", (folder / "header.bin").read_bytes())
    return header[3], header[4], header[6]


def break_neighbour_lists(library):
    """Point every node's first neighbour far outside the graph: the shape of an index whose
    write was cut short, and one that makes chromadb 1.5.9 crash with SIGSEGV when searched."""
    damaged = 0
    for folder in library.iterdir():
        if not (folder / "index_metadata.pickle").exists():
            continue
        elements, stride, _ = hnsw_layout(folder)
        with open(folder / "data_level0.bin", "r+b") as data:
            for node in range(elements):
                data.seek(node * stride + 4)
                data.write(struct.pack("<I", 0x7FFFFFF0))
        damaged += 1
    return damaged


def test_an_index_damaged_by_a_crash_is_rebuilt_from_the_stored_text(tmp_path):
    library = tmp_path / "chroma"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-c", BUILDER, str(library)], env=env, cwd=ROOT, check=True)
    assert (library / "quipu.lock").read_text().strip(), "an unclean exit leaves its pid"
    assert break_neighbour_lists(library) == 1
    searched = subprocess.run(
        [sys.executable, "-c", PROBE, str(library)], env=env, cwd=ROOT, check=False
    )
    assert searched.returncode == -signal.SIGSEGV, "the damage should crash a plain search"

    opened = reopen(library)
    assert opened.returncode == 0, opened.stdout + opened.stderr
    assert "damaged by an interrupted write" in opened.stderr
    assert "search index rebuilt" in opened.stderr
    kept = [p.name for p in tmp_path.iterdir() if p.name.startswith("chroma.damaged-")]
    assert len(kept) == 1, "the damaged library is kept beside the rebuilt one"
    assert not (library / "quipu-rebuild-needed").exists()

    again = reopen(library)  # a clean exit: the next start neither checks nor rebuilds
    assert again.returncode == 0, again.stderr
    assert "not closed cleanly" not in again.stderr and "rebuil" not in again.stderr
    store = ChunkStore(library, embedder_id="seeded-16")
    assert sorted(d.file_name for d in store.documents()) == ["doc0.pdf", "doc1.pdf", "doc2.pdf"]
    assert store.chunk_count() == 4500
    store.close()


def break_one_node(library):
    """Point every neighbour of one node, in the middle of the chunks' graph, outside the graph.

    Returns that node's vector: only a search that walks through the node crashes, and a search
    with its own vector does."""
    folder = max(
        (f for f in library.iterdir() if (f / "header.bin").exists()),
        key=lambda f: (f / "data_level0.bin").stat().st_size,
    )
    elements, stride, vector_at = hnsw_layout(folder)
    node = elements // 2
    with open(folder / "data_level0.bin", "r+b") as data:
        data.seek(node * stride)
        links = struct.unpack("<H", data.read(2))[0]
        data.seek(node * stride + 4)
        data.write(struct.pack("<I", 0x7FFFFFF0) * links)
        data.seek(node * stride + vector_at)
        return list(struct.unpack("<16f", data.read(64)))


def test_the_start_up_check_finds_damage_in_one_node_of_the_graph(tmp_path):
    library = tmp_path / "chroma"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-c", BUILDER, str(library)], env=env, cwd=ROOT, check=True)
    vector = break_one_node(library)
    searched = subprocess.run(
        [sys.executable, "-c", PROBE, str(library), json.dumps(vector)],
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert searched.returncode == -signal.SIGSEGV, "a search through the node should crash"

    opened = reopen(library)
    assert opened.returncode == 0, opened.stdout + opened.stderr
    assert "damaged by an interrupted write" in opened.stderr
    assert "search index rebuilt" in opened.stderr


PROBE = """
import json, sys, chromadb
from chromadb.config import Settings
client = chromadb.PersistentClient(sys.argv[1], settings=Settings(anonymized_telemetry=False))
chunks = client.get_collection("quipu_chunks")
vector = json.loads(sys.argv[2]) if len(sys.argv) > 2 else [0.25] * 16
chunks.query(query_embeddings=[vector], n_results=10)
"""
