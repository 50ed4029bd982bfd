"""Where the app listens and who may connect: loopback only, unless credentials are given.
No Gradio import here."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path


class InsecureBindError(Exception):
    """Refusing to listen beyond this machine without a password."""


class PortInUse(Exception):
    """The port asked for is taken by another program."""


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on `host`:`port` now (probed as uvicorn binds)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]"), port))
        except OSError:
            return False
    return True


def serving_port(host: str, port: int, *, chosen: bool) -> int | None:
    """The port to serve on: `port` when it is free (or 0, any free port: None).

    A taken default port gives None: the server then takes the next free one after it, as a
    second Gradio app does. A port the user chose (--port, QUIPU_UI__PORT) is not replaced.

    Raises:
        PortInUse: the port the user chose is taken.
    """
    if not port or port_is_free(host, port):
        return port or None
    if chosen:
        raise PortInUse(
            f"port {port} is in use by another program (another Quipu, or another web app): "
            "stop it, or start with another --port (0 for any free one)"
        )
    return None


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def parse_credentials(text: str, *, source: str) -> list[tuple[str, str]]:
    """`user:password` pairs, one per line or comma; empty lines and # comments are skipped."""
    pairs = []
    for raw in text.replace(",", "\n").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            raise InsecureBindError(
                f"{source}: expected user:password, got {line.split(':')[0]!r}…"
            )
        pairs.append((user, password))
    return pairs


def load_credentials(auth: str | None, auth_file: Path | None) -> list[tuple[str, str]]:
    """Credentials from --auth and/or --auth-file."""
    pairs = parse_credentials(auth, source="--auth") if auth else []
    if auth_file:
        try:
            pairs += parse_credentials(auth_file.read_text(encoding="utf-8"), source=str(auth_file))
        except OSError as exc:
            raise InsecureBindError(f"cannot read the password file {auth_file}: {exc}") from exc
    return pairs


def check_bind(host: str, credentials: list[tuple[str, str]]) -> None:
    """Raise unless `host` is loopback or credentials protect the app."""
    if not is_loopback(host) and not credentials:
        raise InsecureBindError(
            f"refusing to listen on {host} without a password: anyone on the network could read "
            "your documents. Add --auth user:password (or --auth-file FILE), "
            "or use --host 127.0.0.1"
        )
