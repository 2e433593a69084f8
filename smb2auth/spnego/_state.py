"""Everything that affects the SPNEGO state machines lives here: the states, the events, one table
per party. A (state, event) pair not in the table is a message out of order."""

from __future__ import annotations

import enum

from smb2auth._fsm import StateMachine


class ServerState(enum.Enum):
    START = "START"  # waiting for the client's NegTokenInit (or a bare NTLM message)
    NEGOTIATING = "NEGOTIATING"  # mechanism chosen; waiting for NegTokenResp
    RAW = "RAW"  # the client spoke bare NTLMSSP: tokens pass through unwrapped
    MIC_CHECK = "MIC_CHECK"  # mechanism complete, our mechListMIC sent; waiting for the client's
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"


class ClientState(enum.Enum):
    START = "START"  # nothing sent; may hold the server's NegTokenInit2 hint
    INIT_SENT = "INIT_SENT"  # NegTokenInit sent; waiting for the first NegTokenResp
    NEGOTIATING = "NEGOTIATING"  # waiting for further NegTokenResp
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"


class Event(enum.Enum):
    RECV_INIT = "NegTokenInit received"
    RECV_RAW = "bare mechanism token received"
    RECV_RESP = "NegTokenResp received"
    SEND_INIT = "NegTokenInit sent"
    CONTINUE = "exchange continues"
    MIC_OWED = "mechListMIC owed by the client"
    DONE = "exchange complete"
    FAIL = "failure"


SERVER_TRANSITIONS: dict[tuple[ServerState, Event], ServerState] = {
    (ServerState.START, Event.RECV_INIT): ServerState.NEGOTIATING,
    (ServerState.START, Event.RECV_RAW): ServerState.RAW,
    (ServerState.NEGOTIATING, Event.RECV_RESP): ServerState.NEGOTIATING,
    (ServerState.NEGOTIATING, Event.CONTINUE): ServerState.NEGOTIATING,
    (ServerState.NEGOTIATING, Event.DONE): ServerState.COMPLETE,
    (ServerState.NEGOTIATING, Event.MIC_OWED): ServerState.MIC_CHECK,
    (ServerState.MIC_CHECK, Event.RECV_RESP): ServerState.MIC_CHECK,
    (ServerState.MIC_CHECK, Event.DONE): ServerState.COMPLETE,
    (ServerState.RAW, Event.RECV_RAW): ServerState.RAW,
    (ServerState.RAW, Event.CONTINUE): ServerState.RAW,
    (ServerState.RAW, Event.DONE): ServerState.COMPLETE,
}

CLIENT_TRANSITIONS: dict[tuple[ClientState, Event], ClientState] = {
    (ClientState.START, Event.SEND_INIT): ClientState.INIT_SENT,
    (ClientState.INIT_SENT, Event.RECV_RESP): ClientState.NEGOTIATING,
    (ClientState.NEGOTIATING, Event.RECV_RESP): ClientState.NEGOTIATING,
    (ClientState.NEGOTIATING, Event.CONTINUE): ClientState.NEGOTIATING,
    (ClientState.NEGOTIATING, Event.DONE): ClientState.COMPLETE,
}

advance_server = StateMachine(
    "SPNEGO server", SERVER_TRANSITIONS, anywhere={Event.FAIL: ServerState.FAILED}
).next
advance_client = StateMachine(
    "SPNEGO client", CLIENT_TRANSITIONS, anywhere={Event.FAIL: ClientState.FAILED}
).next
