from pathlib import Path

import pytest

from app.cli import build_parser, settings_from
from app.settings import Settings, SettingsError, load_settings, make_data_dir

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "argv",
    [
        ["--data-dir", "/tmp/d", "--model", "/tmp/m.gguf", "search", "q", "--k", "3"],
        ["search", "q", "--k", "3", "--data-dir", "/tmp/d", "--model", "/tmp/m.gguf"],
        ["--data-dir", "/tmp/d", "search", "q", "--model", "/tmp/m.gguf", "--k", "3"],
    ],
)
def test_global_flags_work_before_or_after_the_command(argv):
    args = build_parser().parse_args(argv)
    settings = settings_from(args)
    assert settings.data_dir == Path("/tmp/d").resolve()
    assert settings.model.path == Path("/tmp/m.gguf").resolve()
    assert args.command == "search" and args.k == 3 and args.queries == ["q"]


def test_run_is_the_default_with_its_flags():
    args = build_parser().parse_args(["--port", "9999", "--no-browser", "--host", "0.0.0.0"])
    settings = settings_from(args)
    assert args.command is None
    assert (settings.ui.port, settings.ui.host, settings.ui.open_browser) == (
        9999,
        "0.0.0.0",
        False,
    )


def test_environment_variables_configure_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("QUIPU_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("QUIPU_MODEL__N_CTX", "1024")
    monkeypatch.setenv("QUIPU_RAG__TOP_K", "7")
    settings = settings_from(build_parser().parse_args(["library"]))
    assert settings.data_dir == tmp_path
    assert settings.model.n_ctx == 1024 and settings.rag.top_k == 7


def test_default_data_dir_is_not_the_source_tree(monkeypatch):
    monkeypatch.delenv("QUIPU_DATA_DIR")
    settings = settings_from(build_parser().parse_args(["library"]))
    assert Path(__file__).resolve().parents[2] not in settings.data_dir.resolve().parents


@pytest.mark.parametrize(("cpus", "interval"), [(1, 0.3), (2, 0.25), (4, 0.125), (16, 0.05)])
def test_streamed_answers_update_less_often_on_fewer_cpus(monkeypatch, cpus, interval):
    from app.settings import UiSettings

    monkeypatch.setattr("os.cpu_count", lambda: cpus)
    assert UiSettings().stream_interval == pytest.approx(interval)
    assert UiSettings(stream_interval_s=0.5).stream_interval == 0.5  # a setting wins


def test_a_value_that_does_not_fit_names_its_variable_and_flag(monkeypatch):
    monkeypatch.setenv("QUIPU_RAG__TOP_K", "-1")
    args = build_parser().parse_args(["--port", "99999", "--data-dir", "/tmp/d"])
    with pytest.raises(SettingsError) as caught:
        settings_from(args)
    message = str(caught.value)
    assert "QUIPU_UI__PORT (--port) = 99999" in message and "65535" in message
    assert "QUIPU_RAG__TOP_K = '-1'" in message  # every problem, not only the first
    assert "pydantic" not in message


def test_a_data_folder_that_cannot_be_made_is_named(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    settings = Settings(data_dir=blocker / "library")
    with pytest.raises(SettingsError, match="cannot use .*a-file/library as the data folder"):
        make_data_dir(settings)
    make_data_dir(Settings(data_dir=tmp_path / "fine" / "library"))
    assert (tmp_path / "fine" / "library").is_dir()


def test_a_secret_that_does_not_fit_is_named_but_not_shown():
    with pytest.raises(SettingsError) as caught:
        load_settings({"model": {"llm_api_key": 987654321}})
    assert "QUIPU_MODEL__LLM_API_KEY = (hidden)" in str(caught.value)
    assert "987654321" not in str(caught.value)


def test_the_search_limit_leaves_room_for_a_follow_up_at_the_largest_top_k():
    from pydantic import ValidationError

    from app.settings import RagSettings
    from rag.retrieve import MAX_K

    largest = RagSettings(top_k=50).top_k
    with pytest.raises(ValidationError):
        RagSettings(top_k=largest + 1)
    assert 2 * largest <= MAX_K  # a follow-up searches twice its top k
