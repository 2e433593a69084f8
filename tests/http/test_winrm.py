"""WinRM message encryption (MS-WSMV 2.2.9.1.1) behind NtlmAuthMiddleware: pywinrm 0.5 and pyspnego's
wrap_winrm/unwrap_winrm as the peers, and our own client with the same codec; several messages per
connection (sequence numbers both ways), a tampered part refused, plaintext refused."""

from __future__ import annotations

import http.client
import struct
from collections.abc import Iterator
from typing import Any

import pytest

from smb2auth.http.client import ClientContext, request_with_auth
from smb2auth.http.events import LoginEvent
from smb2auth.http.winrm import CONTENT_TYPE, PROTOCOL, open_body, post_encrypted, seal_body, winrm_echo_app
from smb2auth.http.wsgi import RunningServer, running_http_server
from smb2auth.ntlm import NtlmClient
from smb2auth.spnego.context import SpnegoClient
from tests.http.pair import PASSWORD, config
from tests.peers import missing_peer

MESSAGES = [b"<s:Envelope>first</s:Envelope>", b"<s:Envelope>" + b"x" * 5000 + b"</s:Envelope>", b"<end/>"]


@pytest.fixture
def events() -> list[LoginEvent]:
    return []


@pytest.fixture
def server(events: list[LoginEvent]) -> Iterator[RunningServer]:
    with running_http_server(config(on_login=events.append), app=winrm_echo_app) as running:
        yield running


def _spnego() -> Any:
    try:
        import spnego
    except ImportError:
        missing_peer("pyspnego (pip install -e '.[test]')")
        raise
    return spnego


def test_pywinrm_ntlm_with_message_encryption_always(server: RunningServer, events: list[LoginEvent]) -> None:
    try:
        from winrm.transport import Transport
    except ImportError:
        missing_peer("pywinrm (pip install -e '.[test]')")
        raise
    transport = Transport(f"http://{server.host}:{server.port}/wsman", auth_method="ntlm",
                          username="TESTGRP\\alice", password=PASSWORD, message_encryption="always")
    for message in MESSAGES:
        assert transport.send_message(message) == message
    transport.close_session()
    # one login: every message rode the connection's context, sequence numbers going on both ways
    assert [(e.user, e.status, e.dialect) for e in events] == [("alice", "STATUS_SUCCESS", "NTLM")]


def _frame(header: bytes, sealed: bytes, length: int) -> bytes:
    """MS-WSMV 2.2.9.1.1, written out here independently of our codec."""
    return (b"--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n"
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=" + str(length).encode()
            + b"\r\n--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n"
            + struct.pack("<I", len(header)) + header + sealed + b"--Encrypted Boundary--\r\n")


def _unframe(body: bytes) -> tuple[int, bytes, bytes]:
    head, _, data = body.partition(b"\tContent-Type: application/octet-stream\r\n")
    length = int(head.split(b"Length=")[1].split(b"\r\n")[0])
    assert data.endswith(b"--Encrypted Boundary--\r\n")
    data = data[: -len(b"--Encrypted Boundary--\r\n")]
    (size,) = struct.unpack_from("<I", data)
    return length, data[4:4 + size], data[4 + size:]


def _post(conn: http.client.HTTPConnection, body: bytes, content_type: str = CONTENT_TYPE
          ) -> http.client.HTTPResponse:
    conn.request("POST", "/wsman", body=body, headers={"Content-Type": content_type})
    return conn.getresponse()


@pytest.mark.parametrize("protocol", ["ntlm", "negotiate"])
def test_pyspnego_wrap_winrm_both_ways(server: RunningServer, protocol: str) -> None:
    spnego = _spnego()
    ctx = spnego.client("alice", PASSWORD, protocol=protocol)
    conn = http.client.HTTPConnection(*server.address, timeout=10)
    scheme = "NTLM" if protocol == "ntlm" else "Negotiate"
    resp = request_with_auth(conn, "POST", "/wsman", body=b"", context_factory=lambda: ctx, scheme=scheme)
    assert resp.status == 200 and ctx.complete
    resp.read()
    for message in MESSAGES:
        wrapped = ctx.wrap_winrm(message)
        resp = _post(conn, _frame(wrapped.header, wrapped.data, len(message)))
        assert resp.status == 200 and resp.getheader("Content-Type") == CONTENT_TYPE
        length, header, sealed = _unframe(resp.read())
        assert length == len(message) and ctx.unwrap_winrm(header, sealed) == message
    # plaintext is refused; the connection goes on
    resp = _post(conn, b"<s:Envelope/>", "application/soap+xml;charset=UTF-8")
    assert resp.status == 415 and not resp.will_close
    resp.read()
    # a tampered part does not verify: refused, and the connection ends (the seal stream cannot resync)
    wrapped = ctx.wrap_winrm(b"<tampered/>")
    sealed = bytes([wrapped.data[0] ^ 1]) + wrapped.data[1:]
    resp = _post(conn, _frame(wrapped.header, sealed, len(b"<tampered/>")))
    assert resp.status == 400 and resp.will_close
    resp.read()
    conn.close()


@pytest.mark.parametrize("scheme", ["NTLM", "Negotiate"])
def test_our_client_speaks_it_too(server: RunningServer, scheme: str) -> None:
    made: list[ClientContext] = []

    def factory() -> ClientContext:
        ntlm = NtlmClient("alice", PASSWORD, domain="TESTGRP")
        made.append(SpnegoClient(mech=ntlm) if scheme == "Negotiate" else ntlm)
        return made[-1]

    conn = http.client.HTTPConnection(*server.address, timeout=10)
    resp = request_with_auth(conn, "POST", "/wsman", body=b"", context_factory=factory, scheme=scheme)
    assert resp.status == 200
    resp.read()
    ctx = made[-1]
    context = ctx.mech if isinstance(ctx, SpnegoClient) else ctx
    assert isinstance(context, NtlmClient)
    for message in MESSAGES:
        assert post_encrypted(conn, "/wsman", context, message) == (200, message)
    # our sealing, opened by hand: the framing is MS-WSMV's
    resp = _post(conn, seal_body(context, b"<last/>"))
    assert resp.status == 200
    assert open_body(context, resp.read(), resp.getheader("Content-Type")) == b"<last/>"
    conn.close()
    assert PROTOCOL in CONTENT_TYPE
