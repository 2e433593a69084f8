"""Everything that affects the per-connection HTTP authentication state machine lives here.

NTLM and Negotiate over HTTP authenticate the TCP connection (MS-NTHT 2): one state per connection.
START, an initial token (NTLM NEGOTIATE or SPNEGO NegTokenInit), always restarts the handshake, whatever
state the connection is in.

What does not fit the table: while the authority is consulted for a token (or for a Basic credential's
in-process handshake) the connection holds that one pending validation, in the state it was in; a second
header before `validation_done` is a ProtocolStateError, since a transport answers one request at a time
on a connection.
"""

from __future__ import annotations

import enum

from smb2auth._fsm import StateMachine


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


TRANSITIONS: dict[tuple[ConnState, ConnEvent], ConnState] = {
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

MACHINE = StateMachine("HTTP auth", TRANSITIONS)
conn_next = MACHINE.next
