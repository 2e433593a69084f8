"""smb2auth's NTLM engine behind the HTTP binding: the mechanism factory and a ready HttpAuthConfig.

The NTLM scheme carries raw NTLM messages (MS-NTHT 2.2); Negotiate carries SPNEGO or, as IIS accepts
from many clients, raw NTLM: SpnegoServer takes both.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from smb2auth.http.auth import HttpAuthConfig, MechanismFactory, Role, ServerMechanism
from smb2auth.http.events import EventLog, LoginCallback
from smb2auth.http.headers import AuthScheme, TokenKind
from smb2auth.ntlm import NtlmClient, NtlmPolicy, NtlmServer, TargetInfo
from smb2auth.ntlm.authority import AnyAuthority
from smb2auth.spnego.context import SpnegoServer


def ntlm_factory(
    authority: AnyAuthority,
    *,
    target: TargetInfo | None = None,
    policy: NtlmPolicy | None = None,
    rng: Callable[[int], bytes] = os.urandom,
    clock: Callable[[], float] = time.time,
) -> MechanismFactory:
    """A factory of fresh server contexts: NtlmServer for NTLM, SpnegoServer(NtlmServer) for Negotiate."""

    def make(scheme: AuthScheme, kind: TokenKind) -> ServerMechanism:
        ntlm = NtlmServer(authority, target=target, policy=policy, rng=rng, clock=clock)
        if scheme is AuthScheme.NEGOTIATE:
            return SpnegoServer(ntlm)
        return ntlm

    return make


def _basic_client(user: str, domain: str, password: str) -> NtlmClient:
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
) -> HttpAuthConfig:
    """An HttpAuthConfig authenticating against `authority` with smb2auth's NTLM server.
    `basic=True` also offers Basic, checked by an in-process NTLMv2 handshake with the same authority."""
    return HttpAuthConfig(
        factory=ntlm_factory(authority, target=target, policy=policy, rng=rng, clock=clock),
        role=role,
        schemes=schemes,
        basic=basic,
        basic_client=_basic_client,
        realm=realm,
        auth_timeout=auth_timeout,
        close_after_first_challenge=close_after_first_challenge,
        on_login=on_login,
        clock=clock,
    )
