import struct

import pytest

from models.catalog import CATALOG, get_entry
from models.download import marker
from models.errors import ModelNotFound, UnknownModelError
from models.gguf import is_first_part, split_parts
from models.registry import BUNDLED_ID, ModelRegistry

pytestmark = pytest.mark.unit


@pytest.fixture
def registry(tmp_path):
    return ModelRegistry(tmp_path / "models", tmp_path / "state.json")


def test_catalog_has_llama_sizes_in_two_quantizations_and_a_split_model():
    names = {e.name for e in CATALOG}
    assert {"Llama 3.2 1B Instruct", "Llama 3.2 3B Instruct", "Llama 3.1 8B Instruct"} <= names
    for name in ("Llama 3.2 1B Instruct", "Llama 3.2 3B Instruct", "Llama 3.1 8B Instruct"):
        assert len({e.quant for e in CATALOG if e.name == name}) >= 2
    split = [e for e in CATALOG if len(e.files) > 1]
    assert split and all("-00001-of-" in e.first_file for e in split)


def test_unknown_model_lists_the_valid_choices():
    with pytest.raises(UnknownModelError, match="llama-3.2-1b-q4"):
        get_entry("llama-9000")


def test_memory_grows_with_context_and_size():
    small, big = get_entry("llama-3.2-1b-q4"), get_entry("llama-3.1-8b-q4")
    assert small.memory_bytes(8192) > small.memory_bytes(2048) > small.size_bytes
    assert big.memory_bytes(4096) > small.memory_bytes(4096)


def test_bundled_is_the_default_and_the_choice_persists(registry, tmp_path):
    assert registry.active == BUNDLED_ID
    assert registry.resolve(BUNDLED_ID).name.endswith(".gguf")
    registry.set_active("llama-3.2-1b-q4")
    assert ModelRegistry(tmp_path / "models", tmp_path / "state.json").active == "llama-3.2-1b-q4"


def test_a_catalog_model_not_downloaded_is_listed_but_not_usable(registry):
    choice = registry.get("llama-3.2-1b-q4")
    assert not choice.on_disk
    with pytest.raises(ModelNotFound, match="models download llama-3.2-1b-q4"):
        registry.resolve("llama-3.2-1b-q4")


def test_a_verified_download_becomes_usable(registry):
    entry = get_entry("llama-3.2-1b-q4")
    path = registry.models_dir / entry.repo_id.replace("/", "--") / entry.first_file
    path.parent.mkdir(parents=True)
    path.write_bytes(b"GGUF" + b"\0" * 100)
    assert not registry.get(entry.id).on_disk, "no verification marker yet"
    marker(path).write_text("x")
    assert registry.resolve(entry.id) == path


def _tiny_gguf(extra: bytes = b"") -> bytes:
    """A readable GGUF v3 header with no tensors and no metadata."""
    return b"GGUF" + struct.pack("<IQQ", 3, 0, 0) + extra


def test_local_files_and_folders_are_added_and_non_gguf_refused(registry, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "a.gguf").write_bytes(_tiny_gguf(b"...."))
    (folder / "fake.gguf").write_bytes(b"not a model")
    (folder / "big-00001-of-00002.gguf").write_bytes(_tiny_gguf(b"1"))
    (folder / "big-00002-of-00002.gguf").write_bytes(b"GGUF2")
    result = registry.add_local(folder)
    assert sorted(c.name for c in result.added) == ["a", "big-00001-of-00002"]
    assert result.left_out == []
    assert registry.get("a").path == folder / "a.gguf"
    assert registry.get("big-00001-of-00002").size_bytes == len(_tiny_gguf(b"1")) + 5
    with pytest.raises(ModelNotFound):
        registry.add_local(folder / "fake.gguf")


def test_a_gguf_cut_short_is_left_out_with_the_reason(registry, tmp_path):
    """A download that stopped half way starts with the GGUF magic but cannot be loaded."""
    from models.bundled import bundled_model_path

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "good.gguf").write_bytes(_tiny_gguf())
    (folder / "half.gguf").write_bytes(bundled_model_path().read_bytes()[:4096])
    result = registry.add_local(folder)
    assert [c.name for c in result.added] == ["good"]
    assert result.left_out == ["half.gguf: the GGUF header is cut short or damaged"]
    with pytest.raises(ModelNotFound, match="half.gguf: the GGUF header is cut short"):
        registry.add_local(folder / "half.gguf")
    assert "half" not in {c.name for c in registry.choices()}


def test_split_part_names():
    first = split_parts(__import__("pathlib").Path("/m/x-00001-of-00003.gguf"))
    assert [p.name for p in first] == [f"x-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    assert is_first_part(first[0]) and not is_first_part(first[1])


def test_a_local_model_is_described_from_its_header(registry, tmp_path):
    """Quantization and the KV-cache estimate come from the file itself, as for the catalog."""
    from models.bundled import bundled_model_path
    from models.catalog import RUNTIME_OVERHEAD_BYTES, SMOLLM2_135M

    copy = tmp_path / "my-model.gguf"
    copy.write_bytes(bundled_model_path().read_bytes())
    (damaged := registry.models_dir / "damaged.gguf").parent.mkdir(parents=True)
    damaged.write_bytes(b"GGUF" + b"\xff" * 100)  # dropped into the models folder
    registry.add_local(copy)
    local = registry.get("my-model")
    assert local.quant == "Q4_1"
    size = copy.stat().st_size
    for n_ctx, counted in ((2048, 2048), (32768, 8192)):  # capped at the trained context
        expected = size + SMOLLM2_135M.kv_cache_bytes(counted) + RUNTIME_OVERHEAD_BYTES
        assert local.memory_bytes(n_ctx) == expected
    unreadable = registry.get("damaged")
    assert unreadable.quant == "" and unreadable.arch is None
    assert unreadable.memory_bytes(4096) > unreadable.size_bytes  # a margin, not an error


def test_quantization_names_match_llama_cpp():
    import llama_cpp

    from models.gguf import FILE_TYPES

    for number, name in FILE_TYPES.items():
        prefix = "LLAMA_FTYPE_ALL_" if number == 0 else "LLAMA_FTYPE_MOSTLY_"
        assert getattr(llama_cpp, prefix + name) == number
