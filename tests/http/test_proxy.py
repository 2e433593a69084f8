"""The asyncio forward proxy: 407, forwarding, CONNECT tunnels, ISA-style closing; our NTLM client."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smb2auth.http.auth import Role
from smb2auth.http.client import HttpAuthError, open_tunnel, request_with_auth
from smb2auth.http.events import LoginEvent
from smb2auth.http.proxy import BadRequest, parse_head, running_proxy
from smb2auth.http.wsgi import RunningServer
from tests.http.pair import clients, config, raw_handshake
from tests.http.raw import RawConnection, RawResponse


def test_no_credentials_is_407(proxy: RunningServer, origin: tuple[str, int]) -> None:
    conn = http.client.HTTPConnection(*proxy.address, timeout=10)
    conn.request("GET", f"http://{origin[0]}:{origin[1]}/x")
    resp = conn.getresponse()
    assert resp.status == 407
    assert resp.headers.get_all("Proxy-Authenticate") == ["Negotiate", "NTLM"]
    resp.read()
    conn.close()


def test_forward_after_auth_and_identity_bound(
    proxy: RunningServer, origin: tuple[str, int], events: list[LoginEvent]
) -> None:
    url = f"http://{origin[0]}:{origin[1]}/path?q=1"
    conn = http.client.HTTPConnection(*proxy.address, timeout=10)
    resp = request_with_auth(conn, "POST", url, body=b"hello", headers={"X-Test": "1"},
                             context_factory=clients(), proxy=True)
    assert resp.status == 200
    seen = json.loads(resp.read())
    assert (seen["method"], seen["path"], seen["body"]) == ("POST", "/path?q=1", "hello")
    assert seen["headers"]["x-test"] == "1" and "proxy-authorization" not in seen["headers"]
    # later requests on the same client connection ride on the bound identity; chunked and
    # close-delimited bodies are relayed
    for path in ("/chunked", "/plain"):
        conn.request("GET", f"http://{origin[0]}:{origin[1]}{path}")
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["path"] == path
    conn.request("GET", f"http://{origin[0]}:{origin[1]}/until-close")
    resp = conn.getresponse()
    assert json.loads(resp.read())["path"] == "/until-close" and resp.will_close
    conn.close()
    assert [(e.user, e.success, e.transport) for e in events] == [("alice", True, "http")]


def test_wrong_password_is_407(
    proxy: RunningServer, origin: tuple[str, int], events: list[LoginEvent]
) -> None:
    conn = http.client.HTTPConnection(*proxy.address, timeout=10)
    resp = request_with_auth(conn, "GET", f"http://{origin[0]}:{origin[1]}/", context_factory=clients("x"),
                             proxy=True)
    assert resp.status == 407
    conn.close()
    assert events[-1].status == "STATUS_LOGON_FAILURE"


def test_connect_tunnel(proxy: RunningServer, origin: tuple[str, int]) -> None:
    sock = open_tunnel(proxy.address, *origin, context_factory=clients(), timeout=10)
    with sock:
        sock.sendall(b"GET /inner HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200") and b'"/inner"' in data


def test_connect_refused_without_or_with_bad_credentials(
    proxy: RunningServer, origin: tuple[str, int]
) -> None:
    with pytest.raises(HttpAuthError, match="407"):
        open_tunnel(proxy.address, *origin, timeout=10)
    with pytest.raises(HttpAuthError, match="refused"):
        open_tunnel(proxy.address, *origin, context_factory=clients("bad"), timeout=10)


def test_isa_style_close_after_first_407(origin: tuple[str, int]) -> None:
    cfg = config(role=Role.PROXY, close_after_first_challenge=True)
    with running_proxy(cfg) as proxy:
        conn = http.client.HTTPConnection(*proxy.address, timeout=10)
        resp = request_with_auth(conn, "GET", f"http://{origin[0]}:{origin[1]}/isa",
                                 context_factory=clients(), proxy=True, preemptive=False)
        assert resp.status == 200 and json.loads(resp.read())["path"] == "/isa"
        conn.close()


def test_bad_requests_get_400_not_a_crash(proxy: RunningServer, origin: tuple[str, int]) -> None:
    for raw in (b"NONSENSE\r\n\r\n", b"GET http://x/ HTTP/1.1\r\n folded\r\n\r\n",
                b"GET http://x/ HTTP/1.1\r\nContent-Length: -1\r\n\r\n"):
        with socket.create_connection(proxy.address, timeout=10) as sock:
            sock.sendall(raw)
            assert sock.recv(4096).startswith(b"HTTP/1.1 400"), raw
    conn = http.client.HTTPConnection(*proxy.address, timeout=10)
    resp = request_with_auth(conn, "GET", f"http://{origin[0]}:{origin[1]}/", context_factory=clients(),
                             proxy=True)
    assert resp.status == 200
    conn.close()


def test_parse_head() -> None:
    head = parse_head(b"GET http://h/ HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Foo\r\n\r\n")
    assert head.start == ("GET", "http://h/", "HTTP/1.1")
    assert head.get("host") == "h" and head.tokens("Connection") == {"keep-alive", "foo"}
    with pytest.raises(BadRequest):
        parse_head(b"GET / HTTP/1.1\r\nNo colon\r\n\r\n")


def test_transparent_proxy_uses_401(origin: tuple[str, int]) -> None:
    cfg = config(role=Role.ORIGIN)
    with running_proxy(cfg) as proxy:
        conn = http.client.HTTPConnection(*proxy.address, timeout=10)
        # an intercepted client talks origin-form with the real Host, unaware of the proxy
        conn.request("GET", "/intercepted", headers={"Host": f"{origin[0]}:{origin[1]}"})
        first = conn.getresponse()
        assert first.status == 401 and first.headers.get_all("WWW-Authenticate") == ["Negotiate", "NTLM"]
        first.read()
        resp = request_with_auth(conn, "GET", "/intercepted", headers={"Host": f"{origin[0]}:{origin[1]}"},
                                 context_factory=clients())
        assert resp.status == 200
        seen = json.loads(resp.read())
        assert seen["path"] == "/intercepted" and "authorization" not in seen["headers"]
        conn.close()


@given(st.binary(max_size=300))
def test_parse_head_arbitrary_bytes(data: bytes) -> None:
    with contextlib.suppress(BadRequest):
        head = parse_head(data)
        assert len(head.start) == 3


def authenticate(conn: RawConnection, request: bytes) -> RawResponse:
    """Our NTLM client's handshake on `request` (a head without its final CRLF); the last response."""
    return raw_handshake(conn, request)


