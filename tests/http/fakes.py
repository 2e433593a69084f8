"""A stand-in three-leg mechanism with the NtlmServer/NtlmClient interface, for the HTTP plumbing tests.

Tokens look like NTLM (NTLMSSP signature, MessageType at offset 8) or, wrapped, like SPNEGO (0x60 first
byte for the initial token, 0xa1 after), which is all the HTTP binding looks at; the AUTHENTICATE carries
`user:password` in clear, checked against a dict. Nothing here is NTLM cryptography.
"""

from __future__ import annotations

import struct

from smb2auth.errors import AuthenticationError, MalformedMessage, ProtocolStateError
from smb2auth.http.auth import MechanismFactory, ServerMechanism
from smb2auth.http.headers import AuthScheme, TokenKind
from smb2auth.ntlm.events import Complete, Failed, HandshakeEvent, Send
from smb2auth.status import NtStatus

SIG = b"NTLMSSP\x00"


def msg(kind: int, payload: bytes = b"") -> bytes:
    return SIG + struct.pack("<I", kind) + payload


NEGOTIATE = msg(1)
CHALLENGE = msg(2, b"server-challenge")


class FakeServer:
    def __init__(self, users: dict[str, str], spnego: bool) -> None:
        self.users = users
        self.spnego = spnego
        self.complete = False
        self.user = self.domain = self.workstation = ""
        self.response_kind = "NTLMv2"
        self.negotiated_flags = 0x62088215
        self.is_guest = self.is_anonymous = False
        self.leg = 0

    def step(self, token: bytes | None) -> bytes | None:
        if token is None:
            raise ProtocolStateError("fake server: no token in leg 0")
        if self.spnego:
            token = token[1:]
        if len(token) < 12 or not token.startswith(SIG):
            raise MalformedMessage("fake: not a message", offset=0)
        (kind,) = struct.unpack_from("<I", token, 8)
        if self.leg == 0 and kind == 1:
            self.leg = 1
            return (b"\xa1" if self.spnego else b"") + CHALLENGE
        if self.leg == 1 and kind == 3:
            who, sep, password = token[12:].decode().partition(":")
            if not sep:
                raise MalformedMessage("fake: AUTHENTICATE without user:password", offset=12)
            domain, _, user = who.rpartition("\\")
            self.user, self.domain, self.workstation = user, domain.upper() or "TESTGRP", "WS1"
            if self.users.get(user) != password:
                raise AuthenticationError(NtStatus.STATUS_LOGON_FAILURE, "wrong password")
            self.complete = True
            return b"\xa1final" if self.spnego else None
        raise ProtocolStateError(f"fake server: message {kind} in leg {self.leg}")

    authority = None

    def receive(self, token: bytes) -> HandshakeEvent:
        try:
            out = self.step(token)
        except (AuthenticationError, MalformedMessage, ProtocolStateError) as exc:
            return Failed(exc)
        return Complete(out) if self.complete else Send(out or b"")

    def validation_done(self, ticket: int, result: object) -> HandshakeEvent:
        return Failed(ProtocolStateError("fake server: it never asks for a validation"))


class FakeClient:
    def __init__(self, user: str, password: str, *, domain: str = "", spnego: bool = False) -> None:
        self.who = f"{domain}\\{user}" if domain else user
        self.password = password
        self.spnego = spnego
        self.complete = False
        self.final: bytes | None = None

    def step(self, token: bytes | None) -> bytes | None:
        if token is None:
            return (b"\x60" if self.spnego else b"") + NEGOTIATE
        if self.spnego and token == b"\xa1final":
            self.final = token
            return None
        body = token[1:] if self.spnego else token
        if body != CHALLENGE:
            raise MalformedMessage("fake client: unexpected challenge")
        self.complete = True
        return (b"\xa1" if self.spnego else b"") + msg(3, f"{self.who}:{self.password}".encode())


def fake_factory(users: dict[str, str]) -> MechanismFactory:
    def make(scheme: AuthScheme, kind: TokenKind) -> ServerMechanism:
        return FakeServer(users, kind.is_spnego)

    return make
