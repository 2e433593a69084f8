"""Connection-oriented HTTP authentication, sans-IO: the decision for each request on one connection.

NTLM and Negotiate over HTTP (RFC 4559; MS-NTHT 2/3) authenticate the *connection*: all legs of the
handshake must arrive on one TCP connection, and once it completes the identity stays bound to that
connection (IIS, ISA and WSA behave so) until it closes or `auth_timeout` passes (injected clock).

`ConnectionAuth.handle(header)` (or `await ahandle(header)`) takes the Authorization or
Proxy-Authorization value of one request and returns a `Decision`: let the request through with an
`Identity`, or answer it (401/407 with challenge headers, or 400). No sockets, no clock of its own.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from smb2auth._fsm import StateMachine
from smb2auth.authority.consult import consult
from smb2auth.errors import AuthenticationError, MalformedMessage, ProtocolStateError
from smb2auth.events import flag_names
from smb2auth.http.events import TRANSPORT, EventLog, LoginCallback, LoginEvent, emit
from smb2auth.http.headers import (
    AuthScheme,
    Credentials,
    TokenKind,
    UnsupportedScheme,
    challenge_value,
    parse_authorization,
)
from smb2auth.ntlm.authority import AnyAuthority, ValidationResult
from smb2auth.ntlm.events import Failed, HandshakeEvent, ValidationNeeded
from smb2auth.ntlm.messages import NegotiateFlags
from smb2auth.status import NtStatus

log = logging.getLogger("smb2auth.http")


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


class ServerMechanism(Protocol):
    """What an NtlmServer or SpnegoServer offers: a token in, an event out (`receive`, `validation_done`),
    or `step` for a synchronous authority."""

    @property
    def complete(self) -> bool: ...

    @property
    def authority(self) -> AnyAuthority: ...

    def step(self, token: bytes) -> bytes | None: ...

    def receive(self, token: bytes) -> HandshakeEvent: ...

    def validation_done(self, ticket: int, result: ValidationResult) -> HandshakeEvent: ...


MechanismFactory = Callable[[AuthScheme, TokenKind], ServerMechanism]
"""Builds a fresh server context for a handshake: raw NTLM, or SPNEGO around NTLM for `kind.is_spnego`."""

BasicClientFactory = Callable[[str, str, str], Any]
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
    account: Any = None

    @property
    def qualified_name(self) -> str:
        return f"{self.domain}\\{self.user}" if self.domain else self.user


@dataclass(frozen=True)
class Decision:
    """`status` None lets the request through (with `identity`); otherwise the response to send.
    `headers` go on the response either way (a final Negotiate token rides on the 200)."""

    status: int | None
    headers: tuple[tuple[str, str], ...] = ()
    identity: Identity | None = None
    close: bool = False
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return self.status is None


@dataclass
class HttpAuthConfig:
    """Server-wide settings shared by every connection."""

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

    def offered(self) -> tuple[AuthScheme, ...]:
        extra = (AuthScheme.BASIC,) if self.basic and self.basic_client is not None else ()
        return tuple(s for s in self.schemes if s is not AuthScheme.BASIC) + extra


class ConnState(enum.Enum):
    IDLE = "idle"
    HANDSHAKE = "handshake"
    AUTHENTICATED = "authenticated"


class ConnEvent(enum.Enum):
    START = "initial token"
    CONTINUE = "token accepted, more needed"
    COMPLETE = "handshake complete"
    FAIL = "handshake failed"
    ABANDON = "request without credentials"
    EXPIRE = "authentication timed out"
    ORPHAN = "continuation token without a handshake"


_TRANSITIONS: dict[tuple[ConnState, ConnEvent], ConnState] = {
    (ConnState.IDLE, ConnEvent.START): ConnState.HANDSHAKE,
    (ConnState.IDLE, ConnEvent.COMPLETE): ConnState.AUTHENTICATED,
    (ConnState.IDLE, ConnEvent.FAIL): ConnState.IDLE,
    (ConnState.IDLE, ConnEvent.ABANDON): ConnState.IDLE,
    (ConnState.IDLE, ConnEvent.ORPHAN): ConnState.IDLE,
    (ConnState.HANDSHAKE, ConnEvent.START): ConnState.HANDSHAKE,
    (ConnState.HANDSHAKE, ConnEvent.CONTINUE): ConnState.HANDSHAKE,
    (ConnState.HANDSHAKE, ConnEvent.COMPLETE): ConnState.AUTHENTICATED,
    (ConnState.HANDSHAKE, ConnEvent.FAIL): ConnState.IDLE,
    (ConnState.HANDSHAKE, ConnEvent.ABANDON): ConnState.IDLE,
    (ConnState.HANDSHAKE, ConnEvent.EXPIRE): ConnState.IDLE,
    (ConnState.HANDSHAKE, ConnEvent.ORPHAN): ConnState.IDLE,
    (ConnState.AUTHENTICATED, ConnEvent.START): ConnState.HANDSHAKE,
    (ConnState.AUTHENTICATED, ConnEvent.COMPLETE): ConnState.AUTHENTICATED,
    (ConnState.AUTHENTICATED, ConnEvent.FAIL): ConnState.IDLE,
    (ConnState.AUTHENTICATED, ConnEvent.EXPIRE): ConnState.IDLE,
    (ConnState.AUTHENTICATED, ConnEvent.ORPHAN): ConnState.IDLE,
}
"""Per-connection transitions; START with an initial token (NTLM NEGOTIATE or SPNEGO NegTokenInit)
always restarts the handshake, whatever state the connection is in."""
_MACHINE = StateMachine("HTTP auth", _TRANSITIONS)


@dataclass
class _Pending:
    """A token that needs the mechanism (or a Basic credential that needs the NTLM loopback)."""

    creds: Credentials
    mech: ServerMechanism


def _inner(mech: object) -> object:
    """The NTLM context under a SPNEGO one, for identity attributes."""
    if hasattr(mech, "user"):
        return mech
    for name in ("mech", "ntlm", "context"):
        inner = getattr(mech, name, None)
        if inner is not None and hasattr(inner, "user"):
            return inner
    return mech


def _str_attr(obj: object, name: str) -> str:
    value = getattr(obj, name, "")
    if value is None:
        return ""
    return str(getattr(value, "value", value))


class ConnectionAuth:
    """The authentication state of one TCP connection. Create one per accepted connection."""

    def __init__(self, config: HttpAuthConfig, client: str = "") -> None:
        self.config = config
        self.client = client
        self.state = ConnState.IDLE
        self.identity: Identity | None = None
        self._mech: ServerMechanism | None = None
        self._scheme: AuthScheme | None = None
        self._started_at = 0.0
        self._challenged = False

    def __repr__(self) -> str:
        return f"ConnectionAuth(client={self.client!r}, state={self.state.name}, identity={self.identity!r})"

    # -- state ----------------------------------------------------------------------------------

    def _to(self, event: ConnEvent) -> None:
        nxt = _MACHINE.next(self.state, event)
        self.state = nxt
        if nxt is not ConnState.HANDSHAKE:
            self._mech = None
        if nxt is not ConnState.AUTHENTICATED:
            self.identity = None

    def _expire(self) -> None:
        timeout = self.config.auth_timeout
        if timeout is None or self.state is ConnState.IDLE:
            return
        since = self.identity.authenticated_at if self.identity is not None else self._started_at
        if self.config.clock() - since >= timeout:
            self._to(ConnEvent.EXPIRE)

    # -- responses ------------------------------------------------------------------------------

    def _offer(self, reason: str) -> Decision:
        cfg = self.config
        name = cfg.role.challenge_header
        headers = tuple((name, challenge_value(s, realm=cfg.realm)) for s in cfg.offered())
        close = cfg.close_after_first_challenge and not self._challenged
        self._challenged = True
        return Decision(cfg.role.status, headers, close=close, reason=reason)

    def _event(
        self, status: NtStatus, reason: str, scheme: str, mech: object | None = None, *, user: str = ""
    ) -> None:
        inner = _inner(mech) if mech is not None else None
        account = getattr(inner, "account", None) if status == NtStatus.STATUS_SUCCESS else None
        emit(
            LoginEvent(
                transport=TRANSPORT,
                client_address=self.client,
                user=_str_attr(inner, "user") or user,
                domain=_str_attr(inner, "domain"),
                workstation=_str_attr(inner, "workstation"),
                status=status.name,
                reason=reason,
                dialect=scheme,
                response_kind=_str_attr(inner, "response_kind") or None,
                ntlm_flags=flag_names(NegotiateFlags, int(getattr(inner, "negotiated_flags", 0) or 0)),
                guest=bool(getattr(inner, "is_guest", False)),
                anonymous=bool(getattr(inner, "is_anonymous", False)),
                sid=getattr(account, "sid", None),
                groups=tuple(getattr(account, "groups", ())),
                time=self.config.clock(),
            ),
            self.config.on_login,
        )

    def _identity(self, mech: object, scheme: AuthScheme) -> Identity:
        inner = _inner(mech)
        account = getattr(inner, "account", None) or getattr(mech, "account", None)
        user = _str_attr(inner, "user") or _str_attr(account, "username")
        domain = _str_attr(inner, "domain") or _str_attr(account, "domain")
        return Identity(
            user=user,
            domain=domain,
            workstation=_str_attr(inner, "workstation"),
            scheme=scheme,
            response_kind=_str_attr(inner, "response_kind"),
            flags=int(getattr(inner, "negotiated_flags", 0) or 0),
            authenticated_at=self.config.clock(),
            guest=bool(getattr(inner, "is_guest", False)),
            anonymous=bool(getattr(inner, "is_anonymous", False)),
            account=account,
        )

    # -- the two halves around the mechanism ----------------------------------------------------

    def _prepare(self, header: str | None) -> Decision | _Pending | tuple[Credentials, list[Any]]:
        self._expire()
        cfg = self.config
        if header is None or not header.strip():
            if self.state is ConnState.AUTHENTICATED and self.identity is not None:
                return Decision(None, identity=self.identity)
            if self.state is ConnState.HANDSHAKE:
                self._to(ConnEvent.ABANDON)
            return self._offer("no credentials")
        try:
            creds = parse_authorization(header)
        except UnsupportedScheme as exc:
            if self.state is ConnState.HANDSHAKE:
                self._to(ConnEvent.ABANDON)
            return self._offer(exc.reason)
        except MalformedMessage as exc:
            self._event(exc.status, f"malformed header: {exc}", "?")
            if self.state is not ConnState.IDLE:
                self._to(ConnEvent.FAIL)
            return Decision(400, reason=str(exc), close=True)
        if creds.scheme not in cfg.offered():
            if self.state is ConnState.HANDSHAKE:
                self._to(ConnEvent.ABANDON)
            return self._offer(f"scheme {creds.scheme.value} not offered")
        if creds.scheme is AuthScheme.BASIC:
            return self._basic(creds)
        kind = creds.kind
        if creds.scheme is AuthScheme.NTLM and kind.is_spnego:
            self._event(NtStatus.STATUS_INVALID_PARAMETER, "malformed: SPNEGO under NTLM", "NTLM")
            if self.state is not ConnState.IDLE:
                self._to(ConnEvent.FAIL)
            return self._offer("SPNEGO token under the NTLM scheme")
        if kind.is_initial:
            self._to(ConnEvent.START)
            self._mech = cfg.factory(creds.scheme, kind)
            self._scheme = creds.scheme
            self._started_at = cfg.clock()
        elif self.state is not ConnState.HANDSHAKE or self._scheme is not creds.scheme or self._mech is None:
            self._event(
                NtStatus.STATUS_INVALID_PARAMETER,
                "continuation token without a handshake on this connection", creds.scheme.value,
            )
            self._to(ConnEvent.ORPHAN)
            return self._offer("continuation token on a connection without a handshake")
        assert self._mech is not None
        return _Pending(creds, self._mech)

    def _finish(self, pending: _Pending, out: bytes | None, error: Exception | None) -> Decision:
        cfg = self.config
        scheme = pending.creds.scheme
        mech = pending.mech
        if error is not None:
            if isinstance(error, AuthenticationError):
                status, reason = error.status, error.reason
            elif isinstance(error, (MalformedMessage, ProtocolStateError)):
                status, reason = error.status, f"malformed: {error}"
            else:
                log.error("HTTP auth: mechanism raised", exc_info=error)
                status, reason = NtStatus.STATUS_INTERNAL_ERROR, repr(error)
            self._event(status, reason, scheme.value, mech)
            self._to(ConnEvent.FAIL)
            return self._offer(reason)
        if mech.complete:
            identity = self._identity(mech, scheme)
            self._event(NtStatus.STATUS_SUCCESS, "", scheme.value, mech)
            self._to(ConnEvent.COMPLETE)
            self.identity = identity
            # RFC 4559 5: a final Negotiate token rides on the successful response
            headers = ((cfg.role.challenge_header, challenge_value(scheme, out)),) if out else ()
            return Decision(None, headers, identity=identity)
        if not out:
            self._event(NtStatus.STATUS_INTERNAL_ERROR, "mechanism produced no token", scheme.value, mech)
            self._to(ConnEvent.FAIL)
            return self._offer("mechanism produced no token")
        self._to(ConnEvent.CONTINUE)
        return Decision(cfg.role.status, ((cfg.role.challenge_header, challenge_value(scheme, out)),),
                        reason="challenge")

    # -- Basic: the NTLM handshake run in-process ------------------------------------------------

    def _basic(self, creds: Credentials) -> tuple[Credentials, list[Any]] | Decision:
        assert self.config.basic_client is not None
        user, domain = creds.username, ""
        for sep in ("\\", "/"):
            if sep in user:
                domain, user = user.split(sep, 1)
                break
        client = self.config.basic_client(user, domain, creds.password)
        server = self.config.factory(AuthScheme.NTLM, TokenKind.NTLM_NEGOTIATE)
        return creds, [client, server]

    def _basic_finish(self, creds: Credentials, server: object, error: Exception | None) -> Decision:
        if error is None and getattr(server, "complete", False):
            identity = self._identity(server, AuthScheme.BASIC)
            self._event(NtStatus.STATUS_SUCCESS, "", "Basic", server)
            if self.state is ConnState.HANDSHAKE:
                self._to(ConnEvent.ABANDON)
            self._to(ConnEvent.COMPLETE)
            self.identity = identity
            return Decision(None, identity=identity)
        if isinstance(error, AuthenticationError):
            status, reason = error.status, error.reason
        else:
            status, reason = NtStatus.STATUS_LOGON_FAILURE, str(error) if error else "incomplete"
        self._event(status, reason, "Basic", server, user=creds.username)
        if self.state is not ConnState.IDLE:
            self._to(ConnEvent.FAIL)
        return self._offer(reason)

    # -- public ----------------------------------------------------------------------------------

    def handle(self, header: str | None) -> Decision:
        """Decide one request from its (Proxy-)Authorization value, running a synchronous authority."""
        prepared = self._prepare(header)
        if isinstance(prepared, Decision):
            return prepared
        if isinstance(prepared, tuple):
            creds, (client, server) = prepared
            try:
                token = client.step(None)
                token = client.step(server.step(token))
                server.step(token)
            except Exception as exc:  # reported as a login failure, never a traceback
                return self._basic_finish(creds, server, exc)
            return self._basic_finish(creds, server, None)
        try:
            out = prepared.mech.step(prepared.creds.token)
        except Exception as exc:
            return self._finish(prepared, None, exc)
        return self._finish(prepared, out, None)

    async def ahandle(self, header: str | None) -> Decision:
        """Decide one request, awaiting the mechanism's authority (either kind) when it asks for one."""
        prepared = self._prepare(header)
        if isinstance(prepared, Decision):
            return prepared
        if isinstance(prepared, tuple):
            creds, (client, server) = prepared
            try:
                token = client.step(None)
                token = client.step(await _astep(server, token))
                await _astep(server, token)
            except Exception as exc:
                return self._basic_finish(creds, server, exc)
            return self._basic_finish(creds, server, None)
        try:
            out = await _astep(prepared.mech, prepared.creds.token)
        except Exception as exc:
            return self._finish(prepared, None, exc)
        return self._finish(prepared, out, None)


async def _astep(mech: ServerMechanism, token: bytes) -> bytes | None:
    """The mechanism's events carried out, awaiting its authority in between; a failure raises its error."""
    event = mech.receive(token)
    if isinstance(event, ValidationNeeded):
        event = mech.validation_done(event.ticket, await consult(mech.authority, event.request))
    if isinstance(event, Failed):
        raise event.error
    assert not isinstance(event, ValidationNeeded)
    return event.token
