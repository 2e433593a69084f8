"""The WSGI middleware on the keep-alive server, driven by our http.client helper with our NTLM client."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import select
import socket
import struct
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from smb2auth.http.client import request_with_auth
from smb2auth.http.events import LoginEvent
from smb2auth.http.headers import AuthScheme
from smb2auth.http.wsgi import (
    KeepAliveWSGIServer,
    RunningServer,
    StartResponse,
    WSGIApp,
    running_http_server,
)
from smb2auth.spnego.context import SpnegoClient
from tests.http.pair import client, clients, config
from tests.http.raw import RawConnection


@pytest.fixture
def events() -> list[LoginEvent]:
    return []


@pytest.fixture
def server(events: list[LoginEvent]) -> Iterator[RunningServer]:
    with running_http_server(config(on_login=events.append, basic=True)) as running:
        yield running


def test_handshake_on_one_connection_then_bound(server: RunningServer, events: list[LoginEvent]) -> None:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        resp = request_with_auth(conn, "GET", "/", context_factory=clients())
        assert resp.status == 200
        assert json.loads(resp.read())["user"] == "alice"
        sock = conn.sock
        # the identity stays with the connection: no credentials needed on the next request
        conn.request("GET", "/again")
        again = conn.getresponse()
        assert again.status == 200 and json.loads(again.read())["user"] == "alice"
        assert conn.sock is sock
    finally:
        conn.close()
    assert [e.user for e in events if e.success] == ["alice"]
    # another connection is not authenticated
    other = http.client.HTTPConnection(server.host, server.port, timeout=10)
    other.request("GET", "/")
    resp = other.getresponse()
    assert resp.status == 401
    basic = 'Basic realm="smb2auth", charset="UTF-8"'
    assert resp.headers.get_all("WWW-Authenticate") == ["Negotiate", "NTLM", basic]
    other.close()


def test_wrong_password_is_401(server: RunningServer, events: list[LoginEvent]) -> None:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    resp = request_with_auth(conn, "GET", "/", context_factory=clients("bad"))
    assert resp.status == 401
    resp.read()
    conn.close()
    assert events[-1].status == "STATUS_LOGON_FAILURE" and not events[-1].success


def test_negotiate_final_token_and_post_body(server: RunningServer) -> None:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    made: list[SpnegoClient] = []

    def factory() -> SpnegoClient:
        ctx = client(spnego=True)
        assert isinstance(ctx, SpnegoClient)
        made.append(ctx)
        return ctx

    resp = request_with_auth(conn, "POST", "/form", body=b"x=1", context_factory=factory,
                             scheme=AuthScheme.NEGOTIATE, preemptive=False)
    assert resp.status == 200 and json.loads(resp.read())["scheme"] == "Negotiate"
    # the accept-completed token on the 200 reached our client, which checked the server's mechListMIC
    assert made[-1].complete and made[-1].mic_exchanged
    conn.close()


def test_basic(server: RunningServer) -> None:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    value = "Basic " + base64.b64encode(b"alice:Passw0rd!").decode()
    conn.request("GET", "/", headers={"Authorization": value})
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["scheme"] == "Basic"
    conn.close()


def test_malformed_credentials_get_a_fresh_offer_and_the_connection_stays(
    server: RunningServer, events: list[LoginEvent]
) -> None:
    """The one rule for malformed credentials (smb2auth.http.auth), the same as the proxy's."""
    values = ("NTLM ***", "Negotiate " + base64.b64encode(b"\x00garbage").decode(), "NTLM",
              "NTLM " + base64.b64encode(b"NTLMSSP\x00\x01\x00\x00\x00").decode())
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    for value in values:
        conn.request("GET", "/", headers={"Authorization": value})
        resp = conn.getresponse()
        assert resp.status == 401 and not resp.will_close
        assert resp.headers.get_all("WWW-Authenticate")[:2] == ["Negotiate", "NTLM"]
        resp.read()
    sock = conn.sock
    assert request_with_auth(conn, "GET", "/", context_factory=clients()).status == 200
    assert conn.sock is sock
    conn.close()
    assert [(e.status, e.reason.split(":")[0]) for e in events] == [
        *[("STATUS_INVALID_PARAMETER", "malformed credential")] * 3,
        ("STATUS_INVALID_PARAMETER", "malformed"), ("STATUS_SUCCESS", "")]
    with socket.create_connection(server.address, timeout=10) as raw:
        raw.sendall(b"GET / HTTX/1.1\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.1 400")


@pytest.mark.parametrize("request_head", [
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
])
def test_closing_responses_say_connection_close(server: RunningServer, request_head: bytes) -> None:
    # RFC 9112 9.6: a server that closes after a response sends "close" in that response
    with RawConnection(server.address) as conn:
        conn.send(request_head)
        resp = conn.response()
        assert resp.status == 401 and resp.get("Connection") == "close"
        assert conn.at_eof()


