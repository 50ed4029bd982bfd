"""Fetch GGUF files from a Hugging Face hub (or any server speaking its file API), verified.

`download(repo_id, filenames, models_dir=...)` looks up each file's size and sha256 in the hub's
metadata, streams it with huggingface_hub's HTTP machinery into `<file>.part` (resuming with a Range
request from whatever an interrupted or killed transfer left there: huggingface_hub itself discards
partial files), reports bytes/speed/ETA through `progress`, checks size and sha256, and only then
renames it into place with a `.sha256` marker beside it. A file without its marker is never
offered as usable. Split
GGUFs are several files; all are fetched and verified.

Quipu runs with HF_HUB_OFFLINE=1 (app/privacy.py); a download the user asked for lifts it for its
own duration only, unless the user set offline mode themselves, in which case it fails at once.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.base import CancelToken
from models.errors import ChecksumMismatch, DownloadCancelled, DownloadError

USER_OFFLINE_ENV = "QUIPU_USER_OFFLINE"  # set by app/privacy.py when the user asked for offline
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_online_lock = threading.Lock()


@dataclass(frozen=True)
class DownloadProgress:
    """Bytes received so far for one file of a download."""

    file: str
    part: int  # 1-based index among the files of this download
    parts: int
    done_bytes: int
    total_bytes: int
    speed_bps: float
    eta_s: float | None


def repo_dir(models_dir: Path, repo_id: str) -> Path:
    """Where a repo's files live under the models folder."""
    return models_dir / repo_id.replace("/", "--")


def marker(path: Path) -> Path:
    """The verification marker of a downloaded file."""
    return path.with_name(path.name + ".sha256")


def is_verified(path: Path) -> bool:
    """True when `path` was fully downloaded and checked (its marker exists)."""
    return path.is_file() and marker(path).is_file()


@contextmanager
def _hub_online() -> Iterator[Any]:
    """Lift Quipu's own offline switch for the duration of one download."""
    if os.environ.get(USER_OFFLINE_ENV) == "1":
        raise DownloadError(
            "offline mode is on (HF_HUB_OFFLINE=1 was set before Quipu started): "
            "unset it to download"
        )
    import huggingface_hub
    from huggingface_hub import constants

    with _online_lock:
        before = constants.HF_HUB_OFFLINE
        constants.HF_HUB_OFFLINE = False
        try:
            yield huggingface_hub
        finally:
            constants.HF_HUB_OFFLINE = before


def _progress_bar_class(
    report: Callable[[int, int], None], cancel: CancelToken | None
) -> type[Any]:
    """A tqdm subclass that forwards bytes to `report(done, total)` and honours `cancel`."""
    from tqdm.auto import tqdm

    class _Bar(tqdm):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True  # no terminal bar: the caller renders progress
            self._quipu_done = int(kwargs.get("initial") or 0)
            self._quipu_total = int(kwargs.get("total") or 0)
            super().__init__(*args, **kwargs)
            report(self._quipu_done, self._quipu_total)

        def update(self, n: float | None = 1) -> bool | None:
            if cancel is not None and cancel.is_set():
                raise DownloadCancelled("download cancelled; run it again to resume")
            self._quipu_done += int(n or 0)
            report(self._quipu_done, self._quipu_total)
            return None

    return _Bar


def _reporter(
    progress: Callable[[DownloadProgress], None] | None,
    filename: str,
    part: int,
    parts: int,
    size: int,
) -> Callable[[int, int], None]:
    """Turn (bytes done, total) into `DownloadProgress` events with speed and ETA."""
    started = time.monotonic()
    resumed_from: list[int] = []

    def report(done: int, total: int) -> None:
        if progress is None:
            return
        if not resumed_from:
            resumed_from.append(done)  # bytes already on disk from an interrupted try
        elapsed = max(time.monotonic() - started, 1e-6)
        speed = (done - resumed_from[0]) / elapsed
        total = total or size
        eta = (total - done) / speed if speed > 0 and total else None
        progress(DownloadProgress(filename, part, parts, done, total, speed, eta))

    return report


