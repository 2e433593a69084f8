"""The sans-IO HTTP binding: header codec and the per-connection state machine, our real NTLM client
against our real binding in memory."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smb2auth.authority.consult import consult
from smb2auth.errors import MalformedMessage, ProtocolStateError
from smb2auth.http.auth import ConnectionAuth, ConnState, Decision, Role, decide_sync
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
from smb2auth.ntlm import NtlmClient
from smb2auth.ntlm.authority import AsyncAuthority, ValidationRequest, ValidationResult
from smb2auth.ntlm.events import ValidationNeeded
from smb2auth.ntlm.messages import ChallengeMessage
from smb2auth.spnego.context import SpnegoClient
from tests.http.pair import PASSWORD, AuthPair, authority, client, config

NEGOTIATE = NtlmClient("alice", PASSWORD).step(None) or b""


def msg(kind: int, payload: bytes = b"") -> bytes:
    """An NTLM message header (MS-NLMP 2.2.1: signature, MessageType) with `payload` after it."""
    return b"NTLMSSP\x00" + struct.pack("<I", kind) + payload


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recording(ConnectionAuth):
    """A ConnectionAuth keeping the login events its Decisions carry, as a transport logs them."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.events: list[LoginEvent] = []

    def _record(self, answer: Decision) -> Decision:
        if answer.login is not None:
            self.events.append(answer.login)
        return answer

    def receive(self, header: str | None) -> Decision | ValidationNeeded:
        answer = super().receive(header)
        return self._record(answer) if isinstance(answer, Decision) else answer

    def validation_done(self, ticket: int, result: ValidationResult) -> Decision:
        return self._record(super().validation_done(ticket, result))


def make(role: Role = Role.ORIGIN, **kw: Any) -> tuple[Recording, list[LoginEvent], Clock]:
    """A ConnectionAuth on the real engine, the login events its Decisions carried, and its clock."""
    clock = Clock()
    conn = Recording(config(role=role, clock=clock, **kw), "127.0.0.1:5555")
    return conn, conn.events, clock


def hdr(scheme: str, token: bytes) -> str:
    return f"{scheme} {base64.b64encode(token).decode()}"


def handshake(
    conn: ConnectionAuth, scheme: str = "NTLM", password: str = PASSWORD, spnego: bool = False
) -> Decision:
    pair = AuthPair(conn, client(password, spnego=spnego), scheme)
    decision = pair.login()
    first = pair.decisions[0]
    assert first.status == conn.config.role.status and first.reason == "challenge"
    return decision


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
    value = challenge_value(AuthScheme.NEGOTIATE, msg(2, b"challenge"))
    assert find_challenge(["Basic realm=\"x\"", value], AuthScheme.NEGOTIATE) == msg(2, b"challenge")
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
    d = decide_sync(conn, None)
    assert d.status == 401 and d.login is None
    assert d.headers == (("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", "NTLM"))
    assert events == []


def test_proxy_role_uses_407() -> None:
    conn, _, _ = make(Role.PROXY)
    d = decide_sync(conn, None)
    assert d.status == 407 and {h for h, _ in d.headers} == {"Proxy-Authenticate"}
    assert handshake(conn).allowed


def test_basic_offered_only_when_enabled() -> None:
    conn, events, _ = make(basic=True)
    assert ("WWW-Authenticate", 'Basic realm="smb2auth", charset="UTF-8"') in decide_sync(conn, None).headers
    ok = decide_sync(conn, "Basic " + base64.b64encode(b"TESTGRP\\alice:Passw0rd!").decode())
    assert ok.allowed and ok.identity is not None and ok.identity.scheme is AuthScheme.BASIC
    who = (ok.identity.user, ok.identity.domain, ok.identity.workstation)
    assert who == ("alice", "TESTGRP", "HTTP-BASIC")
    assert [(e.user, e.status, e.dialect) for e in events] == [("alice", "STATUS_SUCCESS", "Basic")]
    bad = decide_sync(conn, "Basic " + base64.b64encode(b"alice:nope").decode())
    assert bad.status == 401 and conn.state is ConnState.IDLE
    assert (events[-1].user, events[-1].status) == ("alice", "STATUS_LOGON_FAILURE")
    off, _, _ = make()
    d = decide_sync(off, "Basic " + base64.b64encode(b"alice:Passw0rd!").decode())
    assert d.status == 401 and not any(v.startswith("Basic") for _, v in d.headers)


