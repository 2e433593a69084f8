"""Our DCE/RPC, NDR, endpoint-mapper, secure-channel and schannel codecs byte for byte against Samba:
frames of Samba's own Netlogon client talking to Samba's AD DC (fixtures/netlogon/samba_client.json), and
structures written by Samba's pidl marshalling (fixtures/netlogon/pidl_vectors.json); see
fixtures/netlogon/README.md for how each was captured."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from smb2auth.authority.netlogon import epm, nrpc
from smb2auth.authority.netlogon import pdu as P
from smb2auth.authority.netlogon.credentials import (
    AuthenticatorChain,
    AuthenticatorChainError,
    aes_cfb8_decrypt,
    compute_netlogon_credential_aes,
    compute_session_key_aes,
    decrypt_user_session_key,
    machine_nt_hash,
)
from smb2auth.authority.netlogon.ndr import NdrReader
from smb2auth.authority.netlogon.schannel import SchannelContext, copy_seq_number

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "netlogon"
CAPTURE: dict[str, Any] = json.loads((FIXTURES / "samba_client.json").read_text())
PIDL: dict[str, str] = json.loads((FIXTURES / "pidl_vectors.json").read_text())
FRAMES = [(f["from"], bytes.fromhex(f["pdu"])) for c in CAPTURE["connections"] for f in c]


def connection(opnum: int) -> list[tuple[str, P.Pdu]]:
    """The captured association whose first request has `opnum`."""
    for conn in CAPTURE["connections"]:
        pdus = [(f["from"], P.Pdu.unpack(bytes.fromhex(f["pdu"]))) for f in conn]
        requests = [p for who, p in pdus if p.ptype == P.PacketType.REQUEST]
        if requests and requests[0].body[6] == opnum:
            return pdus
    raise AssertionError(f"no captured association opens with opnum {opnum}")


def request_stub(pdu: P.Pdu) -> bytes:
    return pdu.body[8:]


@pytest.mark.parametrize(("who", "frame"), FRAMES, ids=[f"{i}-{w}" for i, (w, _) in enumerate(FRAMES)])
def test_every_captured_pdu_round_trips(who: str, frame: bytes) -> None:
    assert P.Pdu.unpack(frame).pack() == frame


def test_ept_map_against_the_dc() -> None:
    pdus = connection(epm.EPT_MAP)
    (_, bind), (_, ack), (_, req), (_, resp) = pdus
    assert bind.ptype == P.PacketType.BIND and P.BindAck.parse(ack).results[0] == (0, 0)
    stub = request_stub(req)
    # Samba's map_tower names the port and address it hopes for; our tower with the same values is the same
    tower = epm.tcp_tower(nrpc.NETLOGON_INTERFACE, 49152, "127.0.0.1")
    assert tower in stub
    assert epm.tower_tcp_port(tower) == 49152
    status, towers = epm.ept_map_response(P.response_stub(resp))
    assert status == 0 and [epm.tower_tcp_port(t) for t in towers] == [49152]


def test_secure_channel_setup_byte_for_byte() -> None:
    pdus = connection(nrpc.NETR_SERVER_REQ_CHALLENGE)
    requests = [p for who, p in pdus if p.ptype == P.PacketType.REQUEST]
    responses = [p for who, p in pdus if p.ptype == P.PacketType.RESPONSE]
    r = NdrReader(request_stub(requests[0]))
    r.u32()
    primary = r.conformant_varying_string()
    computer = r.conformant_varying_string()
    client_challenge = r.take(8)
    assert computer == "HARNESS"
    assert nrpc.server_req_challenge(primary, computer, client_challenge) == request_stub(requests[0])
    status, server_challenge = nrpc.server_req_challenge_response(P.response_stub(responses[0]))
    assert status == 0
    key = compute_session_key_aes(machine_nt_hash(CAPTURE["inputs"]["machine_password"]), client_challenge,
                                  server_challenge)
    # ServerAuthenticate2 (opnum 15) carries the client credential right after the two names and the type
    assert compute_netlogon_credential_aes(client_challenge, key) in request_stub(requests[1])
    answer = P.response_stub(responses[1])
    assert answer[:8] == compute_netlogon_credential_aes(server_challenge, key)


def session_key() -> bytes:
    pdus = connection(nrpc.NETR_SERVER_REQ_CHALLENGE)
    requests = [p for who, p in pdus if p.ptype == P.PacketType.REQUEST]
    responses = [p for who, p in pdus if p.ptype == P.PacketType.RESPONSE]
    client_challenge = request_stub(requests[0])[-8:]
    server_challenge = P.response_stub(responses[0])[:8]
    return compute_session_key_aes(machine_nt_hash(CAPTURE["inputs"]["machine_password"]), client_challenge,
                                   server_challenge)


def confounder(key: bytes, token: bytes, sequence: int, from_client: bool) -> bytes:
    seq = copy_seq_number(sequence, from_client)
    return aes_cfb8_decrypt(bytes(b ^ 0xF0 for b in key), token[24:32], seq + seq)


def test_schannel_both_directions_byte_for_byte() -> None:
    """The unsealed calls (schannel_plaintexts) are pidl's marshalling of the logons, byte for byte, and
    their answers decode to what Samba's client decoded."""
    inputs = CAPTURE["inputs"]["logons"]
    results = CAPTURE["results"]
    key = session_key()
    logons = 0
    for who, pdu, stub in schannel_plaintexts():
        opnum = pdu.body[6] if who == "client" else None
        if who == "client" and opnum == nrpc.NETR_LOGON_SAM_LOGON_EX:
            given = inputs[logons]
            logon = nrpc.NetworkLogon(given["domain"], given["user"], given["workstation"],
                                      bytes.fromhex(given["challenge"]), bytes.fromhex(given["nt"]),
                                      bytes.fromhex(given["lm"]), given["parameter_control"])
            ours = nrpc.logon_sam_logon_ex(given["logon_server"], given["computer"], logon,
                                           nrpc.ValidationLevel(given["level"]))
            assert ours == stub  # pidl's marshalling of the same call, byte for byte
        elif who == "server" and pdu.call_id >= 3:
            given, expected = inputs[logons], results[logons]
            answer = nrpc.logon_sam_logon_ex_response(stub, given["level"])
            assert answer.status == expected["status"]
            if expected["status"] == 0:
                v = answer.validation
                assert v is not None
                assert (v.effective_name, v.user_id, v.primary_group_id, v.logon_domain_name,
                        v.logon_domain_id) == (expected["account_name"], expected["rid"],
                                               expected["primary_gid"], expected["logon_domain"],
                                               expected["domain_sid"])
                assert [rid for rid, _ in v.group_ids] == expected["groups"]
                user_key = v.user_session_key if given["level"] == 6 else decrypt_user_session_key(
                    key, v.user_session_key)
                assert user_key.hex() == given["session_base_key"]
            else:
                assert answer.validation is None
            logons += 1
    assert logons == 4


