"""Every (state, event) pair of every state table (as h2's test_state_machines.py), and the real contexts
driven by hypothesis through arbitrary sequences of inputs: each step moves along an edge of its table, and
the event returned agrees with the state reached."""

from __future__ import annotations

import importlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smb2auth._fsm import MACHINES, StateMachine
from smb2auth.authority.local import LocalAuthority
from smb2auth.errors import ProtocolStateError
from smb2auth.ntlm._state import SERVER_TRANSITIONS as NTLM_SERVER_TRANSITIONS
from smb2auth.ntlm._state import ServerState as NtlmState
from smb2auth.ntlm.authority import ValidationResult
from smb2auth.ntlm.client import NtlmClient
from smb2auth.ntlm.events import Complete, Failed, Send, ValidationNeeded
from smb2auth.ntlm.server import NtlmServer
from smb2auth.spnego._state import SERVER_TRANSITIONS as SPNEGO_SERVER_TRANSITIONS
from smb2auth.spnego._state import ServerState as SpnegoState
from smb2auth.spnego.context import SpnegoClient, SpnegoServer
from smb2auth.status import NtStatus

# Importing each module that owns a table registers its machine.
for _module in ("smb2auth.ntlm._state", "smb2auth.spnego._state", "smb2auth.server._state",
                "smb2auth.client._state", "smb2auth.http.auth"):
    importlib.import_module(_module)

PAIRS = [
    (machine, state, event)
    for machine in MACHINES
    for state in type(next(iter(machine.table))[0])
    for event in type(next(iter(machine.table))[1])
]


def test_every_table_is_registered() -> None:
    names = {m.who for m in MACHINES}
    assert {"NTLM client", "NTLM server", "SPNEGO client", "SPNEGO server", "SMB2 connection",
            "SMB2 session", "SMB2 client", "HTTP auth"} <= names


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(PAIRS))
def test_each_pair_is_an_edge_or_an_error_naming_its_state(pair: tuple[StateMachine, object, object]) -> None:
    machine, state, event = pair
    expected = machine.anywhere.get(event, machine.table.get((state, event)))  # type: ignore[call-overload]
    if expected is None:
        with pytest.raises(ProtocolStateError) as err:
            machine.next(state, event)
        assert state.value in str(err.value) and machine.who in str(err.value)  # type: ignore[attr-defined]
        assert err.value.status is machine.status
    else:
        assert machine.next(state, event) is expected


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.who)
def test_every_state_is_reachable(machine: StateMachine) -> None:  # type: ignore[type-arg]
    states = type(next(iter(machine.table))[0])
    start = next(iter(states))
    seen, todo = {start}, [start]
    while todo:
        here = todo.pop()
        for (src, _), dst in machine.table.items():
            if src is here and dst not in seen:
                seen.add(dst)
                todo.append(dst)
    seen.update(machine.anywhere.values())
    assert seen == set(states)


# -- the real contexts ---------------------------------------------------------------------------------

USER, PASSWORD = "alice", "Passw0rd!"


def _authority() -> LocalAuthority:
    authority = LocalAuthority("TESTGRP")
    authority.add_user(USER, PASSWORD)
    return authority


NTLM_EDGES = {(src, dst) for (src, _), dst in NTLM_SERVER_TRANSITIONS.items()}
NTLM_ACTIONS = ["negotiate", "authenticate", "wrong-password", "garbage", "challenge", "done", "stale-done"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(NTLM_ACTIONS), min_size=1, max_size=8))
def test_ntlm_server_moves_only_along_its_table(actions: list[str]) -> None:
    authority = _authority()
    server = NtlmServer(authority, rng=lambda n: b"\x11" * n, clock=lambda: 1_700_000_000.0)
    client = NtlmClient(USER, PASSWORD, rng=lambda n: b"\x22" * n, clock=lambda: 1_700_000_000.0)
    negotiate = client.step(None) or b""
    challenge: bytes | None = None
    pending: ValidationNeeded | None = None
    for action in actions:
        before = server.state
        event: object
        if action == "negotiate":
            event = server.receive(negotiate)
        elif action in ("authenticate", "wrong-password"):
            if challenge is None:
                event = server.receive(NtlmClient(USER, "x").step(None) or b"")
            else:
                other = NtlmClient(USER, PASSWORD if action == "authenticate" else "bad")
                other.step(None)
                event = server.receive(other.step(challenge) or b"")
        elif action == "garbage":
            event = server.receive(b"NTLMSSP\x00\x03\x00\x00\x00" + b"\xff" * 20)
        elif action == "challenge":
            event = server.receive(b"NTLMSSP\x00\x02\x00\x00\x00" + bytes(40))
        elif pending is None:
            event = server.validation_done(1, ValidationResult.failure(NtStatus.STATUS_WRONG_PASSWORD, "x"))
        else:
            ticket = pending.ticket if action == "done" else pending.ticket + 7
            event = server.validation_done(ticket, authority.validate(pending.request))
        after = server.state
        assert before == after or (before, after) in NTLM_EDGES or after is NtlmState.FAILED
        if isinstance(event, Send):
            challenge = event.token
            assert after is NtlmState.CHALLENGE_SENT
        elif isinstance(event, ValidationNeeded):
            pending = event
            assert after is NtlmState.VALIDATING
        elif isinstance(event, Complete):
            assert after is NtlmState.COMPLETE and server.session_key is not None
        else:
            assert isinstance(event, Failed) and event.status in NtStatus
            assert after is NtlmState.FAILED or before in (NtlmState.COMPLETE, NtlmState.FAILED)
        if before in (NtlmState.COMPLETE, NtlmState.FAILED):
            assert after is before and isinstance(event, Failed)


SPNEGO_EDGES = {(src, dst) for (src, _), dst in SPNEGO_SERVER_TRANSITIONS.items()}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["client", "replay", "garbage", "done", "empty"]), min_size=1, max_size=8))
def test_spnego_server_moves_only_along_its_table(actions: list[str]) -> None:
    authority = _authority()
    server = SpnegoServer(NtlmServer(authority))
    client = SpnegoClient(NtlmClient(USER, PASSWORD))
    token: bytes | None = client.step(None)
    last: bytes | None = token
    pending: ValidationNeeded | None = None
    for action in actions:
        before = server.state
        event: object
        if action == "client" and token is not None:
            event = server.receive(token)
        elif action == "replay" and last is not None:
            event = server.receive(last)
        elif action == "garbage":
            event = server.receive(b"\xa1\x05\x30\x03\x0a\x01\x09")
        elif action == "done" and pending is not None:
            event = server.validation_done(pending.ticket, authority.validate(pending.request))
        else:
            event = server.receive(b"")
        after = server.state
        assert before == after or (before, after) in SPNEGO_EDGES or after is SpnegoState.FAILED
        if isinstance(event, ValidationNeeded):
            pending = event
            assert after in (SpnegoState.NEGOTIATING, SpnegoState.RAW)
        elif isinstance(event, (Send, Complete)):
            assert (after is SpnegoState.COMPLETE) == isinstance(event, Complete)
            if event.token is not None and not client.complete:
                try:
                    token = client.step(event.token)
                except Exception:
                    token = None
                last = token
        else:
            assert isinstance(event, Failed) and after is SpnegoState.FAILED
