"""GGUF files on disk: the magic check, the header's metadata, and split-file parts
(`name-00001-of-00003.gguf`)."""

from __future__ import annotations

import mmap
import os
import re
import struct
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


# llama.cpp's `llama_ftype` numbers (`general.file_type`) and the names quantizations go by.
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M",
    30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE",
}  # fmt: skip


def quant_name(meta: dict[str, str]) -> str:
    """The quantization a header names ("Q4_K_M"), or "" when it names none we know."""
    try:
        return FILE_TYPES.get(int(meta.get("general.file_type", "")), "")
    except ValueError:
        return ""


class GGUFHeaderError(ValueError):
    """The file's GGUF header cannot be read (not GGUF, an unknown version, or cut short)."""


# GGUF value types: struct formats of the fixed-size ones, then string (8) and array (9).
_SCALARS = {
    0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d",
}  # fmt: skip
_STRING, _ARRAY = 8, 9
_MAX_NESTING = 4  # arrays of arrays: llama.cpp writes none; a deep chain is damage


def read_metadata(path: Path) -> dict[str, str]:
    """The header's key/value metadata, without loading tensors or vocabulary into llama.cpp.

    Values are strings as llama.cpp reports them (`llama_model_meta_val_str`): integers in
    decimal, floats with six decimals, booleans as "true"/"false"; arrays (the vocabulary, merges)
    are left out. Only the header is read, through a memory map, so this takes milliseconds even
    for a large model.

    Raises:
        GGUFHeaderError: not a GGUF file, an unsupported version, or a header cut short.
        OSError: the file cannot be opened.
    """
    with path.open("rb") as fh:
        if os.fstat(fh.fileno()).st_size < 24:
            raise GGUFHeaderError("not a GGUF file (too short)")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as view:
            try:
                return _Header(view).metadata()
            except (struct.error, IndexError, UnicodeDecodeError) as exc:
                raise GGUFHeaderError("the GGUF header is cut short or damaged") from exc


class _Header:
    """A cursor over a GGUF header (version 2 or 3, either byte order)."""

    def __init__(self, data: mmap.mmap) -> None:
        if data[:4] != b"GGUF":
            raise GGUFHeaderError("not a GGUF file")
        self._data = data
        self._order = "<"
        version = self._unpack("I", 4)
        if version > 0xFFFF:  # written on a big-endian machine
            self._order = ">"
            version = self._unpack("I", 4)
        if version not in (2, 3):
            raise GGUFHeaderError(f"GGUF version {version} is not supported")
        self._pos = 16  # after the magic, the version and the tensor count

    def _unpack(self, fmt: str, at: int) -> int | float | bool:
        value: int | float | bool = struct.unpack_from(self._order + fmt, self._data, at)[0]
        return value

    def _read(self, fmt: str) -> int | float | bool:
        value = self._unpack(fmt, self._pos)
        self._pos += struct.calcsize(fmt)
        return value

    def _string(self) -> str:
        size = int(self._read("Q"))
        end = self._pos + size
        if end > len(self._data):
            raise IndexError("string past the end of the file")
        text = bytes(self._data[self._pos : end]).decode("utf-8")
        self._pos = end
        return text

    def _skip_array(self, depth: int = 0) -> None:
        kind, count = int(self._read("I")), int(self._read("Q"))
        # Every element takes at least 8 bytes (a string's length, an inner array's count) or
        # its scalar size: a count the rest of the file cannot hold is damage, not a long walk.
        smallest = struct.calcsize(_SCALARS[kind]) if kind in _SCALARS else 8
        if count * smallest > len(self._data) - self._pos:
            raise IndexError("array past the end of the file")
        if kind in _SCALARS:
            self._pos += count * smallest
        elif kind == _STRING:
            for _ in range(count):  # a vocabulary: skip lengths without decoding
                self._pos += 8 + int(self._unpack("Q", self._pos))
        elif kind == _ARRAY and depth < _MAX_NESTING:
            for _ in range(count):
                self._skip_array(depth + 1)
        else:
            raise GGUFHeaderError(f"unsupported GGUF array type {kind}")
        if self._pos > len(self._data):
            raise IndexError("array past the end of the file")

    def metadata(self) -> dict[str, str]:
        count = int(self._read("Q"))
        found: dict[str, str] = {}
        for _ in range(count):
            key = self._string()
            kind = int(self._read("I"))
            if kind == _STRING:
                found[key] = self._string()
            elif kind == _ARRAY:
                self._skip_array()
            elif kind in _SCALARS:
                value = self._read(_SCALARS[kind])
                if isinstance(value, bool):
                    found[key] = "true" if value else "false"
                elif isinstance(value, float):
                    found[key] = f"{value:f}"
                else:
                    found[key] = str(value)
            else:
                raise GGUFHeaderError(f"unknown GGUF value type {kind} for {key}")
        return found
