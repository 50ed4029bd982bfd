"""Streaming speed: tokens/s seen by a gradio_client reading the app's `chat` endpoint, against
llama-cpp-python streaming the same prompt directly (same GGUF, threads, sampling), in one run.

    .venv/bin/python bench/generation.py [--rounds 3] [--max-tokens 200]

Prints both figures and their ratio. Plain chat (no retrieval) so both sides run the same prompt.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import privacy  # noqa: E402

privacy.apply()

QUESTION = "Write a long story about a lighthouse keeper and a storm."


def direct(path: Path, threads: int, max_tokens: int) -> tuple[float, int]:
    """(tokens/s from first to last streamed piece, tokens) with llama-cpp-python alone."""
    import llama_cpp

    from rag.prompt import build_messages

    llm = llama_cpp.Llama(str(path), n_ctx=4096, n_threads=threads, verbose=False)
    messages = build_messages(QUESTION, [], [], budget=4096, count_tokens=lambda t: len(t)).messages
    pieces, first, last = [], None, None
    for chunk in llm.create_chat_completion(
        messages, stream=True, max_tokens=max_tokens, temperature=0.0, repeat_penalty=1.1, seed=1337
    ):
        delta = chunk["choices"][0]["delta"].get("content")
        if delta:
            now = time.perf_counter()
            first = first or now
            last = now
            pieces.append(delta)
    tokens = len(llm.tokenize("".join(pieces).encode(), add_bos=False))
    llm.close()
    return (tokens - 1) / (last - first), tokens


def through_app(url: str, max_tokens: int, count) -> tuple[float, int]:
    """(tokens/s between the first and the last streamed update at the client, tokens)."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    first = last = None
    text = ""
    for update in client.submit(QUESTION, False, "", api_name="/chat"):
        now = time.perf_counter()
        if update["text"] and first is None:
            first = now
        last = now
        text = update["text"]
    tokens = count(text)
    return (tokens - 1) / (last - first), tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=200)
    args = parser.parse_args()

    import os

    import llama_cpp

    from models.bundled import bundled_model_path
    from models.llamacpp import physical_cores
    from tests.conftest import start_app

    path, threads = bundled_model_path(), physical_cores()
    counter = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)

    def count(text: str) -> int:
        return len(counter.tokenize(text.encode(), add_bos=False))

    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        QUIPU_MODEL__TEMPERATURE="0",
        QUIPU_MODEL__MAX_TOKENS=str(args.max_tokens),
    )
    app_rates, direct_rates = [], []
    with tempfile.TemporaryDirectory() as tmp, start_app(Path(tmp) / "data", env=env) as app:
        through_app(app.url, 16, count)  # warm-up: loads the model in the app
        for _ in range(args.rounds):  # interleaved, so machine noise hits both alike
            rate, n_app = through_app(app.url, args.max_tokens, count)
            app_rates.append(rate)
            rate, _ = direct(path, threads, args.max_tokens)
            direct_rates.append(rate)
    a, d = statistics.median(app_rates), statistics.median(direct_rates)
    print(f"model {path.name}, {threads} threads, {args.rounds} rounds, ~{n_app} tokens per answer")
    runs_d = ", ".join(f"{r:.1f}" for r in direct_rates)
    runs_a = ", ".join(f"{r:.1f}" for r in app_rates)
    print(f"llama-cpp-python direct stream : {d:6.1f} tokens/s (median of {runs_d})")
    print(f"Quipu chat endpoint, client    : {a:6.1f} tokens/s (median of {runs_a})")
    print(f"ratio app/direct               : {a / d:.2f}")


if __name__ == "__main__":
    main()
