"""Upstream keep-alive and connection pinning in the proxy (issue 12), with curl, requests + requests_ntlm
and Squid (Debian's, with Samba's ntlm_auth) as the reference, driven the same way in the same test."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from smb2auth.http.auth import Role
from smb2auth.http.client import request_with_auth
from smb2auth.http.events import LoginEvent
from smb2auth.http.forward import authenticates_connection
from smb2auth.http.proxy import RunningProxy, running_proxy
from smb2auth.http.wire import parse_head
from smb2auth.http.wsgi import RunningServer, running_http_server
from tests.http.pair import PASSWORD, clients, config, raw_handshake
from tests.http.raw import RawConnection
from tests.http.test_curl_interop import run_curl
from tests.peers import missing_peer
from tests.squid import Squid

pytestmark = pytest.mark.interop


@pytest.fixture
def ntlm_origin(events: list[LoginEvent]) -> Iterator[RunningServer]:
    """`http-serve`'s endpoint: NTLM/Negotiate, answering who logged in on the connection."""
    with running_http_server(config(on_login=events.append)) as running:
        yield running


def _logins(events: list[LoginEvent]) -> list[tuple[str, str]]:
    return [(e.user, e.status) for e in events]


@pytest.mark.parametrize("mode", ["HTTP/1.1", "HTTP/1.0", "CONNECT"])
def test_curl_proxy_ntlm_then_origin_ntlm(
    curl: str, squid: Squid, proxy: RunningServer, ntlm_origin: RunningServer, events: list[LoginEvent],
    mode: str,
) -> None:
    """`curl --proxy-ntlm ... --ntlm ...`: the origin's CHALLENGE and the client's AUTHENTICATE must reach
    one origin connection, through Squid and through us alike."""
    extra = {"HTTP/1.1": [], "HTTP/1.0": ["-0"], "CONNECT": ["-p"]}[mode]
    args = [*extra, "-v", "--proxy-ntlm", "-U", f"alice:{PASSWORD}", "--ntlm", "-u", f"alice:{PASSWORD}"]
    for via in (squid.url, proxy.url):
        code, body, err = run_curl(curl, *args, "-x", via, ntlm_origin.url)
        assert code == 200, (via, err)
        assert json.loads(body)["user"] == "alice"
        # one client connection carried both handshakes
        assert err.count("* Connected to ") == 1, err
    # our proxy's login, then the origin's twice (once through Squid, once through us)
    assert sorted(_logins(events)) == [("alice", "STATUS_SUCCESS")] * 3


def test_origin_401_pins_the_upstream_and_says_so(proxy: RunningServer, ntlm_origin: RunningServer) -> None:
    """RFC 4559 6: once the origin asks for NTLM, the proxy says Proxy-Support: Session-Based-Authentication,
    the handshake legs reach the one origin connection, and no other upstream is handed to the client."""
    conn = http.client.HTTPConnection(*proxy.address, timeout=10)
    url = f"http://{ntlm_origin.host}:{ntlm_origin.port}/"
    resp = request_with_auth(conn, "GET", url, context_factory=clients(), proxy=True)
    assert resp.status == 401 and resp.headers["Proxy-Support"] == "Session-Based-Authentication"
    resp.read()
    resp = request_with_auth(conn, "GET", url, context_factory=clients())
    assert resp.status == 200 and json.loads(resp.read())["user"] == "alice"
    # bound: the origin still knows this connection
    conn.request("GET", url)
    again = conn.getresponse()
    assert again.status == 200 and json.loads(again.read())["user"] == "alice"
    conn.request("GET", "http://127.0.0.2:1/elsewhere")
    other = conn.getresponse()
    assert other.status == 503 and other.will_close
    other.read()
    conn.close()


