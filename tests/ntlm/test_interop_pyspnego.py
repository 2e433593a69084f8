"""Interop with pyspnego's independent NTLM implementation, both directions."""

from __future__ import annotations

from pathlib import Path

import pytest

from smb2auth.authority.local import LocalAuthority
from smb2auth.ntlm import NtlmClient, NtlmServer, TargetInfo

spnego = pytest.importorskip("spnego")


@pytest.fixture
def user_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ntlm_users"
    path.write_text("DOM:alice:Secret1\n")
    monkeypatch.setenv("NTLM_USER_FILE", str(path))


@pytest.mark.parametrize("key_exchange", [True, False])
def test_our_client_against_pyspnego_server(user_file: None, key_exchange: bool) -> None:
    client = NtlmClient("alice", "Secret1", domain="DOM", key_exchange=key_exchange)
    server = spnego.server(protocol="ntlm")
    challenge = server.step(client.step(None))
    server.step(client.step(challenge))
    assert server.complete and server.session_key == client.session_key
    assert server.unwrap(client.wrap(b"to server")).data == b"to server"
    assert client.unwrap(server.wrap(b"to client").data) == b"to client"
    client.verify(b"sig", server.sign(b"sig"))
    server.verify(b"sig2", client.sign(b"sig2"))


def test_pyspnego_client_against_our_server() -> None:
    authority = LocalAuthority()
    authority.add_user("alice", "Secret1")
    client = spnego.client("alice", "Secret1", protocol="ntlm")
    server = NtlmServer(authority, target=TargetInfo())
    challenge = server.step(client.step())
    assert server.step(client.step(challenge)) is None
    assert server.complete and server.mic_present and client.session_key == server.session_key
    assert server.unwrap(client.wrap(b"to server").data) == b"to server"
    assert client.unwrap(server.wrap(b"to client")).data == b"to client"
    server.verify(b"m", client.sign(b"m"))
    client.verify(b"n", server.sign(b"n"))
