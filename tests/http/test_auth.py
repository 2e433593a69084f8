"""The sans-IO HTTP binding: header codec and the per-connection state machine (fake mechanism)."""

from __future__ import annotations

import asyncio
import base64
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smb2auth.errors import MalformedMessage
from smb2auth.http.auth import ConnectionAuth, ConnState, Decision, HttpAuthConfig, Role
from smb2auth.http.events import LoginEvent
from smb2auth.http.headers import (
    AuthScheme,
    TokenKind,
    UnsupportedScheme,
    authorization_value,
    challenge_value,
    classify_token,
    find_challenge,
    parse_authorization,
)
from tests.http.fakes import CHALLENGE, NEGOTIATE, FakeClient, fake_factory, msg

USERS = {"alice": "Passw0rd!"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(role: Role = Role.ORIGIN, **kw: object) -> tuple[ConnectionAuth, list[LoginEvent], Clock]:
    events: list[LoginEvent] = []
    clock = Clock()
    cfg = HttpAuthConfig(fake_factory(USERS), role=role, on_login=events.append, clock=clock, **kw)  # type: ignore[arg-type]
    return ConnectionAuth(cfg, "127.0.0.1:5555"), events, clock


def hdr(scheme: str, token: bytes) -> str:
    return f"{scheme} {base64.b64encode(token).decode()}"


GOOD = "Passw0rd!"


def handshake(
    conn: ConnectionAuth, scheme: str = "NTLM", password: str = GOOD, spnego: bool = False
) -> Decision:
    client = FakeClient("alice", password, spnego=spnego)
    first = conn.handle(hdr(scheme, client.step(None) or b""))
    assert first.status == conn.config.role.status
    token = find_challenge([v for _, v in first.headers], AuthScheme(scheme))
    assert token
    return conn.handle(hdr(scheme, client.step(token) or b""))


# -- header codec ------------------------------------------------------------------------------


def test_parse_ntlm_and_negotiate_kinds() -> None:
    creds = parse_authorization(hdr("NTLM", NEGOTIATE))
    assert creds.scheme is AuthScheme.NTLM and creds.token == NEGOTIATE
    assert creds.kind is TokenKind.NTLM_NEGOTIATE
    # RFC 9110 11.1: the scheme is case-insensitive; Negotiate may carry raw NTLM (IIS accepts it)
    assert parse_authorization(hdr("negotiate", msg(3))).kind is TokenKind.NTLM_OTHER
    assert parse_authorization(hdr("Negotiate", b"\x60\x28\x06")).kind is TokenKind.SPNEGO_INIT
    assert parse_authorization(hdr("Negotiate", b"\xa1\x10")).kind is TokenKind.SPNEGO_RESPONSE


def test_parse_basic() -> None:
    creds = parse_authorization("Basic " + base64.b64encode(b"dom\\bob:p:w").decode())
    assert (creds.scheme, creds.username, creds.password) == (AuthScheme.BASIC, "dom\\bob", "p:w")
    assert "p:w" not in repr(creds)


@pytest.mark.parametrize(
    "value",
    ["NTLM", "NTLM !!!!", "NTLM TlRMTVNTUAAB=A", "Negotiate " + base64.b64encode(b"junk").decode(),
     "NTLM " + base64.b64encode(b"NTLMSSP\x00\x01").decode(),
     "Basic " + base64.b64encode(b"nocolon").decode(),
     "", "\u00e9 abc"],
)
def test_parse_malformed(value: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_authorization(value)


def test_unsupported_scheme_is_distinct() -> None:
    with pytest.raises(UnsupportedScheme):
        parse_authorization("Bearer abc.def")


def test_challenge_values_round_trip() -> None:
    assert challenge_value(AuthScheme.NTLM) == "NTLM"
    value = challenge_value(AuthScheme.NEGOTIATE, CHALLENGE)
    assert find_challenge(["Basic realm=\"x\"", value], AuthScheme.NEGOTIATE) == CHALLENGE
    assert find_challenge(["Negotiate, NTLM"], AuthScheme.NTLM) == b""
    assert find_challenge(["Negotiate"], AuthScheme.NTLM) is None
    assert parse_authorization(authorization_value(AuthScheme.NTLM, NEGOTIATE)).token == NEGOTIATE


@given(st.binary(max_size=64))
def test_classify_arbitrary_bytes(data: bytes) -> None:
    with contextlib.suppress(MalformedMessage):
        classify_token(data)


@given(st.text(max_size=200))
def test_parse_arbitrary_text(value: str) -> None:
    with contextlib.suppress(MalformedMessage):
        parse_authorization(value)


# -- the connection state machine --------------------------------------------------------------


def test_no_credentials_offers_negotiate_and_ntlm_only() -> None:
    conn, events, _ = make()
    d = conn.handle(None)
    assert d.status == 401
    assert d.headers == (("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", "NTLM"))
    assert events == []


def test_proxy_role_uses_407() -> None:
    conn, _, _ = make(Role.PROXY)
    d = conn.handle(None)
    assert d.status == 407 and {h for h, _ in d.headers} == {"Proxy-Authenticate"}
    assert handshake(conn).allowed


def test_basic_offered_only_when_enabled() -> None:
    conn, _, _ = make(basic=True, basic_client=lambda u, d, p: FakeClient(u, p, domain=d))
    assert ("WWW-Authenticate", 'Basic realm="smb2auth", charset="UTF-8"') in conn.handle(None).headers
    ok = conn.handle("Basic " + base64.b64encode(b"alice:Passw0rd!").decode())
    assert ok.allowed and ok.identity is not None and ok.identity.scheme is AuthScheme.BASIC
    off, _, _ = make()
    d = off.handle("Basic " + base64.b64encode(b"alice:Passw0rd!").decode())
    assert d.status == 401 and not any(v.startswith("Basic") for _, v in d.headers)


def test_handshake_binds_identity_to_connection() -> None:
    conn, events, _ = make()
    d = handshake(conn)
    assert d.allowed and d.identity is not None
    assert (d.identity.user, d.identity.domain, d.identity.response_kind) == ("alice", "TESTGRP", "NTLMv2")
    assert conn.state is ConnState.AUTHENTICATED
    again = conn.handle(None)
    assert again.allowed and again.identity == d.identity
    assert [e.success for e in events] == [True]
    assert (events[0].user, events[0].transport, events[0].status) == ("alice", "http", "STATUS_SUCCESS")
    assert events[0].dialect == "NTLM" and events[0].response_kind == "NTLMv2"


def test_identity_expires_after_auth_timeout() -> None:
    conn, _, clock = make(auth_timeout=60.0)
    assert handshake(conn).allowed
    clock.now += 59
    assert conn.handle(None).allowed
    clock.now += 1
    d = conn.handle(None)
    assert d.status == 401 and conn.state is ConnState.IDLE


def test_wrong_password_gives_fresh_challenge_and_event() -> None:
    conn, events, _ = make()
    d = handshake(conn, password="nope")
    assert d.status == 401 and d.headers == (("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", "NTLM"))
    assert conn.state is ConnState.IDLE
    (event,) = events
    assert (event.success, event.status, event.user) == (False, "STATUS_LOGON_FAILURE", "alice")
    assert "nope" not in repr(event)


def test_continuation_on_new_connection_restarts() -> None:
    first, _, _ = make()
    client = FakeClient("alice", "Passw0rd!")
    d = first.handle(hdr("NTLM", client.step(None) or b""))
    token = find_challenge([v for _, v in d.headers], AuthScheme.NTLM)
    other, events, _ = make()
    d2 = other.handle(hdr("NTLM", client.step(token) or b""))
    assert d2.status == 401 and ("WWW-Authenticate", "NTLM") in d2.headers
    assert not events[0].success and "without a handshake" in events[0].reason


def test_negotiate_mid_handshake_restarts() -> None:
    conn, _, _ = make()
    conn.handle(hdr("NTLM", NEGOTIATE))
    assert conn.state is ConnState.HANDSHAKE
    d = conn.handle(hdr("NTLM", NEGOTIATE))
    assert d.status == 401 and find_challenge([v for _, v in d.headers], AuthScheme.NTLM) == CHALLENGE
    assert conn.state is ConnState.HANDSHAKE


def test_negotiate_scheme_with_spnego_and_final_token() -> None:
    conn, _, _ = make()
    d = handshake(conn, scheme="Negotiate", spnego=True)
    assert d.allowed
    # RFC 4559 5: the final token rides on the 200
    assert d.headers == (("WWW-Authenticate", "Negotiate " + base64.b64encode(b"\xa1final").decode()),)


def test_negotiate_scheme_with_raw_ntlm() -> None:
    conn, _, _ = make()
    d = handshake(conn, scheme="Negotiate")
    assert d.allowed and d.identity is not None and d.identity.scheme is AuthScheme.NEGOTIATE


def test_malformed_header_is_400() -> None:
    conn, events, _ = make()
    d = conn.handle("NTLM %%%")
    assert d.status == 400 and d.close
    assert events[0].reason.startswith("malformed")


def test_malformed_token_is_fresh_challenge() -> None:
    conn, events, _ = make()
    conn.handle(hdr("NTLM", NEGOTIATE))
    d = conn.handle(hdr("NTLM", msg(3)))  # no user:password: the fake cannot parse it
    assert d.status == 401 and conn.state is ConnState.IDLE
    assert events[-1].status == "STATUS_INVALID_PARAMETER" and events[-1].reason.startswith("malformed")


def test_spnego_under_ntlm_scheme_refused() -> None:
    conn, events, _ = make()
    d = conn.handle(hdr("NTLM", b"\x60\x01\x02"))
    assert d.status == 401 and events[0].reason.startswith("malformed")


def test_close_after_first_challenge() -> None:
    conn, _, _ = make(Role.PROXY, close_after_first_challenge=True)
    assert conn.handle(None).close
    assert not conn.handle(None).close


def test_async_path() -> None:
    conn, events, _ = make()
    client = FakeClient("alice", "Passw0rd!")
    d = asyncio.run(conn.ahandle(hdr("NTLM", client.step(None) or b"")))
    token = find_challenge([v for _, v in d.headers], AuthScheme.NTLM)
    d2 = asyncio.run(conn.ahandle(hdr("NTLM", client.step(token) or b"")))
    assert d2.allowed and events[0].success


@given(st.lists(st.one_of(st.none(), st.text(max_size=80), st.binary(max_size=40).map(
    lambda b: "NTLM " + base64.b64encode(b"NTLMSSP\x00" + b).decode())), max_size=6))
def test_arbitrary_header_sequences_never_raise(values: list[str | None]) -> None:
    conn, _, _ = make()
    for value in values:
        d = conn.handle(value)
        assert d.status in (None, 400, 401)
