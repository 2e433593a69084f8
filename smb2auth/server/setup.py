"""SESSION_SETUP and LOGOFF on the server (MS-SMB2 3.3.5.5, 3.3.5.6): the SPNEGO/NTLM handshake of a new
session or a re-authentication, its keys, PreviousSessionId, and one login event per attempt.

A SESSION_SETUP whose handshake needs the authority returns `Paused`: the connection keeps it and resumes
it with `resume(...)` once the transport hands the authority's answer back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from smb2auth.errors import MalformedMessage, ProtocolStateError
from smb2auth.events import LoginEvent, flag_names
from smb2auth.ntlm.authority import Account
from smb2auth.ntlm.events import Failed, HandshakeEvent, Send, ValidationNeeded
from smb2auth.ntlm.messages import NegotiateFlags
from smb2auth.ntlm.server import NtlmServer
from smb2auth.server._reply import Reply
from smb2auth.server._state import SessionEvent, SessionState, session_next
from smb2auth.server.context import ServerContext
from smb2auth.server.hostile import Hostile
from smb2auth.server.negotiate import NegotiateState
from smb2auth.server.sessions import Handshake, ServerSession
from smb2auth.smb2.crypto import derive_session_keys
from smb2auth.smb2.header import CompoundPart
from smb2auth.smb2.negotiate import Dialect, SecurityMode, dialect_name
from smb2auth.smb2.negotiate_contexts import Cipher
from smb2auth.smb2.session import (
    LogoffRequest,
    LogoffResponse,
    SessionFlags,
    SessionSetupFlags,
    SessionSetupRequest,
    SessionSetupResponse,
)
from smb2auth.spnego._state import ServerState as SpnegoState
from smb2auth.status import NtStatus

__all__ = ["Paused", "Setup", "SetupHost", "logoff", "login_event", "resume", "session_setup"]


class SetupHost(Protocol):
    """What SESSION_SETUP needs of its connection."""

    ctx: ServerContext
    peer: str
    negotiated: NegotiateState
    sessions: dict[int, ServerSession]
    hostile: Hostile | None

    @property
    def closed(self) -> bool: ...

    def emit(self, event: LoginEvent) -> None: ...


@dataclass(slots=True)
class Setup:
    """One SESSION_SETUP between its request and its response."""

    request: SessionSetupRequest
    reply: Reply
    session: ServerSession
    handshake: Handshake
    first_auth: bool


@dataclass(slots=True)
class Paused:
    """A SESSION_SETUP waiting for the authority's answer to `needed`."""

    setup: Setup
    needed: ValidationNeeded


def session_setup(
    host: SetupHost, part: CompoundPart, reply: Reply, session: ServerSession | None
) -> Reply | Paused:
    request = SessionSetupRequest.unpack(part.body)
    ctx = host.ctx
    cfg = ctx.config
    session_id = reply.session_id
    if request.flags & SessionSetupFlags.BINDING:
        if session_id == 0:
            # Samba smbd_smb2_request_process_sesssetup: binding needs the session's id.
            reason = "session binding without a SessionId"
            return _refuse(host, reply, NtStatus.STATUS_INVALID_PARAMETER, reason)
        if session_id not in ctx.sessions:
            # MS-SMB2 3.3.5.5.2: not in the GlobalSessionTable -> STATUS_USER_SESSION_DELETED.
            reason = "session binding to an unknown session"
            return _refuse(host, reply, NtStatus.STATUS_USER_SESSION_DELETED, reason)
        # MS-SMB2 3.3.5.5: binding on 2.x, or without multichannel -> STATUS_REQUEST_NOT_ACCEPTED.
        return _refuse(host, reply, NtStatus.STATUS_REQUEST_NOT_ACCEPTED, "session binding is not supported")
    if session_id == 0:
        if len(host.sessions) >= cfg.max_sessions_per_connection:
            return _refuse(host, reply, NtStatus.STATUS_INSUFFICIENT_RESOURCES, "max_sessions_per_connection")
        refusal = _handshake_budget(host)
        if refusal:
            return _refuse(host, reply, NtStatus.STATUS_INSUFFICIENT_RESOURCES, refusal)
        global_sessions = ctx.global_sessions
        session = ServerSession(global_sessions.new_session_id(), host.sessions, global_sessions)
        session.preauth = host.negotiated.preauth
        reply.session_id = session.id
    elif session is None or session.state is SessionState.EXPIRED:
        # MS-SMB2 3.3.5.5: a SessionId not in this connection's session table.
        reason = f"session 0x{session_id:016x} is not on this connection"
        return _refuse(host, reply, NtStatus.STATUS_USER_SESSION_DELETED, reason)
    hs = session.handshake
    if hs is None:
        refusal = _handshake_budget(host)
        if refusal:
            return _refuse(host, reply, NtStatus.STATUS_INSUFFICIENT_RESOURCES, refusal)
        ntlm = NtlmServer(
            cfg.authority, target=cfg.target, policy=ctx.ntlm_policy, rng=ctx.rng, clock=ctx.clock
        )
        hs = Handshake(ntlm, ctx.monotonic())
        session.begin_handshake(hs)
    setup = Setup(request, reply, session, hs, session.state is SessionState.IN_PROGRESS)
    if setup.first_auth and session.preauth is not None:
        # MS-SMB2 3.3.5.5.1: each SESSION_SETUP request extends the session's preauth hash.
        session.preauth = session.preauth.add(part.raw)
    token = request.security_buffer
    if not token and hs.spnego.state is SpnegoState.START:
        # Samba gensec spnego: an empty first token is answered with the NegTokenInit2.
        event: HandshakeEvent = Send(ctx.initial_token)
    else:
        event = hs.spnego.receive(token)
    if isinstance(event, ValidationNeeded):
        return Paused(setup, event)
    answer = resume(host, setup, event)
    assert answer is not None
    return answer


