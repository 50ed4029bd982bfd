"""Generation speed as a user sees it, against the engine underneath, in one run:

- tokens/s received by a gradio_client reading the app's `chat` endpoint, against llama.cpp's own
  `llama-bench` text generation for the same GGUF and threads (built from the sdist's vendored
  llama.cpp, see bench/llama_bench.py) and llama-cpp-python streaming directly; Quipu's runtime
  in-process (no web server) too, which splits the gap into engine loop and web path;
- time to first token of a fresh question about a document, and of a follow-up in the same
  conversation (through the app's OpenAI-compatible endpoint, which carries the history);
- the system prompt's cache at start-up: evaluated, against read back from the file a previous
  start saved (`LlamaRuntime.prime`).

    python launch.py bench generation [--rounds 10] [--max-tokens 200] [--no-llama-bench]
                                      [--no-app]   # engine rows only, e.g. on a GPU machine
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import privacy  # noqa: E402

privacy.apply()

QUESTION = "Write a long story about a lighthouse keeper and a storm."
# gradio_client itself moves arriving messages into the job every 50 ms (its SSE reader sleeps
# 50 ms when it finds none), so reading the job more often than this only costs CPU.
POLL_S = 0.01


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


def in_process(runtime, max_tokens: int, count) -> tuple[float, int]:
    """(tokens/s, prompt tokens) of Quipu's own runtime (native decode loop), no web server."""
    from models.base import GenerationOptions
    from rag.prompt import build_messages

    messages = build_messages(QUESTION, [], [], budget=4096, count_tokens=lambda t: len(t)).messages
    options = GenerationOptions(temperature=0.0, max_tokens=max_tokens, repeat_penalty=1.1)
    first = last = None
    pieces = []
    for piece in runtime.stream(messages, options):
        now = time.perf_counter()
        first = first or now
        last = now
        pieces.append(piece)
    rate = (count("".join(pieces)) - 1) / (last - first)  # tokens counted as for the app
    return rate, runtime.last_prompt_length


def through_app(client, max_tokens: int, count) -> tuple[float, int]:
    """(tokens/s between the first and the last streamed update at the client, tokens).

    One client for the whole run, as one browser tab: every gradio_client `Client` keeps a
    heartbeat stream open, and a new one per round left earlier ones competing for the CPU.
    The job is read every `POLL_S`: gradio_client's own iterator wakes up every millisecond
    (holding its lock while it sleeps), and on 2 cores those thousand wake-ups a second
    preempt llama.cpp's threads; a browser is woken by the arriving events instead."""
    first = last = None
    text = ""
    seen = 0
    job = client.submit(QUESTION, False, "", api_name="/chat")
    while True:
        finished = job.done()
        outputs = job.outputs()
        if len(outputs) > seen:
            now = time.perf_counter()
            seen = len(outputs)
            text = outputs[-1]["text"]
            if text and first is None:
                first = now
            last = now
        if finished:
            break
        time.sleep(POLL_S)
    tokens = count(text)
    return (tokens - 1) / (last - first), tokens


FRESH = [
    "Which region had the highest EBITDAR contribution for MGM in 2022?",
    "What was MGM's net revenue in the fourth quarter of 2022?",
    "How did MGM China perform in 2022?",
    "What was MGM's adjusted EBITDAR for the full year 2022?",
]
FOLLOW_UP = "And how does that compare with the year before?"
DOCUMENT = ROOT.parent / "shared" / "bench" / "financebench-dev" / "pdfs"
DOCUMENT = DOCUMENT / "MGMRESORTS_2022Q4_EARNINGS.pdf"