def test_one_upstream_connection_serves_keep_alive_requests(
    proxy: RunningServer, origin: tuple[str, int]
) -> None:
    """HTTP/1.1 keep-alive upstream: N requests on one client connection ride one origin connection (the
    origin reports which connection each came on and how many it has carried)."""
    n = 25
    conn = http.client.HTTPConnection(*proxy.address, timeout=10)
    base = f"http://{origin[0]}:{origin[1]}"
    resp = request_with_auth(conn, "GET", f"{base}/0", context_factory=clients(), proxy=True)
    seen = [json.loads(resp.read())]
    for i in range(1, n):
        conn.request("GET", f"{base}/{i}", body=b"x" * i if i % 2 else None)
        resp = conn.getresponse()
        assert resp.status == 200
        seen.append(json.loads(resp.read()))
    assert {s["connection"] for s in seen} == {seen[0]["connection"]}
    assert [s["served"] for s in seen] == list(range(1, n + 1))
    # a second client connection open at the same time gets an upstream connection of its own: while a
    # client connection lives, no other one rides on its upstreams (idle ones are shared only once it closes)
    other = http.client.HTTPConnection(*proxy.address, timeout=10)
    resp = request_with_auth(other, "GET", f"{base}/other", context_factory=clients(), proxy=True)
    assert json.loads(resp.read())["connection"] != seen[0]["connection"]
    other.close()
    conn.close()


def test_requests_ntlm_against_the_origin_through_the_proxy(
    ntlm_origin: RunningServer, events: list[LoginEvent]
) -> None:
    """requests + requests_ntlm (pyspnego's NTLM) log into the origin through our proxy, which checks
    the client's Basic proxy credential through its own NTLM engine."""
    requests = pytest.importorskip("requests")
    try:
        from requests_ntlm import HttpNtlmAuth
    except ImportError:
        missing_peer("requests_ntlm (pip install -e '.[test]')")
        raise
    with running_proxy(config(role=Role.PROXY, basic=True, on_login=events.append)) as proxy:
        session = requests.Session()
        session.trust_env = False
        session.proxies = {"http": f"http://TESTGRP%5Calice:{PASSWORD}@{proxy.host}:{proxy.port}"}
        session.auth = HttpNtlmAuth("TESTGRP\\alice", PASSWORD)
        for _ in range(3):
            resp = session.get(ntlm_origin.url, timeout=10)
            assert resp.status_code == 200 and resp.json()["user"] == "alice"
        session.close()
    by = sorted((e.dialect, e.status) for e in events)
    # the proxy checked Basic on each request; the origin saw one NTLM login per connection requests opened
    assert ("Basic", "STATUS_SUCCESS") in by and ("NTLM", "STATUS_SUCCESS") in by
    assert all(status == "STATUS_SUCCESS" for _, status in by)


MALFORMED = ["NTLM ***", "NTLM", "NTLM " + base64.b64encode(b"garbage").decode(),
             "NTLM " + base64.b64encode(b"NTLMSSP\x00\x01\x00\x00\x00").decode()]


