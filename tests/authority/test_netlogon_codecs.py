"""Property tests for the Netlogon client's codecs: arbitrary bytes into every parser raise only
MalformedMessage; what we write reads back; our client and server schannel contexts pair up."""

from __future__ import annotations

import contextlib
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smb2auth.authority.netlogon import epm, nrpc
from smb2auth.authority.netlogon import pdu as P
from smb2auth.authority.netlogon.ndr import NdrReader, NdrWriter
from smb2auth.authority.netlogon.schannel import SchannelContext, SchannelError
from smb2auth.errors import MalformedMessage

KEY = bytes(range(16))


def header(ptype: int, body: bytes, auth_length: int = 0) -> bytes:
    return P.HEADER.pack(5, 0, ptype, 3, P.NDR_DREP, P.HEADER_SIZE + len(body), auth_length, 1) + body


@given(st.binary(max_size=300))
def test_pdu_parsers_raise_only_malformed(data: bytes) -> None:
    for frame in (data, header(P.PacketType.BIND_ACK, data), header(P.PacketType.FAULT, data),
                  header(P.PacketType.RESPONSE, data, len(data) // 2)):
        try:
            pdu = P.Pdu.unpack(frame)
            P.BindAck.parse(pdu)
            P.response_stub(pdu)
            P.fault_status(pdu)
            P.bind_nak_reason(pdu)
        except MalformedMessage:
            pass


@given(st.binary(max_size=600), st.sampled_from(list(nrpc.ValidationLevel)))
def test_call_parsers_raise_only_malformed(data: bytes, level: nrpc.ValidationLevel) -> None:
    parsers = (
        lambda: nrpc.logon_sam_logon_ex_response(data, level),
        # the same bytes behind a present validation of the asked level, to reach the structure's fields
        lambda: nrpc.logon_sam_logon_ex_response(bytes([level, 0, 0, 0]) + b"\x00\x00\x02\x00" + data, level),
        lambda: nrpc.server_authenticate3_response(data),
        lambda: nrpc.server_req_challenge_response(data),
        lambda: epm.ept_map_response(data),
        lambda: epm.ept_map_response(b"\x00" * 20 + b"\x01\x00\x00\x00" * 3 + b"\x00\x00\x02\x00" + data),
        lambda: epm.tower_floors(data),
        lambda: NdrReader(data).sid(),
        lambda: NdrReader(data).conformant_varying_string(),
    )
    for parse in parsers:
        with contextlib.suppress(MalformedMessage):
            parse()


@given(st.sampled_from(list(P.PacketType)), st.integers(0, 0xFFFFFFFF), st.binary(max_size=64),
       st.one_of(st.none(), st.binary(min_size=1, max_size=64)))
def test_pdu_round_trip(ptype: P.PacketType, call_id: int, body: bytes, value: bytes | None) -> None:
    auth = None if value is None else P.AuthVerifier(P.RPC_C_AUTHN_NETLOGON, 6, 0, 1, value)
    pdu = P.Pdu(ptype, P.PfcFlags.PFC_FIRST_FRAG | P.PfcFlags.PFC_LAST_FRAG, call_id, body, auth)
    assert P.Pdu.unpack(pdu.pack()) == pdu


@given(st.text(max_size=40), st.binary(max_size=40))
def test_ndr_strings_read_back(text: str, blob: bytes) -> None:
    text = text.replace("\x00", "")
    encoded = text.encode("utf-16-le", errors="surrogatepass")
    w = NdrWriter()
    w.unique_string(text)
    w.counted_header(len(encoded), True)
    w.counted_header(len(blob), bool(blob))
    w.counted_buffer(encoded, 2)
    if blob:
        w.counted_buffer(blob, 1)
    r = NdrReader(w.getvalue())
    assert r.u32() != 0
    assert r.conformant_varying_string() == text.encode("utf-16-le", "surrogatepass").decode("utf-16-le",
                                                                                               "replace")
    first, second = r.counted_header(), r.counted_header()
    assert r.counted_buffer(first, 2) == encoded and r.counted_buffer(second, 1) == blob
    r.done()


@given(st.integers(1, 65535), st.tuples(*[st.integers(0, 255)] * 4))
def test_tower_port(port: int, address: tuple[int, ...]) -> None:
    tower = epm.tcp_tower(nrpc.NETLOGON_INTERFACE, port, ".".join(map(str, address)))
    assert epm.tower_tcp_port(tower) == port and len(epm.tower_floors(tower)) == 5


def pair(seal: bool) -> tuple[SchannelContext, SchannelContext]:
    counter = itertools.count(1)
    rng = lambda n: bytes([next(counter) & 0xFF]) * n  # noqa: E731 - a deterministic confounder
    return SchannelContext(KEY, rng, seal), SchannelContext(KEY, rng, seal, initiator=False)


@given(st.lists(st.binary(max_size=200), min_size=1, max_size=4), st.booleans())
def test_schannel_pair_round_trips(messages: list[bytes], seal: bool) -> None:
    client, server = pair(seal)
    for message in messages:
        body, token = client.wrap(message)
        assert (body != message or not message or not seal) and len(token) == 56
        assert server.unwrap(body, token) == message
        body, token = server.wrap(message[::-1])
        assert client.unwrap(body, token) == message[::-1]


@pytest.mark.parametrize("where", ["body", "sequence", "checksum", "confounder"])
def test_schannel_refuses_a_changed_message(where: str) -> None:
    client, server = pair(True)
    body, token = client.wrap(b"NetrLogonSamLogonEx stub")
    spots = {"body": (body, 3, True), "sequence": (token, 8, False), "checksum": (token, 16, False),
             "confounder": (token, 24, False)}
    data, index, in_body = spots[where]
    changed = data[:index] + bytes([data[index] ^ 1]) + data[index + 1:]
    with pytest.raises(SchannelError):
        server.unwrap(changed, token) if in_body else server.unwrap(body, changed)


def test_schannel_refuses_a_replay() -> None:
    client, server = pair(True)
    body, token = client.wrap(b"first")
    assert server.unwrap(body, token) == b"first"
    server.wrap(b"answer")
    with pytest.raises(SchannelError, match="sequence"):
        server.unwrap(body, token)
