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


def test_given_names_are_kept_even_when_they_are_alike():
    """Uploads carry the name the user's file had; two of the same name stay as given (the
    second is then a new version of the first, as when uploaded one after the other)."""
    files = [Path("/up/1/report.pdf"), Path("/up/2/report.pdf")]
    given = {files[0]: "report.pdf", files[1]: "report.pdf"}
    assert library_names(files, given) == given
