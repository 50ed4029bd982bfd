"""The kept copies of indexed PDFs: written whole or not at all, found by id, pruned."""

import hashlib
import os
import time

import pytest

from rag.originals import Originals


def _source(tmp_path, data: bytes = b"%PDF-1.7 some bytes"):
    path = tmp_path / "in" / "report.pdf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_a_kept_copy_has_the_bytes_and_is_found_by_id(tmp_path):
    originals = Originals(tmp_path / "files")
    source, file_id = _source(tmp_path)
    assert originals.path(file_id) is None
    assert originals.keep(file_id, source)
    kept = originals.path(file_id)
    assert kept == tmp_path / "files" / f"{file_id}.pdf"
    assert kept.read_bytes() == source.read_bytes()
    assert os.listdir(tmp_path / "files") == [kept.name]  # no temporary file left

    source.unlink()  # keeping it again needs no source: the copy is there
    assert originals.keep(file_id, source)


def test_ids_that_are_not_sha256_never_reach_the_file_system(tmp_path):
    originals = Originals(tmp_path / "files")
    source, _ = _source(tmp_path)
    for bad in ("../../etc/passwd", "", "ABC", "a" * 63, "a" * 64 + "/x"):
        assert originals.path(bad) is None
        with pytest.raises(ValueError):
            originals.keep(bad, source)
        originals.remove(bad)  # nothing to do, nothing raised


def test_a_failed_copy_is_reported_and_leaves_nothing(tmp_path, caplog):
    originals = Originals(tmp_path / "files")
    missing = tmp_path / "gone.pdf"
    assert not originals.keep("a" * 64, missing)
    assert originals.path("a" * 64) is None
    assert os.listdir(tmp_path / "files") == []
    assert "could not keep a copy of gone.pdf" in caplog.text


def test_remove_deletes_only_that_copy(tmp_path):
    originals = Originals(tmp_path / "files")
    first, first_id = _source(tmp_path, b"first")
    kept_first = originals.keep(first_id, first)
    second, second_id = _source(tmp_path, b"second")
    assert kept_first and originals.keep(second_id, second)
    originals.remove(first_id)
    assert originals.path(first_id) is None
    assert originals.path(second_id).read_bytes() == b"second"


def test_prune_drops_copies_without_a_document_once_they_are_old(tmp_path):
    folder = tmp_path / "files"
    originals = Originals(folder)
    ids = []
    for data in (b"kept", b"orphan", b"young orphan"):
        source, file_id = _source(tmp_path, data)
        originals.keep(file_id, source)
        ids.append(file_id)
    partial = folder / ".partial-abc"
    partial.write_bytes(b"half a pdf")
    hour_ago = time.time() - 3600
    for name in (f"{ids[0]}.pdf", f"{ids[1]}.pdf", partial.name):
        os.utime(folder / name, (hour_ago, hour_ago))

    assert originals.prune([ids[0]]) == 2  # the old orphan and the old partial copy
    assert sorted(os.listdir(folder)) == sorted([f"{ids[0]}.pdf", f"{ids[2]}.pdf"])
    assert originals.prune([ids[0]], min_age_s=0) == 1
    assert os.listdir(folder) == [f"{ids[0]}.pdf"]
    assert Originals(tmp_path / "never-made").prune([]) == 0
