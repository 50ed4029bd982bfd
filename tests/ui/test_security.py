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


def test_kept_pdfs_are_served_only_to_signed_in_users_and_nothing_else_is(tmp_path, aurora_pdf):
    import httpx
    from gradio_client import handle_file

    with start_app(tmp_path / "data", "--auth", "ana:s3cret") as app:
        client = Client(app.url, auth=("ana", "s3cret"), verbose=False)
        client.predict([handle_file(str(aurora_pdf))], api_name="/ingest")
        (kept,) = (tmp_path / "data" / "files").glob("*.pdf")
        url = f"{app.url.rstrip('/')}/gradio_api/file={kept}"
        assert httpx.get(url).status_code in (401, 403)
        with httpx.Client() as signed_in:
            login = signed_in.post(
                f"{app.url.rstrip('/')}/login", data={"username": "ana", "password": "s3cret"}
            )
            assert login.status_code == 200
            served = signed_in.get(url)
            assert served.status_code == 200
            assert served.content == aurora_pdf.read_bytes()
            # Only the kept PDFs are served: not the rest of the data folder.
            chats = tmp_path / "data" / "chats.sqlite3"
            assert chats.exists()
            refused = signed_in.get(f"{app.url.rstrip('/')}/gradio_api/file={chats}")
            assert refused.status_code == 403
