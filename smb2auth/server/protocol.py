"""The server side of one SMB2 connection (MS-SMB2 3.3), sans-IO: Direct TCP frames in, events out.

`Connection.receive_frame(payload)` returns what the transport must do, in order: frames to write (bytes),
login events to log and hand on (LoginEvent), or a `ValidationNeeded` — the frame's SESSION_SETUP waits for
the authority, the transport calls it and hands the answer to `validation_done(ticket, result)`, which
returns the rest. Nothing here awaits, logs, or reads a socket; clock and RNG come from the `ServerContext`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from smb2auth.errors import MalformedMessage, ProtocolStateError
from smb2auth.events import EventLog, LoginEvent, flag_names
from smb2auth.ntlm.authority import Account, ValidationResult
from smb2auth.ntlm.events import Failed, HandshakeEvent, Send, ValidationNeeded
from smb2auth.ntlm.messages import NegotiateFlags, unix_to_filetime
from smb2auth.ntlm.server import NtlmServer
from smb2auth.server._state import (
    ConnEvent,
    ConnState,
    SessionEvent,
    SessionState,
    conn_next,
    session_next,
)
from smb2auth.server.config import ServerConfig
from smb2auth.smb2 import policy
from smb2auth.smb2.crypto import (
    PreauthIntegrity,
    TransformHeader,
    decrypt,
    derive_session_keys,
    encrypt,
    nonce_size,
    sign,
    verify,
)
from smb2auth.smb2.framing import FrameReader
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
from smb2auth.smb2.ioctl import (
    FSCTL_VALIDATE_NEGOTIATE_INFO,
    IoctlFlags,
    IoctlRequest,
    IoctlResponse,
    ValidateNegotiateInfoRequest,
    ValidateNegotiateInfoResponse,
)
from smb2auth.smb2.negotiate import (
    Capabilities,
    Dialect,
    NegotiateRequest,
    NegotiateResponse,
    SecurityMode,
    Smb1NegotiateRequest,
    dialect_name,
)
from smb2auth.smb2.negotiate_contexts import Cipher, NegotiateContext, SigningAlgorithm
from smb2auth.smb2.session import (
    LogoffRequest,
    LogoffResponse,
    SessionFlags,
    SessionSetupFlags,
    SessionSetupRequest,
    SessionSetupResponse,
)
from smb2auth.smb2.simple import EchoRequest, EchoResponse, ErrorResponse
from smb2auth.smb2.tree import (
    ShareType,
    TreeConnectRequest,
    TreeConnectResponse,
    TreeDisconnectRequest,
    TreeDisconnectResponse,
)
from smb2auth.spnego._state import ServerState as SpnegoState
from smb2auth.spnego.context import SpnegoServer, server_initial_token
from smb2auth.status import NtStatus

__all__ = ["Connection", "ConnectionEvent", "ServerContext", "Session"]

_GENERIC_ALL = 0x001F01FF
_SESSION_ID_MASK = 0xFFFFFFFFFFFFFFFF


class ServerContext:
    """What every connection of one server shares: the configuration, the login events, the global session
    table (MS-SMB2 3.3.1.5 GlobalSessionTable, for PreviousSessionId) and the pending-handshake count."""

    def __init__(
        self,
        config: ServerConfig,
        events: EventLog | None = None,
        *,
        rng: Callable[[int], bytes] = os.urandom,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.events = events if events is not None else EventLog()
        self.rng = rng
        self.clock = clock
        self.monotonic = monotonic
        self.sessions: dict[int, Session] = {}
        self.pending_handshakes = 0
        self.initial_token = server_initial_token()
        self.ntlm_policy = config.ntlm_policy
        self.shares = {name.casefold(): name for name in config.shares}
        self.security_mode = SecurityMode.SIGNING_ENABLED | (
            SecurityMode.SIGNING_REQUIRED if config.signing_required else SecurityMode(0)
        )

    def new_session_id(self) -> int:
        while True:
            value = int.from_bytes(self.rng(8), "little")
            # MS-SMB2 2.2.1.2: 0 and 0xFFFFFFFFFFFFFFFF are not session ids.
            if value not in (0, _SESSION_ID_MASK) and value not in self.sessions:
                return value


class _Handshake:
    """One authentication exchange in progress (new session or re-authentication)."""

    __slots__ = ("ntlm", "spnego", "started")

    def __init__(self, ntlm: NtlmServer, started: float) -> None:
        self.ntlm = ntlm
        self.spnego = SpnegoServer(ntlm)
        self.started = started


class Session:
    """MS-SMB2 3.3.1.8: a session, owned by the connection that began it."""

    __slots__ = (
        "account",
        "connection",
        "decryption_key",
        "encrypt_data",
        "encryption_key",
        "flags",
        "handshake",
        "id",
        "next_tree_id",
        "preauth",
        "signing_algorithm",
        "signing_key",
        "signing_required",
        "state",
        "trees",
    )

    def __init__(self, session_id: int, connection: Connection) -> None:
        self.id = session_id
        self.connection = connection
        self.state = SessionState.IN_PROGRESS
        self.handshake: _Handshake | None = None
        self.preauth: PreauthIntegrity | None = None
        self.signing_key = b""
        self.signing_algorithm: int = SigningAlgorithm.AES_CMAC
        self.signing_required = False
        self.encrypt_data = False
        self.encryption_key = b""  # server -> client (what the client decrypts with)
        self.decryption_key = b""  # client -> server
        self.flags = SessionFlags(0)
        self.account: Account | None = None
        self.trees: dict[int, ShareType] = {}
        self.next_tree_id = 1

    @property
    def signs(self) -> bool:
        return self.state is SessionState.VALID and bool(self.signing_key)

    @property
    def authenticating(self) -> bool:
        """A SESSION_SETUP exchange (first authentication or re-authentication) is under way."""
        return self.handshake is not None

    def begin_handshake(self, handshake: _Handshake) -> None:
        """The one place a handshake is counted against the server-wide budget ..."""
        self.handshake = handshake
        self.connection.ctx.pending_handshakes += 1

    def end_handshake(self) -> None:
        """... and the one place it is released (done, failed, or the session ended)."""
        if self.handshake is not None:
            self.handshake = None
            self.connection.ctx.pending_handshakes -= 1

    def end(self, event: SessionEvent) -> None:
        """Log off, fail or close the session: out of its connection's table and the global one, and its
        pending handshake (if any) out of the server-wide count."""
        connection = self.connection
        ctx = connection.ctx
        self.end_handshake()
        self.state = session_next(self.state, event)
        self.trees.clear()
        connection.sessions.pop(self.id, None)
        if ctx.sessions.get(self.id) is self:
            del ctx.sessions[self.id]

    def __repr__(self) -> str:
        return f"Session(id=0x{self.id:016x}, state={self.state.value}, flags={self.flags!r})"


@dataclass(slots=True)
class _Reply:
    """One response message of a (possibly compound) response, before packing."""

    command: int
    message_id: int
    session_id: int
    tree_id: int
    credit: int
    credit_charge: int
    related: bool
    status: int = NtStatus.STATUS_SUCCESS
    body: bytes = b""
    signer: Session | None = None
    after: Callable[[bytes], None] | None = None

    def fail(self, status: int) -> _Reply:
        self.status = status
        self.body = ErrorResponse().pack()
        self.after = None
        return self


class _Disconnect(Exception):
    """The connection must be dropped without an answer."""


@dataclass(slots=True)
class _Frame:
    """One request frame (a compound chain) being answered: where it is, and the responses so far."""

    parts: list[CompoundPart]
    sealed: Session | None
    index: int = 0
    replies: list[_Reply] = field(default_factory=list)
    previous: tuple[int, int] | None = None

    def add(self, reply: _Reply | None) -> None:
        self.index += 1
        if reply is not None:
            self.previous = (reply.session_id, reply.tree_id)
            self.replies.append(reply)


@dataclass(slots=True)
class _Setup:
    """One SESSION_SETUP between its request and its response."""

    request: SessionSetupRequest
    reply: _Reply
    session: Session
    handshake: _Handshake
    first_auth: bool


@dataclass(slots=True)
class _Paused:
    """The frame whose SESSION_SETUP waits for the authority's answer to `ticket`."""

    frame: _Frame
    setup: _Setup
    ticket: int