def test_head_407_has_no_body(proxy: RunningServer, origin: tuple[str, int]) -> None:
    url = f"http://{origin[0]}:{origin[1]}/".encode()
    with RawConnection(proxy.address) as conn:
        # RFC 9110 9.3.2: no content in a response to HEAD; pipelined, so stray bytes would show
        conn.send(b"HEAD " + url + b"a HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET " + url + b"b HTTP/1.1\r\nHost: x\r\n\r\n")
        first = conn.response(head=True)
        assert first.status == 407 and first.get("Content-Length") is not None
        assert conn.response().status == 407
        resp = authenticate(conn, b"HEAD " + url + b"c HTTP/1.1\r\nHost: x\r\n")
        assert resp.status == 200


def test_http10_keep_alive_echoed_otherwise_close_said(proxy: RunningServer, origin: tuple[str, int]) -> None:
    url = f"http://{origin[0]}:{origin[1]}".encode()
    with RawConnection(proxy.address) as conn:
        # RFC 9112 9.3 / RFC 7230 A.1.2: an HTTP/1.0 client keeps the connection only if told keep-alive
        for _ in range(2):
            conn.send(b"GET " + url + b"/ HTTP/1.0\r\nProxy-Connection: Keep-Alive\r\n\r\n")
            resp = conn.response()
            assert resp.status == 407
            assert resp.get("Connection") == "keep-alive" and resp.get("Proxy-Connection") == "keep-alive"
        resp = authenticate(conn, b"GET " + url + b"/plain HTTP/1.0\r\nProxy-Connection: keep-alive\r\n")
        assert resp.status == 200 and resp.get("Connection") == "keep-alive"
        # chunked is HTTP/1.1: an HTTP/1.0 client gets the bare body, delimited by close
        conn.send(b"GET " + url + b"/chunked HTTP/1.0\r\nProxy-Connection: keep-alive\r\n\r\n")
        resp = conn.response()
        assert resp.status == 200 and resp.get("Transfer-Encoding") is None
        assert resp.get("Connection") == "close" and json.loads(resp.body)["path"] == "/chunked"
    with RawConnection(proxy.address) as conn:
        conn.send(b"GET " + url + b"/ HTTP/1.0\r\n\r\n")
        resp = conn.response()
        assert resp.status == 407 and resp.get("Connection") == "close"
        assert conn.at_eof()


