"""Sessions (MS-SMB2 3.3.1.8) and the server-wide session table (3.3.1.5 GlobalSessionTable) with the
budget of handshakes in progress: the state a SESSION_SETUP creates and a LOGOFF, a failure, a newer
session (PreviousSessionId) or a closed connection ends."""

from __future__ import annotations

from collections.abc import Callable

from smb2auth.ntlm.authority import Account
from smb2auth.ntlm.server import NtlmServer
from smb2auth.server._state import SessionEvent, SessionState, session_next
from smb2auth.smb2.crypto import PreauthIntegrity
from smb2auth.smb2.negotiate_contexts import SigningAlgorithm
from smb2auth.smb2.session import SessionFlags
from smb2auth.smb2.tree import ShareType
from smb2auth.spnego.context import SpnegoServer

__all__ = ["GlobalSessions", "Handshake", "ServerSession"]

_SESSION_ID_MASK = 0xFFFFFFFFFFFFFFFF


class GlobalSessions:
    """MS-SMB2 3.3.1.5: every session of the server by id (for PreviousSessionId and binding), and how many
    handshakes are in progress server-wide (the `max_pending_handshakes` budget)."""

    def __init__(self, rng: Callable[[int], bytes]) -> None:
        self.table: dict[int, ServerSession] = {}
        self.pending_handshakes = 0
        self._rng = rng

    def new_session_id(self) -> int:
        while True:
            value = int.from_bytes(self._rng(8), "little")
            # MS-SMB2 2.2.1.2: 0 and 0xFFFFFFFFFFFFFFFF are not session ids.
            if value not in (0, _SESSION_ID_MASK) and value not in self.table:
                return value


class Handshake:
    """One authentication exchange in progress (new session or re-authentication)."""

    __slots__ = ("ntlm", "spnego", "started")

    def __init__(self, ntlm: NtlmServer, started: float) -> None:
        self.ntlm = ntlm
        self.spnego = SpnegoServer(ntlm)
        self.started = started


class ServerSession:
    """MS-SMB2 3.3.1.8: a session, in the table of the connection that began it and in the global one."""

    __slots__ = (
        "account",
        "decryption_key",
        "encrypt_data",
        "encryption_key",
        "flags",
        "global_sessions",
        "handshake",
        "id",
        "next_tree_id",
        "owner",
        "preauth",
        "signing_algorithm",
        "signing_key",
        "signing_required",
        "state",
        "trees",
    )

    def __init__(
        self, session_id: int, owner: dict[int, ServerSession], global_sessions: GlobalSessions
    ) -> None:
        self.id = session_id
        self.owner = owner
        self.global_sessions = global_sessions
        self.state = SessionState.IN_PROGRESS
        self.handshake: Handshake | None = None
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
        owner[session_id] = self
        global_sessions.table[session_id] = self

    @property
    def signs(self) -> bool:
        return self.state is SessionState.VALID and bool(self.signing_key)

    @property
    def authenticating(self) -> bool:
        """A SESSION_SETUP exchange (first authentication or re-authentication) is under way."""
        return self.handshake is not None

    def begin_handshake(self, handshake: Handshake) -> None:
        """The one place a handshake is counted against the server-wide budget ..."""
        self.handshake = handshake
        self.global_sessions.pending_handshakes += 1

    def end_handshake(self) -> None:
        """... and the one place it is released (done, failed, or the session ended)."""
        if self.handshake is not None:
            self.handshake = None
            self.global_sessions.pending_handshakes -= 1

    def end(self, event: SessionEvent) -> None:
        """Log off, fail or close the session: out of its connection's table and the global one, and its
        pending handshake (if any) out of the server-wide count."""
        self.end_handshake()
        self.state = session_next(self.state, event)
        self.trees.clear()
        self.owner.pop(self.id, None)
        table = self.global_sessions.table
        if table.get(self.id) is self:
            del table[self.id]

    def __repr__(self) -> str:
        return f"ServerSession(id=0x{self.id:016x}, state={self.state.value}, flags={self.flags!r})"
