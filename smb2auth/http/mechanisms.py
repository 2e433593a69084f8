"""smb2auth's NTLM engine behind the HTTP binding: the handshake factory and a ready HttpAuthConfig.

The NTLM scheme carries raw NTLM messages (MS-NTHT 2.2); Negotiate carries SPNEGO or, as IIS accepts
from many clients, raw NTLM: SpnegoServer takes both.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from smb2auth.http.auth import HandshakeIdentity, HttpAuthConfig, MechanismFactory, Role, ServerHandshake
from smb2auth.http.events import EventLog, LoginCallback
from smb2auth.http.headers import AuthScheme, TokenKind
from smb2auth.ntlm import NtlmClient, NtlmPolicy, NtlmServer, TargetInfo
from smb2auth.ntlm.authority import AnyAuthority, ValidationResult
from smb2auth.ntlm.events import HandshakeEvent
from smb2auth.spnego.context import SpnegoServer


class NtlmHandshake:
    """An NtlmServer, or a SpnegoServer around it, as a `ServerHandshake`: the tokens go to `mech`, and
    whom the handshake names is read from the NTLM acceptor within."""

    def __init__(self, ntlm: NtlmServer, spnego: SpnegoServer | None = None) -> None:
        self.ntlm = ntlm
        self.spnego = spnego

    @property
    def authority(self) -> AnyAuthority:
        return self.ntlm.authority

    def receive(self, token: bytes) -> HandshakeEvent:
        return self.spnego.receive(token) if self.spnego is not None else self.ntlm.receive(token)

    def validation_done(self, ticket: int, result: ValidationResult) -> HandshakeEvent:
        if self.spnego is not None:
            return self.spnego.validation_done(ticket, result)
        return self.ntlm.validation_done(ticket, result)

    def wrap(self, data: bytes) -> bytes:
        # MS-SPNG 3.3.5.1: SPNEGO adds nothing to NTLM's per-message tokens
        return self.ntlm.wrap(data)

    def unwrap(self, token: bytes) -> bytes:
        return self.ntlm.unwrap(token)

    def identity(self) -> HandshakeIdentity:
        ntlm = self.ntlm
        kind = ntlm.response_kind
        return HandshakeIdentity(
            user=ntlm.user,
            domain=ntlm.domain,
            workstation=ntlm.workstation,
            response_kind=kind.value if kind is not None else None,
            flags=ntlm.negotiated_flags,
            guest=ntlm.is_guest,
            anonymous=ntlm.is_anonymous,
            account=ntlm.account,
        )


def ntlm_factory(
    authority: AnyAuthority,
    *,
    target: TargetInfo | None = None,
    policy: NtlmPolicy | None = None,
    rng: Callable[[int], bytes] = os.urandom,
    clock: Callable[[], float] = time.time,
) -> MechanismFactory:
    """A factory of fresh server handshakes: NtlmServer for NTLM, SpnegoServer(NtlmServer) for Negotiate."""

    def make(scheme: AuthScheme, kind: TokenKind) -> ServerHandshake:
        ntlm = NtlmServer(authority, target=target, policy=policy, rng=rng, clock=clock)
        return NtlmHandshake(ntlm, SpnegoServer(ntlm) if scheme is AuthScheme.NEGOTIATE else None)

    return make


def basic_client(user: str, domain: str, password: str) -> NtlmClient:
    """The in-process client that checks a Basic credential through the NTLM engine."""
    return NtlmClient(user, password, domain=domain, workstation="HTTP-BASIC")


def ntlm_http_config(
    authority: AnyAuthority,
    *,
    role: Role = Role.ORIGIN,
    target: TargetInfo | None = None,
    policy: NtlmPolicy | None = None,
    schemes: tuple[AuthScheme, ...] = (AuthScheme.NEGOTIATE, AuthScheme.NTLM),
    basic: bool = False,
    auth_timeout: float | None = 3600.0,
    on_login: EventLog | LoginCallback | None = None,
    close_after_first_challenge: bool = False,
    realm: str = "smb2auth",
    rng: Callable[[int], bytes] = os.urandom,
    clock: Callable[[], float] = time.time,
    allowed_groups: tuple[str, ...] = (),
) -> HttpAuthConfig:
    """An HttpAuthConfig authenticating against `authority` with smb2auth's NTLM server.
    `basic=True` also offers Basic, checked by an in-process NTLMv2 handshake with the same authority."""
    return HttpAuthConfig(
        factory=ntlm_factory(authority, target=target, policy=policy, rng=rng, clock=clock),
        role=role,
        schemes=schemes,
        basic=basic,
        basic_client=basic_client,
        realm=realm,
        auth_timeout=auth_timeout,
        close_after_first_challenge=close_after_first_challenge,
        on_login=on_login,
        clock=clock,
        allowed_groups=allowed_groups,
    )
