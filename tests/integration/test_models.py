"""Loading, switching and refusing models with the real bundled GGUF and a real copy of it."""

import json
import shutil

import pytest

from app.settings import Settings
from app.wiring import build_services
from models import llamacpp
from models.bundled import bundled_model_path
from models.errors import ModelTooLarge
from rag.types import Answer
from tests.conftest import run_cli
from tests.fake_hub import FakeHub

pytestmark = pytest.mark.integration


@pytest.fixture
def services(tmp_path):
    settings = Settings(
        data_dir=tmp_path / "data", model={"n_ctx": 1024, "max_tokens": 32, "temperature": 0}
    )
    services = build_services(settings)
    yield services
    services.close()


@pytest.fixture
def second_model(tmp_path):
    copy = tmp_path / "other-models" / "Second-Model.Q4_1.gguf"
    copy.parent.mkdir()
    shutil.copy(bundled_model_path(), copy)
    return copy


def ask(services, question="Say hello."):
    return [p for p in services.answerer.ask(question, use_documents=False)][-1]


def test_switching_frees_the_old_model_and_the_next_answer_uses_the_new(services, second_model):
    services.registry.add_local(second_model.parent)
    first = services.model
    assert isinstance(ask(services), Answer)
    info = services.switch_model(str(second_model))
    assert info.path == str(second_model) and info.name == "Second-Model.Q4_1"
    assert first._llm is None, "the old model was closed"
    assert services.answerer.model is services.model
    assert ask(services).text
    # The choice survives a restart.
    again = build_services(services.settings)
    try:
        assert again.model.model_path == second_model
    finally:
        again.close()


def test_a_model_too_large_is_refused_with_numbers_and_the_old_one_keeps_working(
    services, second_model, monkeypatch
):
    services.model.warm_up()
    monkeypatch.setattr(llamacpp, "available_memory_bytes", lambda: 50 * 1024**2)
    with pytest.raises(ModelTooLarge, match=r"needs about 0\.\d GiB .* only 0\.0 GiB"):
        services.switch_model(str(second_model))
    monkeypatch.undo()
    assert services.model.model_path == bundled_model_path()
    assert ask(services).text


def test_cli_downloads_from_a_hub_lists_uses_and_answers_with_it(tmp_path):
    data = tmp_path / "data"
    with FakeHub() as hub:
        hub.add("someone/Smol-GGUF", "smol-copy.gguf", bundled_model_path().read_bytes())
        import os

        os.environ["QUIPU_MODEL__HUB_ENDPOINT"] = hub.url
        try:
            result = run_cli(
                "models", "download", "someone/Smol-GGUF/smol-copy.gguf", data_dir=data
            )
        finally:
            del os.environ["QUIPU_MODEL__HUB_ENDPOINT"]
    assert result.returncode == 0, result.stderr
    assert "100.0%" in result.stderr and "downloaded" in result.stdout
    listing = json.loads(run_cli("models", "list", "--json", data_dir=data).stdout)
    ids = {m["name"]: m for m in listing}
    assert ids["smol-copy"]["on_disk"]
    assert ids["SmolLM2 135M Instruct (bundled)"]["active"]
    assert not ids["Llama 3.2 1B Instruct"]["on_disk"]
    use = run_cli("models", "use", "smol-copy", data_dir=data)
    assert use.returncode == 0, use.stderr
    listing = json.loads(run_cli("models", "list", "--json", data_dir=data).stdout)
    assert [m["name"] for m in listing if m["active"]] == ["smol-copy"]
    answer = run_cli("ask", "Say hello.", "--no-docs", data_dir=data)
    assert answer.returncode == 0 and answer.stdout.strip()
    missing = run_cli("models", "use", "llama-3.2-1b-q4", data_dir=data)
    assert missing.returncode == 1 and "models download llama-3.2-1b-q4" in missing.stderr


def test_settings_are_saved_per_model_and_a_new_context_reloads_it(services, second_model):
    services.registry.add_local(second_model.parent)
    services.switch_model(str(second_model))
    info = services.apply_model_settings(
        {
            "n_ctx": 2048,
            "temperature": 0.0,
            "top_p": 0.9,
            "max_tokens": 40,
            "system_prompt": "Be brief.",
        }
    )
    assert info.context_length == 2048
    assert (
        services.model.default_options.max_tokens == 40 and services.answerer.answer_reserve == 40
    )
    assert services.answerer.system_prompt == "Be brief."
    # Back to the bundled model: its own (default) settings apply, not the other model's.
    assert services.switch_model("bundled").context_length == 1024
    assert services.answerer.system_prompt is None
    # And the other model gets its saved settings again, here and after a restart.
    assert services.switch_model(str(second_model)).context_length == 2048
    again = build_services(services.settings)
    try:
        assert (
            again.model.info.context_length == 2048 and again.answerer.system_prompt == "Be brief."
        )
    finally:
        again.close()


def test_a_warm_up_after_close_stops_and_warns_of_nothing(tmp_path, caplog):
    """Ctrl+C while the app starts: `close()` runs under the background warm-up, which must
    stop rather than load the model again or report the closed library as broken."""
    import logging

    services = build_services(Settings(data_dir=tmp_path / "data"))
    services.close()
    with caplog.at_level(logging.WARNING):
        services.warm_up()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
