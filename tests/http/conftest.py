"""HTTP fixtures: a tiny loopback origin server (no authentication) that reports what it received; our proxy
and the login events it reports; the peers several modules drive (curl, Squid)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from smb2auth.http.auth import Role
from smb2auth.http.events import LoginEvent
from smb2auth.http.proxy import running_proxy
from smb2auth.http.wsgi import RunningServer
from tests.http.pair import PASSWORD, config
from tests.peers import program_with
from tests.squid import Squid, running_squid


class _Origin(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    served = 0

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.served += 1
        report = json.dumps({
            "method": self.command, "path": self.path, "body": body.decode("latin-1"),
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "connection": f"{self.client_address[0]}:{self.client_address[1]}", "served": self.served,
        }).encode()
        if self.path.startswith("/chunked"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(report), 7):
                part = report[i:i + 7]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path.startswith("/until-close"):
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(report)
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(report)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(report)

    do_GET = do_POST = do_HEAD = do_PUT = _answer


@pytest.fixture(scope="session")
def origin() -> Iterator[tuple[str, int]]:
    """A plain HTTP/1.1 origin on loopback: answers JSON {method, path, body, headers, connection, served}
    (`connection`: the peer address of the TCP connection it came on, `served`: how many requests that
    connection has carried); /chunked answers chunked, /until-close without a length."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield ("127.0.0.1", int(server.server_address[1]))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def events() -> list[LoginEvent]:
    return []


@pytest.fixture
def proxy(events: list[LoginEvent]) -> Iterator[RunningServer]:
    """`smb2auth proxy`'s server on loopback, alice / PASSWORD, every login appended to `events`."""
    with running_proxy(config(role=Role.PROXY, on_login=events.append)) as running:
        yield running


@pytest.fixture(scope="module")
def curl() -> str:
    return program_with("curl", "NTLM", "curl")


@pytest.fixture(scope="module")
def squid() -> Iterator[Squid]:
    with running_squid(PASSWORD) as running:
        yield running
