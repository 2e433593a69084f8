"""SPNEGO interop with pyspnego's independent implementation (protocol="negotiate"), both directions.

The mechListMIC and the RC4 reset after it (MS-SPNG 3.3.5.1) only interoperate if both sides agree on
the NTLM sealing state afterwards, so each test also wraps and signs in both directions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from smb2auth.authority.local import LocalAuthority
from smb2auth.ntlm import NtlmClient, NtlmServer, TargetInfo
from smb2auth.spnego.context import SpnegoClient, SpnegoServer

spnego = pytest.importorskip("spnego")


@pytest.fixture
def user_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ntlm_users"
    path.write_text("DOM:alice:Secret1\n")
    monkeypatch.setenv("NTLM_USER_FILE", str(path))


def test_our_spnego_client_against_pyspnego_negotiate_server(user_file: None) -> None:
    client = SpnegoClient(NtlmClient("alice", "Secret1", domain="DOM"))
    server = spnego.server(protocol="negotiate")
    token = client.step(None)
    while not (client.complete and server.complete):
        assert token is not None
        answer = server.step(token)
        token = client.step(answer) if answer is not None else None
    assert client.mic_exchanged
    assert server.session_key == client.session_key
    assert server.unwrap(client.mech.wrap(b"to server")).data == b"to server"
    assert client.mech.unwrap(server.wrap(b"to client").data) == b"to client"
    server.verify(b"m", client.mech.sign(b"m"))
    client.mech.verify(b"n", server.sign(b"n"))


def test_pyspnego_negotiate_client_against_our_spnego_server() -> None:
    authority = LocalAuthority()
    authority.add_user("alice", "Secret1")
    mech = NtlmServer(authority, target=TargetInfo(nb_domain="DOM"))
    server = SpnegoServer(mech)
    client = spnego.client("alice", "Secret1", protocol="negotiate")
    token = client.step(server.initial_token())
    while not (server.complete and client.complete):
        assert token is not None
        answer = server.step(token)
        token = client.step(answer) if answer is not None else None
    assert server.mic_exchanged and mech.mic_present
    assert client.session_key == server.session_key
    assert mech.unwrap(client.wrap(b"to server").data) == b"to server"
    assert client.unwrap(mech.wrap(b"to client")).data == b"to client"
    mech.verify(b"m", client.sign(b"m"))
    client.verify(b"n", mech.sign(b"n"))