def test_handshake_binds_identity_to_connection() -> None:
    conn, events, _ = make()
    d = handshake(conn)
    assert d.allowed and d.identity is not None
    assert (d.identity.user, d.identity.domain, d.identity.response_kind) == ("alice", "TESTGRP", "NTLMv2")
    assert d.identity.account is not None and d.identity.account.username == "alice"
    assert conn.state is ConnState.AUTHENTICATED
    again = decide_sync(conn, None)
    assert again.allowed and again.identity == d.identity and again.login is None
    assert [e.success for e in events] == [True]
    assert (events[0].user, events[0].transport, events[0].status) == ("alice", "http", "STATUS_SUCCESS")
    assert events[0].dialect == "NTLM" and events[0].response_kind == "NTLMv2"
    assert events[0].workstation == "WS1" and events[0].time == 1000.0


def test_identity_expires_after_auth_timeout() -> None:
    conn, _, clock = make(auth_timeout=60.0)
    assert handshake(conn).allowed
    clock.now += 59
    assert decide_sync(conn, None).allowed
    clock.now += 1
    d = decide_sync(conn, None)
    assert d.status == 401 and conn.state is ConnState.IDLE


def test_wrong_password_gives_fresh_challenge_and_event() -> None:
    conn, events, _ = make()
    d = handshake(conn, password="nope")
    assert d.status == 401 and d.headers == (("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", "NTLM"))
    assert conn.state is ConnState.IDLE
    (event,) = events
    assert (event.success, event.status, event.user) == (False, "STATUS_LOGON_FAILURE", "alice")
    assert event.reason.startswith("wrong password")
    assert "nope" not in repr(event)


def test_continuation_on_new_connection_restarts() -> None:
    first, _, _ = make()
    ctx = client()
    d = decide_sync(first, hdr("NTLM", ctx.step(None) or b""))
    token = find_challenge([v for _, v in d.headers], AuthScheme.NTLM)
    other, events, _ = make()
    d2 = decide_sync(other, hdr("NTLM", ctx.step(token) or b""))
    assert d2.status == 401 and ("WWW-Authenticate", "NTLM") in d2.headers
    assert not events[0].success and "without a handshake" in events[0].reason


def test_negotiate_mid_handshake_restarts() -> None:
    conn, _, _ = make()
    first = decide_sync(conn, hdr("NTLM", NEGOTIATE))
    assert conn.state is ConnState.HANDSHAKE
    d = decide_sync(conn, hdr("NTLM", NEGOTIATE))
    assert d.status == 401 and conn.state is ConnState.HANDSHAKE
    # a new CHALLENGE (MS-NLMP 2.2.1.2: MessageType 2) with a new server challenge
    again = find_challenge([v for _, v in d.headers], AuthScheme.NTLM) or b""
    before = find_challenge([v for _, v in first.headers], AuthScheme.NTLM) or b""
    assert ChallengeMessage.unpack(again).server_challenge != ChallengeMessage.unpack(before).server_challenge


def test_negotiate_scheme_with_spnego_and_final_token() -> None:
    conn, _, _ = make()
    pair = AuthPair(conn, client(spnego=True), "Negotiate")
    d = pair.login()
    assert d.allowed
    # RFC 4559 5: the final token (accept-completed, with the server's mechListMIC) rides on the 200, and
    # our client takes it
    ((name, value),) = d.headers
    assert name == "WWW-Authenticate" and value.startswith("Negotiate ")
    assert isinstance(pair.context, SpnegoClient) and pair.context.complete and pair.context.mic_exchanged


