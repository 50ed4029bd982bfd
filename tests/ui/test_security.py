"""Nobody in: the app refuses to listen beyond loopback without a password, and enforces one."""

import os
import subprocess
import sys
import time
import urllib.request

import pytest
from gradio_client import Client

from tests.conftest import ROOT, free_port, run_cli

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
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), QUIPU_DATA_DIR=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "--port", str(port), "--no-browser", "--auth", "ana:s3cret"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        with pytest.raises(Exception):  # noqa: B017 - gradio_client raises its own error types
            Client(url, verbose=False).predict("x", 1, "", api_name="/search")
        with pytest.raises(Exception):  # noqa: B017
            Client(url, auth=("ana", "wrong"), verbose=False)
        client = Client(url, auth=("ana", "s3cret"), verbose=False)
        assert client.predict("anything", 1, "", api_name="/search") == []
    finally:
        proc.terminate()
        proc.wait(timeout=20)
