"""The sans-IO server Connection driven in-process: every status the harness promises, per MS-SMB2 / Samba."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smb2auth.ntlm.authority import ResponseKind
from smb2auth.server._state import SessionState
from smb2auth.server.connection import Connection
from smb2auth.server.inline import answer_frame
from smb2auth.smb2.crypto import decrypt, encrypt, sign, verify
from smb2auth.smb2.framing import frame
from smb2auth.smb2.header import Command, HeaderFlags, join_compound, split_compound
from smb2auth.smb2.negotiate import (
    Capabilities,
    Dialect,
    NegotiateRequest,
    NegotiateResponse,
    SecurityMode,
    Smb1NegotiateRequest,
)
from smb2auth.smb2.negotiate_contexts import (
    Cipher,
    EncryptionCapabilities,
    HashAlgorithm,
    PreauthIntegrityCapabilities,
    SigningAlgorithm,
    SigningCapabilities,
    find_context,
)
from smb2auth.smb2.policy import signing_algorithm_for
from smb2auth.smb2.session import LogoffRequest, SessionFlags, SessionSetupFlags, SessionSetupRequest
from smb2auth.smb2.simple import EchoRequest
from smb2auth.smb2.tree import ShareType, TreeConnectRequest, TreeConnectResponse, TreeDisconnectRequest
from smb2auth.status import NtStatus
from tests.server.driver import DOMAIN, USER, Answer, Driver, make_context

ALL = (Dialect.SMB2_0_2, Dialect.SMB2_1, Dialect.SMB3_0, Dialect.SMB3_0_2, Dialect.SMB3_1_1)


@pytest.mark.parametrize("dialect", ALL, ids=lambda d: f"0x{d:04x}")
def test_login_each_dialect_signed_final_response_and_event(dialect: int) -> None:
    d = Driver()
    response = d.negotiate((dialect,))
    assert response.dialect_revision == dialect
    # Signing required by default (MS-SMB2 2.2.4 SecurityMode), the NegTokenInit2 in the buffer.
    assert response.security_mode & SecurityMode.SIGNING_REQUIRED
    assert response.security_buffer == d.ctx.initial_token
    login = d.login()
    assert login.final.status == "STATUS_SUCCESS" and login.signing_key
    event = d.ctx.events.events[-1]
    assert (event.user, event.domain, event.workstation) == (USER, DOMAIN, "WS1")
    assert event.status == "STATUS_SUCCESS" and event.response_kind == "NTLMv2"
    assert event.session_id == login.session_id and event.client_address == "127.0.0.1:40000"
    assert "NTLMSSP_NEGOTIATE_KEY_EXCH" in event.ntlm_flags and event.session_flags == ()
    assert (
        event.dialect
        == {0x0202: "2.0.2", 0x0210: "2.1", 0x0300: "3.0", 0x0302: "3.0.2", 0x0311: "3.1.1"}[dialect]
    )
    # A signed TREE_CONNECT works and its response is signed with the same key (MS-SMB2 3.3.4.1.1).
    answer = d.request(
        Command.TREE_CONNECT,
        TreeConnectRequest("\\\\h\\IPC$"),
        session_id=login.session_id,
        key=login.signing_key,
    )
    assert answer.status == "STATUS_SUCCESS"
    assert verify(answer.raw, login.signing_key, login.algorithm)
    assert TreeConnectResponse.unpack(answer.body).share_type == ShareType.PIPE
    assert d.ctx.pending_handshakes == 0


def test_gmac_signing_negotiated_for_311() -> None:
    d = Driver()
    d.negotiate(
        (Dialect.SMB3_1_1,),
        contexts=(
            PreauthIntegrityCapabilities((HashAlgorithm.SHA_512,), b"s" * 32),
            SigningCapabilities((SigningAlgorithm.AES_GMAC, SigningAlgorithm.AES_CMAC)),
        ),
    )
    assert d.algorithm == SigningAlgorithm.AES_GMAC
    login = d.login()
    answer = d.request(Command.ECHO, EchoRequest(), session_id=login.session_id, key=login.signing_key)
    assert answer.status == "STATUS_SUCCESS" and verify(
        answer.raw, login.signing_key, SigningAlgorithm.AES_GMAC
    )


def test_wrong_password_logon_failure_with_reason() -> None:
    d = Driver()
    d.negotiate()
    login = d.login(password="nope")
    assert login.final.status == "STATUS_LOGON_FAILURE"
    event = d.ctx.events.events[-1]
    assert event.status == "STATUS_LOGON_FAILURE" and event.reason.startswith("wrong password")
    assert event.user == USER and event.response_kind == "NTLMv2" and not event.success
    # The failed session is gone (MS-SMB2 3.3.5.5.3) and the handshake slot released.
    assert d.conn.sessions == {} and d.ctx.pending_handshakes == 0


def test_ntlmv1_refused_by_default() -> None:
    d = Driver()
    d.negotiate()
    login = d.login(version=ResponseKind.NTLMV1_ESS)
    assert login.final.status == "STATUS_LOGON_FAILURE"
    event = d.ctx.events.events[-1]
    assert "not permitted" in event.reason and event.response_kind == "NTLMv1 with client challenge"


def test_guest_and_anonymous_only_when_allowed() -> None:
    d = Driver()
    d.negotiate()
    assert d.login("nobody").final.status == "STATUS_LOGON_FAILURE"
    assert d.login(anonymous=True).final.status == "STATUS_LOGON_FAILURE"

    d = Driver(make_context(allow_guest=True, allow_anonymous=True))
    d.negotiate()
    guest = d.login("nobody", "whatever")
    assert guest.final.status == "STATUS_SUCCESS"
    flags = SessionFlags(struct.unpack_from("<H", guest.final.body, 2)[0])
    assert flags == SessionFlags.IS_GUEST and d.ctx.events.events[-1].guest
    anon = d.login(anonymous=True)
    flags = SessionFlags(struct.unpack_from("<H", anon.final.body, 2)[0])
    assert anon.final.status == "STATUS_SUCCESS" and flags == SessionFlags.IS_NULL
    assert d.ctx.events.events[-1].anonymous and d.ctx.events.events[-1].session_flags == ("IS_NULL",)
    # Guest and null sessions do not sign (Samba); unsigned requests are fine on them.
    answer = d.request(Command.TREE_CONNECT, TreeConnectRequest("\\\\h\\IPC$"), session_id=anon.session_id)
    assert answer.status == "STATUS_SUCCESS"


def test_signing_enforced() -> None:
    d = Driver()
    d.negotiate((Dialect.SMB3_0,))
    login = d.login()
    sid = login.session_id
    tree = TreeConnectRequest("\\\\h\\IPC$")
    # Samba smbd_smb2_request_dispatch: unsigned on a signing session -> ACCESS_DENIED.
    assert d.request(Command.TREE_CONNECT, tree, session_id=sid).status == "STATUS_ACCESS_DENIED"
    bad = bytearray(d.message(Command.TREE_CONNECT, tree, session_id=sid, key=login.signing_key))
    bad[50] ^= 1
    assert d.send_raw(bytes(bad))[0].status == "STATUS_ACCESS_DENIED"
    other_key = bytes(16)
    assert (
        d.request(Command.ECHO, EchoRequest(), session_id=sid, key=other_key).status == "STATUS_ACCESS_DENIED"
    )
    assert (
        d.request(Command.TREE_CONNECT, tree, session_id=sid, key=login.signing_key).status
        == "STATUS_SUCCESS"
    )


def test_signing_enabled_only_server_accepts_unsigned() -> None:
    d = Driver(make_context(signing_required=False))
    response = d.negotiate((Dialect.SMB2_1,))
    assert not response.security_mode & SecurityMode.SIGNING_REQUIRED
    login = d.login()
    answer = d.request(Command.TREE_CONNECT, TreeConnectRequest("\\\\h\\IPC$"), session_id=login.session_id)
    assert answer.status == "STATUS_SUCCESS" and not answer.header.is_signed


def test_session_errors() -> None:
    d = Driver()
    d.negotiate((Dialect.SMB2_1,))
    # MS-SMB2 3.3.5.5: an unknown SessionId -> USER_SESSION_DELETED.
    answer = d.request(Command.SESSION_SETUP, SessionSetupRequest(b"x"), session_id=0x1234)
    assert answer.status == "STATUS_USER_SESSION_DELETED"
    # Binding without a SessionId: INVALID_PARAMETER, as smbd answers (binding on 2.x to a real session is
    # REQUEST_NOT_ACCEPTED: tests/hardening/test_negative.py::test_binding_flag_on_2x).
    answer = d.request(Command.SESSION_SETUP, SessionSetupRequest(b"x", SessionSetupFlags.BINDING))
    assert answer.status == "STATUS_INVALID_PARAMETER"
    # MS-SMB2 3.3.5.2.9: commands that need a session.
    for session_id in (0, 0x999):
        answer = d.request(Command.TREE_CONNECT, TreeConnectRequest("\\\\h\\IPC$"), session_id=session_id)
        assert answer.status == "STATUS_USER_SESSION_DELETED"
    answer = d.request(Command.LOGOFF, LogoffRequest())
    assert answer.status == "STATUS_USER_SESSION_DELETED"
    # A signed request for a session that does not exist.
    answer = d.request(Command.ECHO, EchoRequest(), session_id=0x999, key=bytes(16))
    assert answer.status == "STATUS_USER_SESSION_DELETED"
    # A malformed security token is a failed login with INVALID_PARAMETER (Samba gensec).
    answer = d.request(Command.SESSION_SETUP, SessionSetupRequest(b"\x60\x03\x06\x01\x00"))
    assert answer.status == "STATUS_INVALID_PARAMETER"
    assert d.ctx.events.events[-1].status == "STATUS_INVALID_PARAMETER"
    assert d.ctx.pending_handshakes == 0 and not d.conn.closed


def test_empty_first_token_gets_negtokeninit() -> None:
    d = Driver()
    d.negotiate((Dialect.SMB3_0,))
    answer = d.request(Command.SESSION_SETUP, SessionSetupRequest(b""))
    assert answer.status == "STATUS_MORE_PROCESSING_REQUIRED"
    assert answer.body[8:] == d.ctx.initial_token


def test_trees_echo_logoff_and_unsupported() -> None:
    d = Driver(make_context(shares=("Data",)))
    d.negotiate((Dialect.SMB3_1_1,))
    login = d.login()
    sid, key = login.session_id, login.signing_key

    def req(
        command: Command,
        body: EchoRequest | TreeConnectRequest | TreeDisconnectRequest | LogoffRequest | bytes,
        tree_id: int = 0,
    ) -> Answer:
        return d.request(command, body, session_id=sid, tree_id=tree_id, key=key)

    data = req(Command.TREE_CONNECT, TreeConnectRequest("\\\\h\\data"))
    assert TreeConnectResponse.unpack(data.body).share_type == ShareType.DISK
    tid = data.header.tree_id
    assert req(Command.TREE_CONNECT, TreeConnectRequest("\\\\h\\nope")).status == "STATUS_BAD_NETWORK_NAME"
    # Anything else: STATUS_NOT_SUPPORTED, and the connection keeps serving.
    create = struct.pack("<HBBIQQIIIIIHHII", 57, 0, 0, 2, 0, 0, 0x80, 0, 7, 1, 0, 0, 0, 0, 0) + b"\0" * 8
    assert req(Command.CREATE, create, tid).status == "STATUS_NOT_SUPPORTED"
    assert req(Command.CREATE, create, 777).status == "STATUS_NETWORK_NAME_DELETED"
    assert req(Command.ECHO, EchoRequest()).status == "STATUS_SUCCESS"
    assert req(Command.TREE_DISCONNECT, TreeDisconnectRequest(), tid).status == "STATUS_SUCCESS"
    assert req(Command.TREE_DISCONNECT, TreeDisconnectRequest(), tid).status == "STATUS_NETWORK_NAME_DELETED"
    logoff = req(Command.LOGOFF, LogoffRequest())
    assert logoff.status == "STATUS_SUCCESS" and verify(logoff.raw, key, d.algorithm)
    assert req(Command.ECHO, EchoRequest()).status == "STATUS_USER_SESSION_DELETED"
    # ECHO needs no session (Samba's dispatch table).
    assert d.request(Command.ECHO, EchoRequest()).status == "STATUS_SUCCESS"


def test_validate_negotiate_info() -> None:
    d = Driver()
    d.negotiate((Dialect.SMB3_0,))
    login = d.login()
    tree = d.request(
        Command.TREE_CONNECT,
        TreeConnectRequest("\\\\h\\IPC$"),
        session_id=login.session_id,
        key=login.signing_key,
    )

    def ioctl(capabilities: int, guid: bytes, mode: int, dialects: tuple[int, ...]) -> bytes:
        data = struct.pack("<I16sHH", capabilities, guid, mode, len(dialects)) + struct.pack(
            f"<{len(dialects)}H", *dialects
        )
        fixed = struct.pack(
            "<HHI16sIIIIIIII", 57, 0, 0x00140204, b"\xff" * 16, 64 + 56, len(data), 0, 0, 0, 24, 1, 0
        )
        return d.message(
            Command.IOCTL,
            fixed + data,
            session_id=login.session_id,
            tree_id=tree.header.tree_id,
            key=login.signing_key,
        )

    good = d.send_raw(ioctl(0, b"G" * 16, SecurityMode.SIGNING_ENABLED, (Dialect.SMB3_0,)))[0]
    assert good.status == "STATUS_SUCCESS"
    caps, guid, mode, dialect = struct.unpack_from("<I16sHH", good.body, 48)
    assert guid == d.ctx.server_guid and dialect == Dialect.SMB3_0 and mode == d.ctx.security_mode
    # MS-SMB2 3.3.5.15.12: a mismatch means a downgrade: the connection is dropped.
    assert d.send_raw(ioctl(0, b"X" * 16, SecurityMode.SIGNING_ENABLED, (Dialect.SMB3_0,))) == []
    assert d.conn.closed


def test_cross_connection_handshake_fails() -> None:
    ctx = make_context()
    a, b = Driver(ctx), Driver(ctx)
    a.negotiate((Dialect.SMB2_1,))
    b.negotiate((Dialect.SMB2_1,))
    from smb2auth.ntlm.client import NtlmClient
    from smb2auth.smb2.session import SessionSetupResponse
    from smb2auth.spnego.context import SpnegoClient

    spnego = SpnegoClient(NtlmClient(USER, "Passw0rd!", domain=DOMAIN))
    first = a.request(Command.SESSION_SETUP, SessionSetupRequest(spnego.step(None) or b""))
    assert first.status == "STATUS_MORE_PROCESSING_REQUIRED"
    auth = spnego.step(SessionSetupResponse.unpack(first.body).security_buffer) or b""
    # The session id belongs to connection A: unknown on B.
    answer = b.request(Command.SESSION_SETUP, SessionSetupRequest(auth), session_id=first.header.session_id)
    assert answer.status == "STATUS_USER_SESSION_DELETED"
    event = ctx.events.events[-1]
    assert event.status == "STATUS_USER_SESSION_DELETED" and "not on this connection" in event.reason
    # As a fresh handshake on B it is out of order: a failed logon, INVALID_PARAMETER as smbd answers.
    answer = b.request(Command.SESSION_SETUP, SessionSetupRequest(auth))
    assert answer.status == "STATUS_INVALID_PARAMETER"
    assert ctx.events.events[-1].status == "STATUS_INVALID_PARAMETER"
    # A's handshake is still pending on A.
    assert ctx.pending_handshakes == 1
    a.conn.close()
    assert ctx.pending_handshakes == 0


def test_previous_session_id_logs_off_the_old_session() -> None:
    ctx = make_context()
    a, b = Driver(ctx), Driver(ctx)
    a.negotiate((Dialect.SMB3_0_2,))
    b.negotiate((Dialect.SMB3_0_2,))
    old = a.login()
    new = b.login(previous_session_id=old.session_id)
    assert new.final.status == "STATUS_SUCCESS" and new.session_id != old.session_id
    answer = a.request(
        Command.TREE_CONNECT,
        TreeConnectRequest("\\\\h\\IPC$"),
        session_id=old.session_id,
        key=old.signing_key,
    )
    assert answer.status == "STATUS_USER_SESSION_DELETED"
    assert old.session_id not in ctx.sessions and new.session_id in ctx.sessions


def test_smb1_multi_protocol_negotiate() -> None:
    # MS-SMB2 3.3.5.3.1: "SMB 2.???" -> 0x02FF, then an SMB2 NEGOTIATE follows.
    d = Driver()
    answers = d.send_raw(Smb1NegotiateRequest(("NT LM 0.12", "SMB 2.002", "SMB 2.???")).pack())
    response = NegotiateResponse.unpack(answers[0].body)
    assert response.dialect_revision == Dialect.SMB2_WILDCARD and answers[0].header.message_id == 0
    d.mid = 1
    assert d.negotiate().dialect_revision == Dialect.SMB3_1_1
    assert d.login().final.status == "STATUS_SUCCESS"
    # "SMB 2.002" only -> 0x0202 and the connection is negotiated.
    d = Driver()
    response = NegotiateResponse.unpack(d.send_raw(Smb1NegotiateRequest(("SMB 2.002",)).pack())[0].body)
    assert response.dialect_revision == Dialect.SMB2_0_2
    d.dialect, d.algorithm, d.mid = Dialect.SMB2_0_2, SigningAlgorithm.HMAC_SHA256, 1
    assert d.login().final.status == "STATUS_SUCCESS"
    # No SMB2 dialect at all: we do not speak SMB1.
    d = Driver()
    assert d.send_raw(Smb1NegotiateRequest(("NT LM 0.12",)).pack()) == [] and d.conn.closed
    # A 2.1-only server cannot answer "SMB 2.002".
    d = Driver(make_context(min_dialect=Dialect.SMB2_1))
    response = NegotiateResponse.unpack(
        d.send_raw(Smb1NegotiateRequest(("SMB 2.002", "SMB 2.???")).pack())[0].body
    )
    assert response.dialect_revision == Dialect.SMB2_WILDCARD
    # SMB1 after negotiation drops the connection.
    d = Driver()
    d.negotiate()
    assert d.send_raw(Smb1NegotiateRequest(("SMB 2.???",)).pack()) == [] and d.conn.closed


def test_negotiate_errors() -> None:
    d = Driver(make_context(min_dialect=Dialect.SMB3_0))
    # MS-SMB2 3.3.5.4: no common dialect -> NOT_SUPPORTED (connection stays).
    answer = d.request(Command.NEGOTIATE, NegotiateRequest((Dialect.SMB2_1,)))
    assert answer.status == "STATUS_NOT_SUPPORTED" and not d.conn.closed
    # 3.1.1 without a preauth context -> INVALID_PARAMETER; without SHA-512 -> HASH_OVERLAP.
    answer = d.request(Command.NEGOTIATE, NegotiateRequest((Dialect.SMB3_1_1,)))
    assert answer.status == "STATUS_INVALID_PARAMETER"
    odd = (PreauthIntegrityCapabilities((7,), b""),)
    answer = d.request(Command.NEGOTIATE, NegotiateRequest((Dialect.SMB3_1_1,), negotiate_contexts=odd))
    assert answer.status == "STATUS_SMB_NO_PREAUTH_INTEGRITY_HASH_OVERLAP"
    # MS-SMB2 3.3.5.2.4: a signed NEGOTIATE -> INVALID_PARAMETER.
    answer = d.request(Command.NEGOTIATE, NegotiateRequest((Dialect.SMB3_0,)), flags=HeaderFlags.SIGNED)
    assert answer.status == "STATUS_INVALID_PARAMETER"
    # A request before NEGOTIATE drops the connection.
    assert d.send_raw(d.message(Command.ECHO, EchoRequest())) == [] and d.conn.closed
    # A second NEGOTIATE drops the connection (MS-SMB2 3.3.5.4).
    d = Driver()
    d.negotiate()
    assert d.send_raw(d.message(Command.NEGOTIATE, NegotiateRequest((Dialect.SMB3_0,)))) == []
    assert d.conn.closed


def test_malformed_input_answered_or_dropped() -> None:
    d = Driver()
    d.negotiate((Dialect.SMB2_1,))
    # Wrong StructureSize: MS-SMB2 3.3.5.2.6 INVALID_PARAMETER, connection kept.
    answer = d.request(Command.ECHO, struct.pack("<HH", 5, 0))
    assert answer.status == "STATUS_INVALID_PARAMETER"
    answer = d.request(Command.SESSION_SETUP, struct.pack("<HBBIIHHQ", 25, 0, 1, 0, 0, 88, 500, 0))
    assert answer.status == "STATUS_INVALID_PARAMETER"
    # Unknown command code: INVALID_PARAMETER from the raw header.
    raw = bytearray(d.message(Command.ECHO, EchoRequest()))
    raw[12:14] = (0x55).to_bytes(2, "little")
    out = answer_frame(d.conn, bytes(raw))
    assert out and struct.unpack_from("<I", out[0], 4 + 8)[0] == 0xC000000D
    # A request with SERVER_TO_REDIR set.
    answer = d.request(Command.ECHO, EchoRequest(), flags=HeaderFlags.SERVER_TO_REDIR)
    assert answer.status == "STATUS_INVALID_PARAMETER"
    assert not d.conn.closed
    assert d.request(Command.ECHO, EchoRequest()).status == "STATUS_SUCCESS"


@pytest.mark.parametrize(
    "data",
    [b"\x01\x00\x00\x04abcd", b"\x00\x00\x00\x04GET ", b"\x00\x00\x00\x08\xfdSMB1234"],
    ids=["nonzero-first-byte", "not-smb", "transform"],
)
def test_framing_garbage_closes(data: bytes) -> None:
    d = Driver()
    assert d.feed(data) == [] and d.conn.closed


def test_oversized_frame_is_counted_off_not_held() -> None:
    """smbd waits for all of an announced 16 MiB frame; so do we, holding none of it (server/nbss.py), and
    close once it is complete: a message over max_message_size is never one we could answer."""
    d = Driver(make_context(max_message_size=1024))
    assert d.feed(b"\x00\xff\xff\xff" + bytes(100_000)) == [] and not d.conn.closed
    assert d.conn.framer.pending == 0
    assert d.feed(bytes(0xFFFFFF - 100_000)) == [] and d.conn.closed


def test_compound_related() -> None:
    d = Driver()
    d.negotiate((Dialect.SMB3_0,))
    login = d.login()
    key, sid = login.signing_key, login.session_id
    # A chain of three takes three credits, all held before it is sent (MS-SMB2 3.3.5.2.3; smbd checks every
    # MessageId of a chain first): ask for them.
    assert d.request(Command.ECHO, EchoRequest(), session_id=sid, key=key, credit=3).header.credit == 3
    tcon = d.message(Command.TREE_CONNECT, TreeConnectRequest("\\\\h\\IPC$"), session_id=sid)
    tdis = d.message(
        Command.TREE_DISCONNECT,
        TreeDisconnectRequest(),
        session_id=0xFFFFFFFFFFFFFFFF,
        tree_id=0xFFFFFFFF,
        flags=HeaderFlags.RELATED_OPERATIONS,
    )
    echo = d.message(Command.ECHO, EchoRequest(), session_id=sid)
    parts = join_compound([tcon, tdis, echo])
    # Sign each part over its padded bytes (MS-SMB2 3.2.4.1.3).
    signed = b"".join(sign(p.raw, key, d.algorithm) for p in split_compound(parts))
    answers = d.send_raw(signed)
    assert [a.status for a in answers] == ["STATUS_SUCCESS"] * 3
    # The related TREE_DISCONNECT used the tree the TREE_CONNECT created (Samba last_tid).
    assert answers[1].header.tree_id == answers[0].header.tree_id != 0
    assert answers[1].header.flags & HeaderFlags.RELATED_OPERATIONS
    assert all(verify(a.raw, key, d.algorithm) for a in answers)
    # A chain whose first request is marked related is invalid (MS-SMB2 3.3.5.2.7.2).
    first = d.message(
        Command.ECHO, EchoRequest(), session_id=sid, flags=HeaderFlags.RELATED_OPERATIONS, key=key
    )
    assert d.send_raw(first)[0].status == "STATUS_INVALID_PARAMETER"


def test_credits() -> None:
    d = Driver(make_context(max_credits=100))
    d.negotiate((Dialect.SMB2_1,))
    assert d.request(Command.ECHO, EchoRequest(), credit=10).header.credit == 10
    answer = d.request(Command.ECHO, EchoRequest(), credit=10_000)
    assert answer.header.credit >= 1 and d.conn.credits <= 100
    assert d.request(Command.ECHO, EchoRequest(), credit=0).header.credit >= 0
    # Never left without a credit.
    for _ in range(5):
        d.request(Command.ECHO, EchoRequest(), credit=0)
    assert d.conn.credits >= 1


def test_pending_handshake_limit_and_timeouts() -> None:
    now = [0.0]
    ctx = make_context(max_pending_handshakes=2, handshake_timeout=10.0, idle_timeout=100.0)
    ctx.monotonic = lambda: now[0]
    drivers = [Driver(ctx) for _ in range(3)]
    for d in drivers:
        d.negotiate((Dialect.SMB2_1,))
    from smb2auth.ntlm.client import NtlmClient
    from smb2auth.spnego.context import SpnegoClient

    statuses = []
    for d in drivers:
        token = SpnegoClient(NtlmClient(USER, "x")).step(None) or b""
        statuses.append(d.request(Command.SESSION_SETUP, SessionSetupRequest(token)).status)
    assert statuses == ["STATUS_MORE_PROCESSING_REQUIRED"] * 2 + ["STATUS_INSUFFICIENT_RESOURCES"]
    assert ctx.pending_handshakes == 2
    now[0] = 5.0
    assert drivers[0].conn.timed_out(now[0]) is None
    now[0] = 11.0
    assert "handshake" in (drivers[0].conn.timed_out(now[0]) or "")
    assert drivers[2].conn.timed_out(now[0]) is None
    abandoned = drivers[0].conn.close("test timeout", abandoned=NtStatus.STATUS_IO_TIMEOUT)
    assert ctx.pending_handshakes == 1
    # The core returns the abandoned handshake's login event; the transport logs it.
    (event,) = abandoned
    assert event.status == "STATUS_IO_TIMEOUT" and "abandoned" in event.reason and event.user == ""
    now[0] = 200.0
    assert drivers[2].conn.timed_out(now[0]) == "idle timeout"
    fresh = Driver(ctx)
    assert "NEGOTIATE" in (fresh.conn.timed_out(now[0] + 11) or "")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_arbitrary_frames_never_raise(data: bytes, negotiated: bool) -> None:
    d = Driver()
    if negotiated:
        d.negotiate((Dialect.SMB2_1,))
    for payload in (data, b"\xfeSMB" + data):
        answer_frame(d.conn, payload)
        _assert_consistent(d.conn)
    d.conn.feed(frame(data) if len(data) < 200 else data)
    _assert_consistent(d.conn)


def _assert_consistent(conn: Connection) -> None:
    """What must hold after any input: the handshake budget counts exactly the sessions authenticating,
    each live session is in the global table, a closed connection holds nothing, credits never go negative."""
    ctx = conn.ctx
    assert ctx.pending_handshakes == sum(s.authenticating for s in conn.sessions.values())
    for session_id, session in conn.sessions.items():
        assert session.state is not SessionState.EXPIRED and ctx.sessions[session_id] is session
    if conn.closed:
        assert not conn.sessions and not conn.awaiting_validation
    assert conn.credits >= 0


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=120), st.sampled_from(list(Command)))
def test_arbitrary_bodies_get_an_answer(body: bytes, command: Command) -> None:
    d = Driver()
    d.negotiate((Dialect.SMB3_1_1,))
    login = d.login()
    raw = d.message(command, body, session_id=login.session_id, key=login.signing_key)
    out = answer_frame(d.conn, raw)
    if len(body) < 2 or int.from_bytes(body[:2], "little") & ~1 < 2:
        # Samba smbd_smb2_request_validate: a body without a two-byte StructureSize drops the connection.
        assert out == [] and d.conn.closed
    elif command is Command.CANCEL:
        assert out == [] and not d.conn.closed  # MS-SMB2 3.3.5.16: CANCEL gets no response
    elif command is Command.NEGOTIATE:
        assert out == [] and d.conn.closed  # MS-SMB2 3.3.5.4: a second NEGOTIATE drops the connection
    else:
        # Everything else is answered on a connection that stays (an IOCTL without a tree connect included).
        assert len(out) == 1 and not d.conn.closed


def test_reauthentication_keeps_the_session_and_its_key() -> None:
    d = Driver()
    d.negotiate((Dialect.SMB3_1_1,))
    login = d.login()
    from smb2auth.ntlm.client import NtlmClient
    from smb2auth.smb2.session import SessionSetupResponse
    from smb2auth.spnego.context import SpnegoClient

    # MS-SMB2 3.3.5.5: SESSION_SETUP on a valid session re-authenticates it; responses stay signed.
    spnego = SpnegoClient(NtlmClient(USER, "Passw0rd!", domain=DOMAIN))
    sid, key = login.session_id, login.signing_key
    first = d.request(
        Command.SESSION_SETUP, SessionSetupRequest(spnego.step(None) or b""), session_id=sid, key=key
    )
    assert first.status == "STATUS_MORE_PROCESSING_REQUIRED"
    auth = spnego.step(SessionSetupResponse.unpack(first.body).security_buffer) or b""
    final = d.request(Command.SESSION_SETUP, SessionSetupRequest(auth), session_id=sid, key=key)
    assert final.status == "STATUS_SUCCESS" and verify(final.raw, key, d.algorithm)
    assert d.ctx.events.events[-1].success and d.ctx.pending_handshakes == 0
    assert d.request(Command.ECHO, EchoRequest(), session_id=sid, key=key).status == "STATUS_SUCCESS"


@pytest.mark.parametrize(
    ("dialect", "offer", "cipher"),
    [
        (Dialect.SMB3_1_1, (Cipher.AES_256_CCM, Cipher.AES_128_GCM), Cipher.AES_128_GCM),
        (Dialect.SMB3_1_1, (Cipher.AES_256_GCM,), Cipher.AES_256_GCM),
        (Dialect.SMB3_0_2, (), Cipher.AES_128_CCM),
    ],
    ids=["311-gcm128", "311-gcm256", "302-ccm"],
)
@pytest.mark.parametrize("required", [False, True], ids=["client-chooses", "server-requires"])
def test_encryption(dialect: int, offer: tuple[int, ...], cipher: int, required: bool) -> None:
    d = Driver(make_context(encrypt=required))
    contexts = None
    if dialect == Dialect.SMB3_1_1:
        contexts = (
            PreauthIntegrityCapabilities((HashAlgorithm.SHA_512,), b"s" * 32),
            EncryptionCapabilities(offer),
        )
    response = d.negotiate((dialect,), contexts or (), capabilities=Capabilities.ENCRYPTION)
    assert d.dialect == dialect and d.algorithm == signing_algorithm_for(dialect)
    chosen = find_context(response.negotiate_contexts, EncryptionCapabilities)
    assert (chosen.ciphers[0] if isinstance(chosen, EncryptionCapabilities) else Cipher.AES_128_CCM) == cipher
    assert d.cipher == cipher
    login = d.login()
    assert login.keys is not None
    flags = SessionFlags(struct.unpack_from("<H", login.final.body, 2)[0])
    assert bool(flags & SessionFlags.ENCRYPT_DATA) == required
    assert ("ENCRYPT_DATA" in d.ctx.events.events[-1].session_flags) == required
    nonce_size = 11 if cipher in (Cipher.AES_128_CCM, Cipher.AES_256_CCM) else 12
    echo = d.message(Command.ECHO, EchoRequest(), session_id=login.session_id)
    sealed = encrypt(echo, login.keys.client_to_server_key, cipher, login.session_id, b"n" * nonce_size)
    (out,) = answer_frame(d.conn, sealed)
    header, plain = decrypt(out[4:], login.keys.server_to_client_key, cipher)
    assert header.session_id == login.session_id
    assert plain[:4] == b"\xfeSMB" and struct.unpack_from("<I", plain, 8)[0] == 0
    # MS-SMB2 3.3.5.2.9: an EncryptData session refuses plaintext, even signed.
    plain_status = d.request(
        Command.ECHO, EchoRequest(), session_id=login.session_id, key=login.signing_key
    ).status
    assert plain_status == ("STATUS_ACCESS_DENIED" if required else "STATUS_SUCCESS")
    # A transform that does not decrypt, or names another session, drops the connection.
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    assert answer_frame(d.conn, tampered) == [] and d.conn.closed


def test_encryption_required_refuses_2x_and_guests() -> None:
    d = Driver(make_context(encrypt=True, allow_guest=True))
    d.negotiate((Dialect.SMB2_1,))
    assert d.login().final.status == "STATUS_ACCESS_DENIED"
    assert "encryption required" in d.ctx.events.events[-1].reason
    d = Driver(make_context(encrypt=True, allow_guest=True))
    d.negotiate((Dialect.SMB3_1_1,))
    assert d.login("nobody").final.status == "STATUS_ACCESS_DENIED"
    assert d.ctx.pending_handshakes == 0


def test_transform_without_encryption_drops() -> None:
    d = Driver()
    d.negotiate((Dialect.SMB2_1,))
    d.login()
    assert answer_frame(d.conn, b"\xfdSMB" + bytes(60)) == [] and d.conn.closed


def test_message_id_window() -> None:
    # MS-SMB2 3.3.5.2.3: each MessageId once, inside the granted window; otherwise the connection drops.
    d = Driver()
    d.negotiate((Dialect.SMB2_1,))
    echo = d.message(Command.ECHO, EchoRequest())
    assert d.send_raw(echo)[0].status == "STATUS_SUCCESS"
    assert d.send_raw(echo) == [] and d.conn.closed
    d = Driver()
    d.negotiate((Dialect.SMB2_1,))
    d.mid = 1000
    assert d.send_raw(d.message(Command.ECHO, EchoRequest())) == [] and d.conn.closed
    # Out of order within the window is fine (a client with several requests in flight).
    d = Driver()
    d.negotiate((Dialect.SMB2_1,))
    assert d.request(Command.ECHO, EchoRequest(), credit=8).status == "STATUS_SUCCESS"
    d.mid = 5
    assert d.request(Command.ECHO, EchoRequest()).status == "STATUS_SUCCESS"
    d.mid = 2
    assert d.request(Command.ECHO, EchoRequest()).status == "STATUS_SUCCESS"
    assert not d.conn.closed