def test_negotiate_scheme_with_raw_ntlm() -> None:
    conn, _, _ = make()
    d = handshake(conn, scheme="Negotiate")
    assert d.allowed and d.identity is not None and d.identity.scheme is AuthScheme.NEGOTIATE


@pytest.mark.parametrize("value", ["NTLM %%%", "NTLM", "Negotiate " + base64.b64encode(b"\x00junk").decode()])
def test_malformed_credential_is_a_failed_login(value: str) -> None:
    """The one rule (smb2auth.http.auth): a fresh offer, the connection kept, an event saying malformed."""
    conn, events, _ = make()
    decide_sync(conn, hdr("NTLM", NEGOTIATE))
    d = decide_sync(conn, value)
    assert d.status == 401 and not d.close and conn.state is ConnState.IDLE
    assert d.headers == (("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", "NTLM"))
    (event,) = events
    assert event.status == "STATUS_INVALID_PARAMETER" and event.reason.startswith("malformed")
    assert handshake(conn).allowed


def test_malformed_token_is_fresh_challenge() -> None:
    conn, events, _ = make()
    decide_sync(conn, hdr("NTLM", NEGOTIATE))
    d = decide_sync(conn, hdr("NTLM", msg(3)))  # an AUTHENTICATE header cut short: the codec refuses it
    assert d.status == 401 and conn.state is ConnState.IDLE and not d.close
    assert events[-1].status == "STATUS_INVALID_PARAMETER" and events[-1].reason.startswith("malformed")


def test_spnego_under_ntlm_scheme_refused() -> None:
    conn, events, _ = make()
    d = decide_sync(conn, hdr("NTLM", b"\x60\x01\x02"))
    assert d.status == 401 and events[0].reason.startswith("malformed")


def test_close_after_first_challenge() -> None:
    conn, _, _ = make(Role.PROXY, close_after_first_challenge=True)
    assert decide_sync(conn, None).close
    assert not decide_sync(conn, None).close


class _AsyncLocal(AsyncAuthority):
    def __init__(self) -> None:
        self.inner = authority()

    async def validate(self, request: ValidationRequest) -> ValidationResult:
        return self.inner.validate(request)


def test_validation_needed_then_validation_done() -> None:
    """The sans-IO path: the core asks for the authority's answer and is handed it; it never calls it."""
    slow = _AsyncLocal()
    conn, events, _ = make(authority=slow)
    ctx = client()
    d = conn.receive(hdr("NTLM", ctx.step(None) or b""))
    assert isinstance(d, Decision) and d.status == 401
    token = find_challenge([v for _, v in d.headers], AuthScheme.NTLM)
    needed = conn.receive(hdr("NTLM", ctx.step(token) or b""))
    assert isinstance(needed, ValidationNeeded) and needed.request.username == "alice"
    assert conn.authority is slow and events == []
    with pytest.raises(ProtocolStateError, match="while the authority is consulted"):
        conn.receive(None)
    with pytest.raises(TypeError):
        decide_sync(make(authority=slow, basic=True)[0], "Basic " + base64.b64encode(b"alice:x").decode())
    done = conn.validation_done(needed.ticket, asyncio.run(consult(slow, needed.request)))
    assert done.allowed and done.login is not None and done.login.success
    assert [e.user for e in events] == ["alice"]
    with pytest.raises(ProtocolStateError, match="no validation pending"):
        conn.validation_done(needed.ticket, asyncio.run(consult(slow, needed.request)))


@given(st.lists(st.one_of(st.none(), st.text(max_size=80), st.binary(max_size=40).map(
    lambda b: "NTLM " + base64.b64encode(b"NTLMSSP\x00" + b).decode())), max_size=6))
def test_arbitrary_header_sequences_never_raise(values: list[str | None]) -> None:
    conn, events, _ = make()
    for value in values:
        d = decide_sync(conn, value)
        # a request is let through only on an authenticated connection; otherwise it is challenged
        assert d.status == (None if conn.state is ConnState.AUTHENTICATED else 401)
        assert d.login is None or not d.login.success
