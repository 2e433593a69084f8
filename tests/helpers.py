"""Our real SMB2 client core and our real server Connection joined in memory, as h11's tests/helpers.py
`ConnectionPair` joins its two `Connection`s: every byte either way goes through the real code of both sides.

A test that needs a misbehaving peer says so with a hook on what crosses (`to_client` for each
server-to-client message, `to_server` for each client-to-server one): strip or break a signature, change a
field and re-sign it with the session's key, put an interim STATUS_PENDING in front. The misbehaviour lives
in the hook, never in a second implementation of the other side.

    pair = ConnectionPair(server_context(shares=("share",)), dialects=(Dialect.SMB3_1_1,))
    pair.establish()
    pair.to_client = edit(strip_signature, Command.ECHO)
    pair.transact(pair.client.echo())      # -> SigningError: the hook took the real signature off
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from smb2auth.authority.local import LocalAuthority
from smb2auth.client.protocol import ClientConnection, Response
from smb2auth.ntlm.server import TargetInfo
from smb2auth.server import Connection, ServerConfig, ServerContext
from smb2auth.server.inline import answer_frame
from smb2auth.smb2.crypto import (
    PreauthIntegrity,
    SessionKeys,
    TransformHeader,
    decrypt,
    derive_session_keys,
    sign,
)
from smb2auth.smb2.header import (
    HEADER_SIZE,
    SIGNATURE_OFFSET,
    SIGNATURE_SIZE,
    TRANSFORM_PROTOCOL_ID,
    Command,
    HeaderFlags,
    Smb2Header,
)
from smb2auth.smb2.negotiate import Dialect
from smb2auth.smb2.negotiate_contexts import Cipher
from smb2auth.smb2.simple import ErrorResponse
from smb2auth.spnego.context import SpnegoServer
from smb2auth.status import NtStatus

USER, PASSWORD, DOMAIN = "alice", "Passw0rd!", "TESTGRP"
SERVER_NAME = "harness"
SERVER_GUID = bytes(range(16))
CLOCK = 1_700_000_000.0

Tamper = Callable[[bytes], Sequence[bytes]]
"""One message as one side sent it -> the messages that reach the other side instead (none, one, several)."""


def backend_in_use(name: str, current: Callable[[], str], use: Callable[[str], None]) -> Iterator[str]:
    """For a fixture parametrized over a primitive's libraries: `name` in use while the test runs."""
    previous = current()
    use(name)
    yield name
    use(previous)


def counter_rng() -> Callable[[int], bytes]:
    """A deterministic stand-in for os.urandom: successive counters."""
    counter = itertools.count()

    def rng(n: int) -> bytes:
        return bytes((next(counter) + i) & 0xFF for i in range(n))

    return rng


def server_context(**config: object) -> ServerContext:
    """A ServerContext over a LocalAuthority holding USER/PASSWORD in DOMAIN, with deterministic randomness,
    clock and server GUID (its monotonic clock stands still: nothing times out unless a test moves it).
    `config` goes to ServerConfig; `authority=` replaces the LocalAuthority."""
    authority = config.pop("authority", None)
    if authority is None:
        local = LocalAuthority(DOMAIN)
        local.add_user(USER, PASSWORD)
        authority = local
    config.setdefault("server_guid", SERVER_GUID)
    config.setdefault("target", TargetInfo(nb_domain=DOMAIN))
    cfg = ServerConfig(authority=authority, **config)  # type: ignore[arg-type]
    counter = iter(range(1, 1 << 30))
    ticks = itertools.count()
    # A clock that moves, a millisecond a reading, as a server's does: no two CHALLENGEs share a timestamp.
    return ServerContext(
        cfg,
        rng=lambda n: next(counter).to_bytes(n, "little"),
        clock=lambda: CLOCK + next(ticks) / 1000,
        monotonic=lambda: 0.0,
    )


class ServerSession(Protocol):
    """What the tests read of the server's session (smb2auth.server's ServerSession, MS-SMB2 3.3.1.8)."""

    id: int
    signing_key: bytes
    signing_algorithm: int
    encryption_key: bytes
    decryption_key: bytes
    trees: dict[int, object]


