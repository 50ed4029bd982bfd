"""The package boundaries of STYLE.md, checked by parsing every import."""

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("rag", {"app", "gradio", "llama_cpp", "huggingface_hub", "models"}),
        ("models", {"app", "gradio", "rag", "chromadb"}),
    ],
)
def test_core_packages_do_not_import_upwards(package, forbidden):
    for path in files(package):
        bad = imports(path) & forbidden
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_only_the_ui_imports_gradio_and_only_the_store_imports_chromadb():
    for path in [*files("app"), *files("rag"), *files("models")]:
        rel = path.relative_to(ROOT).as_posix()
        found = imports(path)
        if "gradio" in found:
            assert rel.startswith("app/ui/"), rel
        if "chromadb" in found:
            assert rel == "rag/store.py", rel
        if "llama_cpp" in found:
            assert rel in ("models/llamacpp.py", "models/native.py"), rel


def test_build_flags_and_launcher_are_stdlib_only():
    import sys

    for path in (ROOT / "launch.py", ROOT / "models" / "build_flags.py"):
        third_party = {
            m for m in imports(path) if m not in sys.stdlib_module_names and m != "__future__"
        }
        assert not third_party, f"{path.name} imports {third_party}"
