"""Connection-oriented HTTP authentication, sans-IO: the decision for each request on one connection.

NTLM and Negotiate over HTTP (RFC 4559; MS-NTHT 2/3) authenticate the *connection*: all legs of the
handshake must arrive on one TCP connection, and once it completes the identity stays bound to that
connection (IIS, ISA and WSA behave so) until it closes or `auth_timeout` passes (injected clock).

`ConnectionAuth.receive(header)` takes the Authorization or Proxy-Authorization value of one request and
returns a `Decision` (let the request through with an `Identity`, or answer it with 401/407 and challenge
headers), or a `ValidationNeeded` when the mechanism needs the authority's answer: the transport consults
the authority and hands the result to `validation_done(ticket, result)`, which returns the `Decision`.
A Decision carries the login event of the attempt (`Decision.login`) for the transport to log; the core
never awaits, logs or calls an authority. `decide_sync(auth, header)` runs a synchronous authority inline.

Malformed credentials, one rule for the origin and the proxy (Squid's: it answers 407 with a fresh offer
and keeps the connection): a credential we cannot read (not a token68, bad base64, no token, a token that
is neither NTLMSSP nor SPNEGO, a malformed message inside it, SPNEGO under the NTLM scheme) is a failed
login with STATUS_INVALID_PARAMETER and a reason starting "malformed": 401/407 with a fresh offer, and the
connection stays open with its handshake discarded. A malformed *request* (its head, its framing) is the
transport's 400.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from smb2auth.authority.consult import consult_sync
from smb2auth.errors import AuthenticationError, MalformedMessage, ProtocolStateError
from smb2auth.events import flag_names
from smb2auth.http._state import ConnEvent, ConnState, conn_next
from smb2auth.http.events import TRANSPORT, EventLog, LoginCallback, LoginEvent
from smb2auth.http.headers import (
    AuthScheme,
    Credentials,
    TokenKind,
    UnsupportedScheme,
    challenge_value,
    parse_authorization,
)
from smb2auth.ntlm.authority import Account, AnyAuthority, ValidationResult
from smb2auth.ntlm.events import Complete, Failed, HandshakeError, HandshakeEvent, Send, ValidationNeeded
from smb2auth.ntlm.messages import NegotiateFlags
from smb2auth.status import NtStatus

__all__ = [
    "BasicClientFactory", "ConnEvent", "ConnState", "ConnectionAuth", "Decision", "HandshakeIdentity",
    "HttpAuthConfig", "Identity", "InitiatorContext", "MechanismFactory", "Role", "ServerHandshake",
    "SessionContext", "decide_sync",
]

class Role(enum.Enum):
    """An origin server answers 401 with WWW-Authenticate; an explicit proxy 407 with Proxy-Authenticate
    (RFC 9110 11.6/11.7). A transparent (intercepting) proxy must use the origin's headers."""

    ORIGIN = 401
    PROXY = 407

    @property
    def status(self) -> int:
        return self.value

    @property
    def challenge_header(self) -> str:
        return "WWW-Authenticate" if self is Role.ORIGIN else "Proxy-Authenticate"

    @property
    def credentials_header(self) -> str:
        return "Authorization" if self is Role.ORIGIN else "Proxy-Authorization"

    @property
    def environ_key(self) -> str:
        return "HTTP_AUTHORIZATION" if self is Role.ORIGIN else "HTTP_PROXY_AUTHORIZATION"


@dataclass(frozen=True)
class HandshakeIdentity:
    """Whom a server handshake names, as far as it got: the AUTHENTICATE's names, the response kind and
    flags the server decided, and once it completed, the account (guest, anonymous)."""

    user: str = ""
    domain: str = ""
    workstation: str = ""
    response_kind: str | None = None
    flags: int = 0
    guest: bool = False
    anonymous: bool = False
    account: Account | None = None


class SessionContext(Protocol):
    """A completed security context's per-message protection (GSS_Wrap / GSS_Unwrap, MS-NLMP 3.4.3):
    `wrap` gives signature || sealed data, `unwrap` checks and opens it. Sequence numbers advance each way."""

    def wrap(self, data: bytes) -> bytes: ...

    def unwrap(self, token: bytes) -> bytes: ...


class ServerHandshake(SessionContext, Protocol):
    """One server handshake behind a connection: tokens in, events out (smb2auth.ntlm.events), and whom it
    names; once complete, its session context. `mechanisms.NtlmHandshake` wraps NtlmServer, or SpnegoServer
    around it."""

    @property
    def authority(self) -> AnyAuthority: ...

    def receive(self, token: bytes) -> HandshakeEvent: ...

    def validation_done(self, ticket: int, result: ValidationResult) -> HandshakeEvent: ...

    def identity(self) -> HandshakeIdentity: ...


