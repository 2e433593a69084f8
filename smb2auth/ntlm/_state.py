"""Everything that affects the NTLM client and server state machines lives here."""

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
    (ClientState.INITIAL, ClientEvent.FAIL): ClientState.FAILED,
    (ClientState.NEGOTIATE_SENT, ClientEvent.FAIL): ClientState.FAILED,
    (ClientState.FAILED, ClientEvent.FAIL): ClientState.FAILED,
}

SERVER_TRANSITIONS: dict[tuple[ServerState, ServerEvent], ServerState] = {
    (ServerState.INITIAL, ServerEvent.RECEIVE_NEGOTIATE): ServerState.CHALLENGE_SENT,
    (ServerState.CHALLENGE_SENT, ServerEvent.RECEIVE_AUTHENTICATE): ServerState.VALIDATING,
    (ServerState.VALIDATING, ServerEvent.VALIDATION_RESULT): ServerState.COMPLETE,
    (ServerState.INITIAL, ServerEvent.FAIL): ServerState.FAILED,
    (ServerState.CHALLENGE_SENT, ServerEvent.FAIL): ServerState.FAILED,
    (ServerState.VALIDATING, ServerEvent.FAIL): ServerState.FAILED,
    (ServerState.FAILED, ServerEvent.FAIL): ServerState.FAILED,
}


client_next = StateMachine("NTLM client", CLIENT_TRANSITIONS).next
server_next = StateMachine("NTLM server", SERVER_TRANSITIONS).next
