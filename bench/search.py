"""Search latency with 1k, 10k and 100k chunks in the library: p50/p95 of `Retriever.search`
(the app's hybrid search: query embedding, Chroma vector search, BM25, fusion, page limit),
against a plain Chroma vector query (the naive baseline) on the same library, in one run.

    python launch.py bench search [--sizes 1000 10000 100000] [--queries 60]

Chunk texts are real (lines of the FinanceBench dev set PDFs, cycled); their vectors are random
unit vectors, because embedding 100k chunks here would take half an hour and vector search
latency does not depend on where the vectors came from. Queries are the dev set's questions,
embedded for real on every search.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import privacy  # noqa: E402

privacy.apply()

DEV_SET = ROOT.parent / "shared" / "bench" / "financebench-dev"


def corpus_lines(limit_pages: int = 400) -> list[str]:
    """Real text: lines of the first pages of each dev-set PDF."""
    from rag.pdf import read_pdf

    lines: list[str] = []
    for pdf in sorted((DEV_SET / "pdfs").glob("*.pdf"))[:6]:
        for page in read_pdf(pdf, file_id=pdf.stem, max_pages=None)[: limit_pages // 6]:
            lines.extend(line for line in page.text.splitlines() if len(line) > 30)
    return lines


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=60)
    args = parser.parse_args()

    import json

    from app.settings import Settings
    from app.wiring import build_services
    from rag.types import Chunk, Document

    questions = [
        json.loads(line)["question"]
        for line in (DEV_SET / "questions.jsonl").read_text().splitlines()
        if line.strip()
    ]
    queries = (questions * (args.queries // len(questions) + 1))[: args.queries]
    lines = corpus_lines()
    rng = np.random.default_rng(7)
    print(f"{len(lines)} distinct text lines; {len(queries)} queries per size", flush=True)
    print(f"{'chunks':>8} {'Quipu p50':>10} {'p95':>8} {'naive p50':>10} {'p95':>8}  (ms)")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            services = build_services(Settings(data_dir=Path(tmp)))
            dim = services.embedder.dimension
            per_doc = 5000
            for d, start in enumerate(range(0, size, per_doc)):
                count = min(per_doc, size - start)
                file_id = f"{d:064x}"
                chunks = [
                    Chunk(
                        id=f"{file_id[:24]}-{i:05d}",
                        text=lines[(start + i) % len(lines)],
                        file_id=file_id,
                        file_name=f"doc{d}.pdf",
                        page_start=1 + i // 10,
                        page_end=1 + i // 10,
                    )
                    for i in range(count)
                ]
                vectors = rng.normal(size=(count, dim)).astype(np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                document = Document(file_id, f"doc{d}.pdf", count // 10, count, "2026-01-01")
                services.store.add_document(document, chunks, vectors.tolist())
            retriever = services.retriever
            retriever.search("warm up the keyword index", k=4)  # builds BM25 once per library
            ours, naive = [], []
            for query in queries:
                started = time.perf_counter()
                retriever.search(query, k=4)
                ours.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                vector = services.embedder.embed([query])[0]
                services.store.query(vector, 4)
                naive.append((time.perf_counter() - started) * 1000)
            print(
                f"{size:>8} {statistics.median(ours):>10.1f} {percentile(ours, 0.95):>8.1f} "
                f"{statistics.median(naive):>10.1f} {percentile(naive, 0.95):>8.1f}",
                flush=True,
            )
            services.close()


if __name__ == "__main__":
    main()
