"""Nothing out: the app works with every non-loopback connection refused, and tries none."""

import os
import subprocess
import sys
import urllib.request

import pytest
from gradio_client import Client, handle_file

from tests.conftest import AURORA_PAGE, ROOT, start_app

pytestmark = [pytest.mark.ui, pytest.mark.slow]

# Loaded by Python at start-up in the app's process (PYTHONPATH first): refuses and records any
# connection or name lookup that would leave the machine.
SITECUSTOMIZE = """
import os, socket
_log = os.environ["QUIPU_NET_LOG"]
_LOCAL = ("127.", "::1", "localhost", "0.0.0.0")

def _local(host):
    return host is None or str(host).startswith(_LOCAL) or str(host) in ("", "::")

def _record(what):
    with open(_log, "a") as fh:
        fh.write(what + "\\n")

_connect, _connect_ex, _gai = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

def connect(self, address):
    if self.family == socket.AF_UNIX or _local(address[0]):
        return _connect(self, address)
    _record(f"connect {address!r}")
    raise OSError(101, "Network is unreachable (blocked by the test)")

def connect_ex(self, address):
    if self.family == socket.AF_UNIX or _local(address[0]):
        return _connect_ex(self, address)
    _record(f"connect_ex {address!r}")
    return 101

def getaddrinfo(host, *args, **kwargs):
    if not _local(host):
        _record(f"dns {host!r}")
        raise socket.gaierror(-3, "Temporary failure in name resolution (blocked by the test)")
    return _gai(host, *args, **kwargs)

socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
socket.getaddrinfo = getaddrinfo
"""


@pytest.fixture
def sealed_env(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "network.log"
    env = dict(os.environ, PYTHONPATH=f"{site}{os.pathsep}{ROOT}", QUIPU_NET_LOG=str(log))
    # The user's machine has no offline switches set: prove Quipu sets its own.
    for name in (
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "GRADIO_ANALYTICS_ENABLED",
        "ANONYMIZED_TELEMETRY",
        "HF_HUB_DISABLE_TELEMETRY",
        "QUIPU_USER_OFFLINE",
    ):
        env.pop(name, None)
    return env, log


def test_the_app_ingests_searches_and_chats_with_no_outbound_connection(
    sealed_env, tmp_path, aurora_pdf
):
    env, log = sealed_env
    with start_app(tmp_path / "data", env=env) as app:
        client = Client(app.url, verbose=False)
        assert (
            client.predict([handle_file(str(aurora_pdf))], api_name="/ingest")[0]["status"] == "ok"
        )
        assert client.predict("launch code", 1, "", api_name="/search")[0]["page"] == AURORA_PAGE
        final = list(client.submit("What is the launch code?", True, "", api_name="/chat"))[-1]
        assert final["done"] and final["sources"]
        urllib.request.urlopen(app.url, timeout=10).read()  # the page itself
    assert not log.exists(), f"the app tried to reach the network:\n{log.read_text()}"


def test_the_cli_needs_no_network_either(sealed_env, tmp_path, aurora_pdf):
    env, log = sealed_env
    data = tmp_path / "cli"
    for args in (
        ["ingest", str(aurora_pdf)],
        ["search", "launch code", "--json"],
        ["ask", "Launch code?"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "app", *args, "--data-dir", str(data)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    assert not log.exists(), f"the CLI tried to reach the network:\n{log.read_text()}"


def test_the_trap_records_attempts(sealed_env):
    env, log = sealed_env
    probe = (
        "import socket\n"
        "try:\n    socket.create_connection(('huggingface.co', 443), timeout=1)\n"
        "except OSError:\n    pass\n"
    )
    subprocess.run([sys.executable, "-c", probe], env=env, cwd=ROOT, check=True, timeout=60)
    assert "dns 'huggingface.co'" in log.read_text()
