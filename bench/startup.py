"""App start to a served page, against a bare Gradio page started the same way, in one run.

    python launch.py bench startup [--runs 5]

Each run starts a fresh process on an empty data folder and a free port, and times it from spawn
to the first HTTP 200 of the page; the model and embedder load after that, in the background (a
question asked before they are loaded waits for them). Runs alternate between Quipu (`python
launch.py --no-browser`, as a user starts it) and the baseline: a one-textbox `gr.Blocks` page,
which pays gradio's import and server start and nothing of Quipu's.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BARE_PAGE = """
import os, sys
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
import gradio as gr
with gr.Blocks() as demo:
    gr.Textbox(label="question")
demo.launch(server_port=int(sys.argv[1]), prevent_thread_lock=True, quiet=True, ssr_mode=False)
demo.block_thread()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def time_to_page(command: list[str], port: int) -> float:
    """Seconds from spawn to the page's first 200; the process is stopped afterwards."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command[:3]} exited with {process.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as page:
                    if page.status == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.02)
    finally:
        process.terminate()
        process.wait(timeout=30)
        time.sleep(2)  # let its exit settle before the next start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    python = sys.executable  # the venv's, when run through launch.py
    quipu, bare = [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as data:
            port = free_port()
            command = [python, "launch.py", "--no-browser", "--data-dir", data, "--port", str(port)]
            quipu.append(time_to_page(command, port))
        port = free_port()
        bare.append(time_to_page([python, "-c", BARE_PAGE, str(port)], port))
        print(f"Quipu {quipu[-1]:5.2f} s   bare Gradio page {bare[-1]:5.2f} s", flush=True)
    q, b = statistics.median(quipu), statistics.median(bare)
    print(f"\nmedian of {args.runs}, spawn to the page's first HTTP 200 (cpus: {os.cpu_count()})")
    print(f"Quipu (python launch.py)        : {q:5.2f} s")
    print(f"bare gr.Blocks page, same Python : {b:5.2f} s")
    print(f"ratio Quipu/bare                 : {q / b:.2f}")


if __name__ == "__main__":
    main()
