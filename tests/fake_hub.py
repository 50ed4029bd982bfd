"""A local HTTP server speaking the Hugging Face hub's file API (HEAD/GET .../resolve/REV/FILE),
with Range requests, so the real download code runs against it. It can drop a transfer mid-way
(to test resume), serve corrupt bytes (to test verification) and require a token."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

COMMIT = "a" * 40


@dataclass
class HubState:
    files: dict[tuple[str, str], bytes] = field(default_factory=dict)
    drop_after: int | None = None  # drop GETs after this many bytes…
    drop_times: int = 1  # …this many times in a row
    corrupt: set[str] = field(default_factory=set)  # serve other bytes than announced
    token: str | None = None
    delay_per_mb: float = 0.0  # slow transfers, so a client can be killed mid-way
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, Range


def _handler(state: HubState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _lookup(self) -> tuple[str, bytes] | None:
            path = unquote(self.path.split("?")[0]).lstrip("/")
            if "/resolve/" not in path:
                return None
            repo, rest = path.split("/resolve/", 1)
            filename = rest.split("/", 1)[1]
            data = state.files.get((repo, filename))
            return (filename, data) if data is not None else None

        def _headers(
            self, filename: str, data: bytes, status: int, length: int, extra: dict
        ) -> None:
            self.send_response(status)
            sha = hashlib.sha256(data).hexdigest()
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", f'"{sha}"')
            self.send_header("X-Linked-Etag", f'"{sha}"')
            self.send_header("X-Linked-Size", str(len(data)))
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()

        def _authorized(self) -> bool:
            if state.token and self.headers.get("Authorization") != f"Bearer {state.token}":
                self.send_response(401)
                self.send_header("X-Error-Code", "GatedRepo")
                self.send_header("X-Error-Message", "Access to this model is restricted")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return False
            return True

        def do_HEAD(self) -> None:
            state.requests.append(("HEAD", self.path, None))
            if not self._authorized():
                return
            found = self._lookup()
            if not found:
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            filename, data = found
            self._headers(filename, data, 200, len(data), {})

        def do_GET(self) -> None:
            rng = self.headers.get("Range")
            state.requests.append(("GET", self.path, rng))
            if not self._authorized():
                return
            found = self._lookup()
            if not found:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            filename, data = found
            body = data
            if filename in state.corrupt:
                body = bytes(b ^ 0xFF for b in data[:16]) + data[16:]
            start = 0
            if rng and rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0] or 0)
            chunk = body[start:]
            extra = {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"} if start else {}
            self._headers(filename, data, 206 if start else 200, len(chunk), extra)
            if state.drop_after is not None and state.drop_times > 0:
                cut = state.drop_after
                state.drop_times -= 1
                self.wfile.write(chunk[:cut])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)  # the transfer dies mid-way
                return
            step = 1024 * 1024
            for i in range(0, len(chunk), step):
                try:
                    self.wfile.write(chunk[i : i + step])
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client went away (killed)
                if state.delay_per_mb:
                    time.sleep(state.delay_per_mb)

    return Handler


class FakeHub:
    """Run it as a context manager; `.url` is the endpoint, `.state` is mutable per test."""

    def __init__(self) -> None:
        self.state = HubState()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def add(self, repo: str, filename: str, data: bytes) -> None:
        self.state.files[(repo, filename)] = data

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