@dataclass(frozen=True)
class Crossed:
    """One client request as the server received it: its header (decrypted when it came sealed), the whole
    message, whether it was signed, whether it came in a TRANSFORM_HEADER."""

    header: Smb2Header
    raw: bytes = field(repr=False)
    signed: bool
    encrypted: bool

    @property
    def body(self) -> bytes:
        return self.raw[HEADER_SIZE:]


class ConnectionPair:
    """A real `ClientConnection` and a real server `Connection` on one in-memory connection.

    `client_options` go to ClientConnection (deterministic rng and clock, USER/PASSWORD in DOMAIN and
    SERVER_NAME unless given). `requests` holds every client message as the server got it; `answered` every
    message the server sent, before `to_client`; `received` what reached the client after it.
    """

    def __init__(
        self,
        ctx: ServerContext | None = None,
        *,
        to_client: Tamper | None = None,
        to_server: Tamper | None = None,
        peer: str = "127.0.0.1:40000",
        **client_options: object,
    ) -> None:
        self.ctx = ctx if ctx is not None else server_context(shares=("share",))
        self.server = Connection(self.ctx, peer)
        options: dict[str, object] = {
            "username": USER,
            "password": PASSWORD,
            "domain": DOMAIN,
            "server_name": SERVER_NAME,
            "rng": counter_rng(),
            "clock": lambda: CLOCK,
        }
        options.update(client_options)
        self.client = ClientConnection(**options)  # type: ignore[arg-type]
        self.to_client = to_client
        self.to_server = to_server
        self.requests: list[Crossed] = []
        self.answered: list[bytes] = []
        self.received: list[bytes] = []
        self._handshakes: dict[int, SpnegoServer] = {}

    # --- moving bytes -------------------------------------------------------------------------------------

    def answers(self, data: bytes) -> list[bytes]:
        """Carry the client's frame(s) `data` to the server; the messages that come back through `to_client`,
        in order, not yet given to the client."""
        out: list[bytes] = []
        for sent in self.server.feed(data):
            for payload in self.to_server(sent) if self.to_server is not None else (sent,):
                self.requests.append(self._crossed(payload))
                for reply in answer_frame(self.server, payload):
                    assert int.from_bytes(reply[:4], "big") == len(reply) - 4
                    self._watch_handshakes()
                    message = reply[4:]
                    self.answered.append(message)
                    out.extend(self.to_client(message) if self.to_client is not None else (message,))
        self.received.extend(out)
        return out

    def exchange(self, data: bytes) -> list[Response | None]:
        """`answers`, each handed to the client's `receive` (whose errors propagate)."""
        return [self.client.receive(message) for message in self.answers(data)]

    def transact(self, data: bytes) -> Response:
        """One request to its final response: interim responses first (None), the final one last."""
        results = self.exchange(data)
        assert results, "the server answered nothing"
        assert all(r is None for r in results[:-1]), results
        final = results[-1]
        assert final is not None
        return final

    def establish(self) -> None:
        """NEGOTIATE and every SESSION_SETUP leg, until the client's session is established."""
        out = self.client.negotiate()
        while not self.client.established:
            assert out, "the client has nothing to send"
            self.exchange(out)
            out = self.client.data_to_send()

    def tree_connect(self, share: str = "share") -> Response:
        """TREE_CONNECT, then the FSCTL_VALIDATE_NEGOTIATE_INFO the client queues after it (3.0, 3.0.2)."""
        tree = self.transact(self.client.tree_connect(share))
        out = self.client.data_to_send()
        if out:
            validate = self.transact(out)
            assert validate.header.command is Command.IOCTL
        return tree

    # --- the server's side, read off the server ---------------------------------------------------------

    @property
    def session(self) -> ServerSession:
        """The server's session for the client's SessionId."""
        session: ServerSession = self.server.sessions[self.client.session_id]
        return session

    def resign(self, message: bytes) -> bytes:
        """`message` signed again with the server session's signing key (after a hook changed it)."""
        session = self.session
        return sign(message, session.signing_key, session.signing_algorithm)

    def server_keys(self) -> SessionKeys:
        """The session keys from the GSS session key the server's SPNEGO context settled and, for 3.1.1, the
        preauth hash of the NEGOTIATE and SESSION_SETUP messages as the server received and sent them
        (MS-SMB2 3.3.5.4, 3.3.5.5.1, 3.3.5.5.3)."""
        dialect = self.server.dialect
        preauth = None
        if dialect == Dialect.SMB3_1_1:
            chain = PreauthIntegrity()
            sent = iter(self.answered)
            for request in self.requests:
                if request.header.command not in (Command.NEGOTIATE, Command.SESSION_SETUP):
                    break
                chain = chain.add(request.raw)
                answer = next(sent)
                if Smb2Header.unpack(answer).status == NtStatus.STATUS_SUCCESS and request.header.command is (
                    Command.SESSION_SETUP
                ):
                    break
                chain = chain.add(answer)
            preauth = chain.value
        gss_key = self._handshakes[self.client.session_id].session_key
        cipher = self.server.negotiated.cipher or Cipher.AES_128_CCM
        return derive_session_keys(dialect, gss_key, preauth, cipher)

    def _crossed(self, payload: bytes) -> Crossed:
        if payload[:4] != TRANSFORM_PROTOCOL_ID:
            header = Smb2Header.unpack(payload)
            return Crossed(header, payload, header.is_signed, False)
        session: ServerSession = self.server.sessions[TransformHeader.unpack(payload).session_id]
        _, plain = decrypt(payload, session.decryption_key, self.server.negotiated.cipher)
        header = Smb2Header.unpack(plain)
        return Crossed(header, plain, header.is_signed, True)

    def _watch_handshakes(self) -> None:
        # The server forgets its SPNEGO context when the handshake ends; keep it to read its session key.
        for session_id, session in self.server.sessions.items():
            if session.handshake is not None:
                self._handshakes[session_id] = session.handshake.spnego