def schannel_plaintexts() -> list[tuple[str, P.Pdu, bytes]]:
    """Every call of the schannel association unsealed: our client context unseals the DC's responses and
    our server context Samba's requests; wrapping the plaintexts again with the same confounders gives
    Samba's bytes exactly (MS-NRPC 3.3.4.2)."""
    key = session_key()
    calls = (P.PacketType.REQUEST, P.PacketType.RESPONSE)
    client = SchannelContext(key, rng=lambda n: b"")
    server = SchannelContext(key, rng=lambda n: b"", initiator=False)
    out = []
    for who, pdu in schannel_association():
        if pdu.ptype not in calls:
            continue
        assert pdu.auth is not None and pdu.auth.auth_level == P.AuthLevel.PKT_PRIVACY
        sender, receiver = (client, server) if who == "client" else (server, client)
        sealed = request_stub(pdu) if who == "client" else P.response_stub(pdu)
        mixer = confounder(key, pdu.auth.value, sender.sequence, who == "client")
        sender.rng = lambda n, mixer=mixer: mixer
        # Samba's client asked for header signing (PFC_SUPPORT_HEADER_SIGN in its bind, echoed by the DC):
        # the checksum covers the header, the request/response fields and the sec_trailer too
        frame = pdu.pack()
        head = frame[:P.HEADER_SIZE + 8]
        end = len(frame) - len(pdu.auth.value)
        trailer = frame[end - P.SEC_TRAILER.size:end]
        plain = receiver.unwrap(sealed, pdu.auth.value, (head, trailer))
        assert sender.wrap(plain, (head, trailer)) == (sealed, pdu.auth.value)
        out.append((who, pdu, plain[:len(plain) - pdu.auth.pad_length]))
    return out


def test_authenticator_chain_against_samba() -> None:
    """Samba's client follows the secure channel setup with NetrLogonGetCapabilities (opnum 21), which
    carries an Authenticator: our chain, seeded with the credential Samba sent in ServerAuthenticate2, makes
    the same one from the same timestamp and accepts the DC's ReturnAuthenticator (MS-NRPC 3.1.4.5)."""
    pdus = connection(nrpc.NETR_SERVER_REQ_CHALLENGE)
    requests = [p for who, p in pdus if p.ptype == P.PacketType.REQUEST]
    client_credential = compute_netlogon_credential_aes(request_stub(requests[0])[-8:], session_key())
    (_, request, sent), (_, _, answer) = schannel_plaintexts()[:2]
    assert request.body[6] == 21
    r = NdrReader(sent)
    r.conformant_varying_string()  # server_name: a [ref] pointer, no referent
    assert r.u32() != 0 and r.conformant_varying_string() == "HARNESS"
    theirs = nrpc.Authenticator.read(r)
    chain = AuthenticatorChain(session_key(), client_credential)
    assert chain.next(theirs.timestamp) == theirs
    returned = nrpc.Authenticator.read(NdrReader(answer))  # return_authenticator: [ref], first
    chain.check(returned)
    assert not chain.broken
    # the next one steps on from the checked credential: a replay of Samba's is refused
    again = AuthenticatorChain(session_key(), client_credential)
    again.next(theirs.timestamp)
    with pytest.raises(AuthenticatorChainError, match="does not verify"):
        again.check(nrpc.Authenticator(bytes(8), 0))
    assert again.broken
    with pytest.raises(AuthenticatorChainError, match="broken"):
        again.next(theirs.timestamp + 10)


