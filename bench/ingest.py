"""Ingestion speed and memory on the largest dev-set PDF: Quipu's ingestor against a naive
pipeline, each in its own process (so peak RSS is its own), in one run.

    python launch.py bench ingest [--pdf PATH] [--rounds N]

Quipu: `build_services(...).ingestor` as the app runs it (pypdf in a worker process per core,
line chunks of 128 tokens with context, OpenVINO int8 embeddings, Chroma on disk).
"quipu v2": then, in the same library, a new version of the file (its middle page replaced by
a page of another PDF, the same file name), which replaces the first; the chunks it shares with
it keep their vectors. Naive: pypdf page by page, 1000-character chunks, sentence-transformers
with its defaults (torch), one `collection.add`. Prints pages/s, chunks/s, wall time and peak RSS
for each (Quipu's pypdf worker processes are not counted in its RSS), and where Quipu's time goes
(reading; chunking, while the first batch is embedded; embedding, each batch stored while the
next ones are embedded; storing: the document marked complete, its copy kept and, for a new
version, the old one removed). With several rounds
the two alternate, and the ratio is the median of the rounds' own ratios (this machine's speed
drifts by 10% or more from one minute to the next).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import privacy  # noqa: E402

privacy.apply()

PDFS = ROOT.parent / "shared" / "bench" / "financebench-dev" / "pdfs"


def largest_pdf() -> Path:
    from rag.pdf import open_pdf

    return max(sorted(PDFS.glob("*.pdf")), key=lambda p: len(open_pdf(p).pages))


def quipu(pdf: Path, data_dir: Path) -> dict:
    from app.settings import Settings
    from app.wiring import build_services

    services = build_services(Settings(data_dir=data_dir))
    # Loading the embedder and starting the PDF reader's workers are start-up costs (the app
    # does both at start), not ingestion.
    services.embedder.warm_up()
    services.reader.warm_up()
    figures = timed_add(services.ingestor, pdf)
    # pypdf writes the new version after the first add, so its memory is not counted in it.
    figures |= timed_add(services.ingestor, new_version(pdf, data_dir / "edited"), "update_")
    services.close()
    return figures


PHASES = ("reading", "chunking", "embedding", "storing")


def timed_add(ingestor, path: Path, prefix: str = "") -> dict:
    """Add one PDF: its pages, chunks, seconds, the seconds of each phase (from the ingestor's
    progress events), and the process's peak RSS by then."""
    starts: dict[str, float] = {}

    def note(event) -> None:
        starts.setdefault(event.stage, time.perf_counter())

    started = time.perf_counter()
    (result,) = ingestor.ingest([path], on_progress=note).results
    took = time.perf_counter() - started
    if result.status != "ok":
        raise SystemExit(f"Quipu did not ingest {path}: {result.status}: {result.message}")
    ends = [*(starts[stage] for stage in PHASES[1:]), starts["done"]]
    figures = {
        "pages": result.pages,
        "chunks": result.chunks,
        "seconds": took,
        "peak_rss_mb": peak_rss_mb(),
        "phases": [end - starts[stage] for stage, end in zip(PHASES, ends, strict=True)],
    }
    return {prefix + key: value for key, value in figures.items()}


def peak_rss_mb() -> float:
    """This process's peak resident memory so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def new_version(pdf: Path, folder: Path) -> Path:
    """`pdf` with its middle page replaced by another dev-set PDF's second page, under the same
    file name: a new version of the document, which the library takes as replacing it."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=pdf)
    other = PdfReader(sorted(p for p in PDFS.glob("*.pdf") if p.name != pdf.name)[0])
    middle = len(writer.pages) // 2
    writer.insert_page(other.pages[1], middle)
    del writer.pages[middle + 1]
    folder.mkdir(parents=True, exist_ok=True)
    writer.write(folder / pdf.name)
    return folder / pdf.name


def naive(pdf: Path, data_dir: Path) -> dict:
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from pypdf import PdfReader
    from sentence_transformers import SentenceTransformer

    from rag.embed import bundled_embedder_path

    model = SentenceTransformer(str(bundled_embedder_path()))
    started = time.perf_counter()
    reader = PdfReader(pdf)
    if reader.is_encrypted:
        reader.decrypt("")
    texts, metas = [], []
    for number, page in enumerate(reader.pages, start=1):
        text = page.extract_text() or ""
        for start in range(0, len(text), 1000):
            if text[start : start + 1000].strip():
                texts.append(text[start : start + 1000])
                metas.append({"page": number})
    vectors = model.encode(texts)
    client = chromadb.PersistentClient(
        path=str(data_dir), settings=ChromaSettings(anonymized_telemetry=False)
    )
    collection = client.create_collection("naive", embedding_function=None)
    collection.add(
        ids=[str(i) for i in range(len(texts))],
        documents=texts,
        embeddings=vectors.tolist(),
        metadatas=metas,
    )
    took = time.perf_counter() - started
    return {"pages": len(reader.pages), "chunks": len(texts), "seconds": took}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pdf", type=Path)
    parser.add_argument("--rounds", type=int, default=3, help="naive/Quipu pairs (default 3)")
    parser.add_argument("--one", choices=["quipu", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        figures = (quipu if args.one == "quipu" else naive)(args.pdf, args.data_dir)
        figures.setdefault("peak_rss_mb", peak_rss_mb())
        print(json.dumps(figures))
        return
    pdf = args.pdf or largest_pdf()
    print(f"{pdf.name}, {args.rounds} round(s)", flush=True)
    print(
        f"{'':8}{'pages':>7}{'chunks':>8}{'seconds':>9}{'pages/s':>9}{'chunks/s':>10}"
        f"{'peak RSS MB':>13}",
        flush=True,
    )
    ratios, updates = [], []
    for _ in range(args.rounds):
        rows = {name: _run_one(name, pdf) for name in ("naive", "quipu")}
        rows["quipu v2"] = {
            key.removeprefix("update_"): value
            for key, value in rows["quipu"].items()
            if key.startswith("update_")
        }
        for name, r in rows.items():
            print(
                f"{name:8}{r['pages']:>7}{r['chunks']:>8}{r['seconds']:>9.1f}"
                f"{r['pages'] / r['seconds']:>9.1f}{r['chunks'] / r['seconds']:>10.1f}"
                f"{r['peak_rss_mb']:>13.0f}",
                flush=True,
            )
        for name in ("quipu", "quipu v2"):
            phases = ", ".join(
                f"{stage} {seconds:.1f} s"
                for stage, seconds in zip(PHASES, rows[name]["phases"], strict=True)
            )
            print(f"  {name}: {phases}", flush=True)
        ratios.append(rows["naive"]["seconds"] / rows["quipu"]["seconds"])  # same pages
        updates.append(rows["quipu v2"]["seconds"] / rows["quipu"]["seconds"])
    shown = ", ".join(f"{r:.2f}" for r in ratios)
    print(f"pages/s ratio Quipu/naive: {statistics.median(ratios):.2f} (rounds {shown})")
    shown = ", ".join(f"{r:.2f}" for r in updates)
    print(
        f"new version (one page replaced) / first add, seconds: {statistics.median(updates):.2f} "
        f"(rounds {shown})"
    )


def _run_one(name: str, pdf: Path) -> dict:
    """One pipeline on `pdf` in a fresh process and an empty library: its figures."""
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [sys.executable, __file__, "--one", name, "--pdf", str(pdf), "--data-dir", tmp],
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
