"""The server side of one SMB2 connection (MS-SMB2 3.3), sans-IO: Direct TCP frames in, events out.

`Connection.receive_frame(payload)` returns what the transport must do, in order: frames to write (bytes),
login events to log and hand on (LoginEvent), or a `ValidationNeeded` — the frame's SESSION_SETUP waits for
the authority, the transport calls it and hands the answer to `validation_done(ticket, result)`, which
returns the rest. Nothing here awaits, logs, or reads a socket; clock and RNG come from the `ServerContext`.

This module holds what belongs to the connection itself: framing, the credit window, compounding,
signatures and sealing, and dispatch; NEGOTIATE, SESSION_SETUP/LOGOFF and TREE_CONNECT live beside it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from smb2auth.errors import MalformedMessage, ProtocolStateError
from smb2auth.events import LoginEvent
from smb2auth.ntlm.authority import ValidationResult
from smb2auth.ntlm.events import ValidationNeeded
from smb2auth.server import setup as session_setup
from smb2auth.server._reply import Disconnect, Reply
from smb2auth.server._state import ConnEvent, ConnState, SessionEvent, SessionState, conn_next
from smb2auth.server.context import ServerContext
from smb2auth.server.credits import CreditWindow
from smb2auth.server.hostile import Hostile
from smb2auth.server.nbss import FramingError, Incoming, SessionReader, SessionRequest, session_response
from smb2auth.server.negotiate import NegotiateState, negotiate, smb1_negotiate, validate_negotiate_info
from smb2auth.server.sessions import ServerSession
from smb2auth.server.trees import tree_connect, tree_disconnect
from smb2auth.smb2.crypto import TransformHeader, decrypt, encrypt, nonce_size, sign, verify
from smb2auth.smb2.framing import frame as frame_payload
from smb2auth.smb2.header import (
    HEADER_SIZE,
    HEADER_STRUCT,
    SMB1_PROTOCOL_ID,
    SMB2_PROTOCOL_ID,
    TRANSFORM_PROTOCOL_ID,
    Command,
    CompoundPart,
    HeaderFlags,
    Smb2Header,
    split_compound,
)
from smb2auth.smb2.negotiate import Dialect
from smb2auth.smb2.session import SessionFlags
from smb2auth.smb2.simple import EchoRequest, EchoResponse, ErrorResponse
from smb2auth.status import NtStatus

__all__ = ["Connection", "ConnectionEvent"]

ConnectionEvent = bytes | ValidationNeeded | LoginEvent
"""What the transport does, in order: write a frame, ask the authority, log and hand on a login event."""


@dataclass(slots=True)
class _Frame:
    """One request frame (a compound chain) being answered: where it is, and the responses so far."""

    parts: list[CompoundPart]
    sealed: ServerSession | None
    index: int = 0
    replies: list[Reply] = field(default_factory=list)
    previous: tuple[int, int] | None = None

    def add(self, reply: Reply | None) -> None:
        self.index += 1
        if reply is not None:
            self.previous = (reply.session_id, reply.tree_id)
            self.replies.append(reply)


@dataclass(slots=True)
class _Paused:
    """The frame whose SESSION_SETUP waits for the authority."""

    frame: _Frame
    setup: session_setup.Paused


_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


def _check_chain(data: bytes) -> None:
    """Samba smbd_smb2_inbuf_parse_compound and smbd_smb2_request_validate: a chain that does not split into
    messages of a 64-byte header and a body of at least two bytes (StructureSize, its low bit dropped, and
    NextCommand read so) drops the connection unanswered."""
    offset = 0
    while offset < len(data):
        left = len(data) - offset
        if left < HEADER_SIZE + 2:
            raise Disconnect(f"message {offset}: {left} bytes, shorter than a header and a StructureSize")
        (next_command,) = _U32.unpack_from(data, offset + 20)
        size = left
        if next_command:
            if next_command < HEADER_SIZE + 2 or next_command > left:
                raise Disconnect(f"message {offset}: NextCommand {next_command} outside the chain")
            size = next_command
        (structure_size,) = _U16.unpack_from(data, offset + HEADER_SIZE)
        if min(structure_size & ~1, size - HEADER_SIZE) < 2:
            raise Disconnect(f"message {offset}: body StructureSize {structure_size}")
        offset += size


class Connection:
    """One client connection: `feed(bytes)` splits Direct TCP frames, `receive_frame(frame)` answers one.

    After either, `closed` tells the transport to drop the connection (`close_reason` says why).
    """

    def __init__(self, ctx: ServerContext, peer: str = "") -> None:
        self.ctx = ctx
        self.peer = peer
        self.state = ConnState.INITIAL
        self.framer = SessionReader(ctx.config.max_message_size)
        self.negotiated = NegotiateState()
        self.sessions: dict[int, ServerSession] = {}  # MS-SMB2 3.3.1.7 Connection.SessionTable
        self.window = CreditWindow(ctx.config.max_credits)
        self.opened = ctx.monotonic()
        self.last_activity = self.opened
        self.close_reason = ""
        self._paused: _Paused | None = None
        self._events: list[ConnectionEvent] = []
        cfg = ctx.config
        # server/hostile.py: this connection misbehaves once, on purpose (never without a scenario).
        self.hostile = Hostile(cfg.hostile, cfg.hostile_wait) if cfg.hostile is not None else None

    @property
    def closed(self) -> bool:
        return self.state is ConnState.CLOSED

    @property
    def dialect(self) -> int:
        return self.negotiated.dialect

    @property
    def awaiting_validation(self) -> bool:
        """A SESSION_SETUP waits for the authority: `validation_done` comes before the next frame."""
        return self._paused is not None

    def emit(self, event: LoginEvent) -> None:
        """A login event for the transport, returned with the frame that caused it."""
        if self.hostile is not None:
            self._events += self.hostile.emit(event, self._hostile_event)
            return
        self._events.append(event)

    def _hostile_event(self, status: str, reason: str) -> LoginEvent:
        """A hostile verdict's login event where no attempt produced one."""
        session_id = self.hostile.session_id if self.hostile is not None else 0
        return session_setup.login_event(self, session_id or None, None, NtStatus[status], reason,
                                         SessionFlags(0))

    # -- transport side -------------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[Incoming]:
        """The complete packets in `data` (smbd's rules: server/nbss.py), each to be handed to
        `receive_frame` in order; what does not frame ends the list and closes the connection there."""
        if self.closed:
            return []
        return self.framer.feed(data)

    def timed_out(self, now: float) -> str | None:
        """Why the connection has outlived a limit at monotonic time `now`, or None."""
        cfg = self.ctx.config
        if self.hostile is not None and self.hostile.expired(now):
            return "hostile: the client sent nothing after the hostile step"
        if now - self.last_activity > cfg.idle_timeout:
            return "idle timeout"
        if self.state is not ConnState.NEGOTIATED and now - self.opened > cfg.handshake_timeout:
            return "no NEGOTIATE within the handshake timeout"
        for session in self.sessions.values():
            hs = session.handshake
            if hs is not None and now - hs.started > cfg.handshake_timeout:
                return "SESSION_SETUP not completed within the handshake timeout"
        return None

    def close(self, reason: str = "closed", *, abandoned: NtStatus | None = None) -> list[LoginEvent]:
        """Forget every session (releasing pending handshakes and a pending validation); idempotent. With
        `abandoned`, each handshake still pending is reported as a failed login with that status (a
        timeout, say): those events are returned for the transport to log."""
        if not self.close_reason:
            self.close_reason = reason
        self.state = conn_next(self.state, ConnEvent.CLOSE)
        self._paused = None
        events: list[LoginEvent] = []
        for session in list(self.sessions.values()):
            hs = session.handshake
            if abandoned is not None and hs is not None:
                text = f"handshake abandoned: {reason}"
                event = session_setup.login_event(self, session.id, hs.ntlm, abandoned, text, SessionFlags(0))
                events.append(event)
            session.end(SessionEvent.LOGOFF)
        if self.hostile is not None:
            events = self.hostile.close(reason, self._hostile_event, events)
        return events

    # -- one frame ------------------------------------------------------------------------------------

    def receive_frame(self, data: Incoming) -> list[ConnectionEvent]:
        """Answer one Direct TCP frame payload (or what else `feed` handed on): frames to send, login events,
        or a ValidationNeeded last."""
        if self.closed:
            return []
        if self._paused is not None:
            raise ProtocolStateError("SMB2 connection: a frame arrived while a validation is pending")
        self.last_activity = self.ctx.monotonic()
        self._events = []
        if isinstance(data, FramingError):
            # MS-SMB2 2.1: what is no session packet ends the connection.
            return self._disconnected(f"framing: {data.reason}")
        if isinstance(data, SessionRequest):
            return [session_response(data)]  # RFC 1002 4.3.2, before the first SMB message
        try:
            if data[:4] == SMB1_PROTOCOL_ID:
                return [frame_payload(self._smb1_negotiate(data))]
            sealed: ServerSession | None = None
            if data[:4] == TRANSFORM_PROTOCOL_ID:
                sealed, data = self._decrypt(data)
            if data[:4] != SMB2_PROTOCOL_ID:
                # MS-SMB2 3.3.5.2: not SMB2 (nor a transform we could decrypt): disconnect.
                raise Disconnect(f"unsupported protocol id {data[:4].hex()}")
            _check_chain(data)
            try:
                parts = split_compound(data)
            except MalformedMessage as exc:
                return [frame_payload(self._raw_error(data, exc))]
            if self.hostile is not None:
                self._events += self.hostile.observe(parts, self._hostile_event)
            for part in parts:
                if part.header.command is not Command.CANCEL:
                    # MS-SMB2 3.3.5.2.3 / Samba smbd_smb2_request_validate: every MessageId of the chain is
                    # checked against the window before the first request runs.
                    self.window.consume(part.header.message_id, part.header.credit_charge)
            return self._run(_Frame(parts, sealed))
        except Disconnect as exc:
            return self._disconnected(str(exc))

    def validation_done(self, ticket: int, result: ValidationResult) -> list[ConnectionEvent]:
        """The authority's answer to the ValidationNeeded this connection returned; the frame goes on."""
        paused = self._paused
        if paused is None:
            if self.closed:
                return []  # closed while the authority was consulted: nobody to answer
            raise ProtocolStateError("SMB2 connection: no validation is pending")
        pending = paused.setup.needed.ticket
        if ticket != pending:
            raise ProtocolStateError(f"SMB2 connection: ticket {ticket}, but {pending} is pending")
        self._paused = None
        self.last_activity = self.ctx.monotonic()
        self._events = []
        try:
            setup = paused.setup.setup
            event = setup.handshake.spnego.validation_done(ticket, result)
            reply = session_setup.resume(self, setup, event)
            if reply is None:
                return self._events
            paused.frame.add(reply)
            return self._run(paused.frame)
        except Disconnect as exc:
            return self._disconnected(str(exc))

    def _disconnected(self, reason: str) -> list[ConnectionEvent]:
        self._events += self.close(reason)  # a hostile verdict, when one was still due
        return self._events

    def _run(self, frame: _Frame) -> list[ConnectionEvent]:
        """Dispatch the frame's requests from where it stopped; pack (and seal) the responses at its end."""
        sealed = frame.sealed
        while frame.index < len(frame.parts):
            part = frame.parts[frame.index]
            related = part.header.flags & HeaderFlags.RELATED_OPERATIONS
            if sealed is not None and not related and part.header.session_id != sealed.id:
                # MS-SMB2 3.3.5.2.1.1: the decrypted request must belong to the session that sealed it.
                raise Disconnect(
                    f"encrypted by session 0x{sealed.id:016x} for session 0x{part.header.session_id:016x}"
                )
            reply = self._dispatch(part, frame, sealed is not None)
            if isinstance(reply, session_setup.Paused):
                self._paused = _Paused(frame, reply)
                return [*self._events, reply.needed]
            frame.add(reply)
        events = self._events
        replies = frame.replies
        if not replies:
            return events
        if sealed is not None:
            for reply in replies:
                reply.signer = None  # MS-SMB2 3.3.4.1.1: an encrypted response is not signed
        for reply in replies:
            if reply.grant is not None:
                reply.credit = self.window.grant_exactly(reply.grant)  # server/hostile.py
                continue
            reply.credit = self.window.grant(reply.command, reply.status, reply.credit_request,
                                             reply.credit_charge, async_request=reply.async_request)
        packed = self._pack(replies)
        if sealed is not None:
            # MS-SMB2 3.3.4.1.4: the response to an encrypted request is encrypted.
            cipher = self.negotiated.cipher
            nonce = self.ctx.rng(nonce_size(cipher))
            packed = encrypt(packed, sealed.encryption_key, cipher, sealed.id, nonce)
        events.append(frame_payload(packed))
        return events

    def _decrypt(self, data: bytes) -> tuple[ServerSession, bytes]:
        cipher = self.negotiated.cipher
        if not cipher:
            # MS-SMB2 3.3.5.2.1.1: a TRANSFORM_HEADER on a connection without encryption drops it.
            raise Disconnect("encrypted message on a connection without encryption")
        try:
            header = TransformHeader.unpack(data)
        except MalformedMessage as exc:
            raise Disconnect(f"TRANSFORM_HEADER: {exc}") from None
        session = self.sessions.get(header.session_id)
        if session is None or session.state is not SessionState.VALID or not session.decryption_key:
            # MS-SMB2 3.3.5.2.1.1: no such session on this connection -> disconnect.
            raise Disconnect(f"encrypted message for unknown session 0x{header.session_id:016x}")
        try:
            _, plaintext = decrypt(data, session.decryption_key, cipher)
        except MalformedMessage as exc:
            # MS-SMB2 3.3.5.2.1.1: a message that does not decrypt drops the connection.
            raise Disconnect(f"decryption failed: {exc}") from None
        return session, plaintext

    def _raw_error(self, data: bytes, exc: MalformedMessage) -> bytes:
        """An ERROR for a message whose header is well formed but whose command we do not know."""
        if len(data) < HEADER_SIZE:
            raise Disconnect(f"short SMB2 header: {exc}")
        fields = list(HEADER_STRUCT.unpack_from(data))
        if fields[1] != HEADER_SIZE or fields[7] % 8 or (fields[7] and fields[7] < HEADER_SIZE):
            # MS-SMB2 3.3.5.2: a header that does not parse drops the connection.
            raise Disconnect(f"malformed SMB2 header: {exc}")
        if self.state is not ConnState.NEGOTIATED:
            # MS-SMB2 3.3.5.2: before a NEGOTIATE completed, only a NEGOTIATE may come; smbd drops the
            # connection unanswered for an unknown command too.
            raise Disconnect(f"command 0x{fields[4]:04x} in state {self.state.value}")
        message_id = fields[8]
        self.window.consume(message_id, fields[2])
        grant = self.window.grant(fields[4], exc.status, fields[5], fields[2])
        # MS-SMB2 3.3.5.2: an unknown command is failed with STATUS_INVALID_PARAMETER.
        header = HEADER_STRUCT.pack(
            SMB2_PROTOCOL_ID, HEADER_SIZE, fields[2], exc.status, fields[4], grant,
            int(HeaderFlags.SERVER_TO_REDIR), 0, message_id, fields[9], fields[10], bytes(16),
        )
        return header + ErrorResponse().pack()

    @property
    def credits(self) -> int:
        """Credits the client holds: message ids granted and not yet used."""
        return self.window.held

    def _pack(self, replies: list[Reply]) -> bytes:
        out = bytearray()
        last = len(replies) - 1
        for i, r in enumerate(replies):
            flags = HeaderFlags.SERVER_TO_REDIR | (HeaderFlags.RELATED_OPERATIONS if r.related else 0)
            size = HEADER_SIZE + len(r.body)
            pad = 0 if i == last else -size % 8  # MS-SMB2 3.3.4.1.3: compounded responses are 8-aligned
            header = Smb2Header(
                Command(r.command), HeaderFlags(flags), r.message_id, r.session_id, r.tree_id, 0,
                r.credit_charge, r.credit, r.status, 0 if i == last else size + pad,
            )
            message = header.pack() + r.body + bytes(pad)
            signer = r.signer
            if signer is not None and signer.signing_key:
                # MS-SMB2 3.3.4.1.1: sign with the session's signing key.
                message = sign(message, signer.signing_key, signer.signing_algorithm)
            if r.after is not None:
                r.after(message)
            out += message
        return bytes(out)

    # -- NEGOTIATE and dispatch -----------------------------------------------------------------------

    def _smb1_negotiate(self, data: bytes) -> bytes:
        if self.state is not ConnState.INITIAL:
            # MS-SMB2 3.3.5.3: an SMB1 message after the first NEGOTIATE drops the connection.
            raise Disconnect(f"SMB1 message in state {self.state.value}")
        response, chosen = smb1_negotiate(self.ctx, self.negotiated, data)
        self.state = conn_next(self.state, ConnEvent.SMB1_DIALECT if chosen else ConnEvent.SMB1_WILDCARD)
        self.window.restart_after_smb1()
        return response

    def _dispatch(
        self, part: CompoundPart, frame: _Frame, sealed: bool
    ) -> Reply | session_setup.Paused | None:
        h = part.header
        index, previous = frame.index, frame.previous
        related = bool(h.flags & HeaderFlags.RELATED_OPERATIONS)
        session_id, tree_id = h.session_id, h.tree_id
        if related and previous is not None:
            # MS-SMB2 3.3.5.2.7.2: a related request uses the previous one's SessionId and TreeId.
            session_id, tree_id = previous
        if h.command is Command.CANCEL:
            return None  # MS-SMB2 3.3.5.16: CANCEL takes no MessageId from the window and gets no response
        reply = Reply(h.command, h.message_id, session_id, tree_id, credit_request=h.credit,
                      credit_charge=h.credit_charge, related=related, async_request=h.is_async)
        if h.command is Command.NEGOTIATE:
            if self.state is ConnState.NEGOTIATED:
                # MS-SMB2 3.3.5.4: a second NEGOTIATE on a connection drops it.
                raise Disconnect("NEGOTIATE on a negotiated connection")
        elif self.state is not ConnState.NEGOTIATED:
            # MS-SMB2 3.3.5.2: any request before a NEGOTIATE completed drops the connection.
            raise Disconnect(f"{h.command.name} in state {self.state.value}")
        if int(h.flags) & ~int(self._allowed_flags(h.command)):
            # Samba smbd_smb2_request_dispatch: a flag not defined for this request and dialect (MS-SMB2
            # 2.2.1.2; SERVER_TO_REDIR in a request among them) -> STATUS_INVALID_PARAMETER.
            return reply.fail(NtStatus.STATUS_INVALID_PARAMETER)
        if related and index == 0:
            # MS-SMB2 3.3.5.2.7.2: the first request of a chain cannot be related (a NEGOTIATE included).
            return reply.fail(NtStatus.STATUS_INVALID_PARAMETER)
        if h.command is Command.NEGOTIATE:
            if negotiate(self.ctx, self.negotiated, part, reply, self.hostile):
                self.state = conn_next(self.state, ConnEvent.NEGOTIATE)
                self.window.multi_credit = self.negotiated.dialect != Dialect.SMB2_0_2
            return reply
        self.state = conn_next(self.state, ConnEvent.REQUEST)
        session = self.sessions.get(session_id) if session_id else None
        refused = self._check_signature(part, reply, session, session_id, sealed)
        if refused is not None:
            return reply.fail(refused)
        try:
            if h.command is Command.SESSION_SETUP:
                return session_setup.session_setup(self, part, reply, session)
            if h.command is Command.ECHO:
                EchoRequest.unpack(part.body)
                reply.body = EchoResponse().pack()
                return reply
            if session is not None and session.state is SessionState.IN_PROGRESS:
                # MS-SMB2 3.3.5.2.9 leaves a session still being set up unnamed; smbd answers a command that
                # needs a session with STATUS_INVALID_HANDLE there (smb2srv_session_lookup).
                return reply.fail(NtStatus.STATUS_INVALID_HANDLE)
            if session is None or session.state is not SessionState.VALID:
                # MS-SMB2 3.3.5.2.9: a command that needs a session, with none valid.
                return reply.fail(NtStatus.STATUS_USER_SESSION_DELETED)
            if h.command is Command.LOGOFF:
                return session_setup.logoff(part, reply, session)
            if h.command is Command.TREE_CONNECT:
                return tree_connect(self.ctx, part, reply, session)
            if tree_id not in session.trees:
                # MS-SMB2 3.3.5.2.11: a command that needs a tree connect, with an unknown TreeId.
                return reply.fail(NtStatus.STATUS_NETWORK_NAME_DELETED)
            if h.command is Command.TREE_DISCONNECT:
                return tree_disconnect(part, reply, session, tree_id)
            if h.command is Command.IOCTL:
                return validate_negotiate_info(self.ctx, self.negotiated, part, reply, self.hostile)
            # The harness serves authentication only: every file operation is not supported.
            return reply.fail(NtStatus.STATUS_NOT_SUPPORTED)
        except MalformedMessage as exc:
            # MS-SMB2 3.3.5.2.6: a malformed body is answered with the parser's status.
            return reply.fail(exc.status)

    def _allowed_flags(self, command: Command) -> HeaderFlags:
        """MS-SMB2 2.2.1.2, as Samba enforces it: PRIORITY on 3.1.1 (or on a NEGOTIATE that may reach it),
        REPLAY_OPERATION from 3.0 on, ASYNC_COMMAND only on a CANCEL."""
        allowed = HeaderFlags.RELATED_OPERATIONS | HeaderFlags.SIGNED | HeaderFlags.DFS_OPERATIONS
        dialect = self.negotiated.dialect
        if dialect == Dialect.SMB3_1_1 or (
            command is Command.NEGOTIATE and self.ctx.config.max_dialect >= Dialect.SMB3_1_1
        ):
            allowed |= HeaderFlags.PRIORITY_MASK
        if dialect >= Dialect.SMB3_0:
            allowed |= HeaderFlags.REPLAY_OPERATION
        return allowed

    @staticmethod
    def _check_signature(
        part: CompoundPart, reply: Reply, session: ServerSession | None, session_id: int, sealed: bool
    ) -> NtStatus | None:
        """MS-SMB2 3.3.5.2.4 / Samba smbd_smb2_request_dispatch: signatures before anything else; the status
        to fail the request with, or None (and `reply.signer` set when the response is to be signed)."""
        if sealed:
            return None  # Samba: an encrypted request is not signed, nor is its response (MS-SMB2 3.3.4.1.1)
        h = part.header
        if session is not None and session.encrypt_data:
            # MS-SMB2 3.3.5.2.9: a session with EncryptData takes only encrypted requests.
            return NtStatus.STATUS_ACCESS_DENIED
        signing_session = session is not None and session.signs
        if h.is_signed:
            if session is None:
                if h.command is Command.SESSION_SETUP and session_id:
                    return None
                return NtStatus.STATUS_USER_SESSION_DELETED
            if session.state is SessionState.IN_PROGRESS:
                # Samba smbd_smb2_request_dispatch: a signature on a session that has no key yet cannot be
                # checked, nor the error answering it signed: smbd drops the connection.
                raise Disconnect(f"signed {h.command.name} on session 0x{session.id:016x} still in progress")
            if signing_session:
                reply.signer = session
                if not verify(part.raw, session.signing_key, session.signing_algorithm):
                    return NtStatus.STATUS_ACCESS_DENIED
            elif h.command is not Command.SESSION_SETUP:
                return NtStatus.STATUS_ACCESS_DENIED
        elif signing_session and session is not None and session.signing_required:
            reply.signer = session
            if h.command is not Command.SESSION_SETUP:
                # Samba: an unsigned request on a session that requires signing -> ACCESS_DENIED.
                return NtStatus.STATUS_ACCESS_DENIED
        return None
