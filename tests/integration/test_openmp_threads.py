"""A thread that ran llama.cpp keeps no OpenMP workers afterwards.

The app answers from a new thread per question, but switching models primes the cache from one
of the web server's long-lived worker threads. If that thread kept its OpenMP team, libgomp would
manage more threads than there are cores, stop spinning at llama.cpp's barriers, and every later
answer would run at under half speed (measured here with a throwaway script: 29-46 against
92-114 tokens/s).
"""

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from models.llamacpp import _openmp

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts threads in /proc"),
]

QUESTION = [{"role": "user", "content": "Name a colour."}]


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


def settled(expected: int) -> int:
    """The thread count once it reaches `expected` (a released worker exits on its own time)."""
    deadline = time.monotonic() + 5
    while threads() != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return threads()


@pytest.mark.parametrize("work", ["stream", "prime"])
def test_a_long_lived_thread_keeps_no_openmp_team(bundled_model, work):
    if _openmp() is None or bundled_model.info.threads < 2:
        pytest.skip("llama.cpp runs without a GNU OpenMP team here")
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: None).result()
        before = threads()
        if work == "stream":
            pool.submit(lambda: list(bundled_model.stream(QUESTION))).result()
        else:
            system = [{"role": "system", "content": f"Be brief ({time.time()})."}]  # not cached
            assert pool.submit(bundled_model.prime, system).result() > 0
        assert settled(before) == before