def first_token_s(base_url: str, messages: list[dict[str, str]]) -> tuple[float, str]:
    """(seconds to the first streamed text, the whole answer) from the OpenAI endpoint."""
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key="local")
    started = time.perf_counter()
    first = None
    text = ""
    for chunk in client.chat.completions.create(model="quipu", messages=messages, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            first = first or time.perf_counter() - started
            text += chunk.choices[0].delta.content
    return first or float("nan"), text


def follow_ups(url: str, rounds: int) -> None:
    """Time to first token: fresh questions vs their follow-ups, same library, same app."""
    from gradio_client import Client, handle_file

    Client(url, verbose=False).predict([handle_file(str(DOCUMENT))], api_name="/ingest")
    base = url.rstrip("/") + "/v1"
    fresh, follow = [], []
    for question in (FRESH * rounds)[: max(rounds, 1)]:
        t_fresh, answer = first_token_s(base, [{"role": "user", "content": question}])
        history = [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
            {"role": "user", "content": FOLLOW_UP},
        ]
        t_follow, _ = first_token_s(base, history)
        fresh.append(t_fresh)
        follow.append(t_follow)
    f, u = statistics.median(fresh), statistics.median(follow)
    print(f"time to first token, fresh question  : {f:5.2f} s (runs {_runs(fresh)})")
    print(f"time to first token, follow-up       : {u:5.2f} s (runs {_runs(follow)})")
    print(f"ratio follow-up/fresh                : {u / f:.2f}")


def prompt_cache(path: Path, threads: int, rounds: int) -> None:
    """A start's first question: system prompt primed by evaluating it, or read from the file a
    previous start saved (`LlamaRuntime.prime`); each timed from the loaded model to the first
    token of the question, so the weights' first use counts in both."""
    from models.base import GenerationOptions
    from models.llamacpp import LlamaRuntime
    from rag.prompt import SYSTEM_RAG

    system = [{"role": "system", "content": SYSTEM_RAG}]
    question = [*system, {"role": "user", "content": FRESH[0]}]
    options = GenerationOptions(max_tokens=1)

    def first_token(state: Path | None) -> float:
        runtime = LlamaRuntime(path, n_ctx=4096, n_threads=threads)
        runtime.warm_up()
        started = time.perf_counter()
        runtime.prime(system, state)
        next(iter(runtime.stream(question, options)), None)
        took = time.perf_counter() - started
        runtime.close()
        return took

    evaluated, read = [], []
    with tempfile.TemporaryDirectory() as state:
        first_token(Path(state))  # writes the file
        for _ in range(rounds):
            evaluated.append(first_token(None))
            read.append(first_token(Path(state)))
    e, r = statistics.median(evaluated), statistics.median(read)
    print(f"first question, system prompt evaluated : {e:5.2f} s (runs {_runs(evaluated)})")
    print(f"first question, system prompt from file : {r:5.2f} s (runs {_runs(read)})")
    print(f"ratio from file/evaluated               : {r / e:.2f}")


# In the order a round measures them (see `engine_rows`): each main ratio's rows side by side.
ROWS = {
    "app": "Quipu chat endpoint, client",
    "bench": "llama-bench tg{tokens} at depth {depth}",
    "runtime": "Quipu runtime, in-process",
    "direct": "llama-cpp-python direct stream",
    "bench0": "llama-bench tg{tokens} at depth 0",
}
RATIOS = [
    ("app", "bench", "<- the chat's own prompt before generation, as llama-bench -d"),
    ("app", "bench0", ""),
    ("runtime", "bench", "(no web server: the rest is the web path)"),
    ("app", "direct", ""),
    ("runtime", "direct", "(Quipu's native decode loop against llama-cpp-python's)"),
]


def _runs(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def engine_rows(
    runs: dict[str, Callable[[], float]], rounds: int, header: str, max_tokens: int, depth: int
) -> None:
    """Measure each row once per round and print medians.

    These VMs change speed by a third from one minute to the next, so each ratio is taken within
    a round and the median of those ratios is reported. A round runs the rows in `ROWS` order,
    where the two rows of app/bench and of runtime/bench are neighbours, forwards in even rounds
    and backwards in odd ones: a ratio's two figures are taken seconds apart, and a drift in
    speed favours each side in turn. (Rotating the order instead put up to three other rows
    between app and bench.)"""
    rates: dict[str, list[float]] = {name: [] for name in ROWS}
    names = [name for name in ROWS if name in runs]
    for number in range(rounds):
        for name in names if number % 2 == 0 else names[::-1]:
            rates[name].append(runs[name]())
    print(header)
    for name in names:
        values = rates[name]
        label = ROWS[name].format(tokens=max_tokens, depth=depth)
        print(f"{label:<38}: {statistics.median(values):6.1f} tokens/s (runs {_runs(values)})")
    for top, bottom, note in RATIOS:
        if rates[top] and rates[bottom]:  # rows are empty with --no-llama-bench or --no-app
            pairs = zip(rates[top], rates[bottom], strict=True)
            ratio = statistics.median(a / b for a, b in pairs)
            label = f"ratio {top}/{bottom}"
            print(f"{label:<38}: {ratio:.2f} (median of the rounds' ratios) {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--no-llama-bench", action="store_true")
    parser.add_argument(
        "--no-app",
        action="store_true",
        help="engine rows only (runtime, llama-cpp-python, llama-bench): no web app, no follow-ups",
    )
    args = parser.parse_args()

    import contextlib
    import os

    import llama_cpp

    from app.ui.format import placement
    from bench.llama_bench import run_llama_bench
    from models.bundled import bundled_model_path
    from models.llamacpp import LlamaRuntime, physical_cores
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
    with contextlib.ExitStack() as stack:
        runs: dict[str, Callable[[], float]] = {}
        app = None
        if not args.no_app:
            from gradio_client import Client

            tmp = stack.enter_context(tempfile.TemporaryDirectory())
            app = stack.enter_context(start_app(Path(tmp) / "data", env=env))
            # The app is plain HTTP on loopback: no TLS, nothing to verify. With verification on,
            # gradio_client loads the CA bundle into a new SSL context (20 ms of CPU here) for
            # each request, each SSE stream and each heartbeat reconnection: the client's CPU
            # per answer went from 0.080 to 0.035 s without, time taken from llama.cpp's threads
            # on 2 cores (a browser on loopback HTTP does none of this).
            client = Client(app.url, verbose=False, ssl_verify=False)
            stack.callback(client.close)
            through_app(client, 16, count)  # warm-up: loads the model in the app
            runs["app"] = lambda: through_app(client, args.max_tokens, count)[0]
        # One runtime for every round, as the app keeps its model loaded: a fresh one per round
        # measured its first answer, a few percent slower while the weights' pages were first
        # touched. The warm-up answer also gives the chat's prompt length.
        runtime = LlamaRuntime(path, n_ctx=4096, n_threads=threads)
        stack.callback(runtime.close)
        _, depth = in_process(runtime, 8, count)
        runs["direct"] = lambda: direct(path, threads, args.max_tokens)[0]
        runs["runtime"] = lambda: in_process(runtime, args.max_tokens, count)[0]

        def llama_bench(at: int) -> float:
            record = run_llama_bench(path, threads, tokens=args.max_tokens, depth=at, repetitions=1)
            return float(record["avg_ts"])

        if not args.no_llama_bench:
            runs["bench"] = lambda: llama_bench(depth)
            runs["bench0"] = lambda: llama_bench(0)
        header = (
            f"model {path.name}, {placement(runtime.info)}, {args.rounds} rounds, "
            f"{args.max_tokens} tokens/answer after a {depth}-token prompt"
        )
        engine_rows(runs, args.rounds, header, args.max_tokens, depth)
        runtime.close()  # the follow-ups measure the app alone
        if app is not None:
            follow_ups(app.url, args.rounds)
    prompt_cache(path, threads, args.rounds)


if __name__ == "__main__":
    main()
