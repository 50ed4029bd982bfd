"""Stand-ins for a parser that loops or crashes; importable by the reader's worker process."""

import os
import time


def hang(path, **kwargs):
    time.sleep(3600)


def crash(path, **kwargs):
    os._exit(3)