class InitiatorContext(Protocol):
    """What an NtlmClient offers: `step(None)` gives the NEGOTIATE, `step(challenge)` the AUTHENTICATE."""

    def step(self, token: bytes | None) -> bytes | None: ...


MechanismFactory = Callable[[AuthScheme, TokenKind], ServerHandshake]
"""Builds a fresh server handshake: raw NTLM, or SPNEGO around NTLM for `kind.is_spnego`."""

BasicClientFactory = Callable[[str, str, str], InitiatorContext]
"""(user, domain, password) -> an NTLM client context; Basic credentials are checked by running the
NTLM handshake in-process against the same authority, so the authority never sees a password."""


@dataclass(frozen=True)
class Identity:
    """Who authenticated on a connection, and how."""

    user: str
    domain: str
    workstation: str
    scheme: AuthScheme
    response_kind: str
    flags: int
    authenticated_at: float
    guest: bool = False
    anonymous: bool = False
    account: Account | None = None

    @property
    def qualified_name(self) -> str:
        return f"{self.domain}\\{self.user}" if self.domain else self.user

    @property
    def groups(self) -> tuple[str, ...]:
        return self.account.groups if self.account is not None else ()


@dataclass(frozen=True)
class Decision:
    """`status` None lets the request through (with `identity`); otherwise the response to send.
    `headers` go on the response either way (a final Negotiate token rides on the 200). `login` is the
    attempt's login event, for the transport to log and hand on; None when no login was attempted."""

    status: int | None
    headers: tuple[tuple[str, str], ...] = ()
    identity: Identity | None = None
    close: bool = False
    reason: str = ""
    login: LoginEvent | None = None

    @property
    def allowed(self) -> bool:
        return self.status is None


@dataclass
class HttpAuthConfig:
    """Server-wide settings shared by every connection. `on_login` is where the transports send the
    login events (an EventLog, or a callback after logging). `allowed_groups`: an authenticated account in
    none of them gets 403 (RFC 9110 15.5.4) on every request, as FortiGate picks by group."""

    factory: MechanismFactory
    role: Role = Role.ORIGIN
    schemes: tuple[AuthScheme, ...] = (AuthScheme.NEGOTIATE, AuthScheme.NTLM)
    basic: bool = False
    basic_client: BasicClientFactory | None = None
    realm: str = "smb2auth"
    auth_timeout: float | None = 3600.0
    close_after_first_challenge: bool = False
    on_login: EventLog | LoginCallback | None = None
    clock: Callable[[], float] = field(default=time.time)
    allowed_groups: tuple[str, ...] = ()

    def permits(self, identity: Identity) -> bool:
        """With `allowed_groups`, only members of one of them (compared casefolded) get through."""
        if not self.allowed_groups:
            return True
        wanted = {g.casefold() for g in self.allowed_groups}
        return any(g.casefold() in wanted for g in identity.groups)

    def offered(self) -> tuple[AuthScheme, ...]:
        extra = (AuthScheme.BASIC,) if self.basic and self.basic_client is not None else ()
        return tuple(s for s in self.schemes if s is not AuthScheme.BASIC) + extra


@dataclass
class _Waiting:
    """The handshake whose token awaits the authority; `basic` names the user of a Basic credential."""

    handshake: ServerHandshake
    scheme: AuthScheme
    basic_user: str = ""


def _failure(error: HandshakeError) -> tuple[NtStatus, str]:
    """A failed handshake's status and reason, as the login event reports them."""
    if isinstance(error, AuthenticationError):
        return error.status, error.reason
    return error.status, f"malformed: {error}"


