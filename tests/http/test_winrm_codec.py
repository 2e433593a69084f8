"""The multipart/encrypted codec (MS-WSMV 2.2.9.1.1) between our real NTLM client and server contexts, in
memory: round trips both ways in sequence, and arbitrary bodies raise only the codec's two errors."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smb2auth.errors import AuthenticationError, MalformedMessage
from smb2auth.http.winrm import CONTENT_TYPE, is_encrypted, open_body, seal_body
from smb2auth.ntlm import NtlmClient, NtlmServer
from tests.http.pair import PASSWORD, TARGET, authority


def pair() -> tuple[NtlmClient, NtlmServer]:
    client, server = NtlmClient("alice", PASSWORD, domain="TESTGRP"), NtlmServer(authority(), target=TARGET)
    assert server.step(client.step(server.step(client.step(None) or b"")) or b"") is None
    assert server.complete
    return client, server


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=4))
def test_round_trips_both_ways_in_sequence(messages: list[bytes]) -> None:
    client, server = pair()
    for message in messages:
        assert open_body(server, seal_body(client, message)) == message
        assert open_body(client, seal_body(server, message[::-1])) == message[::-1]


def test_framing_and_length_checked() -> None:
    client, server = pair()
    body = seal_body(client, b"hello")
    assert body.count(b"--Encrypted Boundary\r\n") == 2 and body.endswith(b"--Encrypted Boundary--\r\n")
    assert b"Length=5\r\n" in body
    assert is_encrypted(CONTENT_TYPE) and not is_encrypted("application/soap+xml")
    with pytest.raises(MalformedMessage, match="OriginalContent says 6 bytes"):
        open_body(server, body.replace(b"Length=5", b"Length=6"))
    with pytest.raises(MalformedMessage, match="not application/HTTP-SPNEGO-session-encrypted"):
        open_body(server, body, "multipart/encrypted")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bodies_raise_only_codec_errors(junk: bytes) -> None:
    _, server = pair()
    tail = b"--Encrypted Boundary--\r\n"
    for body in (junk, junk + tail, b"--Encrypted Boundary\r\n" + junk + tail):
        with contextlib.suppress(MalformedMessage, AuthenticationError):
            open_body(server, body)
