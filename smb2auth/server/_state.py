"""Everything that affects the SMB2 server's state machines lives here: the connection's and each session's
states, their events, one transition table each. A (state, event) pair not in a table is out of order."""

from __future__ import annotations

import enum

from smb2auth._fsm import StateMachine
from smb2auth.status import NtStatus


class ConnState(enum.Enum):
    INITIAL = "INITIAL"  # MS-SMB2 3.3.7.1: NegotiateDialect 0xFFFF, waiting for a NEGOTIATE
    WILDCARD = "WILDCARD"  # answered an SMB1 NEGOTIATE with 0x02FF; an SMB2 NEGOTIATE must follow
    NEGOTIATED = "NEGOTIATED"  # Connection.Dialect chosen; every other command may come
    CLOSED = "CLOSED"


class ConnEvent(enum.Enum):
    SMB1_WILDCARD = "SMB1 NEGOTIATE answered 0x02FF"
    SMB1_DIALECT = "SMB1 NEGOTIATE answered 0x0202"
    NEGOTIATE = "SMB2 NEGOTIATE"
    REQUEST = "request after NEGOTIATE"
    CLOSE = "disconnect"


CONN_TRANSITIONS: dict[tuple[ConnState, ConnEvent], ConnState] = {
    (ConnState.INITIAL, ConnEvent.SMB1_WILDCARD): ConnState.WILDCARD,
    (ConnState.INITIAL, ConnEvent.SMB1_DIALECT): ConnState.NEGOTIATED,
    (ConnState.INITIAL, ConnEvent.NEGOTIATE): ConnState.NEGOTIATED,
    (ConnState.WILDCARD, ConnEvent.NEGOTIATE): ConnState.NEGOTIATED,
    (ConnState.NEGOTIATED, ConnEvent.REQUEST): ConnState.NEGOTIATED,
}


class SessionState(enum.Enum):
    IN_PROGRESS = "IN_PROGRESS"  # MS-SMB2 3.3.1.8: authentication not finished
    VALID = "VALID"  # authenticated; a re-authentication may be under way
    EXPIRED = "EXPIRED"  # logged off, failed, or closed by a newer session (PreviousSessionId)


class SessionEvent(enum.Enum):
    CONTINUE = "SESSION_SETUP leg answered MORE_PROCESSING_REQUIRED"
    AUTHENTICATED = "authentication complete"
    FAIL = "authentication failed"
    LOGOFF = "logoff"


SESSION_TRANSITIONS: dict[tuple[SessionState, SessionEvent], SessionState] = {
    (SessionState.IN_PROGRESS, SessionEvent.CONTINUE): SessionState.IN_PROGRESS,
    (SessionState.IN_PROGRESS, SessionEvent.AUTHENTICATED): SessionState.VALID,
    (SessionState.IN_PROGRESS, SessionEvent.FAIL): SessionState.EXPIRED,
    (SessionState.IN_PROGRESS, SessionEvent.LOGOFF): SessionState.EXPIRED,
    (SessionState.VALID, SessionEvent.CONTINUE): SessionState.VALID,
    (SessionState.VALID, SessionEvent.AUTHENTICATED): SessionState.VALID,
    (SessionState.VALID, SessionEvent.FAIL): SessionState.EXPIRED,
    (SessionState.VALID, SessionEvent.LOGOFF): SessionState.EXPIRED,
    (SessionState.EXPIRED, SessionEvent.LOGOFF): SessionState.EXPIRED,
}


conn_next = StateMachine(
    "SMB2 connection", CONN_TRANSITIONS, anywhere={ConnEvent.CLOSE: ConnState.CLOSED}
).next
session_next = StateMachine(
    "SMB2 session", SESSION_TRANSITIONS, status=NtStatus.STATUS_USER_SESSION_DELETED
).next
