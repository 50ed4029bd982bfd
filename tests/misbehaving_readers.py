"""Stand-ins for a parser that loops or crashes; importable by the reader's worker process."""

import os
import time


def hang(path, **kwargs):
    time.sleep(3600)


def crash(path, **kwargs):
    os._exit(3)


def shrinking(path, *, first=0, stop=None, step=1, **kwargs):
    """The first worker finds 5 pages, the others a file of 4: it was replaced in between.

    With two workers, each still reads as many pages as 5 pages would give it (3 and 2): only
    the page counts they report differ."""
    count = 5 if first == 0 else 4
    end = count if stop is None else min(stop, count)
    return count, [f"Page {n + 1} of the report." for n in range(first, end, step)]
