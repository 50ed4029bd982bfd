"""The GGUF header reader: the same metadata llama.cpp reports, from the real bundled model, and
clear errors for files that are not GGUF or are cut short."""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path

import pytest

from models.bundled import bundled_model_path
from models.errors import ModelLoadError
from models.gguf import GGUFHeaderError, read_metadata
from models.llamacpp import LlamaRuntime


def test_metadata_of_the_bundled_model_is_what_llama_cpp_reports():
    import llama_cpp

    path = bundled_model_path()
    probe = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
    try:
        expected = dict(probe.metadata)
    finally:
        probe.close()
    found = read_metadata(path)
    assert found == expected
    assert found["general.architecture"] == "llama"
    assert int(found["llama.context_length"]) > 0


def _string(text: str, order: str) -> bytes:
    raw = text.encode()
    return struct.pack(order + "Q", len(raw)) + raw


def _header(order: str, version: int = 3) -> bytes:
    """A GGUF header with one value of each kind, arrays of numbers, strings and arrays."""
    entries = [
        ("general.architecture", 8, _string("llama", order)),
        ("u8", 0, struct.pack(order + "B", 7)),
        ("i16", 3, struct.pack(order + "h", -3)),
        ("u32", 4, struct.pack(order + "I", 4096)),
        ("i64", 11, struct.pack(order + "q", -(2**40))),
        ("f32", 6, struct.pack(order + "f", 0.5)),
        ("f64", 12, struct.pack(order + "d", 1e-5)),
        ("flag", 7, struct.pack(order + "?", True)),
        ("numbers", 9, struct.pack(order + "IQ", 5, 3) + struct.pack(order + "3i", 1, 2, 3)),
        ("tokens", 9, struct.pack(order + "IQ", 8, 2) + _string("a", order) + _string("bc", order)),
        (
            "nested",
            9,
            struct.pack(order + "IQ", 9, 1) + struct.pack(order + "IQ", 0, 2) + b"\x01\x02",
        ),
        ("after.arrays", 8, _string("still read", order)),
    ]
    body = b"".join(
        _string(key, order) + struct.pack(order + "I", kind) + value for key, kind, value in entries
    )
    return b"GGUF" + struct.pack(order + "IQQ", version, 0, len(entries)) + body


@pytest.mark.parametrize("order", ["<", ">"], ids=["little-endian", "big-endian"])
def test_every_value_kind_is_read_and_arrays_are_skipped(tmp_path: Path, order: str):
    path = tmp_path / "tiny.gguf"
    path.write_bytes(_header(order) + b"\0" * 64)
    assert read_metadata(path) == {
        "general.architecture": "llama",
        "u8": "7",
        "i16": "-3",
        "u32": "4096",
        "i64": str(-(2**40)),
        "f32": "0.500000",
        "f64": "0.000010",
        "flag": "true",
        "after.arrays": "still read",
    }


def test_files_that_are_not_gguf_or_are_cut_short_are_refused(tmp_path: Path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(bundled_model_path().read_bytes()[:5000])  # inside the vocabulary
    not_gguf = tmp_path / "text.gguf"
    not_gguf.write_bytes(b"hello, this is not a model" * 4)
    old = tmp_path / "v1.gguf"
    old.write_bytes(_header("<", version=1))
    with pytest.raises(GGUFHeaderError, match="cut short"):
        read_metadata(cut)
    with pytest.raises(GGUFHeaderError, match="not a GGUF"):
        read_metadata(not_gguf)
    with pytest.raises(GGUFHeaderError, match="version 1"):
        read_metadata(old)
    (empty := tmp_path / "empty.gguf").write_bytes(b"")
    with pytest.raises(GGUFHeaderError, match="too short"):
        read_metadata(empty)
    with pytest.raises(
        ModelLoadError, match="cut.gguf cannot be read: the GGUF header is cut short"
    ):
        LlamaRuntime(cut).warm_up()


def test_loading_the_model_prints_no_context_warning(capfd):
    """The old vocab-only probe made llama.cpp warn about a training context of 0 at every start."""
    runtime = LlamaRuntime(bundled_model_path(), n_ctx=512)
    try:
        runtime.warm_up()
    finally:
        runtime.close()
    assert "n_ctx_train (0)" not in capfd.readouterr().err


def test_damaged_headers_raise_only_header_errors(tmp_path: Path):
    """Random damage to a header (as a bad disk or a cut download does) is refused, never a
    crash of another kind: the model list reads every local file's header."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    valid = _header("<")
    path = tmp_path / "damaged.gguf"

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        cut=st.integers(min_value=0, max_value=len(valid)),
        flips=st.lists(st.tuples(st.integers(0, len(valid) - 1), st.integers(0, 255)), max_size=8),
    )
    def damaged(cut: int, flips: list[tuple[int, int]]) -> None:
        data = bytearray(valid)
        for at, value in flips:
            data[at] = value
        path.write_bytes(bytes(data[:cut]) + b"\0" * 32)
        with contextlib.suppress(GGUFHeaderError):
            read_metadata(path)

    damaged()


def test_arrays_nested_without_end_are_refused(tmp_path: Path):
    deep = struct.pack("<IQ", 9, 1) * 50 + struct.pack("<IQ", 0, 0)
    entry = _string("deep", "<") + struct.pack("<I", 9) + deep
    path = tmp_path / "deep.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + entry)
    with pytest.raises(GGUFHeaderError, match="unsupported GGUF array"):
        read_metadata(path)
