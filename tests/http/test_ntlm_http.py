"""smb2auth's own NTLM and SPNEGO engines over HTTP: our client against our server and through our proxy."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
from collections.abc import Iterator

import pytest

from smb2auth.authority.local import LocalAuthority
from smb2auth.http.auth import Role
from smb2auth.http.client import TunnelHTTPConnection, ntlm_context_factory, request_with_ntlm
from smb2auth.http.events import LoginEvent
from smb2auth.http.mechanisms import ntlm_http_config
from smb2auth.http.proxy import running_proxy
from smb2auth.http.wsgi import RunningServer, running_http_server
from smb2auth.ntlm import TargetInfo
from smb2auth.ntlm.authority import AsyncAuthority, ValidationRequest, ValidationResult

PASSWORD = "Passw0rd!"
TARGET = TargetInfo(nb_domain="TESTGRP", nb_computer="HARNESS")


def authority() -> LocalAuthority:
    local = LocalAuthority("TESTGRP")
    local.add_user("alice", PASSWORD)
    return local


class SlowAuthority(AsyncAuthority):
    """An asynchronous authority (as a remote Netlogon would be), answering from a LocalAuthority."""

    def __init__(self) -> None:
        self.inner = authority()
        self.calls = 0

    async def validate(self, request: ValidationRequest) -> ValidationResult:
        self.calls += 1
        await asyncio.sleep(0)
        return self.inner.validate(request)


@pytest.fixture
def events() -> list[LoginEvent]:
    return []


@pytest.fixture
def server(events: list[LoginEvent]) -> Iterator[RunningServer]:
    with running_http_server(ntlm_http_config(authority(), target=TARGET, basic=True,
                                              on_login=events.append)) as running:
        yield running


@pytest.fixture
def proxy(events: list[LoginEvent]) -> Iterator[RunningServer]:
    config = ntlm_http_config(authority(), role=Role.PROXY, target=TARGET, on_login=events.append)
    with running_proxy(config) as running:
        yield running


@pytest.mark.parametrize("scheme", ["NTLM", "Negotiate"])
def test_client_against_server(server: RunningServer, events: list[LoginEvent], scheme: str) -> None:
    conn = http.client.HTTPConnection(*server.address, timeout=10)
    resp = request_with_ntlm(conn, "GET", "/", username="alice", password=PASSWORD, domain="TESTGRP",
                             workstation="WS1", scheme=scheme)
    body = json.loads(resp.read())
    conn.close()
    assert resp.status == 200
    assert (body["user"], body["domain"], body["workstation"], body["scheme"], body["response_kind"]) == (
        "alice", "TESTGRP", "WS1", scheme, "NTLMv2")
    (event,) = events
    assert event.success and event.dialect == scheme and "NTLMSSP_NEGOTIATE_KEY_EXCH" in event.ntlm_flags
    if scheme == "Negotiate":
        # RFC 4559 5 / RFC 4178 5: the accept-completed token with the server's mechListMIC rode on the 200
        assert resp.headers["WWW-Authenticate"].startswith("Negotiate ")


def test_wrong_password_and_nt_hash(server: RunningServer, events: list[LoginEvent]) -> None:
    conn = http.client.HTTPConnection(*server.address, timeout=10)
    resp = request_with_ntlm(conn, "GET", "/", username="alice", password="Bad-Passw0rd")
    assert resp.status == 401
    resp.read()
    conn.close()
    assert events[-1].status == "STATUS_LOGON_FAILURE" and events[-1].user == "alice"
    assert events[-1].reason.startswith("wrong password")
    # The password tried never reaches the event (the reason names the failure, not the secret).
    assert "Bad-Passw0rd" not in repr(events[-1])


def test_basic_through_the_ntlm_engine(server: RunningServer) -> None:
    for password, status in ((PASSWORD, 200), ("nope", 401)):
        conn = http.client.HTTPConnection(*server.address, timeout=10)
        value = "Basic " + base64.b64encode(f"TESTGRP\\alice:{password}".encode()).decode()
        conn.request("GET", "/", headers={"Authorization": value})
        resp = conn.getresponse()
        assert resp.status == status
        resp.read()
        conn.close()


@pytest.mark.parametrize("scheme", ["NTLM", "Negotiate"])
def test_client_through_proxy(proxy: RunningServer, origin: tuple[str, int], scheme: str) -> None:
    conn = http.client.HTTPConnection(*proxy.address, timeout=10)
    resp = request_with_ntlm(conn, "GET", f"http://{origin[0]}:{origin[1]}/via-proxy", username="alice",
                             password=PASSWORD, scheme=scheme, proxy=True)
    assert resp.status == 200 and json.loads(resp.read())["path"] == "/via-proxy"
    conn.close()


@pytest.mark.parametrize("scheme", ["NTLM", "Negotiate"])
def test_connect_then_authenticate_to_origin_inside_tunnel(
    proxy: RunningServer, server: RunningServer, events: list[LoginEvent], scheme: str
) -> None:
    conn = TunnelHTTPConnection(server.host, server.port, proxy=proxy.address, timeout=10,
                                context_factory=ntlm_context_factory("alice", PASSWORD, scheme=scheme),
                                scheme=scheme)
    resp = request_with_ntlm(conn, "GET", "/", username="alice", password=PASSWORD, scheme=scheme)
    assert resp.status == 200 and json.loads(resp.read())["user"] == "alice"
    conn.close()
    assert [e.success for e in events] == [True, True]  # one login at the proxy, one at the origin


def test_async_authority_in_proxy_and_wsgi(origin: tuple[str, int]) -> None:
    slow = SlowAuthority()
    with running_proxy(ntlm_http_config(slow, role=Role.PROXY)) as proxy:
        conn = http.client.HTTPConnection(*proxy.address, timeout=10)
        resp = request_with_ntlm(conn, "GET", f"http://{origin[0]}:{origin[1]}/", username="alice",
                                 password=PASSWORD, proxy=True)
        assert resp.status == 200
        conn.close()
    with running_http_server(ntlm_http_config(slow), ) as server:
        conn = http.client.HTTPConnection(*server.address, timeout=10)
        resp = request_with_ntlm(conn, "GET", "/", username="alice", password=PASSWORD)
        assert resp.status == 200 and json.loads(resp.read())["user"] == "alice"
        conn.close()
    assert slow.calls == 2


def test_raw_ntlm_under_negotiate(server: RunningServer, events: list[LoginEvent]) -> None:
    """Many HTTP clients send bare NTLMSSP under the Negotiate scheme; IIS accepts it, and so do we."""
    from smb2auth.http.client import request_with_auth
    from smb2auth.ntlm import NtlmClient

    conn = http.client.HTTPConnection(*server.address, timeout=10)
    resp = request_with_auth(conn, "GET", "/", scheme="Negotiate",
                             context_factory=lambda: NtlmClient("alice", PASSWORD, domain="TESTGRP"))
    assert resp.status == 200
    body = json.loads(resp.read())
    conn.close()
    assert (body["user"], body["scheme"]) == ("alice", "Negotiate")
    assert events[-1].success and events[-1].dialect == "Negotiate"


def test_kerberos_only_negotiate_gets_a_fresh_offer(server: RunningServer, events: list[LoginEvent]) -> None:
    """A browser with a Kerberos ticket offers only Kerberos in its NegTokenInit; we do NTLM only."""
    from smb2auth.spnego.asn1 import KRB5, MS_KRB5
    from smb2auth.spnego.tokens import NegTokenInit

    token = NegTokenInit((MS_KRB5, KRB5), mech_token=b"\x60\x03\x06\x01\x00").encode()
    conn = http.client.HTTPConnection(*server.address, timeout=10)
    conn.request("GET", "/", headers={"Authorization": "Negotiate " + base64.b64encode(token).decode()})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    assert resp.status == 401 and "NTLM" in resp.headers.get_all("WWW-Authenticate")
    assert not events[-1].success and "no supported mechanism" in events[-1].reason


def test_middleware_without_connection_identity_is_500() -> None:
    from smb2auth.http.wsgi import NtlmAuthMiddleware, whoami_app

    seen: list[str] = []
    app = NtlmAuthMiddleware(whoami_app, ntlm_http_config(authority()))
    body = app({"REQUEST_METHOD": "GET"}, lambda status, headers, exc_info=None: seen.append(status))
    assert seen == ["500 Internal Server Error"] and b"500" in b"".join(body)