@pytest.mark.parametrize("value", MALFORMED)
def test_malformed_proxy_credentials_as_squid_answers(
    squid: Squid, proxy: RunningServer, origin: tuple[str, int], events: list[LoginEvent], value: str
) -> None:
    """The one rule for malformed credentials: 407 with a fresh offer and the connection kept, as Squid."""
    url = f"http://{origin[0]}:{origin[1]}/".encode()
    answers = []
    for address in (squid.address, proxy.address):
        with RawConnection(address) as conn:
            conn.send(b"GET " + url + b" HTTP/1.1\r\nHost: x\r\nProxy-Authorization: " + value.encode()
                      + b"\r\n\r\n")
            resp = conn.response()
            offers = resp.get("Proxy-Authenticate") or ""
            # still open: the next request on it is answered
            conn.send(b"GET " + url + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            answers.append((resp.status, "NTLM" in offers, resp.get("Connection") != "close",
                            conn.response().status))
    assert answers == [(407, True, True, 407)] * 2
    (event,) = events
    assert event.status == "STATUS_INVALID_PARAMETER" and event.reason.startswith("malformed")


def _one_connection_origin(listener: socket.socket, answers: list[bytes]) -> None:
    """Accepts one connection; answers each request head with the next of `answers`, then closes."""
    listener.settimeout(10)
    sock, _ = listener.accept()
    with sock:
        sock.settimeout(10)
        data = b""
        for answer in answers:
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                data += chunk
            data = data.split(b"\r\n\r\n", 1)[1]
            sock.sendall(answer)


def test_pinned_upstream_closing_closes_the_client_connection(proxy: RunningServer) -> None:
    """A pinned upstream that closes takes the client connection with it: it cannot be replaced."""
    listener = socket.create_server(("127.0.0.1", 0))
    host, port = listener.getsockname()[:2]
    challenge = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM\r\nContent-Length: 0\r\n\r\n"
    origin = threading.Thread(target=_one_connection_origin, args=(listener, [challenge]), daemon=True)
    origin.start()
    url = f"http://{host}:{port}/".encode()
    with listener, RawConnection(proxy.address) as conn:
        resp = raw_handshake(conn, b"GET " + url + b" HTTP/1.1\r\nHost: x\r\n")
        assert resp.status == 401 and resp.get("Proxy-Support") == "Session-Based-Authentication"
        assert resp.get("Connection") is None
        origin.join(timeout=10)
        conn.send(b"GET " + url + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.at_eof()


def test_a_kept_alive_upstream_the_origin_closed_is_replaced(proxy: RunningServer) -> None:
    """RFC 9112 9.3.1: the origin may close an idle kept-alive connection; the next GET goes on a new one
    (retried, as it is idempotent), and a POST never rides an idle connection at all."""
    listener = socket.create_server(("127.0.0.1", 0))
    host, port = listener.getsockname()[:2]
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    def origin() -> None:
        # three connections, one request each, each closed after its answer without saying so
        for _ in range(3):
            _one_connection_origin(listener, [ok])

    thread = threading.Thread(target=origin, daemon=True)
    thread.start()
    url = f"http://{host}:{port}/".encode()
    with listener, RawConnection(proxy.address) as conn:
        assert raw_handshake(conn, b"GET " + url + b" HTTP/1.1\r\nHost: x\r\n").body == b"ok"
        time.sleep(0.2)  # the origin's close reaches the proxy's idle connection
        conn.send(b"GET " + url + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.response().body == b"ok"
        conn.send(b"POST " + url + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
        resp = conn.response()
        assert resp.status == 200 and resp.body == b"ok"
        thread.join(timeout=10)
        assert not thread.is_alive()


def _until_closed(proxy: RunningProxy, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while proxy.proxy.active_connections and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proxy.proxy.active_connections == 0


def _one_request_each_on_two_connections(proxy: RunningProxy, url: str) -> list[dict[str, object]]:
    """What the origin reported to one authenticated request on each of two client connections in turn,
    the first closed (and the proxy seeing it close, parking or closing its upstream) before the second."""
    seen = []
    for _ in range(2):
        conn = http.client.HTTPConnection(*proxy.address, timeout=10)
        resp = request_with_auth(conn, "GET", url, context_factory=clients(), proxy=True)
        seen.append(json.loads(resp.read()))
        conn.close()
        _until_closed(proxy)
    return seen


def test_shared_idle_upstreams_serve_the_next_client_connection(
    ntlm_origin: RunningServer, origin: tuple[str, int]
) -> None:
    """By default (as Squid's server_persistent_connections), a closed client connection's idle upstream
    serves the next client connection to that origin; a pinned one (the origin asked for NTLM) is never
    handed to another client connection: not while its own lives, nor after it closes."""
    base = f"http://{origin[0]}:{origin[1]}"
    pinned_url = f"http://{ntlm_origin.host}:{ntlm_origin.port}/"
    with running_proxy(config(role=Role.PROXY)) as proxy:
        seen = _one_request_each_on_two_connections(proxy, f"{base}/")
        assert seen[1]["connection"] == seen[0]["connection"]
        assert [s["served"] for s in seen] == [1, 2]
        pinned = http.client.HTTPConnection(*proxy.address, timeout=10)
        resp = request_with_auth(pinned, "GET", pinned_url, context_factory=clients(), proxy=True)
        assert resp.status == 401 and resp.headers["Proxy-Support"] == "Session-Based-Authentication"
        resp.read()
        resp = request_with_auth(pinned, "GET", pinned_url, context_factory=clients())
        assert resp.status == 200 and json.loads(resp.read())["user"] == "alice"
        # while alice's client connection lives, another one to that origin gets a connection of its own:
        # handed alice's, the origin would answer it 200 as alice
        other = http.client.HTTPConnection(*proxy.address, timeout=10)
        resp = request_with_auth(other, "GET", pinned_url, context_factory=clients(), proxy=True)
        assert resp.status == 401
        resp.read()
        other.close()
        pinned.request("GET", pinned_url)
        resp = pinned.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["user"] == "alice"
        pinned.close()
        _until_closed(proxy)
        # the origin connection alice logged in on was closed with its client connection: handed on, it
        # would answer this one 200 as alice
        conn = http.client.HTTPConnection(*proxy.address, timeout=10)
        resp = request_with_auth(conn, "GET", pinned_url, context_factory=clients(), proxy=True)
        assert resp.status == 401
        resp.read()
        conn.close()


@pytest.mark.parametrize("credential", ["Negotiate YIIBkw==", "NTLM TlRMTVNTUAABAAAA", "kerberos YIIBkw=="])
def test_a_connection_login_the_client_sends_pins_its_upstream(
    origin: tuple[str, int], credential: str
) -> None:
    """As Squid's clientCheckPinning: a request whose Authorization is NTLM, Negotiate or Kerberos pins the
    upstream it goes on whatever the origin answers (a one-leg Kerberos login needs no 401 first), so that
    connection is never handed to another client connection; a Basic one pins nothing."""
    url = f"http://{origin[0]}:{origin[1]}/".encode()
    with running_proxy(config(role=Role.PROXY)) as proxy:
        seen = []
        for authorization in (credential, None, "Basic YWxpY2U6eA==", None):
            extra = b"Authorization: " + authorization.encode() + b"\r\n" if authorization else b""
            with RawConnection(proxy.address) as conn:
                resp = raw_handshake(conn, b"GET " + url + b" HTTP/1.1\r\nHost: x\r\n" + extra)
                assert resp.status == 200
                seen.append((resp.get("Proxy-Support"), json.loads(resp.body)))
            _until_closed(proxy)
    (support, login), (_, after_login), (basic_support, basic), (_, after_basic) = seen
    assert login["headers"]["authorization"] == credential
    assert support == "Session-Based-Authentication" and basic_support is None
    assert after_login["connection"] != login["connection"]
    assert basic["connection"] == after_login["connection"] == after_basic["connection"]


def test_without_sharing_each_client_connection_opens_its_own(origin: tuple[str, int]) -> None:
    """`proxy --no-share-idle-upstreams`: a closed client connection's idle upstreams are closed with it,
    so the next client connection to the same origin opens a new one."""
    base = f"http://{origin[0]}:{origin[1]}"
    with running_proxy(config(role=Role.PROXY), share_idle_upstreams=False) as proxy:
        seen = _one_request_each_on_two_connections(proxy, f"{base}/")
        assert seen[1]["connection"] != seen[0]["connection"]
        assert [s["served"] for s in seen] == [1, 1]
        assert proxy.proxy.opened_upstreams == 2


@pytest.mark.parametrize(("fields", "pins"), [
    (b"Authorization: Basic YWxpY2U6eA==\r\nAuthorization: NTLM TlRMTVNTUAABAAAA\r\n", True),
    (b"Authorization: Basic YWxpY2U6eA==\r\n", False),
    (b"", False),
])
def test_any_connection_credential_pins(fields: bytes, pins: bool) -> None:
    # A connection-authenticating credential pins its upstream in whichever Authorization field it comes.
    head = parse_head(b"GET http://o/ HTTP/1.1\r\nHost: o\r\n" + fields + b"\r\n")
    assert authenticates_connection(head) is pins
