"""Which models exist here and which one is active: the bundled model, catalog entries (downloaded
or not), local .gguf files the user added or dropped in the models folder, and `owner/repo/file`
hub files. The active choice is kept in a small JSON file so it survives restarts.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from models.bundled import bundled_model_path
from models.catalog import (
    CATALOG,
    Architecture,
    CatalogEntry,
    available_memory_bytes,
    memory_estimate,
)
from models.download import is_verified, repo_dir
from models.errors import ModelNotFound, StateFileError, UnknownModelError
from models.gguf import (
    GGUFHeaderError,
    is_first_part,
    is_gguf,
    quant_name,
    read_metadata,
    split_parts,
)

BUNDLED_ID = "bundled"


@dataclass(frozen=True)
class ModelChoice:
    """One row of the model list."""

    id: str
    name: str
    source: str  # "bundled" | "catalog" | "local"
    path: Path | None  # None while a catalog model is not downloaded
    size_bytes: int
    quant: str = ""
    license: str = ""
    entry: CatalogEntry | None = None
    arch: Architecture | None = None  # from the file's header, for a model not in the catalog

    @property
    def on_disk(self) -> bool:
        """True when the file is here and usable."""
        return self.path is not None

    def memory_bytes(self, n_ctx: int) -> int:
        """Estimated memory to run it at `n_ctx` (weights + KV cache + overhead)."""
        if self.entry is not None:
            return self.entry.memory_bytes(n_ctx)
        return memory_estimate(self.size_bytes, self.arch, n_ctx)

    def fits(self, n_ctx: int) -> bool:
        """Whether it fits in the memory available now."""
        return self.memory_bytes(n_ctx) <= available_memory_bytes()


@dataclass(frozen=True)
class AddedModels:
    """What `ModelRegistry.add_local` registered, and the files it left out (name: reason)."""

    added: list[ModelChoice]
    left_out: list[str]


class ModelRegistry:
    """Lists and resolves models; remembers the active one."""

    def __init__(self, models_dir: Path, state_file: Path) -> None:
        """Args: the folder downloads and scans use, and the JSON file holding the choices."""
        self.models_dir = models_dir
        self.state_file = state_file

    # -- persisted state ---------------------------------------------------------------------

    def _local_models(self) -> list[Path]:
        paths = self._state().get("local_models")
        return [Path(str(p)) for p in paths] if isinstance(paths, list) else []

    def _state(self) -> dict[str, object]:
        try:
            text = self.state_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StateFileError(f"cannot read {self.state_file}: {exc}") from exc
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise StateFileError(
                f"{self.state_file} is damaged. It was left untouched: fix it or move it aside "
                "(Quipu then starts with the bundled model and default settings)"
            )
        return data

    def _save(self, state: dict[str, object]) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
        tmp.replace(self.state_file)  # atomic: a crash never leaves half a file

    @property
    def active(self) -> str:
        """The active model's id (or path); the bundled model by default."""
        return str(self._state().get("active_model") or BUNDLED_ID)

    def set_active(self, name: str) -> None:
        """Remember the active model."""
        self._save({**self._state(), "active_model": name})

    def model_settings(self, model_id: str) -> dict[str, object]:
        """Settings saved for one model (context length, sampling, system prompt)."""
        saved = self._state().get("model_settings")
        entry = saved.get(model_id) if isinstance(saved, dict) else None
        return dict(entry) if isinstance(entry, dict) else {}

    def save_model_settings(self, model_id: str, values: dict[str, object]) -> None:
        """Remember settings for one model; they apply whenever it is loaded."""
        state = self._state()
        saved = state.get("model_settings")
        saved = dict(saved) if isinstance(saved, dict) else {}
        saved[model_id] = values
        self._save({**state, "model_settings": saved})

    def add_local(self, path: Path) -> AddedModels:
        """Register a .gguf file, or every .gguf in a folder; files whose header cannot be read
        (a download cut short, a damaged copy) are left out, with the reason.

        Raises:
            ModelNotFound: nothing usable there.
        """
        path = path.expanduser().resolve()
        files = sorted(path.rglob("*.gguf")) if path.is_dir() else [path]
        files = [f for f in files if is_gguf(f) and is_first_part(f)]
        usable, damaged = [], []
        for file in files:
            try:
                read_metadata(file)
            except (GGUFHeaderError, OSError) as exc:
                damaged.append(f"{file.name}: {exc}")
            else:
                usable.append(file)
        if not usable:
            reasons = f" ({'; '.join(damaged)})" if damaged else ""
            raise ModelNotFound(f"no usable GGUF model at {path}{reasons}")
        state = self._state()
        known = [str(p) for p in self._local_models()]
        known += [str(f) for f in usable if str(f) not in known]
        self._save({**state, "local_models": known})
        return AddedModels([self._local_choice(f) for f in usable], damaged)

    # -- listing -----------------------------------------------------------------------------

    def _catalog_choice(self, entry: CatalogEntry) -> ModelChoice:
        first = repo_dir(self.models_dir, entry.repo_id) / entry.first_file
        parts = [repo_dir(self.models_dir, entry.repo_id) / f for f in entry.files]
        ready = all(is_verified(p) for p in parts)
        return ModelChoice(
            entry.id,
            entry.name,
            "catalog",
            first if ready else None,
            entry.size_bytes,
            entry.quant,
            entry.license,
            entry,
        )

    def _local_choice(self, path: Path) -> ModelChoice:
        size = sum(p.stat().st_size for p in split_parts(path) if p.exists())
        meta = _header(path)
        arch = Architecture.from_metadata(meta)
        return ModelChoice(str(path), path.stem, "local", path, size, quant_name(meta), arch=arch)

    def choices(self) -> list[ModelChoice]:
        """Bundled, then the catalog, then local files (registered or in the models folder)."""
        out: list[ModelChoice] = []
        try:
            bundled = bundled_model_path()
            out.append(
                ModelChoice(
                    BUNDLED_ID,
                    "SmolLM2 135M Instruct (bundled)",
                    "bundled",
                    bundled,
                    bundled.stat().st_size,
                    "Q4_1",
                    "Apache-2.0",
                    arch=Architecture.from_metadata(_header(bundled)),
                )
            )
        except ModelNotFound:
            pass
        out += [self._catalog_choice(e) for e in CATALOG]
        catalog_paths = {c.path for c in out if c.path}
        local = self._local_models()
        if self.models_dir.is_dir():
            # Downloads are renamed to *.gguf only once verified, so every match here is complete.
            local += [f for f in sorted(self.models_dir.rglob("*.gguf")) if is_first_part(f)]
        seen: set[Path] = set()
        for path in local:
            if path in seen or path in catalog_paths or not path.is_file():
                continue
            seen.add(path)
            out.append(self._local_choice(path))
        return out

    def get(self, name: str) -> ModelChoice:
        """The choice with this id, or a local file path.

        Raises:
            UnknownModelError: neither an id in the list nor an existing .gguf path.
        """
        choices = self.choices()
        for choice in choices:
            if name in (choice.id, choice.name) or (choice.path and name == choice.path.name):
                return choice
        path = Path(name).expanduser()
        if path.suffix == ".gguf" and path.is_file():
            return self._local_choice(path.resolve())
        raise UnknownModelError(
            name, [c.id for c in choices if c.source != "local"] + ["PATH.gguf"]
        )

    def resolve(self, name: str) -> Path:
        """A usable local path for the model called `name`.

        Raises:
            UnknownModelError: no such model.
            ModelNotFound: a catalog model that is not downloaded yet.
        """
        choice = self.get(name)
        if choice.path is None:
            raise ModelNotFound(
                f"{choice.id} is not downloaded yet: python launch.py models download {choice.id}"
            )
        return choice.path


@functools.lru_cache(maxsize=64)
def _cached_header(path: Path, _mtime_ns: int, _size: int) -> dict[str, str]:
    try:
        return read_metadata(path)
    except (GGUFHeaderError, OSError):
        return {}  # listed without numbers; loading it says what is wrong


def _header(path: Path) -> dict[str, str]:
    """A model file's header metadata, read once per version of the file; {} if unreadable."""
    try:
        stat = path.stat()
    except OSError:
        return {}
    return _cached_header(path, stat.st_mtime_ns, stat.st_size)