def test_connection_close_is_said_on_forwarded_response(
    proxy: RunningServer, origin: tuple[str, int]
) -> None:
    url = f"http://{origin[0]}:{origin[1]}".encode()
    with RawConnection(proxy.address) as conn:
        assert authenticate(conn, b"GET " + url + b"/a HTTP/1.1\r\nHost: x\r\n").status == 200
        conn.send(b"GET " + url + b"/b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        resp = conn.response()
        assert resp.status == 200 and resp.get("Connection") == "close"
        assert conn.at_eof()


def test_407_before_the_body_is_read(proxy: RunningServer, origin: tuple[str, int]) -> None:
    url = f"http://{origin[0]}:{origin[1]}/".encode()
    with RawConnection(proxy.address) as conn:
        # a large body is not waited for before authentication: 407 at once, and the connection ends
        conn.send(b"POST " + url + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\nab")
        resp = conn.response()
        assert resp.status == 407 and resp.get("Connection") == "close"
        assert conn.at_eof()
    with RawConnection(proxy.address) as conn:
        # a small one is skipped after the 407 and the connection carries on
        conn.send(b"POST " + url + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        resp = conn.response()
        assert resp.status == 407 and resp.get("Connection") is None
        resp = authenticate(conn, b"GET " + url + b" HTTP/1.1\r\nHost: x\r\n")
        assert resp.status == 200
        # RFC 9110 10.1.1: an authenticated request that expects 100-continue gets it
        conn.send(b"POST " + url + b" HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                  b"Content-Length: 3\r\n\r\n")
        assert conn.response().status == 100
        conn.send(b"abc")
        resp = conn.response()
        assert resp.status == 200 and json.loads(resp.body)["body"] == "abc"


def test_stalled_body_is_timed_out(origin: tuple[str, int]) -> None:
    cfg = config(role=Role.PROXY)
    url = f"http://{origin[0]}:{origin[1]}/".encode()
    with running_proxy(cfg, idle_timeout=0.5) as proxy, RawConnection(proxy.address) as conn:
        assert authenticate(conn, b"GET " + url + b" HTTP/1.1\r\nHost: x\r\n").status == 200
        conn.send(b"POST " + url + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
        assert conn.at_eof(wait=10)


class _Upstream:
    """A one-connection-at-a-time fake origin: reads a request head, answers `payload`, then stalls
    until the proxy closes its side (recorded in `closed`) or the test ends."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.closed = threading.Event()
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()[:2]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.listener.settimeout(10)
        with contextlib.suppress(OSError), self.listener.accept()[0] as sock:
            sock.settimeout(0.1)
            data = b""
            while b"\r\n\r\n" not in data and not self.stop.is_set():
                with contextlib.suppress(TimeoutError):
                    data += sock.recv(65536)
            sock.sendall(self.payload)
            while not self.stop.is_set():
                with contextlib.suppress(TimeoutError):
                    if sock.recv(65536) == b"":
                        self.closed.set()
                        return

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        self.thread.join(timeout=10)


@pytest.mark.parametrize(("payload", "status"), [
    (b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n", 502),
    (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (70 * 1024) + b"\r\n\r\n", 502),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n", 502),
    (b"HTTP/1.1 200 OK\r\nContent-Len", 504),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nab", 200),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 200),
    (b"HTTP/1.1 200 OK\r\n\r\nab", 200),
], ids=["folded", "huge-head", "bad-length", "stalled-head", "stalled-body", "stalled-chunk", "stalled-eof"])
def test_upstream_errors_and_stalls(payload: bytes, status: int) -> None:
    """RFC 9110 15.6.3/15.6.5: what is wrong upstream is 502 (or 504 for no answer) to the client, never
    the client's fault; a stalled upstream is timed out and both connections closed."""
    cfg = config(role=Role.PROXY)
    upstream = _Upstream(payload)
    try:
        with running_proxy(cfg, idle_timeout=0.5) as proxy, RawConnection(proxy.address) as conn:
            url = f"http://{upstream.address[0]}:{upstream.address[1]}/".encode()
            if status == 200:
                # the head went out before the stall: the client sees the connection end mid-body
                with contextlib.suppress(ConnectionError):
                    authenticate(conn, b"GET " + url + b" HTTP/1.1\r\nHost: x\r\n")
                assert conn.at_eof()
            else:
                resp = authenticate(conn, b"GET " + url + b" HTTP/1.1\r\nHost: x\r\n")
                assert resp.status == status and resp.get("Connection") == "close"
                assert conn.at_eof()
            assert upstream.closed.wait(timeout=10)
    finally:
        upstream.close()


def test_idle_tunnel_is_closed(origin: tuple[str, int]) -> None:
    cfg = config(role=Role.PROXY)
    with running_proxy(cfg, idle_timeout=0.5) as proxy:
        sock = open_tunnel(proxy.address, *origin, context_factory=clients(), timeout=10)
        with sock:
            sock.sendall(b"GET /inner HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            # the origin keeps its connection; the proxy ends the tunnel once neither side speaks
            while chunk := sock.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.1 200") and b'"/inner"' in data


def test_shutdown_with_clients_connected_is_quiet(
    origin: tuple[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config(role=Role.PROXY)
    url = f"http://{origin[0]}:{origin[1]}/".encode()
    with caplog.at_level(logging.DEBUG), contextlib.ExitStack() as clients_:
        with running_proxy(cfg) as proxy:
            idle = clients_.enter_context(RawConnection(proxy.address))
            stalled = clients_.enter_context(RawConnection(proxy.address))
            idle.send(b"GET " + url + b" HTTP/1.1\r\n")
            assert authenticate(stalled, b"GET " + url + b" HTTP/1.1\r\nHost: x\r\n").status == 200
            stalled.send(b"POST " + url + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
            time.sleep(0.2)  # let both requests reach their reads before the shutdown
        assert idle.at_eof() and stalled.at_eof()
    noisy = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not noisy, [r.getMessage() for r in noisy]
