"""Each step of a library repair can be interrupted and resumed at the next start."""

from pathlib import Path

from rag.repair import FINISHED_MARKER, REBUILD_MARKER, _finish_swap


def damaged_with_staged_rebuild(tmp_path: Path, staged_db: str) -> tuple[Path, Path]:
    """A library marked for rebuild and a staging copy holding `staged_db` as its database."""
    library, staging = tmp_path / "chroma", tmp_path / "chroma.rebuilding"
    library.mkdir()
    (library / REBUILD_MARKER).write_text("reading it crashed\n")
    staging.mkdir()
    (staging / "chroma.sqlite3").write_text(staged_db)
    return library, staging


def test_a_finished_rebuild_is_swapped_in_and_the_damaged_library_kept(tmp_path):
    library, staging = damaged_with_staged_rebuild(tmp_path, "rebuilt")
    (staging / FINISHED_MARKER).write_text("3 documents\n")

    _finish_swap(library)

    assert (library / "chroma.sqlite3").read_text() == "rebuilt"
    assert not (library / FINISHED_MARKER).exists() and not staging.exists()
    (kept,) = tmp_path.glob("chroma.damaged-*")
    assert (kept / REBUILD_MARKER).exists()


def test_a_swap_cut_between_its_two_renames_is_finished(tmp_path):
    library, staging = tmp_path / "chroma", tmp_path / "chroma.rebuilding"
    staging.mkdir()
    (staging / FINISHED_MARKER).write_text("1 documents\n")  # the old one was already moved

    _finish_swap(library)

    assert library.is_dir() and not staging.exists()
    assert not list(tmp_path.glob("chroma.damaged-*"))


def test_an_unfinished_rebuild_is_dropped_and_the_marker_makes_it_start_again(tmp_path):
    library, staging = damaged_with_staged_rebuild(tmp_path, "half")

    _finish_swap(library)

    assert not staging.exists()
    assert (library / REBUILD_MARKER).exists()
