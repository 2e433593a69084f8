"""Everything that affects the SMB2 client connection's state machine lives here: the states, the events,
one table. A (state, event) pair not in the table is a message out of order."""

from __future__ import annotations

import enum

from smb2auth._fsm import StateMachine


class ClientState(enum.Enum):
    IDLE = "IDLE"  # nothing sent
    NEGOTIATE_SENT = "NEGOTIATE_SENT"  # waiting for the NEGOTIATE response
    SESSION_SETUP = "SESSION_SETUP"  # a SESSION_SETUP request is outstanding
    ESTABLISHED = "ESTABLISHED"  # session set up: signed/encrypted requests may flow
    LOGOFF_SENT = "LOGOFF_SENT"  # waiting for the LOGOFF response
    CLOSED = "CLOSED"  # logged off or closed; nothing more
    FAILED = "FAILED"


class ClientEvent(enum.Enum):
    SEND_NEGOTIATE = "NEGOTIATE sent"
    RECV_NEGOTIATE = "NEGOTIATE response received"
    RECV_MORE_PROCESSING = "SESSION_SETUP STATUS_MORE_PROCESSING_REQUIRED received"
    RECV_SESSION_SUCCESS = "SESSION_SETUP success received"
    SEND_REQUEST = "request sent"
    SEND_LOGOFF = "LOGOFF sent"
    RECV_LOGOFF = "LOGOFF response received"
    CLOSE = "connection closed"
    FAIL = "failure"


TRANSITIONS: dict[tuple[ClientState, ClientEvent], ClientState] = {
    (ClientState.IDLE, ClientEvent.SEND_NEGOTIATE): ClientState.NEGOTIATE_SENT,
    (ClientState.NEGOTIATE_SENT, ClientEvent.RECV_NEGOTIATE): ClientState.SESSION_SETUP,
    (ClientState.SESSION_SETUP, ClientEvent.RECV_MORE_PROCESSING): ClientState.SESSION_SETUP,
    (ClientState.SESSION_SETUP, ClientEvent.RECV_SESSION_SUCCESS): ClientState.ESTABLISHED,
    (ClientState.ESTABLISHED, ClientEvent.SEND_REQUEST): ClientState.ESTABLISHED,
    (ClientState.ESTABLISHED, ClientEvent.SEND_LOGOFF): ClientState.LOGOFF_SENT,
    (ClientState.LOGOFF_SENT, ClientEvent.RECV_LOGOFF): ClientState.CLOSED,
}


advance = StateMachine(
    "SMB2 client",
    TRANSITIONS,
    anywhere={ClientEvent.FAIL: ClientState.FAILED, ClientEvent.CLOSE: ClientState.CLOSED},
).next