def test_authenticator_timestamps_increase() -> None:
    """Two calls in the same second still step the chain forward (Samba's netlogon_creds_client_authenticator
    does the same); the stored credential is the seed plus each timestamp plus 1 (MS-NRPC 3.1.4.5)."""
    key, seed = bytes(range(16)), bytes.fromhex("f0debc9a78563412")

    def plus(n: int) -> bytes:
        return struct.pack("<I", (0x9ABCDEF0 + n) & 0xFFFFFFFF) + seed[4:]

    chain = AuthenticatorChain(key, seed)
    assert chain.next(1000) == nrpc.Authenticator(compute_netlogon_credential_aes(plus(1000), key), 1000)
    with pytest.raises(AuthenticatorChainError, match="without its answer"):
        chain.next(1000)
    chain = AuthenticatorChain(key, seed)
    chain.next(1000)
    chain.check(nrpc.Authenticator(compute_netlogon_credential_aes(plus(1001), key), 0))
    assert chain.next(1000) == nrpc.Authenticator(
        compute_netlogon_credential_aes(plus(1001 + 1001), key), 1001)
    chain.lost()
    assert chain.broken and "f0de" not in repr(chain)


@pytest.mark.parametrize("level", [3, 6])
def test_sam_logon_with_flags_against_pidl(level: int) -> None:
    logon = nrpc.NetworkLogon("SMB2AUTH", "alice", "CLIENTPC", bytes.fromhex("0123456789abcdef"),
                              bytes(range(24)), bytes(24), 0x820)
    authenticator = nrpc.Authenticator(bytes.fromhex("0102030405060708"), 0x5F5E1000)
    ours = nrpc.logon_sam_logon_with_flags("\\\\DC1", "HARNESS", authenticator, logon,
                                           nrpc.ValidationLevel(level))
    assert ours.hex() == PIDL[f"sam_logon_with_flags_in_{level}"]
    returned, answer = nrpc.logon_sam_logon_with_flags_response(
        bytes.fromhex(PIDL[f"sam_logon_with_flags_out_{level}"]), level)
    assert returned == nrpc.Authenticator(bytes.fromhex("a1a2a3a4a5a6a7a8"), 0)
    assert answer == nrpc.logon_sam_logon_ex_response(bytes.fromhex(PIDL[f"sam_logon_ex_out_{level}"]), level)


def schannel_association() -> list[tuple[str, P.Pdu]]:
    for conn in CAPTURE["connections"]:
        pdus = [(f["from"], P.Pdu.unpack(bytes.fromhex(f["pdu"]))) for f in conn]
        if pdus[0][1].auth is not None:
            return pdus
    raise AssertionError("no schannel association in the capture")


def test_schannel_bind_ack() -> None:
    (_, bind), (_, ack) = schannel_association()[:2]
    assert bind.auth is not None and bind.auth.auth_type == P.RPC_C_AUTHN_NETLOGON
    parsed = P.BindAck.parse(ack)
    assert parsed.results[0] == (0, 0) and parsed.auth is not None
    assert parsed.auth.value[:4] == b"\x01\x00\x00\x00"  # NL_AUTH_MESSAGE type 1 (MS-NRPC 2.2.1.3.2)


def test_authenticate3_against_pidl() -> None:
    ours = nrpc.server_authenticate3("\\\\DC1", "HARNESS$", "HARNESS", bytes.fromhex("1122334455667788"),
                                     0x612FFFFF)
    assert ours.hex() == PIDL["authenticate3_in"]
    answer = nrpc.server_authenticate3_response(bytes.fromhex(PIDL["authenticate3_out"]))
    assert (answer.status, answer.server_credential.hex(), answer.flags, answer.account_rid) == (
        0, "1122334455667788", 0x612FFFFF, 1103)


@pytest.mark.parametrize("level", [3, 6])
def test_validation_with_extra_sids_from_pidl(level: int) -> None:
    answer = nrpc.logon_sam_logon_ex_response(bytes.fromhex(PIDL[f"sam_logon_ex_out_{level}"]), level)
    v = answer.validation
    assert answer.status == 0 and answer.authoritative == 1 and v is not None
    assert (v.effective_name, v.full_name, v.user_id, v.primary_group_id) == ("alice", "Alice A", 1102, 513)
    assert v.group_ids == ((513, 7), (1105, 7)) and v.user_flags == 0x20
    assert v.user_session_key == bytes(range(16))
    assert (v.logon_server, v.logon_domain_name, v.logon_domain_id) == ("DC1", "SMB2AUTH", "S-1-5-21-1-2-3")
    assert v.extra_sids == (("S-1-18-1", 7), ("S-1-5-21-9-8-7-1234", 7))
    if level == 6:
        assert (v.dns_domain_name, v.upn) == ("smb2auth.test", "alice@smb2auth.test")
