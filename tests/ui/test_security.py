"""Nobody in: the app refuses to listen beyond loopback without a password, and enforces one."""

import time

import pytest
from gradio_client import Client

from tests.conftest import free_port, run_cli, start_app

pytestmark = [pytest.mark.ui, pytest.mark.slow]


def test_listening_on_all_interfaces_without_auth_is_refused(tmp_path):
    start = time.monotonic()
    result = run_cli(
        "--host", "0.0.0.0", "--no-browser", "--port", str(free_port()), data_dir=tmp_path
    )
    assert result.returncode == 1
    assert "refusing to listen on 0.0.0.0 without a password" in result.stderr
    assert time.monotonic() - start < 60


def test_a_password_protected_app_rejects_strangers(tmp_path):
    with start_app(tmp_path / "data", "--auth", "ana:s3cret") as app:
        with pytest.raises(Exception):  # noqa: B017 - gradio_client raises its own error types
            Client(app.url, verbose=False).predict("x", 1, "", api_name="/search")
        with pytest.raises(Exception):  # noqa: B017
            Client(app.url, auth=("ana", "wrong"), verbose=False)
        client = Client(app.url, auth=("ana", "s3cret"), verbose=False)
        assert client.predict("anything", 1, "", api_name="/search") == []
