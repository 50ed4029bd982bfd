"""The Gradio page. Importing this package first makes `import gradio` ~3 s faster (see below)."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

_STUB_MODULE = "gradio.component_meta"


def _no_stubs(*args: Any, **kwargs: Any) -> None:
    """Stands in for gradio's `create_or_modify_pyi`."""


class _NoStubWriting(importlib.abc.MetaPathFinder):
    """Gradio's component metaclass re-parses every component's source with `ast` at import, to
    rewrite the type stubs (.pyi) beside it in site-packages: 3.2 of the 4.1 s that `import
    gradio` took here, for files that only editors and type checkers read. This finder loads
    `gradio.component_meta` as usual, then swaps that one function for a no-op before any
    component class is defined. If a later gradio renames it, nothing is swapped and nothing
    breaks: the import is only slower."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _STUB_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        loader = spec.loader if spec else None
        if spec is None or not isinstance(loader, importlib.machinery.SourceFileLoader):
            return spec
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            if callable(getattr(module, "create_or_modify_pyi", None)):
                module.create_or_modify_pyi = _no_stubs  # type: ignore[attr-defined]

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if _STUB_MODULE not in sys.modules and not any(
    isinstance(f, _NoStubWriting) for f in sys.meta_path
):
    sys.meta_path.insert(0, _NoStubWriting())