# --- hooks ------------------------------------------------------------------------------------------------


def edit(change: Callable[[bytes], bytes], *commands: Command) -> Tamper:
    """A hook applying `change` to the plain (unsealed) messages of `commands` (of every command when none is
    named); the rest pass untouched."""

    def hook(message: bytes) -> Sequence[bytes]:
        if message[:4] == TRANSFORM_PROTOCOL_ID:
            return (message,)
        if commands and Smb2Header.unpack(message).command not in commands:
            return (message,)
        return (change(message),)

    return hook


def strip_signature(message: bytes) -> bytes:
    """The message as if never signed: SMB2_FLAGS_SIGNED cleared, the signature zeroed."""
    header = Smb2Header.unpack(message)
    flags = HeaderFlags(header.flags & ~HeaderFlags.SIGNED)
    return (
        message[:16]
        + int(flags).to_bytes(4, "little")
        + message[20:SIGNATURE_OFFSET]
        + bytes(SIGNATURE_SIZE)
        + message[SIGNATURE_OFFSET + SIGNATURE_SIZE :]
    )


def break_signature(message: bytes) -> bytes:
    """The message with every bit of its signature flipped (SMB2_FLAGS_SIGNED kept)."""
    if not Smb2Header.unpack(message).is_signed:
        return message
    end = SIGNATURE_OFFSET + SIGNATURE_SIZE
    return message[:SIGNATURE_OFFSET] + bytes(b ^ 0xFF for b in message[SIGNATURE_OFFSET:end]) + message[end:]


def with_session_id(message: bytes, session_id: int) -> bytes:
    """The message naming another SessionId (its signature no longer verifies)."""
    return message[:40] + session_id.to_bytes(8, "little") + message[48:]


def interim_pending(message: bytes, async_id: int = 99) -> bytes:
    """MS-SMB2 3.3.4.2: the interim (async, STATUS_PENDING) response a server may send before `message`."""
    header = Smb2Header.unpack(message)
    interim = Smb2Header(
        header.command,
        HeaderFlags.SERVER_TO_REDIR | HeaderFlags.ASYNC_COMMAND,
        header.message_id,
        header.session_id,
        async_id=async_id,
        status=NtStatus.STATUS_PENDING,
    )
    return interim.pack() + ErrorResponse().pack()


def pending_first(*commands: Command) -> Tamper:
    """A hook putting an interim STATUS_PENDING in front of every plain response to `commands`."""

    def hook(message: bytes) -> Sequence[bytes]:
        if message[:4] == TRANSFORM_PROTOCOL_ID or Smb2Header.unpack(message).command not in commands:
            return (message,)
        return (interim_pending(message), message)

    return hook
