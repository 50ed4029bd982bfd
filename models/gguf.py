"""GGUF files on disk: the magic check and split-file parts (`name-00001-of-00003.gguf`)."""

from __future__ import annotations

import re
from pathlib import Path

_SPLIT_PART = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")


def is_gguf(path: Path) -> bool:
    """True for a readable file that starts with the GGUF magic."""
    try:
        with path.open("rb") as fh:
            return fh.read(4) == b"GGUF"
    except OSError:
        return False


def is_first_part(path: Path) -> bool:
    """False for parts 2..N of a split GGUF (llama.cpp opens part 1 and finds the rest)."""
    match = _SPLIT_PART.search(path.name)
    return not match or match.group(1) == "00001"


def split_parts(path: Path) -> list[Path]:
    """All parts of a split GGUF given its first part (or just `path`)."""
    match = _SPLIT_PART.search(path.name)
    if not match:
        return [path]
    total = int(match.group(2))
    stem = path.name[: match.start()]
    return [path.with_name(f"{stem}-{i:05d}-of-{total:05d}.gguf") for i in range(1, total + 1)]
