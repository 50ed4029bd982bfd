"""Retrieval quality on real PDFs: Quipu's retrieval against a naive pipeline, in one run.

    python launch.py bench retrieval          # or: .venv/bin/python bench/retrieval.py

Reads the FinanceBench dev set from ../shared/bench/financebench-dev (PDFs + questions with
0-based evidence pages), ingests it into a fresh data dir with the app's own ingestor and
retriever (`build_services`, as `python launch.py` runs them), and prints page-level recall@1/5/10
and MRR for two scopes: within the question's document (the document filter of the UI, `search
--file`) and across the whole library. A hit is a retrieved chunk on an evidence page.

The naive baseline is measured in the same run: pypdf's plain text of each page as it comes
(`page.extract_text()`, no cleaning), cut into fixed 1000-character chunks, embedded with the
same embedder, plain exact vector top-k. Everything Quipu adds is what it is judged on:
extraction (layout mode, cleaning), chunking, hybrid search. `--plain` has Quipu read pypdf's plain
mode too, which measures the extraction step on its own (a separate run).

To fit the 15 minutes: pypdf reads each file once for both pipelines, largest files first, in a
process per core; the app's ingestor gets the texts through its `read` hook, and everything after
reading is the app's code. `--ablate` adds rows that switch off one step of Quipu's retrieval at a
time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import privacy  # noqa: E402

privacy.apply()

DEFAULT_SET = ROOT.parent / "shared" / "bench" / "financebench-dev"
KS = (1, 5, 10)
NAIVE_CHARS = 1000


@dataclass(frozen=True)
class Question:
    text: str
    doc: str  # file name, with .pdf
    evidence: frozenset[int]  # 1-based pages


def load_questions(folder: Path) -> list[Question]:
    out = []
    for line in (folder / "questions.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        pages = frozenset(int(e["evidence_page_num"]) + 1 for e in row["evidence"])
        out.append(Question(row["question"], f"{row['doc_name']}.pdf", pages))
    return out


def raw_pages(path: str, plain: bool = False) -> tuple[str, list[str], list[str]]:
    """(path, every page's text as Quipu reads it (`rag.pdf.page_text`), pypdf's plain text).

    With `plain`, Quipu's texts are the plain ones too (read once).
    """
    from rag.pdf import open_pdf, page_text

    def read(page, mode) -> str:
        try:
            return mode(page) or ""
        except Exception:  # a page that fails is empty for both pipelines
            return ""

    reader = open_pdf(Path(path))
    quipu, naive = [], []
    for page in reader.pages:
        naive.append(read(page, lambda p: p.extract_text()))
        quipu.append(naive[-1] if plain else read(page, page_text))
    return path, quipu, naive


def score(questions: Sequence[Question], search: Callable[[Question], list[tuple[str, int]]]):
    """recall@k for KS and MRR@10 at page level."""
    found = {k: 0 for k in KS}
    rr = 0.0
    for q in questions:
        hits = search(q)
        rank = next(
            (i for i, (doc, page) in enumerate(hits, 1) if doc == q.doc and page in q.evidence),
            None,
        )
        if rank is not None:
            rr += 1 / rank
            for k in KS:
                found[k] += rank <= k
    n = len(questions)
    return {**{f"r@{k}": found[k] / n for k in KS}, "mrr": rr / n}


def row(name: str, doc: dict, lib: dict) -> str:
    cells = " ".join(f"{doc[f'r@{k}']:6.2f}" for k in KS) + f" {doc['mrr']:6.2f}"
    cells += "  |" + " ".join(f"{lib[f'r@{k}']:6.2f}" for k in KS) + f" {lib['mrr']:6.2f}"
    return f"{name:34s}{cells}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=Path, default=DEFAULT_SET, help="the dev set folder")
    parser.add_argument("--data-dir", type=Path, help="where to build the library (default: temp)")
    parser.add_argument("--ablate", action="store_true", help="also switch steps off one by one")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--plain", action="store_true", help="read with pypdf's plain mode, not layout mode"
    )
    args = parser.parse_args()

    from app.settings import Settings
    from app.wiring import build_services
    from rag.extract import quiet_pypdf
    from rag.pdf import pages_from_text
    from rag.retrieve import Retriever

    questions = load_questions(args.set)
    pdfs = sorted((args.set / "pdfs").glob("*.pdf"))
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="quipu-bench-"))
    print(f"{len(pdfs)} PDFs, {len(questions)} questions; library in {data_dir}", flush=True)

    started = time.perf_counter()
    largest_first = sorted(pdfs, key=lambda p: -p.stat().st_size)  # keeps both workers busy
    workers = max(1, min(len(pdfs), os.cpu_count() or 1))
    # pypdf's font warnings would flood the report.
    with ProcessPoolExecutor(max_workers=workers, initializer=quiet_pypdf) as pool:
        read = list(pool.map(raw_pages, map(str, largest_first), [args.plain] * len(pdfs)))
    raw = {path: quipu for path, quipu, _ in read}
    plain = {path: naive for path, _, naive in read}
    pages_total = sum(len(t) for t in raw.values())
    t_read = time.perf_counter() - started
    mode = "plain mode for both" if args.plain else "Quipu's reading and pypdf's plain text"
    print(f"read {pages_total} pages in {t_read:.0f} s ({mode}, one process per core)", flush=True)

    services = build_services(Settings(data_dir=data_dir))

    def cached_read(path: Path, *, file_id: str, file_name: str, password=None, **_):
        return pages_from_text(raw[str(path)], file_id=file_id, file_name=file_name)

    services.ingestor.read = cached_read
    started = time.perf_counter()
    report = services.ingestor.ingest(pdfs)
    t_ours = time.perf_counter() - started
    failed = [r for r in report.results if r.status == "failed"]
    if failed:
        print("not indexed:", [(r.file_name, r.message) for r in failed])
    chunks_ours = services.store.chunk_count()
    print(
        f"Quipu: {chunks_ours} chunks embedded and stored in {t_ours:.0f} s "
        f"({chunks_ours / t_ours:.1f} chunks/s)",
        flush=True,
    )

    def quipu(retriever: Retriever, scope: str) -> Callable[[Question], list[tuple[str, int]]]:
        def search(q: Question) -> list[tuple[str, int]]:
            names = [q.doc] if scope == "doc" else None
            hits = retriever.search(q.text, k=max(KS), file_names=names)
            return [(h.chunk.file_name, h.chunk.page_start) for h in hits]

        return search

    lines = []
    r = services.retriever
    lines.append(
        row(
            "Quipu (hybrid, 1 hit/page)",
            score(questions, quipu(r, "doc")),
            score(questions, quipu(r, "all")),
        )
    )
    if args.ablate:
        for name, change in (
            ("  - without BM25", {"hybrid": False}),
            ("  - without word pairs", {"phrase_weight": 0.0}),
            ("  - without the page limit", {"per_page": 0}),
            ("  - without page scores", {"page_weight": 0.0}),
        ):
            kwargs = {
                "top_k": r.top_k,
                "hybrid": r.lexical is not None,
                "per_page": r.per_page,
                "phrase_weight": r.phrase_weight,
                "page_weight": r.page_weight,
            }
            kwargs.update(change)
            variant = Retriever(r.embedder, r.store, **kwargs)
            lines.append(
                row(
                    name,
                    score(questions, quipu(variant, "doc")),
                    score(questions, quipu(variant, "all")),
                )
            )

    if not args.no_baseline:
        lines.append(naive(services, plain, questions))
    print()
    print(
        f"{'page-level, ' + str(len(questions)) + ' questions':34s}"
        f"{'within the document':^28s}  |{'across the library':^28s}"
    )
    print(f"{'':34s}" + ("   r@1    r@5   r@10    MRR  |" * 2).rstrip("|"))
    for line in lines:
        print(line)
    print(f"\ntotal {time.perf_counter() - started + t_read:.0f} s")
    services.close()
    return 0


def naive(services, plain: dict[str, list[str]], questions) -> str:
    """pypdf's plain page texts in 1000-character chunks, same embedder, exact vector top-k."""
    import numpy as np

    texts, files, pages = [], [], []
    for path, page_texts in plain.items():
        name = Path(path).name
        for number, text in enumerate(page_texts, start=1):
            for start in range(0, len(text), NAIVE_CHARS):
                piece = text[start : start + NAIVE_CHARS]
                if piece.strip():
                    texts.append(piece)
                    files.append(name)
                    pages.append(number)
    started = time.perf_counter()
    vectors = np.asarray(services.embedder.embed(texts), dtype=np.float32)  # unit length
    took = time.perf_counter() - started
    print(f"naive: {len(texts)} chunks embedded in {took:.0f} s", flush=True)
    file_of = np.array(files)

    def search(scope: str):
        def run(q: Question) -> list[tuple[str, int]]:
            query = np.asarray(services.embedder.embed([q.text])[0], dtype=np.float32)
            scores = vectors @ query
            if scope == "doc":
                scores = np.where(file_of == q.doc, scores, -np.inf)
            best = np.argsort(-scores)[: max(KS)]
            return [(files[i], pages[i]) for i in best if np.isfinite(scores[i])]

        return run

    return row(
        "naive (1000 chars, vector top-k)",
        score(questions, search("doc")),
        score(questions, search("all")),
    )


if __name__ == "__main__":
    sys.exit(main())