def resume(host: SetupHost, setup: Setup, event: HandshakeEvent) -> Reply | None:
    """The SESSION_SETUP response for what the SPNEGO context returned (None: nobody left to answer)."""
    reply, session = setup.reply, setup.session
    if isinstance(event, ValidationNeeded):
        raise ProtocolStateError("SMB2 connection: a second validation for one SESSION_SETUP")
    if isinstance(event, Failed):
        error = event.error
        if isinstance(error, MalformedMessage):
            return _login_failed(host, reply, session, error.status, f"malformed security token: {error}")
        # A token out of order (an AUTHENTICATE for a handshake begun elsewhere) is a failed logon with
        # the context's status: Samba gensec_spnego answers INVALID_PARAMETER.
        return _login_failed(host, reply, session, error.status, error.reason)
    if session.state is SessionState.EXPIRED:
        # Closed while the authority was consulted (a newer session took over, or the connection went).
        return None if host.closed else reply.fail(NtStatus.STATUS_USER_SESSION_DELETED)
    if isinstance(event, Send):
        session.state = session_next(session.state, SessionEvent.CONTINUE)
        reply.status = NtStatus.STATUS_MORE_PROCESSING_REQUIRED
        token = event.token
        if host.hostile is not None:
            token = host.hostile.challenge(token, session.id, host.ctx.monotonic())
        reply.body = SessionSetupResponse(token).pack()
        if setup.first_auth and session.preauth is not None:

            def chain(message: bytes) -> None:
                # MS-SMB2 3.3.5.5.1: ... and so does each MORE_PROCESSING_REQUIRED response.
                if session.preauth is not None:
                    session.preauth = session.preauth.add(message)

            reply.after = chain
        return reply
    return _login_done(host, setup, event.token)


def _login_done(host: SetupHost, setup: Setup, out: bytes | None) -> Reply:
    request, reply, session, hs = setup.request, setup.reply, setup.session, setup.handshake
    ctx, negotiated = host.ctx, host.negotiated
    ntlm = hs.ntlm
    flags = SessionFlags(0)
    if ntlm.is_anonymous:
        flags |= SessionFlags.IS_NULL
    elif ntlm.is_guest:
        flags |= SessionFlags.IS_GUEST
    first_auth = session.state is SessionState.IN_PROGRESS
    if first_auth and ctx.config.encrypt and (flags or not negotiated.cipher):
        # Samba "smb encrypt = required": a session that cannot encrypt is refused.
        reason = "encryption required, but not available to this session"
        return _login_failed(host, reply, session, NtStatus.STATUS_ACCESS_DENIED, reason)
    session.end_handshake()
    if first_auth:
        session.flags = flags
        if not flags:
            _derive_keys(ctx, negotiated, session, request, hs)
        session.preauth = None
        if request.previous_session_id and request.previous_session_id != session.id:
            _close_previous(ctx, request.previous_session_id, ntlm.account)
    session.account = ntlm.account
    session.state = session_next(session.state, SessionEvent.AUTHENTICATED)
    if session.signing_key:
        # Samba smbd_smb2_auth_generic_return: the final response is signed unless guest or anonymous.
        reply.signer = session
    reply.status = NtStatus.STATUS_SUCCESS
    if host.hostile is not None and first_auth:
        preauth = negotiated.preauth
        out = host.hostile.final_response(
            reply, out, signing_key=session.signing_key, signing_algorithm=session.signing_algorithm,
            dialect=negotiated.dialect, gss_session_key=hs.spnego.session_key,
            negotiate_preauth=preauth.value if preauth is not None else None, now=ctx.monotonic(),
        )
    reply.body = SessionSetupResponse(out or b"", session.flags).pack()
    signed = session.signing_required and bool(session.signing_key)
    host.emit(login_event(host, session.id, ntlm, NtStatus.STATUS_SUCCESS, "", session.flags, signed=signed))
    return reply