def test_verbose_log_escapes_control_bytes(server: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    """http-serve -v logs request lines as the standard library does: control bytes escaped."""
    with caplog.at_level(logging.DEBUG, logger="smb2auth.http"), RawConnection(server.address) as conn:
        conn.send(b"GET /a\x1b[31mred\x07 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.response().status == 401
        deadline = time.monotonic() + 5
        while not any("GET /a" in r.getMessage() for r in caplog.records) and time.monotonic() < deadline:
            time.sleep(0.01)
    (line,) = [r.getMessage() for r in caplog.records if "GET /a" in r.getMessage()]
    assert '"GET /a\\x1b[31mred\\x07 HTTP/1.1" 401' in line
    assert "\x1b" not in line and "\x07" not in line


def test_close_after_first_challenge_says_connection_close() -> None:
    cfg = config(close_after_first_challenge=True)
    with running_http_server(cfg) as running, RawConnection(running.address) as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        resp = conn.response()
        assert resp.status == 401 and resp.get("Connection") == "close"
        assert conn.at_eof()


def test_http10_keep_alive_is_echoed_and_kept(server: RunningServer) -> None:
    # RFC 9112 9.3 / RFC 7230 A.1.2: an HTTP/1.0 client keeps the connection only if told so
    with RawConnection(server.address) as conn:
        for _ in range(2):
            conn.send(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            resp = conn.response()
            assert resp.status == 401 and resp.get("Connection") == "keep-alive"


def _body_always(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def test_head_response_has_no_body_even_if_the_app_returns_one() -> None:
    cfg = config(basic=True)
    basic = base64.b64encode(b"alice:Passw0rd!")
    with running_http_server(cfg, app=_body_always) as running, RawConnection(running.address) as conn:
        # RFC 9110 9.3.2: HEAD gets GET's head and no content; pipelined, so stray bytes would show
        conn.send(b"HEAD / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + basic + b"\r\n\r\n"
                  b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + basic + b"\r\n\r\n")
        head = conn.response(head=True)
        assert head.status == 200 and head.get("Content-Length") == "5"
        resp = conn.response()
        assert resp.status == 200 and resp.body == b"hello"


class _Finishing(KeepAliveWSGIServer):
    """Tells when a connection's thread is completely done (tracebacks, if any, printed)."""

    def __init__(self, app: WSGIApp) -> None:
        self.done = threading.Semaphore(0)
        super().__init__(("127.0.0.1", 0), app, idle_timeout=5.0)

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        self.done.release()


def _big(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Length", str(1 << 20))])
    return [b"x" * (1 << 20)]


def test_client_reset_prints_no_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    server = _Finishing(_big)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        for read_first in (False, True):
            sock = socket.create_connection(server.server_address, timeout=10)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            if read_first:
                sock.recv(10)
            # SO_LINGER 0: close with RST, as a client that gives up does
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
            assert server.done.acquire(timeout=10)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err, err


def test_request_head_has_an_overall_deadline() -> None:
    """Slowloris: each byte arrives well within the idle timeout, the whole head never in time."""
    cfg = config()
    with running_http_server(cfg, idle_timeout=5.0, head_timeout=0.5) as running:
        sock = socket.create_connection(running.address, timeout=10)
        with sock:
            head = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 60 + b"\r\n\r\n"
            closed_after = None
            for i, byte in enumerate(head):
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    closed_after = i
                    break
                if select.select([sock], [], [], 0.1)[0]:
                    assert sock.recv(1) == b"", "answered a head dribbled past its deadline"
                    closed_after = i
                    break
            assert closed_after is not None and closed_after < len(head) - 1


def _echo(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def test_expect_100_continue_only_once_authenticated() -> None:
    cfg = config(basic=True)
    basic = b"Authorization: Basic " + base64.b64encode(b"alice:Passw0rd!") + b"\r\n"
    post = b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n"
    with running_http_server(cfg, app=_echo) as running:
        with RawConnection(running.address) as conn:
            # RFC 9110 10.1.1: the final status may come instead of 100; the body was never asked for,
            # so the connection cannot carry on
            conn.send(post + b"\r\n")
            resp = conn.response()
            assert resp.status == 401 and resp.get("Connection") == "close"
        with RawConnection(running.address) as conn:
            conn.send(post + basic + b"\r\n")
            assert conn.response().status == 100
            conn.send(b"hello")
            resp = conn.response()
            assert resp.status == 200 and resp.body == b"hello" and resp.get("Connection") is None


def test_connection_cap_answers_503() -> None:
    server = KeepAliveWSGIServer(("127.0.0.1", 0), _body_always, idle_timeout=5.0, max_connections=2)
    assert server.request_queue_size >= 128
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    address = (server.server_address[0], int(server.server_address[1]))
    try:
        held = [RawConnection(address) for _ in range(2)]
        for conn in held:
            conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert conn.response().status == 200
        with RawConnection(address) as extra:
            resp = extra.response()
            assert resp.status == 503 and resp.get("Connection") == "close" and extra.at_eof()
        held.pop().sock.close()
        # the slot frees once that connection's thread has ended
        for _ in range(100):
            with RawConnection(address) as again:
                again.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                if again.response().status == 200:
                    break
            time.sleep(0.05)
        else:
            raise AssertionError("the freed slot was never reused")
        for conn in held:
            conn.sock.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