ConnectionEvent = bytes | ValidationNeeded | LoginEvent
"""What the transport does, in order: write a frame, ask the authority, log and hand on a login event."""


class Connection:
    """One client connection: `feed(bytes)` splits Direct TCP frames, `handle_frame(frame)` answers one.

    After either, `closed` tells the transport to drop the connection (`close_reason` says why).
    """

    def __init__(self, ctx: ServerContext, peer: str = "") -> None:
        self.ctx = ctx
        self.peer = peer
        self.state = ConnState.INITIAL
        self.framer = FrameReader(ctx.config.max_message_size)
        self.dialect = 0
        self.client_guid = bytes(16)
        self.client_security_mode = SecurityMode(0)
        self.client_capabilities = Capabilities(0)
        self.client_dialects: tuple[int, ...] = ()
        self.server_capabilities = Capabilities(0)
        self.signing_algorithm: int = SigningAlgorithm.AES_CMAC
        self.cipher = 0  # MS-SMB2 3.3.1.7 Connection.CipherId; 0: no encryption on this connection
        self.preauth: PreauthIntegrity | None = None
        self.sessions: dict[int, Session] = {}
        # MS-SMB2 3.3.1.1: the CommandSequenceWindow, [low, high) minus the ids already used; starts as {0}.
        self._seq_low = 0
        self._seq_high = 1
        self._seq_used: set[int] = set()
        self.opened = ctx.monotonic()
        self.last_activity = self.opened
        self.close_reason = ""
        self._paused: _Paused | None = None
        self._events: list[ConnectionEvent] = []

    @property
    def closed(self) -> bool:
        return self.state is ConnState.CLOSED

    # -- transport side -------------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[bytes]:
        """The complete frames in `data`; framing garbage closes the connection (MS-SMB2 2.1)."""
        if self.closed:
            return []
        try:
            return self.framer.feed(data)
        except MalformedMessage as exc:
            self.close(f"framing: {exc}")
            return []

    def timed_out(self, now: float) -> str | None:
        """Why the connection has outlived a limit at monotonic time `now`, or None."""
        cfg = self.ctx.config
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
                reason_text = f"handshake abandoned: {reason}"
                events.append(self._login_event(session.id, hs.ntlm, abandoned, reason_text, SessionFlags(0)))
            self._expire(session, SessionEvent.LOGOFF)
        return events

    @property
    def awaiting_validation(self) -> bool:
        """A SESSION_SETUP waits for the authority: `validation_done` comes before the next frame."""
        return self._paused is not None

    # -- one frame ------------------------------------------------------------------------------------

    def receive_frame(self, data: bytes) -> list[ConnectionEvent]:
        """Answer one Direct TCP frame payload: frames to send, login events, or a ValidationNeeded last."""
        if self.closed:
            return []
        if self._paused is not None:
            raise ProtocolStateError("SMB2 connection: a frame arrived while a validation is pending")
        self.last_activity = self.ctx.monotonic()
        self._events = []
        try:
            if data[:4] == SMB1_PROTOCOL_ID:
                return [frame_payload(self._smb1_negotiate(data))]
            sealed: Session | None = None
            if data[:4] == TRANSFORM_PROTOCOL_ID:
                sealed, data = self._decrypt(data)
            if data[:4] != SMB2_PROTOCOL_ID:
                # MS-SMB2 3.3.5.2: not SMB2 (nor a transform we could decrypt): disconnect.
                raise _Disconnect(f"unsupported protocol id {data[:4].hex()}")
            try:
                parts = split_compound(data)
            except MalformedMessage as exc:
                return [frame_payload(self._raw_error(data, exc))]
            return self._run(_Frame(parts, sealed))
        except _Disconnect as exc:
            return self._disconnected(str(exc))

    def validation_done(self, ticket: int, result: ValidationResult) -> list[ConnectionEvent]:
        """The authority's answer to the ValidationNeeded this connection returned; the frame goes on."""
        paused = self._paused
        if paused is None:
            if self.closed:
                return []  # closed while the authority was consulted: nobody to answer
            raise ProtocolStateError("SMB2 connection: no validation is pending")
        if ticket != paused.ticket:
            raise ProtocolStateError(f"SMB2 connection: ticket {ticket}, but {paused.ticket} is pending")
        self._paused = None
        self.last_activity = self.ctx.monotonic()
        self._events = []
        try:
            event = paused.setup.handshake.spnego.validation_done(ticket, result)
            reply = self._session_setup_step(paused.setup, event)
            if reply is None:
                return self._events
            paused.frame.add(reply)
            return self._run(paused.frame)
        except _Disconnect as exc:
            return self._disconnected(str(exc))

    def _disconnected(self, reason: str) -> list[ConnectionEvent]:
        self.close(reason)
        return self._events

    def _run(self, frame: _Frame) -> list[ConnectionEvent]:
        """Dispatch the frame's requests from where it stopped; pack (and seal) the responses at its end."""
        sealed = frame.sealed
        while frame.index < len(frame.parts):
            part = frame.parts[frame.index]
            related = part.header.flags & HeaderFlags.RELATED_OPERATIONS
            if sealed is not None and not related and part.header.session_id != sealed.id:
                # MS-SMB2 3.3.5.2.1.1: the decrypted request must belong to the session that sealed it.
                raise _Disconnect(
                    f"encrypted by session 0x{sealed.id:016x} for session 0x{part.header.session_id:016x}"
                )
            reply = self._dispatch(part, frame, sealed is not None)
            if isinstance(reply, ValidationNeeded):
                return [*self._events, reply]
            frame.add(reply)
        events = self._events
        replies = frame.replies
        if not replies:
            return events
        if sealed is not None:
            for reply in replies:
                reply.signer = None  # MS-SMB2 3.3.4.1.1: an encrypted response is not signed
        packed = self._pack(replies)
        if sealed is not None:
            # MS-SMB2 3.3.4.1.4: the response to an encrypted request is encrypted.
            nonce = self.ctx.rng(nonce_size(self.cipher))
            packed = encrypt(packed, sealed.encryption_key, self.cipher, sealed.id, nonce)
        events.append(frame_payload(packed))
        return events

    def _decrypt(self, data: bytes) -> tuple[Session, bytes]:
        if not self.cipher:
            # MS-SMB2 3.3.5.2.1.1: a TRANSFORM_HEADER on a connection without encryption drops it.
            raise _Disconnect("encrypted message on a connection without encryption")
        try:
            header = TransformHeader.unpack(data)
        except MalformedMessage as exc:
            raise _Disconnect(f"TRANSFORM_HEADER: {exc}") from None
        session = self.sessions.get(header.session_id)
        if session is None or session.state is not SessionState.VALID or not session.decryption_key:
            # MS-SMB2 3.3.5.2.1.1: no such session on this connection -> disconnect.
            raise _Disconnect(f"encrypted message for unknown session 0x{header.session_id:016x}")
        try:
            _, plaintext = decrypt(data, session.decryption_key, self.cipher)
        except MalformedMessage as exc:
            # MS-SMB2 3.3.5.2.1.1: a message that does not decrypt drops the connection.
            raise _Disconnect(f"decryption failed: {exc}") from None
        return session, plaintext

    def _raw_error(self, data: bytes, exc: MalformedMessage) -> bytes:
        """An ERROR for a message whose header is well formed but whose command we do not know."""
        if len(data) < HEADER_SIZE:
            raise _Disconnect(f"short SMB2 header: {exc}")
        fields = list(HEADER_STRUCT.unpack_from(data))
        if fields[1] != HEADER_SIZE or fields[7] % 8 or (fields[7] and fields[7] < HEADER_SIZE):
            # MS-SMB2 3.3.5.2: a header that does not parse drops the connection.
            raise _Disconnect(f"malformed SMB2 header: {exc}")
        message_id = fields[8]
        self._consume(message_id, fields[2])
        grant = self._grant(fields[5])
        # MS-SMB2 3.3.5.2: an unknown command is failed with STATUS_INVALID_PARAMETER.
        header = HEADER_STRUCT.pack(
            SMB2_PROTOCOL_ID, HEADER_SIZE, fields[2], exc.status, fields[4], grant,
            int(HeaderFlags.SERVER_TO_REDIR), 0, message_id, fields[9], fields[10], bytes(16),
        )
        return header + ErrorResponse().pack()

    @property
    def credits(self) -> int:
        """Credits the client holds: message ids granted and not yet used."""
        return self._seq_high - self._seq_low - len(self._seq_used)

    def _consume(self, message_id: int, charge: int) -> None:
        count = max(1, charge)
        if message_id < self._seq_low or message_id + count > self._seq_high:
            # MS-SMB2 3.3.5.2.3: a MessageId outside the CommandSequenceWindow drops the connection.
            raise _Disconnect(f"MessageId {message_id} outside [{self._seq_low}, {self._seq_high})")
        ids = range(message_id, message_id + count)
        if any(i in self._seq_used for i in ids):
            # MS-SMB2 3.3.5.2.3: a MessageId used twice drops the connection.
            raise _Disconnect(f"MessageId {message_id} reused")
        self._seq_used.update(ids)
        while self._seq_low in self._seq_used:
            self._seq_used.remove(self._seq_low)
            self._seq_low += 1

    def _grant(self, requested: int) -> int:
        """MS-SMB2 3.3.1.2: grant what the request asks, up to max_credits held, and at least one when the
        client would otherwise hold none."""
        held = self.credits
        grant = min(max(1, requested), max(0, self.ctx.config.max_credits - held))
        if held + grant == 0:
            grant = 1
        self._seq_high += grant
        return grant

    def _pack(self, replies: list[_Reply]) -> bytes:
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

    # -- SMB1 multi-protocol NEGOTIATE ----------------------------------------------------------------

    def _smb1_negotiate(self, data: bytes) -> bytes:
        if self.state is not ConnState.INITIAL:
            # MS-SMB2 3.3.5.3: an SMB1 message after the first NEGOTIATE drops the connection.
            raise _Disconnect(f"SMB1 message in state {self.state.value}")
        try:
            request = Smb1NegotiateRequest.unpack(data)
        except MalformedMessage as exc:
            raise _Disconnect(f"SMB1: {exc}") from None
        dialect = policy.select_smb1_upgrade_dialect(request, self.ctx.config.dialects)
        if dialect is None:
            # MS-SMB2 3.3.5.3.1: no SMB2 dialect offered and we do not speak SMB1.
            raise _Disconnect("SMB1 NEGOTIATE offers no SMB2 dialect")
        if dialect == Dialect.SMB2_0_2:
            self.state = conn_next(self.state, ConnEvent.SMB1_DIALECT)
            self.dialect = Dialect.SMB2_0_2
            self.client_dialects = (Dialect.SMB2_0_2,)
            self.signing_algorithm = policy.signing_algorithm_for(Dialect.SMB2_0_2)
        else:
            self.state = conn_next(self.state, ConnEvent.SMB1_WILDCARD)
        # MS-SMB2 3.3.5.3.1: the SMB1 NEGOTIATE used MessageId 0; the SMB2 one that follows uses 1.
        self._seq_low, self._seq_high, self._seq_used = 1, 2, set()
        # MS-SMB2 3.3.5.3.1: the SMB2 NEGOTIATE response, MessageId 0, one credit.
        header = Smb2Header(Command.NEGOTIATE, HeaderFlags.SERVER_TO_REDIR, credit=1)
        body = NegotiateResponse(
            dialect, self.ctx.security_mode, self.ctx.config.server_guid, Capabilities(0),
            *(self.ctx.config.max_transact_size,) * 3, unix_to_filetime(self.ctx.clock()), 0,
            self.ctx.initial_token,
        )
        return header.pack() + body.pack()

    # -- dispatch -------------------------------------------------------------------------------------

    def _dispatch(self, part: CompoundPart, frame: _Frame, sealed: bool) -> _Reply | ValidationNeeded | None:
        h = part.header
        index, previous = frame.index, frame.previous
        related = bool(h.flags & HeaderFlags.RELATED_OPERATIONS)
        session_id, tree_id = h.session_id, h.tree_id
        if related and previous is not None:
            # MS-SMB2 3.3.5.2.7.2: a related request uses the previous one's SessionId and TreeId.
            session_id, tree_id = previous
        if h.command is Command.CANCEL:
            return None  # MS-SMB2 3.3.5.16: CANCEL takes no MessageId from the window and gets no response
        self._consume(h.message_id, h.credit_charge)
        reply = _Reply(h.command, h.message_id, session_id, tree_id, self._grant(h.credit), h.credit_charge,
                       related)
        if h.command is Command.NEGOTIATE:
            return self._negotiate(part, reply)
        if self.state is not ConnState.NEGOTIATED:
            # MS-SMB2 3.3.5.2: any request before a NEGOTIATE completed drops the connection.
            raise _Disconnect(f"{h.command.name} in state {self.state.value}")
        self.state = conn_next(self.state, ConnEvent.REQUEST)
        if h.is_response:
            # Samba smbd_smb2_request_validate: SERVER_TO_REDIR in a request is invalid.
            return reply.fail(NtStatus.STATUS_INVALID_PARAMETER)
        if related and index == 0:
            # MS-SMB2 3.3.5.2.7.2: the first request of a chain cannot be related.
            return reply.fail(NtStatus.STATUS_INVALID_PARAMETER)
        session = self.sessions.get(session_id) if session_id else None
        # MS-SMB2 3.3.5.2.4 / Samba smbd_smb2_request_dispatch: signatures before anything else.
        signing_session = session is not None and session.signs
        # Samba: an encrypted request is not signed, nor is its response (MS-SMB2 3.3.4.1.1).
        if not sealed and session is not None and session.encrypt_data:
            # MS-SMB2 3.3.5.2.9: a session with EncryptData takes only encrypted requests.
            return reply.fail(NtStatus.STATUS_ACCESS_DENIED)
        elif not sealed and h.is_signed:
            if session is None and not (h.command is Command.SESSION_SETUP and session_id):
                return reply.fail(NtStatus.STATUS_USER_SESSION_DELETED)
            if signing_session and session is not None:
                reply.signer = session
                if not verify(part.raw, session.signing_key, session.signing_algorithm):
                    return reply.fail(NtStatus.STATUS_ACCESS_DENIED)
            elif h.command is not Command.SESSION_SETUP:
                return reply.fail(NtStatus.STATUS_ACCESS_DENIED)
        elif not sealed and signing_session and session is not None and session.signing_required:
            reply.signer = session
            if h.command is not Command.SESSION_SETUP:
                # Samba: an unsigned request on a session that requires signing -> ACCESS_DENIED.
                return reply.fail(NtStatus.STATUS_ACCESS_DENIED)
        try:
            if h.command is Command.SESSION_SETUP:
                return self._session_setup(part, reply, session, frame)
            if h.command is Command.ECHO:
                EchoRequest.unpack(part.body)
                reply.body = EchoResponse().pack()
                return reply
            if session is None or session.state is not SessionState.VALID:
                # MS-SMB2 3.3.5.2.9: a command that needs a session, with none valid.
                return reply.fail(NtStatus.STATUS_USER_SESSION_DELETED)
            if h.command is Command.LOGOFF:
                return self._logoff(part, reply, session)
            if h.command is Command.TREE_CONNECT:
                return self._tree_connect(part, reply, session)
            if tree_id not in session.trees:
                # MS-SMB2 3.3.5.2.11: a command that needs a tree connect, with an unknown TreeId.
                return reply.fail(NtStatus.STATUS_NETWORK_NAME_DELETED)
            if h.command is Command.TREE_DISCONNECT:
                TreeDisconnectRequest.unpack(part.body)
                del session.trees[tree_id]
                reply.body = TreeDisconnectResponse().pack()
                return reply
            if h.command is Command.IOCTL:
                return self._ioctl(part, reply)
            # The harness serves authentication only: every file operation is not supported.
            return reply.fail(NtStatus.STATUS_NOT_SUPPORTED)
        except MalformedMessage as exc:
            # MS-SMB2 3.3.5.2.6: a malformed body is answered with the parser's status.
            return reply.fail(exc.status)

    # -- NEGOTIATE ------------------------------------------------------------------------------------

    def _negotiate(self, part: CompoundPart, reply: _Reply) -> _Reply:
        if self.state is ConnState.NEGOTIATED:
            # MS-SMB2 3.3.5.4: a second NEGOTIATE on a connection drops it.
            raise _Disconnect("NEGOTIATE on a negotiated connection")
        if part.header.is_signed:
            # MS-SMB2 3.3.5.2.4: a signed NEGOTIATE fails with STATUS_INVALID_PARAMETER.
            return reply.fail(NtStatus.STATUS_INVALID_PARAMETER)
        try:
            request = NegotiateRequest.unpack(part.body)
        except MalformedMessage as exc:
            return reply.fail(exc.status)
        cfg = self.ctx.config
        choice = policy.choose(request, cfg.dialects, cfg.ciphers)
        if isinstance(choice, policy.Refusal):
            return reply.fail(choice.status)
        dialect = choice.dialect
        contexts: tuple[NegotiateContext, ...] = ()
        if dialect == Dialect.SMB3_1_1:
            contexts = policy.response_contexts(request, choice, self.ctx.rng(policy.PREAUTH_SALT_SIZE))
        self.state = conn_next(self.state, ConnEvent.NEGOTIATE)
        self.dialect = dialect
        self.signing_algorithm = choice.signing_algorithm
        self.cipher = choice.cipher
        self.server_capabilities = policy.server_capabilities(choice)
        self.client_guid = request.client_guid
        self.client_security_mode = request.security_mode
        self.client_capabilities = request.capabilities
        self.client_dialects = request.dialects
        response = NegotiateResponse(
            dialect, self.ctx.security_mode, cfg.server_guid, self.server_capabilities,
            cfg.max_transact_size, cfg.max_transact_size, cfg.max_transact_size,
            unix_to_filetime(self.ctx.clock()), 0, self.ctx.initial_token, contexts,
        )
        reply.body = response.pack()
        if dialect == Dialect.SMB3_1_1:
            request_bytes = part.raw

            def chain(message: bytes) -> None:
                # MS-SMB2 3.3.5.4: the connection's preauth hash covers NEGOTIATE request and response.
                self.preauth = PreauthIntegrity().add(request_bytes).add(message)

            reply.after = chain
        return reply

    # -- SESSION_SETUP --------------------------------------------------------------------------------

    def _session_setup(
        self, part: CompoundPart, reply: _Reply, session: Session | None, frame: _Frame
    ) -> _Reply | ValidationNeeded:
        request = SessionSetupRequest.unpack(part.body)
        cfg = self.ctx.config
        session_id = reply.session_id
        if request.flags & SessionSetupFlags.BINDING:
            if session_id == 0:
                # Samba smbd_smb2_request_process_sesssetup: binding needs the session's id.
                return self._refuse(
                    reply, NtStatus.STATUS_INVALID_PARAMETER, "session binding without a SessionId"
                )
            if session_id not in self.ctx.sessions:
                # MS-SMB2 3.3.5.5.2: not in the GlobalSessionTable -> STATUS_USER_SESSION_DELETED.
                reason = "session binding to an unknown session"
                return self._refuse(reply, NtStatus.STATUS_USER_SESSION_DELETED, reason)
            # MS-SMB2 3.3.5.5: binding on 2.x, or without multichannel -> STATUS_REQUEST_NOT_ACCEPTED.
            return self._refuse(
                reply, NtStatus.STATUS_REQUEST_NOT_ACCEPTED, "session binding is not supported"
            )
        if session_id == 0:
            if len(self.sessions) >= cfg.max_sessions_per_connection:
                return self._refuse(
                    reply, NtStatus.STATUS_INSUFFICIENT_RESOURCES, "max_sessions_per_connection"
                )
            refusal = self._handshake_budget()
            if refusal:
                return self._refuse(reply, NtStatus.STATUS_INSUFFICIENT_RESOURCES, refusal)
            session = Session(self.ctx.new_session_id(), self)
            session.preauth = self.preauth
            self.sessions[session.id] = session
            self.ctx.sessions[session.id] = session
            reply.session_id = session.id
        elif session is None or session.state is SessionState.EXPIRED:
            # MS-SMB2 3.3.5.5: a SessionId not in this connection's session table.
            reason = f"session 0x{session_id:016x} is not on this connection"
            return self._refuse(reply, NtStatus.STATUS_USER_SESSION_DELETED, reason)
        hs = session.handshake
        if hs is None:
            refusal = self._handshake_budget()
            if refusal:
                return self._refuse(reply, NtStatus.STATUS_INSUFFICIENT_RESOURCES, refusal)
            ntlm = NtlmServer(cfg.authority, target=cfg.target, policy=self.ctx.ntlm_policy,
                              rng=self.ctx.rng, clock=self.ctx.clock)
            hs = _Handshake(ntlm, self.ctx.monotonic())
            session.begin_handshake(hs)
        setup = _Setup(request, reply, session, hs, session.state is SessionState.IN_PROGRESS)
        if setup.first_auth and session.preauth is not None:
            # MS-SMB2 3.3.5.5.1: each SESSION_SETUP request extends the session's preauth hash.
            session.preauth = session.preauth.add(part.raw)
        token = request.security_buffer
        if not token and hs.spnego.state is SpnegoState.START:
            # Samba gensec spnego: an empty first token is answered with the NegTokenInit2.
            event: HandshakeEvent = Send(self.ctx.initial_token)
        else:
            event = hs.spnego.receive(token)
        if isinstance(event, ValidationNeeded):
            self._paused = _Paused(frame, setup, event.ticket)
            return event
        reply_or_none = self._session_setup_step(setup, event)
        assert reply_or_none is not None
        return reply_or_none

    def _session_setup_step(self, setup: _Setup, event: HandshakeEvent) -> _Reply | None:
        """The SESSION_SETUP response for what the SPNEGO context returned (None: nobody left to answer)."""
        reply, session, hs = setup.reply, setup.session, setup.handshake
        if isinstance(event, ValidationNeeded):
            raise ProtocolStateError("SMB2 connection: a second validation for one SESSION_SETUP")
        if isinstance(event, Failed):
            error = event.error
            if isinstance(error, MalformedMessage):
                return self._login_failed(reply, session, error.status, f"malformed security token: {error}")
            # A token out of order (an AUTHENTICATE for a handshake begun elsewhere) is a failed logon with
            # the context's status: Samba gensec_spnego answers INVALID_PARAMETER.
            return self._login_failed(reply, session, error.status, error.reason)
        if session.state is SessionState.EXPIRED:
            # Closed while the authority was consulted (a newer session took over, or the connection went).
            return None if self.closed else reply.fail(NtStatus.STATUS_USER_SESSION_DELETED)
        if isinstance(event, Send):
            session.state = session_next(session.state, SessionEvent.CONTINUE)
            reply.status = NtStatus.STATUS_MORE_PROCESSING_REQUIRED
            reply.body = SessionSetupResponse(event.token).pack()
            if setup.first_auth and session.preauth is not None:

                def chain(message: bytes) -> None:
                    # MS-SMB2 3.3.5.5.1: ... and so does each MORE_PROCESSING_REQUIRED response.
                    if session.preauth is not None:
                        session.preauth = session.preauth.add(message)

                reply.after = chain
            return reply
        return self._login_done(setup.request, reply, session, hs, event.token)

    def _login_done(
        self, request: SessionSetupRequest, reply: _Reply, session: Session, hs: _Handshake, out: bytes | None
    ) -> _Reply:
        ntlm = hs.ntlm
        flags = SessionFlags(0)
        if ntlm.is_anonymous:
            flags |= SessionFlags.IS_NULL
        elif ntlm.is_guest:
            flags |= SessionFlags.IS_GUEST
        first_auth = session.state is SessionState.IN_PROGRESS
        if first_auth and self.ctx.config.encrypt and (flags or not self.cipher):
            # Samba "smb encrypt = required": a session that cannot encrypt is refused.
            reason = "encryption required, but not available to this session"
            return self._login_failed(reply, session, NtStatus.STATUS_ACCESS_DENIED, reason)
        session.end_handshake()
        if first_auth:
            session.flags = flags
            if not flags:
                key = hs.spnego.session_key
                chain = session.preauth if self.dialect == Dialect.SMB3_1_1 else None
                preauth = chain.value if chain is not None else None
                # MS-SMB2 3.3.5.5.3: derive the session's keys (3.1.1: over the preauth hash so far).
                keys = derive_session_keys(self.dialect, key, preauth, self.cipher or Cipher.AES_128_CCM)
                session.signing_key = keys.signing_key
                if self.cipher:
                    session.decryption_key = keys.client_to_server_key
                    session.encryption_key = keys.server_to_client_key
                if self.ctx.config.encrypt:
                    # MS-SMB2 3.3.5.5.3: EncryptData -> SMB2_SESSION_FLAG_ENCRYPT_DATA in the response.
                    session.encrypt_data = True
                    session.flags |= SessionFlags.ENCRYPT_DATA
                session.signing_algorithm = self.signing_algorithm
                # MS-SMB2 3.3.5.5.3: SigningRequired from the server's setting or the client's SecurityMode.
                session.signing_required = self.ctx.config.signing_required or bool(
                    request.security_mode & SecurityMode.SIGNING_REQUIRED
                )
            session.preauth = None
            if request.previous_session_id and request.previous_session_id != session.id:
                self._close_previous(request.previous_session_id, session.id, ntlm.account)
        session.account = ntlm.account
        session.state = session_next(session.state, SessionEvent.AUTHENTICATED)
        if session.signing_key:
            # Samba smbd_smb2_auth_generic_return: the final response is signed unless guest or anonymous.
            reply.signer = session
        reply.status = NtStatus.STATUS_SUCCESS
        reply.body = SessionSetupResponse(out or b"", session.flags).pack()
        signed = session.signing_required and bool(session.signing_key)
        self._emit(session.id, ntlm, NtStatus.STATUS_SUCCESS, "", session.flags, signed=signed)
        return reply

    def _handshake_budget(self) -> str:
        """Why a new handshake cannot start now, or "" when it can."""
        cfg = self.ctx.config
        if self.ctx.pending_handshakes >= cfg.max_pending_handshakes:
            return "max_pending_handshakes"
        if sum(1 for s in self.sessions.values() if s.authenticating) >= (
            cfg.max_pending_handshakes_per_connection
        ):
            # One connection cannot hold the server-wide handshake budget and lock every other client out.
            return "max_pending_handshakes_per_connection"
        return ""

    def _close_previous(self, previous_id: int, new_id: int, account: Account | None) -> None:
        previous = self.ctx.sessions.get(previous_id)
        if previous is None or account is None or previous.account is None:
            return
        same = (previous.account.username.casefold(), previous.account.domain.casefold()) == (
            account.username.casefold(),
            account.domain.casefold(),
        )
        if same and previous.state is SessionState.VALID:
            # MS-SMB2 3.3.5.5.3: PreviousSessionId of the same user -> that session is logged off.
            previous.end(SessionEvent.LOGOFF)

    def _login_failed(self, reply: _Reply, session: Session, status: int, reason: str) -> _Reply:
        """The handshake failed: a login event, the session gone, the request failed with `status`."""
        hs = session.handshake
        self._emit(session.id, hs.ntlm if hs is not None else None, status, reason, SessionFlags(0))
        self._expire(session, SessionEvent.FAIL)
        return reply.fail(status)

    def _expire(self, session: Session, event: SessionEvent) -> None:
        session.end(event)

    def _refuse(self, reply: _Reply, status: int, reason: str) -> _Reply:
        """A SESSION_SETUP refused before any authentication: still a login attempt, still an event."""
        self._emit(reply.session_id or None, None, status, reason, SessionFlags(0))
        return reply.fail(status)

    def _emit(
        self,
        session_id: int | None,
        ntlm: NtlmServer | None,
        status: int,
        reason: str,
        flags: SessionFlags,
        *,
        signed: bool = False,
    ) -> None:
        self._events.append(self._login_event(session_id, ntlm, status, reason, flags, signed=signed))

    def _login_event(
        self,
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
            client_address=self.peer,
            user=ntlm.user if ntlm else "",
            domain=ntlm.domain if ntlm else "",
            workstation=ntlm.workstation if ntlm else "",
            status=NtStatus.name_of(status),
            reason=reason,
            dialect=dialect_name(self.dialect),
            response_kind=kind.value if kind is not None else None,
            ntlm_flags=flag_names(NegotiateFlags, ntlm.negotiated_flags) if ntlm else (),
            session_flags=flag_names(SessionFlags, flags),
            session_id=session_id,
            guest=bool(flags & SessionFlags.IS_GUEST),
            anonymous=bool(flags & SessionFlags.IS_NULL),
            signed=signed,
            sid=account.sid if account is not None else None,
            groups=account.groups if account is not None else (),
            time=self.ctx.clock(),
        )

    # -- LOGOFF, TREE_CONNECT, IOCTL ------------------------------------------------------------------

    def _logoff(self, part: CompoundPart, reply: _Reply, session: Session) -> _Reply:
        LogoffRequest.unpack(part.body)
        if session.signs and (part.header.is_signed or session.signing_required):
            reply.signer = session  # MS-SMB2 3.3.5.6: signed with the key of the session it ends
        self._expire(session, SessionEvent.LOGOFF)
        reply.body = LogoffResponse().pack()
        return reply

    def _tree_connect(self, part: CompoundPart, reply: _Reply, session: Session) -> _Reply:
        request = TreeConnectRequest.unpack(part.body)
        path = request.path
        # Samba smbd_smb2_tree_connect: "\\server\share" names the share after the second backslash.
        if path.startswith("\\\\"):
            _, sep, share = path[2:].partition("\\")
            if not sep:
                share = ""
        else:
            share = path
        name = share.casefold()
        if name == "ipc$":
            kind = ShareType.PIPE
        elif name in self.ctx.shares:
            if session.flags & SessionFlags.IS_NULL:
                # Samba: an anonymous session reaches only IPC$ unless the share allows guests.
                return reply.fail(NtStatus.STATUS_ACCESS_DENIED)
            kind = ShareType.DISK
        else:
            # MS-SMB2 3.3.5.7: an unknown share -> STATUS_BAD_NETWORK_NAME.
            return reply.fail(NtStatus.STATUS_BAD_NETWORK_NAME)
        if len(session.trees) >= self.ctx.config.max_trees_per_session:
            return reply.fail(NtStatus.STATUS_INSUFFICIENT_RESOURCES)
        tree_id = session.next_tree_id
        session.next_tree_id = tree_id % 0xFFFFFFFE + 1
        session.trees[tree_id] = kind
        reply.tree_id = tree_id
        reply.body = TreeConnectResponse(kind, maximal_access=_GENERIC_ALL).pack()
        return reply

    def _ioctl(self, part: CompoundPart, reply: _Reply) -> _Reply:
        # MS-SMB2 3.3.5.15: StructureSize and buffer bounds first (STATUS_INVALID_PARAMETER, via the caller).
        request = IoctlRequest.unpack(part.body)
        if request.ctl_code != FSCTL_VALIDATE_NEGOTIATE_INFO or request.flags != IoctlFlags.IS_FSCTL:
            # The harness has no files or pipes: other IOCTLs are not supported.
            return reply.fail(NtStatus.STATUS_NOT_SUPPORTED)
        info = ValidateNegotiateInfoRequest.unpack(request.input)
        if request.max_output_response < ValidateNegotiateInfoResponse.SIZE:
            # MS-SMB2 3.3.5.15.12: output buffer too small.
            return reply.fail(NtStatus.STATUS_INVALID_PARAMETER)
        common = [d for d in self.ctx.config.dialects if d in info.dialects]
        if (
            info.capabilities != self.client_capabilities
            or info.client_guid != self.client_guid
            or info.security_mode != self.client_security_mode
            or not common
            or common[0] != self.dialect
        ):
            # MS-SMB2 3.3.5.15.12: anything differing from the NEGOTIATE drops the connection.
            raise _Disconnect("FSCTL_VALIDATE_NEGOTIATE_INFO does not match the NEGOTIATE")
        output = ValidateNegotiateInfoResponse(
            Capabilities(self.server_capabilities),
            self.ctx.config.server_guid,
            SecurityMode(self.ctx.security_mode),
            self.dialect,
        )
        reply.body = IoctlResponse(request.ctl_code, output.pack(), request.file_id).pack()
        return reply
