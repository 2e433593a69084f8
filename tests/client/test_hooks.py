"""The client's hooks to misbehave on purpose (smb2auth.client.hooks, the NTLM and SPNEGO keywords the
conformance suite uses), our real client against our real sans-IO server in memory (tests/server/driver.py's
context): each hook sends what it says and nothing else, and without hooks the bytes are the spec's."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from smb2auth.client.hooks import Hooks
from smb2auth.client.protocol import ClientConnection, Response, Smb2ClientError
from smb2auth.ntlm.client import NtlmClient
from smb2auth.ntlm.messages import NTLMSSP_NEGOTIATE_56, NTLMSSP_NEGOTIATE_128, NegotiateMessage
from smb2auth.server.connection import Connection
from smb2auth.server.inline import answer_frame
from smb2auth.smb2.framing import FrameReader, frame
from smb2auth.smb2.header import Command, HeaderFlags, Smb2Header
from smb2auth.smb2.negotiate import (
    SMB1_DIALECT_NT_LM,
    SMB1_DIALECT_SMB2_002,
    SMB1_DIALECT_SMB2_WILDCARD,
    Dialect,
    NegotiateRequest,
    NegotiateResponse,
    Smb1NegotiateRequest,
)
from smb2auth.smb2.session import SessionSetupRequest
from smb2auth.smb2.simple import EchoRequest, ErrorResponse
from smb2auth.smb2.tree import TreeConnectRequest
from smb2auth.spnego import tokens
from smb2auth.spnego.asn1 import KRB5, NTLMSSP
from smb2auth.spnego.context import SpnegoClient, server_initial_token
from smb2auth.status import NtStatus
from tests.server.driver import DOMAIN, PASSWORD, USER, make_context


def _rng() -> object:
    counter = itertools.count()
    return lambda n: bytes((next(counter) + i) & 0xFF for i in range(n))


def _core(**kw: object) -> ClientConnection:
    kw.setdefault("rng", _rng())
    kw.setdefault("clock", lambda: 1_700_000_000.0)
    return ClientConnection(username=USER, password=PASSWORD, domain=DOMAIN, server_name="srv",  # type: ignore[arg-type]
                            **kw)


class Pair:
    """Our client core and our server's Connection, frames handed across in memory."""

    def __init__(self, core: ClientConnection, **config: object) -> None:
        self.core = core
        ctx = make_context(**config)
        ctx.clock = lambda: 1_700_000_000.0
        self.server = Connection(ctx, "127.0.0.1:40000")
        self.requests: list[bytes] = []

    def send(self, frame: bytes) -> list[bytes]:
        out: list[bytes] = []
        for payload in FrameReader().feed(frame):
            self.requests.append(payload)
            out += [data[4:] for data in answer_frame(self.server, payload)]
        return out

    def exchange(self, frame: bytes) -> Response:
        answers = self.send(frame)
        assert len(answers) == 1
        response = self.core.receive(answers[0])
        assert response is not None
        return response

    def login(self) -> None:
        self.exchange(self.core.negotiate())
        while not self.core.established:
            self.exchange(self.core.data_to_send())


def test_hooks_that_change_nothing_change_no_byte() -> None:
    plain, hooked = Pair(_core()), Pair(_core(hooks=Hooks()))
    plain.login()
    hooked.login()
    assert plain.requests == hooked.requests


def test_the_negotiate_hook_sends_its_body() -> None:
    def no_dialects(request: NegotiateRequest) -> bytes:
        return dataclasses.replace(request, dialects=(), negotiate_contexts=()).pack()

    pair = Pair(_core(hooks=Hooks(negotiate=no_dialects)))
    with pytest.raises(Smb2ClientError) as raised:
        pair.exchange(pair.core.negotiate())
    # MS-SMB2 3.3.5.4: DialectCount 0 -> STATUS_INVALID_PARAMETER, from our server.
    assert raised.value.status == NtStatus.STATUS_INVALID_PARAMETER
    assert pair.requests[0][64 + 2 : 64 + 4] == b"\x00\x00"


def test_the_session_setup_hook_sees_each_leg_and_its_changes_are_sent() -> None:
    legs: list[int] = []

    def previous(leg: int, request: SessionSetupRequest) -> SessionSetupRequest:
        legs.append(leg)
        return dataclasses.replace(request, previous_session_id=0x77)

    pair = Pair(_core(hooks=Hooks(session_setup=previous)))
    pair.login()
    assert legs == [0, 1]
    sent = [SessionSetupRequest.unpack(p[64:]) for p in pair.requests[1:]]
    assert [s.previous_session_id for s in sent] == [0x77, 0x77]