def _derive_keys(
    ctx: ServerContext,
    negotiated: NegotiateState,
    session: ServerSession,
    request: SessionSetupRequest,
    hs: Handshake,
) -> None:
    dialect, cipher = negotiated.dialect, negotiated.cipher
    chain = session.preauth if dialect == Dialect.SMB3_1_1 else None
    preauth = chain.value if chain is not None else None
    # MS-SMB2 3.3.5.5.3: derive the session's keys (3.1.1: over the preauth hash so far).
    keys = derive_session_keys(dialect, hs.spnego.session_key, preauth, cipher or Cipher.AES_128_CCM)
    session.signing_key = keys.signing_key
    if cipher:
        session.decryption_key = keys.client_to_server_key
        session.encryption_key = keys.server_to_client_key
    if ctx.config.encrypt:
        # MS-SMB2 3.3.5.5.3: EncryptData -> SMB2_SESSION_FLAG_ENCRYPT_DATA in the response.
        session.encrypt_data = True
        session.flags |= SessionFlags.ENCRYPT_DATA
    session.signing_algorithm = negotiated.signing_algorithm
    # MS-SMB2 3.3.5.5.3: SigningRequired from the server's setting or the client's SecurityMode.
    session.signing_required = ctx.config.signing_required or bool(
        request.security_mode & SecurityMode.SIGNING_REQUIRED
    )


def _handshake_budget(host: SetupHost) -> str:
    """Why a new handshake cannot start now, or "" when it can."""
    cfg = host.ctx.config
    if host.ctx.pending_handshakes >= cfg.max_pending_handshakes:
        return "max_pending_handshakes"
    authenticating = sum(1 for s in host.sessions.values() if s.authenticating)
    if authenticating >= cfg.max_pending_handshakes_per_connection:
        # One connection cannot hold the server-wide handshake budget and lock every other client out.
        return "max_pending_handshakes_per_connection"
    return ""


def _close_previous(ctx: ServerContext, previous_id: int, account: Account | None) -> None:
    previous = ctx.sessions.get(previous_id)
    if previous is None or account is None or previous.account is None:
        return
    same = (previous.account.username.casefold(), previous.account.domain.casefold()) == (
        account.username.casefold(),
        account.domain.casefold(),
    )
    if same and previous.state is SessionState.VALID:
        # MS-SMB2 3.3.5.5.3: PreviousSessionId of the same user -> that session is logged off.
        previous.end(SessionEvent.LOGOFF)


def _login_failed(
    host: SetupHost, reply: Reply, session: ServerSession, status: int, reason: str
) -> Reply:
    """The handshake failed: a login event, the session gone, the request failed with `status`."""
    hs = session.handshake
    ntlm = hs.ntlm if hs is not None else None
    host.emit(login_event(host, session.id, ntlm, status, reason, SessionFlags(0)))
    session.end(SessionEvent.FAIL)
    return reply.fail(status)


def _refuse(host: SetupHost, reply: Reply, status: int, reason: str) -> Reply:
    """A SESSION_SETUP refused before any authentication: still a login attempt, still an event."""
    host.emit(login_event(host, reply.session_id or None, None, status, reason, SessionFlags(0)))
    return reply.fail(status)


def login_event(
    host: SetupHost,
    session_id: int | None,
    ntlm: NtlmServer | None,
    status: int,
    reason: str,
    flags: SessionFlags,
    *,
    signed: bool = False,
) -> LoginEvent:
    kind = ntlm.response_kind if ntlm is not None else None
    account = ntlm.account if ntlm is not None else None
    return LoginEvent(
        transport="smb2",
        client_address=host.peer,
        user=ntlm.user if ntlm else "",
        domain=ntlm.domain if ntlm else "",
        workstation=ntlm.workstation if ntlm else "",
        status=NtStatus.name_of(status),
        reason=reason,
        dialect=dialect_name(host.negotiated.dialect),
        response_kind=kind.value if kind is not None else None,
        ntlm_flags=flag_names(NegotiateFlags, ntlm.negotiated_flags) if ntlm else (),
        session_flags=flag_names(SessionFlags, flags),
        session_id=session_id,
        guest=bool(flags & SessionFlags.IS_GUEST),
        anonymous=bool(flags & SessionFlags.IS_NULL),
        signed=signed,
        sid=account.sid if account is not None else None,
        groups=account.groups if account is not None else (),
        time=host.ctx.clock(),
    )


def logoff(part: CompoundPart, reply: Reply, session: ServerSession) -> Reply:
    LogoffRequest.unpack(part.body)
    if session.signs and (part.header.is_signed or session.signing_required):
        reply.signer = session  # MS-SMB2 3.3.5.6: signed with the key of the session it ends
    session.end(SessionEvent.LOGOFF)
    reply.body = LogoffResponse().pack()
    return reply

