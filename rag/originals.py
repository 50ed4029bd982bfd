"""A copy of each indexed PDF, so that a cited page can be opened as the PDF shows it.

The library itself holds only text and vectors. `Originals` keeps the file's bytes beside it,
named by the document's id (the sha256 of those bytes): `<folder>/<file_id>.pdf`. A copy is
written to a temporary name and renamed into place, so a crash never leaves half a PDF under a
document's name; it goes when its document leaves the library, and `prune` removes copies that a
crash left without one. Keeping a copy is best effort: a full disk costs the link to the page,
never the document's place in the library.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

_FILE_ID = re.compile(r"[0-9a-f]{64}")


class Originals:
    """PDF copies by document id in one folder (created on first use)."""

    def __init__(self, folder: Path) -> None:
        """Args: the folder that holds the copies and nothing else."""
        self.folder = folder

    def path(self, file_id: str) -> Path | None:
        """The copy of document `file_id`, or None if there is none."""
        if not _FILE_ID.fullmatch(file_id):
            return None
        path = self.folder / f"{file_id}.pdf"
        return path if path.is_file() else None

    def keep(self, file_id: str, source: Path) -> bool:
        """Copy `source` (whose sha256 is `file_id`) into the folder; True if a copy is there.

        Never raises for a failed copy (full disk, unreadable source): it is logged.
        """

        def copy(target: BinaryIO) -> None:
            with source.open("rb") as original:
                shutil.copyfileobj(original, target, 1 << 20)

        return self._write(file_id, copy, source.name)

    def keep_bytes(self, file_id: str, data: bytes, name: str) -> bool:
        """Keep `data` as document `file_id`'s copy (a library import brings the bytes).

        Bytes whose sha256 is not `file_id` are refused (False, logged): a copy is only ever the
        file the document was read from. Never raises for a failed write.
        """
        if self.path(file_id) is not None:
            return True
        if hashlib.sha256(data).hexdigest() != file_id:
            log.warning("the PDF given for %s is not the file it was indexed from", name)
            return False
        return self._write(file_id, lambda target: target.write(data), name)

    def _write(self, file_id: str, fill: Callable[[BinaryIO], object], name: str) -> bool:
        """Write a copy through a temporary file renamed into place; True if a copy is there."""
        if not _FILE_ID.fullmatch(file_id):
            raise ValueError(f"not a document id: {file_id!r}")
        if self.path(file_id) is not None:
            return True
        temporary = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".partial-")
            with os.fdopen(handle, "wb") as target:
                fill(target)
            os.replace(temporary, self.folder / f"{file_id}.pdf")
            return True
        except OSError as exc:
            log.warning("could not keep a copy of %s for opening its pages: %s", name, exc)
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)
            return False

    def remove(self, file_id: str) -> None:
        """Delete document `file_id`'s copy, if any."""
        path = self.path(file_id)
        if path is not None:
            path.unlink(missing_ok=True)

    def prune(self, keep: Iterable[str], *, min_age_s: float = 600.0) -> int:
        """Delete copies of documents not in `keep`, and leftovers of interrupted copies.

        Files younger than `min_age_s` stay: another process on the same library (the command
        line beside the app) may be adding that document right now.

        Returns:
            How many files were deleted.
        """
        if not self.folder.is_dir():
            return 0
        wanted = {f"{file_id}.pdf" for file_id in keep}
        oldest = time.time() - min_age_s
        removed = 0
        for entry in self.folder.iterdir():
            try:
                if entry.name in wanted or not entry.is_file() or entry.stat().st_mtime > oldest:
                    continue
                entry.unlink()
            except FileNotFoundError:
                continue
            removed += 1
        return removed
