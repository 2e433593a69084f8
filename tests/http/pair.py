"""Our real NTLM client paired with our real HTTP binding, in memory (as h11's tests/helpers.py pairs its
two connection ends): no fake mechanism stands in for either side.

`AuthPair` runs a client context's legs against one `ConnectionAuth`, and `raw_handshake` does the same
over a raw socket for tests that look at the bytes; `config()` is the HTTP binding on smb2auth's engine
with one account, alice, in domain TESTGRP.
"""

from __future__ import annotations

from typing import Any

from smb2auth.authority.local import LocalAuthority
from smb2auth.http.auth import ConnectionAuth, Decision, HttpAuthConfig, decide_sync
from smb2auth.http.client import ClientContext, ContextFactory
from smb2auth.http.headers import AuthScheme, authorization_value, find_challenge
from smb2auth.http.mechanisms import ntlm_http_config
from smb2auth.ntlm import NtlmClient, TargetInfo
from smb2auth.spnego.context import SpnegoClient
from tests.http.raw import RawConnection, RawResponse

PASSWORD = "Passw0rd!"
TARGET = TargetInfo(nb_domain="TESTGRP", nb_computer="HARNESS")


def authority() -> LocalAuthority:
    local = LocalAuthority("TESTGRP")
    local.add_user("alice", PASSWORD)
    return local


def config(**kw: Any) -> HttpAuthConfig:
    """The binding on smb2auth's NTLM engine against `authority()`; keywords go to ntlm_http_config."""
    kw.setdefault("target", TARGET)
    return ntlm_http_config(kw.pop("authority", None) or authority(), **kw)


def client(password: str = PASSWORD, *, spnego: bool = False, domain: str = "TESTGRP") -> ClientContext:
    ntlm = NtlmClient("alice", password, domain=domain, workstation="WS1")
    return SpnegoClient(mech=ntlm) if spnego else ntlm


def clients(password: str = PASSWORD, *, spnego: bool = False) -> ContextFactory:
    return lambda: client(password, spnego=spnego)


class AuthPair:
    """One client context against one ConnectionAuth; `decisions` keeps every Decision in order."""

    def __init__(self, conn: ConnectionAuth, context: ClientContext, scheme: str = "NTLM") -> None:
        self.conn = conn
        self.context = context
        self.scheme = AuthScheme(scheme)
        self.decisions: list[Decision] = []

    def send(self, token: bytes | None) -> Decision:
        header = authorization_value(self.scheme, token) if token else None
        decision = decide_sync(self.conn, header)
        self.decisions.append(decision)
        return decision

    def challenge(self, decision: Decision) -> bytes | None:
        return find_challenge([v for k, v in decision.headers if k == self.conn.config.role.challenge_header],
                              self.scheme)

    def login(self, max_legs: int = 4) -> Decision:
        """Legs until the binding stops challenging; the last Decision. A final token (SPNEGO's
        accept-completed) is handed to the client too."""
        decision = self.send(self.context.step(None))
        for _ in range(max_legs):
            token = self.challenge(decision)
            if decision.allowed:
                if token:
                    assert self.context.step(token) is None
                return decision
            if not token:
                return decision
            decision = self.send(self.context.step(token))
        raise AssertionError("handshake did not end")


def raw_handshake(conn: RawConnection, request: bytes, context: ClientContext | None = None,
                  header: bytes = b"Proxy-Authorization") -> RawResponse:
    """Our NTLM client's legs over a raw socket on `request` (a head without its final CRLF); the last
    response. The challenge status (401/407) is taken from the first answer."""
    ctx = context if context is not None else client()
    head = request.startswith(b"HEAD ")
    challenge_header = "WWW-Authenticate" if header == b"Authorization" else "Proxy-Authenticate"
    token = ctx.step(None)
    while True:
        assert token is not None
        value = authorization_value(AuthScheme.NTLM, token).encode()
        conn.send(request + header + b": " + value + b"\r\n\r\n")
        resp = conn.response(head=head)
        offered = find_challenge([v for k, v in resp.headers if k == challenge_header], AuthScheme.NTLM)
        if resp.status not in (401, 407) or not offered:
            return resp
        token = ctx.step(offered)