def _explain(exc: Exception, repo_id: str, filename: str, endpoint: str | None) -> DownloadError:
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )

    where = endpoint or "the Hugging Face hub"
    if isinstance(exc, GatedRepoError):
        return DownloadError(
            f"{repo_id} is gated: accept its licence on the hub and set a hub token"
        )
    if isinstance(exc, RepositoryNotFoundError):
        return DownloadError(
            f"no repository {repo_id} on {where} (or it is private: set a hub token)"
        )
    if isinstance(exc, EntryNotFoundError):
        return DownloadError(f"{repo_id} has no file {filename}")
    if isinstance(exc, OfflineModeIsEnabled):
        return DownloadError("offline mode is on: downloads are disabled")
    return DownloadError(f"could not download {filename} from {where}: {type(exc).__name__}: {exc}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(
    repo_id: str,
    filenames: str | Sequence[str],
    *,
    models_dir: Path,
    revision: str = "main",
    endpoint: str | None = None,
    token: str | None = None,
    progress: Callable[[DownloadProgress], None] | None = None,
    cancel: CancelToken | None = None,
    timeout_s: float = 10.0,
) -> Path:
    """Download and verify one model (one file, or every part of a split GGUF).

    Args:
        repo_id: "owner/name" on the hub.
        filenames: the file, or the parts of a split GGUF in order.
        models_dir: the folder models are kept in.
        revision: branch, tag or commit.
        endpoint: the hub's base URL (default: HF_ENDPOINT or huggingface.co).
        token: a hub token, for gated or private repos.
        progress: called with `DownloadProgress` as bytes arrive.
        cancel: set it to stop; the partial file stays for a later resume.
        timeout_s: how long to wait for the hub to answer before giving up.

    Returns:
        The local path of the first file (the one llama.cpp opens).

    Raises:
        DownloadError: network or hub failure, offline mode, unknown repo or file.
        ChecksumMismatch: the bytes differ from the hub's announced size or sha256.
        DownloadCancelled: `cancel` was set.
    """
    names = [filenames] if isinstance(filenames, str) else list(filenames)
    local_dir = repo_dir(models_dir, repo_id)
    paths: list[Path] = []
    with _hub_online() as hub:
        for part, filename in enumerate(names, start=1):
            target = local_dir / filename
            paths.append(target)
            if is_verified(target):
                continue
            url = hub.hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint)
            try:
                meta = hub.get_hf_file_metadata(
                    url, token=token, timeout=timeout_s, endpoint=endpoint
                )
            except Exception as exc:
                raise _explain(exc, repo_id, filename, endpoint) from exc
            expected_sha = (meta.etag or "").strip('"').lower()
            report = _reporter(progress, filename, part, len(names), meta.size or 0)
            partial = target.with_name(target.name + ".part")
            partial.parent.mkdir(parents=True, exist_ok=True)
            resume = partial.stat().st_size if partial.exists() else 0
            if meta.size is not None and resume > meta.size:
                partial.unlink()  # a stale part from another version of the file
                resume = 0
            try:
                from huggingface_hub.file_download import http_get
                from huggingface_hub.utils import build_hf_headers

                with partial.open("ab") as fh:
                    http_get(
                        meta.location or url,
                        fh,
                        resume_size=resume,
                        headers=build_hf_headers(token=token),
                        expected_size=meta.size,
                        displayed_filename=filename,
                        tqdm_class=_progress_bar_class(report, cancel),
                    )
            except DownloadError:
                raise
            except Exception as exc:
                raise _explain(exc, repo_id, filename, endpoint) from exc
            _verify(partial, meta.size, expected_sha)
            partial.replace(target)
            marker(partial).replace(marker(target))
    return paths[0]


def _verify(path: Path, size: int | None, sha256: str) -> None:
    """Check size and sha256; on mismatch delete the file so it cannot be used."""
    actual_size = path.stat().st_size
    problem = None
    if size is not None and actual_size != size:
        problem = f"size {actual_size} bytes, expected {size}"
    elif _SHA256.match(sha256):
        actual = _sha256(path)
        if actual != sha256:
            problem = f"sha256 {actual[:12]}…, expected {sha256[:12]}…"
        else:
            marker(path).write_text(actual + "\n", encoding="utf-8")
            return
    if problem:
        path.unlink(missing_ok=True)
        raise ChecksumMismatch(f"{path.name} is corrupt ({problem}); it was deleted, try again")
    # The hub gave no sha256 (not an LFS file): the size check is all we can do.
    marker(path).write_text("size-only\n", encoding="utf-8")