def test_first_message_id_and_held_session_setup() -> None:
    pair = Pair(_core(hooks=Hooks(first_message_id=1, hold_session_setup=True)))
    smb1 = Smb1NegotiateRequest((SMB1_DIALECT_NT_LM, SMB1_DIALECT_SMB2_002, SMB1_DIALECT_SMB2_WILDCARD))
    [wildcard] = pair.send(frame(smb1.pack()))
    # MS-SMB2 3.3.5.3.1 / 3.2.5.2: 0x02FF, then the SMB2 NEGOTIATE takes MessageId 1.
    assert NegotiateResponse.unpack(wildcard[64:]).dialect_revision == Dialect.SMB2_WILDCARD
    pair.exchange(pair.core.negotiate())
    assert Smb2Header.unpack(pair.requests[1]).message_id == 1
    assert pair.core.data_to_send() == b""
    echo = pair.exchange(pair.core.raw_request(Command.ECHO, EchoRequest().pack()))
    assert echo.header.status == NtStatus.STATUS_SUCCESS
    assert Smb2Header.unpack(pair.requests[2]).message_id == 2


def test_raw_requests_return_error_statuses_and_say_whether_the_answer_verified() -> None:
    pair = Pair(_core(dialects=(Dialect.SMB3_1_1,)))
    pair.login()
    tree = TreeConnectRequest("\\\\srv\\IPC$").pack()
    unsigned = pair.exchange(pair.core.raw_request(Command.TREE_CONNECT, tree, sign=False))
    # MS-SMB2 3.3.5.2.4: an unsigned request on a session that signs -> STATUS_ACCESS_DENIED, returned.
    assert unsigned.header.status == NtStatus.STATUS_ACCESS_DENIED
    signed = pair.exchange(pair.core.raw_request(Command.TREE_CONNECT, tree))
    assert signed.header.status == NtStatus.STATUS_SUCCESS and signed.signed
    assert pair.core.trees == {}, "a raw TREE_CONNECT is not interpreted"
    deleted = pair.exchange(pair.core.raw_request(Command.ECHO, EchoRequest().pack(), session_id=0x55))
    assert deleted.header.status == NtStatus.STATUS_USER_SESSION_DELETED


def test_a_raw_answer_signed_before_the_signature_was_checked_is_not_an_error() -> None:
    core = _core(dialects=(Dialect.SMB3_1_1,))
    Pair(core).login()

    def answer(status: NtStatus) -> bytes:
        request = core.raw_request(Command.ECHO, EchoRequest().pack())
        mid = Smb2Header.unpack(request[4:]).message_id
        flags = HeaderFlags.SERVER_TO_REDIR | HeaderFlags.SIGNED
        header = Smb2Header(Command.ECHO, flags, mid, core.session_id, status=status, signature=b"\x01" * 16)
        return header.pack() + ErrorResponse().pack()

    # As Samba's client: USER_SESSION_DELETED may be answered before the server found a key to sign with.
    deleted = core.receive(answer(NtStatus.STATUS_USER_SESSION_DELETED))
    assert deleted is not None and not deleted.signed
    with pytest.raises(Smb2ClientError):
        core.receive(answer(NtStatus.STATUS_ACCESS_DENIED))


def test_ntlm_without_128_bit_keys() -> None:
    ntlm = NtlmClient(USER, PASSWORD, domain=DOMAIN, negotiate_128=False)
    flags = NegotiateMessage.unpack(ntlm.step(None) or b"").flags
    assert not flags & NTLMSSP_NEGOTIATE_128 and flags & NTLMSSP_NEGOTIATE_56
    assert NegotiateMessage.unpack(NtlmClient(USER, PASSWORD).step(None) or b"").flags & NTLMSSP_NEGOTIATE_128


def test_spnego_optimistic_token_offers_the_whole_list_whatever_the_hint() -> None:
    spnego = SpnegoClient(NtlmClient(USER, PASSWORD), mech_types=(KRB5, NTLMSSP), optimistic=b"\x60\x00")
    init = tokens.decode(spnego.step(server_initial_token((NTLMSSP,))) or b"")
    assert isinstance(init, tokens.NegTokenInit)
    assert init.mech_types == (KRB5, NTLMSSP) and init.mech_token == b"\x60\x00"
    plain = SpnegoClient(NtlmClient(USER, PASSWORD), mech_types=(KRB5, NTLMSSP))
    hinted = tokens.decode(plain.step(server_initial_token((NTLMSSP,))) or b"")
    assert isinstance(hinted, tokens.NegTokenInit) and hinted.mech_types == (NTLMSSP,)
