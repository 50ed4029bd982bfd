"""`rag.ingest.library_names`: a batch's files get names that tell them apart."""

from pathlib import Path

import pytest

from rag.ingest import library_names

pytestmark = pytest.mark.unit


def test_a_files_own_name_is_its_library_name_unless_one_is_given():
    files = [Path("/a/report.pdf"), Path("/tmp/upload-7f3/x.pdf")]
    assert library_names(files, {files[1]: "Q3 results.pdf"}) == {
        files[0]: "report.pdf",
        files[1]: "Q3 results.pdf",
    }


def test_files_sharing_a_name_get_as_many_folders_as_tell_them_apart():
    files = [
        Path("/docs/2022/report.pdf"),
        Path("/docs/2023/report.pdf"),
        Path("/docs/2023/notes.pdf"),
        Path("/x/a/summary.pdf"),
        Path("/y/a/summary.pdf"),
    ]
    assert library_names(files, {}) == {
        files[0]: "2022/report.pdf",
        files[1]: "2023/report.pdf",
        files[2]: "notes.pdf",
        files[3]: "x/a/summary.pdf",
        files[4]: "y/a/summary.pdf",
    }


def test_given_names_that_are_alike_are_numbered_after_the_first():
    """Uploads carry the name the user's file had, and their folders mean nothing: two files
    of one name dropped together are two documents, not a file and its new version."""
    files = [Path("/up/1/report.pdf"), Path("/up/2/report.pdf"), Path("/up/3/report.pdf")]
    given = dict.fromkeys(files, "report.pdf")
    assert list(library_names(files, given).values()) == [
        "report.pdf",
        "report (2).pdf",
        "report (3).pdf",
    ]
    notes = [Path("/up/4/notes"), Path("/up/5/notes")]
    assert list(library_names(notes, dict.fromkeys(notes, "notes")).values()) == [
        "notes",
        "notes (2)",
    ]
