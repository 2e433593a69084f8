"""When the server demands a mechListMIC: as Samba's gensec_spnego ("new_spnego"), only once the client
protected the NTLM exchange with its own MIC (MS-NLMP 3.1.5.1.2), or after a downgrade (RFC 4178 5).

impacket's SMB login sends neither the NTLM MIC nor a mechListMIC, and smbd 4.17 accepts it; a client that
sends the NTLM MIC but strips the mechListMIC is asked for it, and refused if it never comes, by smbd and by
us."""

from __future__ import annotations

import pytest

from smb2auth.authority.local import LocalAuthority
from smb2auth.errors import AuthenticationError
from smb2auth.ntlm import NtlmClient, NtlmServer, TargetInfo
from smb2auth.spnego.context import SpnegoClient, SpnegoServer
from smb2auth.spnego.tokens import NegTokenResp, decode
from smb2auth.status import NtStatus


def _server() -> tuple[SpnegoServer, NtlmServer]:
    authority = LocalAuthority()
    authority.add_user("alice", "Secret1")
    mech = NtlmServer(authority, target=TargetInfo())
    return SpnegoServer(mech), mech


def test_client_without_ntlm_mic_or_mechlistmic_is_accepted() -> None:
    server, mech = _server()
    client = SpnegoClient(NtlmClient("alice", "Secret1", send_mic=False), require_mic=False)
    token = client.step(server.initial_token())
    challenge = server.step(token)
    authenticate = client.step(challenge)
    assert authenticate is not None and decode(authenticate).mech_list_mic is None  # type: ignore[union-attr]
    final = server.step(authenticate)
    assert server.complete and not mech.mic_present and not server.mic_exchanged
    reply = decode(final or b"")
    assert isinstance(reply, NegTokenResp) and reply.mech_list_mic is None
    client.step(final)
    assert client.complete and client.session_key == server.session_key


def test_client_with_ntlm_mic_but_no_mechlistmic_is_asked_then_refused() -> None:
    """The NTLM MIC makes the mechListMIC owed: without it the server answers accept-incomplete with its own
    (RFC 4178 5, smbd 4.17 answers MORE_PROCESSING_REQUIRED), and refuses a client that still sends none."""
    server, mech = _server()
    client = SpnegoClient(NtlmClient("alice", "Secret1"), require_mic=True)
    challenge = server.step(client.step(None) or b"")
    authenticate = decode(client.step(challenge) or b"")
    assert isinstance(authenticate, NegTokenResp) and authenticate.mech_list_mic is not None
    stripped = NegTokenResp(authenticate.neg_state, None, authenticate.response_token, None).encode()
    asked = decode(server.step(stripped) or b"")
    assert isinstance(asked, NegTokenResp) and asked.mech_list_mic is not None and mech.mic_present
    with pytest.raises(AuthenticationError) as err:
        server.step(NegTokenResp().encode())
    assert err.value.status == NtStatus.STATUS_ACCESS_DENIED