class ConnectionAuth:
    """The authentication state of one TCP connection. Create one per accepted connection."""

    def __init__(self, config: HttpAuthConfig, client: str = "") -> None:
        self.config = config
        self.client = client
        self.state = ConnState.IDLE
        self.identity: Identity | None = None
        self._handshake: ServerHandshake | None = None
        self._scheme: AuthScheme | None = None
        self._started_at = 0.0
        self._challenged = False
        self._waiting: _Waiting | None = None
        self._context: SessionContext | None = None

    def __repr__(self) -> str:
        return f"ConnectionAuth(client={self.client!r}, state={self.state.name}, identity={self.identity!r})"

    @property
    def context(self) -> SessionContext | None:
        """The security context of the handshake that authenticated this connection, bound to it while it
        stays authenticated (WinRM's message encryption runs on it, MS-WSMV 2.2.9.1); None after Basic."""
        return self._context if self.state is ConnState.AUTHENTICATED else None

    @property
    def authority(self) -> AnyAuthority:
        """The authority to consult for the pending ValidationNeeded."""
        if self._waiting is None:
            raise ProtocolStateError(f"HTTP auth in state {self.state.value}: no validation pending")
        return self._waiting.handshake.authority

    # -- public ----------------------------------------------------------------------------------

    def receive(self, header: str | None) -> Decision | ValidationNeeded:
        """Decide one request from its (Proxy-)Authorization value, or ask for the authority's answer."""
        if self._waiting is not None:
            raise ProtocolStateError(
                f"HTTP auth in state {self.state.value}: a request while the authority is consulted"
            )
        self._expire()
        if header is None or not header.strip():
            if self.state is ConnState.AUTHENTICATED and self.identity is not None:
                return self._let_through(self.identity)
            self._abandon()
            return self._offer("no credentials")
        try:
            creds = parse_authorization(header)
        except UnsupportedScheme as exc:
            self._abandon()
            return self._offer(exc.reason)
        except MalformedMessage as exc:
            return self._refused(exc.status, f"malformed credential: {exc.reason}", "?")
        if creds.scheme not in self.config.offered():
            self._abandon()
            return self._offer(f"scheme {creds.scheme.value} not offered")
        if creds.scheme is AuthScheme.BASIC:
            return self._basic(creds)
        return self._token(creds)

    def validation_done(self, ticket: int, result: ValidationResult) -> Decision:
        """The authority's answer to the ValidationNeeded with this `ticket`."""
        waiting = self._waiting
        if waiting is None:
            raise ProtocolStateError(f"HTTP auth in state {self.state.value}: no validation pending")
        self._waiting = None
        event = waiting.handshake.validation_done(ticket, result)
        if isinstance(event, ValidationNeeded):
            error = ProtocolStateError("HTTP auth: a second validation for one token")
            event = Failed(error)
        if waiting.scheme is AuthScheme.BASIC:
            return self._basic_done(waiting, event)
        return self._after(waiting.handshake, waiting.scheme, event)

    # -- state ----------------------------------------------------------------------------------

    def _to(self, event: ConnEvent) -> None:
        nxt = conn_next(self.state, event)
        self.state = nxt
        if nxt is not ConnState.HANDSHAKE:
            self._handshake = None
        if nxt is not ConnState.AUTHENTICATED:
            self.identity = None
            self._context = None

    def _abandon(self) -> None:
        if self.state is ConnState.HANDSHAKE:
            self._to(ConnEvent.ABANDON)

    def _expire(self) -> None:
        timeout = self.config.auth_timeout
        if timeout is None or self.state is ConnState.IDLE:
            return
        since = self.identity.authenticated_at if self.identity is not None else self._started_at
        if self.config.clock() - since >= timeout:
            self._to(ConnEvent.EXPIRE)

    # -- responses ------------------------------------------------------------------------------

    def _offer(self, reason: str, login: LoginEvent | None = None) -> Decision:
        cfg = self.config
        name = cfg.role.challenge_header
        headers = tuple((name, challenge_value(s, realm=cfg.realm)) for s in cfg.offered())
        close = cfg.close_after_first_challenge and not self._challenged
        self._challenged = True
        return Decision(cfg.role.status, headers, close=close, reason=reason, login=login)

    def _let_through(
        self, identity: Identity, headers: tuple[tuple[str, str], ...] = (), login: LoginEvent | None = None
    ) -> Decision:
        """The request goes on with `identity`, or 403 when its groups are not allowed."""
        if not self.config.permits(identity):
            return Decision(403, headers, identity=identity, reason="not in an allowed group", login=login)
        return Decision(None, headers, identity=identity, login=login)

    def _login(
        self, status: NtStatus, reason: str, scheme: str, who: HandshakeIdentity | None = None, user: str = ""
    ) -> LoginEvent:
        who = who if who is not None else HandshakeIdentity()
        return LoginEvent(
            transport=TRANSPORT,
            client_address=self.client,
            user=who.user or user,
            domain=who.domain,
            workstation=who.workstation,
            status=status.name,
            reason=reason,
            dialect=scheme,
            response_kind=who.response_kind,
            ntlm_flags=flag_names(NegotiateFlags, who.flags),
            guest=who.guest,
            anonymous=who.anonymous,
            sid=who.account.sid if who.account is not None and status == NtStatus.STATUS_SUCCESS else None,
            groups=who.account.groups if who.account is not None else (),
            time=self.config.clock(),
        )

    def _refused(
        self, status: NtStatus, reason: str, scheme: str, who: HandshakeIdentity | None = None, user: str = ""
    ) -> Decision:
        """A failed login attempt: its event, the handshake gone, and a fresh offer."""
        login = self._login(status, reason, scheme, who, user)
        if self.state is not ConnState.IDLE:
            self._to(ConnEvent.FAIL)
        return self._offer(reason, login)

    def _identity(self, who: HandshakeIdentity, scheme: AuthScheme) -> Identity:
        account = who.account
        return Identity(
            user=who.user or (account.username if account is not None else ""),
            domain=who.domain or (account.domain if account is not None else ""),
            workstation=who.workstation,
            scheme=scheme,
            response_kind=who.response_kind or "",
            flags=who.flags,
            authenticated_at=self.config.clock(),
            guest=who.guest,
            anonymous=who.anonymous,
            account=account,
        )

    # -- NTLM / Negotiate tokens ----------------------------------------------------------------

    def _token(self, creds: Credentials) -> Decision | ValidationNeeded:
        scheme, kind = creds.scheme, creds.kind
        if scheme is AuthScheme.NTLM and kind.is_spnego:
            return self._refused(NtStatus.STATUS_INVALID_PARAMETER, "malformed: SPNEGO under NTLM", "NTLM")
        if kind.is_initial:
            self._to(ConnEvent.START)
            self._handshake = self.config.factory(scheme, kind)
            self._scheme = scheme
            self._started_at = self.config.clock()
        elif self.state is not ConnState.HANDSHAKE or self._scheme is not scheme or self._handshake is None:
            login = self._login(NtStatus.STATUS_INVALID_PARAMETER,
                                "continuation token without a handshake on this connection", scheme.value)
            self._to(ConnEvent.ORPHAN)
            return self._offer("continuation token on a connection without a handshake", login)
        assert self._handshake is not None
        handshake = self._handshake
        event = handshake.receive(creds.token)
        if isinstance(event, ValidationNeeded):
            self._waiting = _Waiting(handshake, scheme)
            return event
        return self._after(handshake, scheme, event)

    def _after(self, handshake: ServerHandshake, scheme: AuthScheme, event: HandshakeEvent) -> Decision:
        cfg = self.config
        if isinstance(event, Failed):
            status, reason = _failure(event.error)
            return self._refused(status, reason, scheme.value, handshake.identity())
        if isinstance(event, Complete):
            who = handshake.identity()
            identity = self._identity(who, scheme)
            login = self._login(NtStatus.STATUS_SUCCESS, "", scheme.value, who)
            self._to(ConnEvent.COMPLETE)
            self.identity = identity
            self._context = handshake
            # RFC 4559 5: a final Negotiate token rides on the successful response
            out = event.token
            headers = ((cfg.role.challenge_header, challenge_value(scheme, out)),) if out else ()
            return self._let_through(identity, headers, login)
        assert isinstance(event, Send)
        if not event.token:
            return self._refused(NtStatus.STATUS_INTERNAL_ERROR, "mechanism produced no token", scheme.value,
                                 handshake.identity())
        self._to(ConnEvent.CONTINUE)
        return Decision(cfg.role.status, ((cfg.role.challenge_header, challenge_value(scheme, event.token)),),
                        reason="challenge")

    # -- Basic: the NTLM handshake run in-process ------------------------------------------------

    def _basic(self, creds: Credentials) -> Decision | ValidationNeeded:
        factory = self.config.basic_client
        assert factory is not None
        user, domain = creds.username, ""
        for sep in ("\\", "/"):
            if sep in user:
                domain, user = user.split(sep, 1)
                break
        client = factory(user, domain, creds.password)
        handshake = self.config.factory(AuthScheme.NTLM, TokenKind.NTLM_NEGOTIATE)
        waiting = _Waiting(handshake, AuthScheme.BASIC, creds.username)
        try:
            event = handshake.receive(client.step(None) or b"")
            if isinstance(event, Send):
                event = handshake.receive(client.step(event.token) or b"")
        except (AuthenticationError, MalformedMessage, ProtocolStateError) as exc:
            event = Failed(exc)
        if isinstance(event, ValidationNeeded):
            self._waiting = waiting
            return event
        return self._basic_done(waiting, event)

    def _basic_done(self, waiting: _Waiting, event: HandshakeEvent) -> Decision:
        who = waiting.handshake.identity()
        if isinstance(event, Complete):
            identity = self._identity(who, AuthScheme.BASIC)
            login = self._login(NtStatus.STATUS_SUCCESS, "", "Basic", who)
            self._abandon()
            self._to(ConnEvent.COMPLETE)
            self.identity = identity
            self._context = None
            return self._let_through(identity, login=login)
        if isinstance(event, Failed):
            status, reason = _failure(event.error)
        else:
            status, reason = NtStatus.STATUS_LOGON_FAILURE, "incomplete"
        return self._refused(status, reason, "Basic", who, user=waiting.basic_user)


def decide_sync(auth: ConnectionAuth, header: str | None) -> Decision:
    """`receive`, with a synchronous authority consulted inline (as server/inline.py does for SMB2)."""
    decision = auth.receive(header)
    if isinstance(decision, ValidationNeeded):
        return auth.validation_done(decision.ticket, consult_sync(auth.authority, decision.request))
    return decision
