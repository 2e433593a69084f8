"""SPNEGO contexts: the Samba-shaped SMB2 exchange, mechListMIC, downgrade, reject, order."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from smb2auth.authority.consult import consult
from smb2auth.authority.local import LocalAuthority
from smb2auth.errors import AuthenticationError, MalformedMessage, ProtocolStateError
from smb2auth.ntlm.client import NtlmClient
from smb2auth.ntlm.events import Complete, Send, ValidationNeeded
from smb2auth.ntlm.server import NtlmServer, TargetInfo
from smb2auth.spnego._state import ClientState, ServerState
from smb2auth.spnego.asn1 import KRB5, MS_KRB5, NTLMSSP
from smb2auth.spnego.context import SpnegoClient, SpnegoServer, server_initial_token
from smb2auth.spnego.tokens import NegState, NegTokenInit, NegTokenResp, decode, mech_types_der
from smb2auth.status import NtStatus
from tests.spnego.fakes import FakeClient, FakeServer

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "spnego"


def ntlm_server(**kwargs: object) -> NtlmServer:
    authority = LocalAuthority("TESTGRP")
    authority.add_user("alice", PASSWORD)
    return NtlmServer(authority, target=TargetInfo(), **kwargs)  # type: ignore[arg-type]


PASSWORD = "Passw0rd!"


def ntlm_client(password: str = PASSWORD) -> NtlmClient:
    return NtlmClient("alice", password, domain="TESTGRP", workstation="WS")


def resp(data: bytes | None) -> NegTokenResp:
    assert data is not None
    token = decode(data)
    assert isinstance(token, NegTokenResp)
    return token


def test_initial_token_is_what_smbd_sends() -> None:
    # fixtures/spnego: smbd 4.17's NEGOTIATE response security buffer, byte for byte.
    captured = bytes.fromhex((FIXTURES / "smbd_negotiate_negtokeninit2.hex").read_text().strip())
    assert SpnegoServer(ntlm_server()).initial_token() == captured
    assert server_initial_token((NTLMSSP,)) is server_initial_token((NTLMSSP,))


def test_ntlm_exchange_has_samba_shapes() -> None:
    """The four SESSION_SETUP buffers carry the fields smbclient and smbd put in them (fixtures/spnego)."""
    server = SpnegoServer(ntlm_server())
    client = SpnegoClient(ntlm_client())
    init = client.step(server.initial_token())
    # RFC 2743 3.1 framing: [APPLICATION 0] then the SPNEGO OID.
    assert init is not None and init[0] == 0x60 and init[2:10] == bytes.fromhex("06062b0601050502")
    first = decode(init)
    assert isinstance(first, NegTokenInit) and first.mech_types == (NTLMSSP,)
    assert first.mech_token is not None and first.mech_token[8] == 1  # NTLM NEGOTIATE
    challenge = resp(server.step(init))
    assert challenge.neg_state is NegState.ACCEPT_INCOMPLETE and challenge.supported_mech == NTLMSSP
    assert challenge.response_token is not None and challenge.response_token[8] == 2
    assert challenge.mech_list_mic is None
    auth_bytes = client.step(challenge.encode())
    auth = resp(auth_bytes)
    assert auth.neg_state is None and auth.supported_mech is None
    assert auth.response_token is not None and auth.response_token[8] == 3
    assert auth.mech_list_mic is not None and len(auth.mech_list_mic) == 16
    final = resp(server.step(auth_bytes))
    assert final.neg_state is NegState.ACCEPT_COMPLETED and final.supported_mech is None
    assert final.response_token is None and final.mech_list_mic is not None
    assert client.step(final.encode()) is None
    assert client.complete and server.complete
    assert client.session_key == server.session_key and len(server.session_key) == 16
    assert server.mic_exchanged and client.mic_exchanged


def test_async_server_step() -> None:
    server = SpnegoServer(ntlm_server())
    client = SpnegoClient(ntlm_client())

    async def run() -> None:
        token = client.step(None)
        while token is not None:
            event = server.receive(token)
            if isinstance(event, ValidationNeeded):
                result = await consult(server.mech.authority, event.request)
                event = server.validation_done(event.ticket, result)
            assert isinstance(event, (Send, Complete))
            token = client.step(event.token)

    asyncio.run(run())
    assert server.complete and client.complete and server.session_key == client.session_key


def test_fake_mechanism_exchange_resets_crypto_after_mics() -> None:
    mech_s, mech_c = FakeServer(), FakeClient()
    server, client = SpnegoServer(mech_s), SpnegoClient(mech_c)
    token = client.step(None)
    while token is not None:
        token = client.step(server.step(token))
    assert server.complete and client.complete
    # MS-SPNG 3.3.5.1: one reset after signing and one after verifying, on each side.
    assert mech_s.resets == 2 and mech_c.resets == 2


def _handshake_until_auth(server: SpnegoServer, client: SpnegoClient) -> bytes:
    challenge = server.step(client.step(server.initial_token()))
    auth = client.step(challenge)
    assert auth is not None
    return auth


def test_client_mech_list_mic_tampered() -> None:
    server = SpnegoServer(ntlm_server())
    auth = resp(_handshake_until_auth(server, SpnegoClient(ntlm_client())))
    assert auth.mech_list_mic is not None
    mic = bytes(auth.mech_list_mic[:-1]) + bytes((auth.mech_list_mic[-1] ^ 1,))
    bad = dataclasses.replace(auth, mech_list_mic=mic).encode()
    with pytest.raises(AuthenticationError) as info:
        server.step(bad)
    # Samba ntlmssp_check_packet -> NT_STATUS_ACCESS_DENIED, passed on by gensec spnego.
    assert info.value.status == NtStatus.STATUS_ACCESS_DENIED
    assert server.state is ServerState.FAILED and not server.complete
    with pytest.raises(ProtocolStateError, match="FAILED"):
        server.step(bad)


@pytest.mark.parametrize("second", ["none", "empty", "tampered", "with a token", "right"])
def test_client_mech_list_mic_stripped_is_asked_for(second: str) -> None:
    """RFC 4178 5 (Samba gensec_spnego_server_negTokenTarg_finish): the AUTHENTICATE without the owed
    mechListMIC is answered accept-incomplete with the server's mechListMIC; the client's must come in the
    next token, alone, and verify."""
    server = SpnegoServer(ntlm_server())
    client_mech = ntlm_client()
    auth = resp(_handshake_until_auth(server, SpnegoClient(client_mech)))
    assert auth.mech_list_mic is not None
    asked = resp(server.step(dataclasses.replace(auth, mech_list_mic=None).encode()))
    assert asked.neg_state is NegState.ACCEPT_INCOMPLETE and asked.mech_list_mic is not None
    assert asked.response_token is None and server.state is ServerState.MIC_CHECK
    der = mech_types_der((NTLMSSP,))
    client_mech.verify(der, asked.mech_list_mic)
    mic = auth.mech_list_mic
    follow_up = {
        "none": NegTokenResp(),
        "empty": NegTokenResp(mech_list_mic=b""),
        "tampered": NegTokenResp(mech_list_mic=mic[:-1] + bytes((mic[-1] ^ 1,))),
        "with a token": NegTokenResp(response_token=b"x", mech_list_mic=mic),
        "right": NegTokenResp(mech_list_mic=mic),
    }[second]
    if second == "right":
        final = resp(server.step(follow_up.encode()))
        assert final == NegTokenResp(NegState.ACCEPT_COMPLETED)
        assert server.complete and server.mic_exchanged and server.session_key == client_mech.session_key
        return
    with pytest.raises((AuthenticationError, MalformedMessage)) as info:
        server.step(follow_up.encode())
    # Samba: a mechanism token now is INVALID_PARAMETER; a missing or wrong mechListMIC ACCESS_DENIED.
    status = NtStatus.STATUS_INVALID_PARAMETER if second == "with a token" else NtStatus.STATUS_ACCESS_DENIED
    assert info.value.status == status
    assert server.state is ServerState.FAILED


@pytest.mark.parametrize("kind", ["tamper", "strip"])
def test_server_mech_list_mic_tampered_or_stripped(kind: str) -> None:
    server = SpnegoServer(ntlm_server())
    client = SpnegoClient(ntlm_client())
    final = resp(server.step(_handshake_until_auth(server, client)))
    assert final.mech_list_mic is not None
    mic = bytes(16) if kind == "tamper" else None
    with pytest.raises(AuthenticationError) as info:
        client.step(dataclasses.replace(final, mech_list_mic=mic).encode())
    assert info.value.status == NtStatus.STATUS_ACCESS_DENIED
    assert client.state is ClientState.FAILED


def test_mic_optional_when_not_required_and_not_downgraded() -> None:
    server = SpnegoServer(ntlm_server(), require_mic=False)
    auth = resp(_handshake_until_auth(server, SpnegoClient(ntlm_client())))
    final = resp(server.step(dataclasses.replace(auth, mech_list_mic=None).encode()))
    assert final.neg_state is NegState.ACCEPT_COMPLETED and final.mech_list_mic is None
    assert server.complete and not server.mic_exchanged


def test_downgrade_from_kerberos_with_optimistic_token() -> None:
    """RFC 4178 5: the client prefers Kerberos and sends an optimistic Kerberos token; we select NTLM,
    answer request-mic, ignore the token, and the exchange completes with both mechListMICs."""
    mech = FakeServer()
    server = SpnegoServer(mech)
    offered = (KRB5, MS_KRB5, NTLMSSP)
    krb_token = bytes.fromhex("6082000106092a864886f71201020201006e")
    first = resp(server.step(NegTokenInit(offered, mech_token=krb_token).encode()))
    assert first == NegTokenResp(NegState.REQUEST_MIC, NTLMSSP, None, None)
    assert mech.seen == []
    fake = FakeClient()
    challenge = resp(server.step(NegTokenResp(response_token=fake.step(None)).encode()))
    assert challenge.neg_state is NegState.ACCEPT_INCOMPLETE and challenge.supported_mech is None
    authenticate = fake.step(challenge.response_token)
    der = mech_types_der(offered)
    last = NegTokenResp(response_token=authenticate, mech_list_mic=fake.sign(der))
    final = resp(server.step(last.encode()))
    assert final.neg_state is NegState.ACCEPT_COMPLETED and final.mech_list_mic is not None
    fake.verify(der, final.mech_list_mic)
    assert server.complete and server.mic_exchanged


def test_downgrade_without_mic_fails_even_if_mic_optional() -> None:
    """RFC 4178 5: after a downgrade the mechListMIC is owed whatever `require_mic` says: the server asks
    for it (accept-incomplete and its own), and a client that still sends none is refused."""
    server = SpnegoServer(FakeServer(), require_mic=False)
    server.step(NegTokenInit((KRB5, NTLMSSP), mech_token=b"krb").encode())
    fake = FakeClient()
    challenge = resp(server.step(NegTokenResp(response_token=fake.step(None)).encode()))
    asked = resp(server.step(NegTokenResp(response_token=fake.step(challenge.response_token)).encode()))
    assert asked.neg_state is NegState.ACCEPT_INCOMPLETE and asked.mech_list_mic is not None
    with pytest.raises(AuthenticationError) as info:
        server.step(NegTokenResp().encode())
    assert info.value.status == NtStatus.STATUS_ACCESS_DENIED


def test_client_listing_kerberos_first_is_downgraded_to_ntlm() -> None:
    server = SpnegoServer(ntlm_server(), advertise=(KRB5, MS_KRB5, NTLMSSP))
    client = SpnegoClient(ntlm_client(), mech_types=(KRB5, NTLMSSP))
    init = decode(client.step(server.initial_token()) or b"")
    assert isinstance(init, NegTokenInit) and init.mech_types == (KRB5, NTLMSSP) and init.mech_token is None
    token = server.step(init.encode())
    assert resp(token).neg_state is NegState.REQUEST_MIC
    while not client.complete:
        token = client.step(token)
        if token is not None:
            token = server.step(token)
    assert server.complete and client.complete and server.mic_exchanged and client.mic_exchanged


@pytest.mark.parametrize("state", [NegState.REJECT, NegState.REQUEST_MIC, NegState.ACCEPT_COMPLETED])
def test_initiator_neg_state_is_ignored(state: NegState) -> None:
    """RFC 4178 4.2.2: negState is the acceptor's to set; Samba's acceptor ignores the initiator's (smbd logs
    in a client whose AUTHENTICATE says reject), and so do we."""
    server = SpnegoServer(ntlm_server())
    client = SpnegoClient(ntlm_client())
    auth = resp(_handshake_until_auth(server, client))
    final = server.step(dataclasses.replace(auth, neg_state=state).encode())
    assert server.complete and resp(final).neg_state is NegState.ACCEPT_COMPLETED


def test_reject_from_the_server() -> None:
    client = SpnegoClient(FakeClient())
    client.step(None)
    with pytest.raises(AuthenticationError) as info:
        client.step(NegTokenResp(NegState.REJECT).encode())
    # Samba gensec_spnego_update_client: negResult reject -> NT_STATUS_LOGON_FAILURE.
    assert info.value.status == NtStatus.STATUS_LOGON_FAILURE
    assert client.state is ClientState.FAILED


def test_wrong_password_fails_with_the_mechanism_status() -> None:
    server = SpnegoServer(ntlm_server())
    with pytest.raises(AuthenticationError) as info:
        _ = server.step(_handshake_until_auth(server, SpnegoClient(ntlm_client("wrong"))))
    assert info.value.status in (NtStatus.STATUS_LOGON_FAILURE, NtStatus.STATUS_WRONG_PASSWORD)
    assert server.state is ServerState.FAILED


def test_out_of_order_tokens_name_the_state() -> None:
    server = SpnegoServer(FakeServer())
    with pytest.raises(ProtocolStateError, match="START"):
        server.step(NegTokenResp(response_token=b"x").encode())
    server = SpnegoServer(FakeServer())
    init = NegTokenInit((NTLMSSP,), mech_token=b"FAKE-NEGOTIATE").encode()
    server.step(init)
    with pytest.raises(ProtocolStateError, match="NEGOTIATING"):
        server.step(init)
    client = SpnegoClient(FakeClient())
    client.step(None)
    with pytest.raises(ProtocolStateError, match="INIT_SENT"):
        client.step(init)
    mech_s = FakeServer()
    server, client = SpnegoServer(mech_s), SpnegoClient(FakeClient())
    token = client.step(None)
    while token is not None:
        token = client.step(server.step(token))
    with pytest.raises(ProtocolStateError, match="COMPLETE"):
        server.step(init)
    with pytest.raises(ProtocolStateError, match="COMPLETE"):
        client.step(NegTokenResp(NegState.ACCEPT_COMPLETED).encode())


def test_session_key_before_completion_is_an_error() -> None:
    with pytest.raises(ProtocolStateError, match="START"):
        _ = SpnegoServer(FakeServer()).session_key


def test_unsupported_mechanism_list() -> None:
    server = SpnegoServer(FakeServer())
    with pytest.raises(AuthenticationError) as info:
        server.step(NegTokenInit((KRB5, MS_KRB5)).encode())
    assert info.value.status == NtStatus.STATUS_INVALID_PARAMETER


def test_mic_before_completion_is_refused() -> None:
    server = SpnegoServer(FakeServer())
    server.step(NegTokenInit((NTLMSSP,)).encode())
    with pytest.raises(AuthenticationError):
        server.step(NegTokenResp(response_token=b"FAKE-NEGOTIATE", mech_list_mic=b"early").encode())


def test_raw_ntlm_passes_through() -> None:
    server = SpnegoServer(ntlm_server())
    client = ntlm_client()
    challenge = server.step(client.step(None))
    assert challenge is not None and challenge[:8] == b"NTLMSSP\x00"
    assert server.step(client.step(challenge)) is None
    assert server.complete and server.raw and server.session_key == client.session_key
    strict = SpnegoServer(ntlm_server(), allow_raw_ntlm=False)
    with pytest.raises(MalformedMessage):
        strict.step(ntlm_client().step(None))


def test_garbage_fails_the_server() -> None:
    server = SpnegoServer(FakeServer())
    with pytest.raises(MalformedMessage):
        server.step(b"\xa0\x05garbage")
    assert server.state is ServerState.FAILED
