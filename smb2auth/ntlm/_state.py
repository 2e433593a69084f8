"""Everything that affects the NTLM client and server state machines lives here.

Rule 1: the state of a context is its enum value, moved only through these tables; FAIL leads to FAILED
from any state (`anywhere`). Rule 2, what a table cannot hold: the server keeps, while VALIDATING, the
ticket of the one ValidationNeeded it returned (`validation_done` with another ticket fails the context)
and the request it asked about; a context that is COMPLETE or FAILED takes no more tokens.
"""

from __future__ import annotations

import enum

from smb2auth._fsm import StateMachine


class ClientState(enum.Enum):
    INITIAL = "initial"
    NEGOTIATE_SENT = "negotiate sent"
    COMPLETE = "complete"
    FAILED = "failed"


class ClientEvent(enum.Enum):
    SEND_NEGOTIATE = "send NEGOTIATE"
    RECEIVE_CHALLENGE = "receive CHALLENGE"
    FAIL = "fail"


class ServerState(enum.Enum):
    INITIAL = "initial"
    CHALLENGE_SENT = "challenge sent"
    VALIDATING = "validating"
    COMPLETE = "complete"
    FAILED = "failed"


class ServerEvent(enum.Enum):
    RECEIVE_NEGOTIATE = "receive NEGOTIATE"
    RECEIVE_AUTHENTICATE = "receive AUTHENTICATE"
    VALIDATION_RESULT = "validation result"
    FAIL = "fail"


CLIENT_TRANSITIONS: dict[tuple[ClientState, ClientEvent], ClientState] = {
    (ClientState.INITIAL, ClientEvent.SEND_NEGOTIATE): ClientState.NEGOTIATE_SENT,
    (ClientState.NEGOTIATE_SENT, ClientEvent.RECEIVE_CHALLENGE): ClientState.COMPLETE,
}

SERVER_TRANSITIONS: dict[tuple[ServerState, ServerEvent], ServerState] = {
    (ServerState.INITIAL, ServerEvent.RECEIVE_NEGOTIATE): ServerState.CHALLENGE_SENT,
    (ServerState.CHALLENGE_SENT, ServerEvent.RECEIVE_AUTHENTICATE): ServerState.VALIDATING,
    (ServerState.VALIDATING, ServerEvent.VALIDATION_RESULT): ServerState.COMPLETE,
}


client_next = StateMachine(
    "NTLM client", CLIENT_TRANSITIONS, anywhere={ClientEvent.FAIL: ClientState.FAILED}
).next
server_next = StateMachine(
    "NTLM server", SERVER_TRANSITIONS, anywhere={ServerEvent.FAIL: ServerState.FAILED}
).next
