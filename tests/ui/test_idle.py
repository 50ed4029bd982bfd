"""An app with nothing to do leaves the CPU alone (a laptop's battery, and llama.cpp's threads)."""

import sys
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.ui,
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

# Gradio's queue, left as it is, polls every millisecond: over 1,000 wake-ups a second.
MOST_WAKE_UPS_PER_S = 300


def wake_ups(pid: int) -> dict[str, int]:
    """For each thread of the process: how often it has gone to sleep and been woken."""
    counts = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:
            continue  # the thread ended
        for line in status.splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                counts[task.name] = int(line.split(":")[1])
    return counts


def test_an_idle_app_wakes_up_rarely(running_app):
    pid = running_app.process.pid
    rates = []
    for _ in range(10):  # the model and embedder load after the page is up: wait that out
        before = wake_ups(pid)
        time.sleep(1.0)
        after = wake_ups(pid)
        rates.append(sum(after[t] - before[t] for t in after.keys() & before.keys()))
        if rates[-1] < MOST_WAKE_UPS_PER_S:
            break
    assert min(rates) < MOST_WAKE_UPS_PER_S, f"wake-ups per second, idle: {rates}"
