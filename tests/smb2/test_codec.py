"""Codec properties (hypothesis): unpack(pack(x)) == x for every message, arbitrary bytes raise only
MalformedMessage; plus framing, compounding and the bounds checks of MS-SMB2 2.2 / 3.3.5.2."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smb2auth.errors import MalformedMessage
from smb2auth.smb2 import (
    Capabilities,
    Cipher,
    Command,
    Dialect,
    EchoRequest,
    EchoResponse,
    EncryptionCapabilities,
    ErrorResponse,
    FrameReader,
    HeaderFlags,
    IoctlFlags,
    IoctlRequest,
    IoctlResponse,
    LogoffRequest,
    LogoffResponse,
    NegotiateRequest,
    NegotiateResponse,
    NetnameNegotiateContextId,
    NtStatus,
    PreauthIntegrityCapabilities,
    SecurityMode,
    SessionFlags,
    SessionSetupFlags,
    SessionSetupRequest,
    SessionSetupResponse,
    ShareCapabilities,
    ShareFlags,
    ShareType,
    SigningAlgorithm,
    SigningCapabilities,
    Smb1NegotiateRequest,
    Smb2Header,
    TransformHeader,
    TreeConnectRequest,
    TreeConnectResponse,
    TreeDisconnectRequest,
    TreeDisconnectResponse,
    UnknownNegotiateContext,
    decrypt,
    encrypt,
    frame,
    gmac_nonce,
    join_compound,
    parse_message,
    select_smb1_upgrade_dialect,
    sign,
    split_compound,
    verify,
)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, 2**64 - 1)
blob = st.binary(max_size=64)
text = st.text(st.characters(codec="utf-16", exclude_categories=("Cs",)), max_size=20)


@st.composite
def headers(draw: st.DrawFn) -> Smb2Header:
    flags = HeaderFlags(draw(u32))
    is_async = bool(flags & HeaderFlags.ASYNC_COMMAND)
    return Smb2Header(
        command=draw(st.sampled_from(Command)),
        flags=flags,
        message_id=draw(u64),
        session_id=draw(u64),
        tree_id=0 if is_async else draw(u32),
        async_id=draw(u64) if is_async else 0,
        credit_charge=draw(u16),
        credit=draw(u16),
        status=draw(u32),
        next_command=draw(u32),
        reserved=0 if is_async else draw(u32),
        signature=draw(st.binary(min_size=16, max_size=16)),
    )


contexts = st.one_of(
    st.builds(PreauthIntegrityCapabilities, st.lists(u16, min_size=1, max_size=4).map(tuple), blob),
    st.builds(EncryptionCapabilities, st.lists(u16, min_size=1, max_size=4).map(tuple)),
    st.builds(SigningCapabilities, st.lists(u16, min_size=1, max_size=4).map(tuple)),
    st.builds(NetnameNegotiateContextId, text),
    st.builds(UnknownNegotiateContext, st.sampled_from([3, 6, 7, 0x100]), blob),
)


def unique_known(items: list) -> tuple:  # type: ignore[type-arg]
    """MS-SMB2 3.3.5.4 refuses a known context type twice; keep the first of each."""
    seen: set[type] = set()
    out = []
    for c in items:
        if not isinstance(c, UnknownNegotiateContext) and type(c) in seen:
            continue
        seen.add(type(c))
        out.append(c)
    return tuple(out)


@st.composite
def negotiate_requests(draw: st.DrawFn) -> NegotiateRequest:
    dialects = tuple(draw(st.lists(u16, min_size=1, max_size=6)))
    has_311 = Dialect.SMB3_1_1 in dialects
    return NegotiateRequest(
        dialects=dialects,
        security_mode=SecurityMode(draw(u16)),
        capabilities=Capabilities(draw(u32)),
        client_guid=draw(st.binary(min_size=16, max_size=16)),
        negotiate_contexts=unique_known(draw(st.lists(contexts, max_size=5))) if has_311 else (),
        client_start_time=0 if has_311 else draw(u64),
    )


@st.composite
def negotiate_responses(draw: st.DrawFn) -> NegotiateResponse:
    dialect = draw(st.sampled_from([*Dialect, 0x0222]))
    return NegotiateResponse(
        dialect_revision=dialect,
        security_mode=SecurityMode(draw(u16)),
        server_guid=draw(st.binary(min_size=16, max_size=16)),
        capabilities=Capabilities(draw(u32)),
        max_transact_size=draw(u32),
        max_read_size=draw(u32),
        max_write_size=draw(u32),
        system_time=draw(u64),
        server_start_time=draw(u64),
        security_buffer=draw(blob),
        negotiate_contexts=unique_known(draw(st.lists(contexts, max_size=5))) if dialect == 0x0311 else (),
    )


bodies = st.one_of(
    negotiate_requests(),
    negotiate_responses(),
    st.builds(
        SessionSetupRequest,
        blob,
        st.builds(SessionSetupFlags, u8),
        st.builds(SecurityMode, u8),
        st.builds(Capabilities, u32),
        u32,
        u64,
    ),
    st.builds(SessionSetupResponse, blob, st.builds(SessionFlags, u16)),
    st.builds(TreeConnectRequest, text),
    st.builds(
        TreeConnectResponse,
        st.sampled_from(ShareType),
        st.builds(ShareFlags, u32),
        st.builds(ShareCapabilities, u32),
        u32,
    ),
    st.builds(ErrorResponse, blob, u8),
    st.builds(
        IoctlRequest,
        u32,
        blob,
        st.binary(min_size=16, max_size=16),
        u32,
        u32,
        st.builds(IoctlFlags, u32),
        blob,
    ),
    st.builds(IoctlResponse, u32, blob, st.binary(min_size=16, max_size=16), blob, u32),
    st.sampled_from(
        [
            LogoffRequest(),
            LogoffResponse(),
            TreeDisconnectRequest(),
            TreeDisconnectResponse(),
            EchoRequest(),
            EchoResponse(),
        ]
    ),
)


@given(headers())
def test_header_round_trip(header: Smb2Header) -> None:
    packed = header.pack()
    assert len(packed) == 64
    assert Smb2Header.unpack(packed) == header


@given(bodies)
def test_body_round_trip(body) -> None:  # type: ignore[no-untyped-def]
    packed = body.pack()
    assert type(body).unpack(packed) == body


@given(bodies)
def test_parse_message_dispatch(body) -> None:  # type: ignore[no-untyped-def]
    command = {
        NegotiateRequest: Command.NEGOTIATE,
        NegotiateResponse: Command.NEGOTIATE,
        SessionSetupRequest: Command.SESSION_SETUP,
        SessionSetupResponse: Command.SESSION_SETUP,
        TreeConnectRequest: Command.TREE_CONNECT,
        TreeConnectResponse: Command.TREE_CONNECT,
        ErrorResponse: Command.TREE_CONNECT,
        LogoffRequest: Command.LOGOFF,
        LogoffResponse: Command.LOGOFF,
        TreeDisconnectRequest: Command.TREE_DISCONNECT,
        TreeDisconnectResponse: Command.TREE_DISCONNECT,
        EchoRequest: Command.ECHO,
        EchoResponse: Command.ECHO,
        IoctlRequest: Command.IOCTL,
        IoctlResponse: Command.IOCTL,
    }[type(body)]
    response = type(body).__name__.endswith("Response")
    status = NtStatus.STATUS_ACCESS_DENIED if isinstance(body, ErrorResponse) else NtStatus.STATUS_SUCCESS
    flags = HeaderFlags.SERVER_TO_REDIR if response else HeaderFlags(0)
    header = Smb2Header(command, flags, status=status)
    assert parse_message(header.pack() + body.pack()) == (header, body)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_malformed(data: bytes) -> None:
    for prefix in (b"", b"\xfeSMB\x40\x00", b"\xffSMB\x72"):
        with contextlib.suppress(MalformedMessage):
            parse_message(prefix + data)


@settings(max_examples=300)
@given(st.sampled_from(list(Command)), st.booleans(), st.binary(max_size=200))
def test_arbitrary_bodies_raise_only_malformed(command: Command, response: bool, body: bytes) -> None:
    flags = HeaderFlags.SERVER_TO_REDIR if response else HeaderFlags(0)
    with contextlib.suppress(MalformedMessage):
        parse_message(Smb2Header(command, flags).pack() + body)


@settings(max_examples=200)
@given(bodies, st.data())
def test_mutated_messages_raise_only_malformed(body, data: st.DataObject) -> None:  # type: ignore[no-untyped-def]
    packed = bytearray(body.pack())
    for _ in range(data.draw(st.integers(1, 4))):
        if packed:
            packed[data.draw(st.integers(0, len(packed) - 1))] = data.draw(u8)
    cut = data.draw(st.integers(0, len(packed)))
    with contextlib.suppress(MalformedMessage):
        type(body).unpack(bytes(packed[:cut]))


# --- bounds checks ---------------------------------------------------------------------------------


def test_wrong_structure_size_is_invalid_parameter() -> None:
    body = bytearray(SessionSetupRequest(b"token").pack())
    body[0] = 24
    with pytest.raises(MalformedMessage) as err:
        SessionSetupRequest.unpack(bytes(body))
    assert err.value.status == NtStatus.STATUS_INVALID_PARAMETER


def test_security_buffer_must_lie_after_fixed_part_and_inside() -> None:
    good = SessionSetupRequest(b"token").pack()
    inside_fixed = good[:12] + struct.pack("<H", 64 + 10) + good[14:]
    with pytest.raises(MalformedMessage):
        SessionSetupRequest.unpack(inside_fixed)
    too_long = good[:14] + struct.pack("<H", 6) + good[16:]
    with pytest.raises(MalformedMessage):
        SessionSetupRequest.unpack(too_long)


def test_negotiate_request_needs_dialects() -> None:
    body = bytearray(NegotiateRequest((0x0202,)).pack())
    body[2:4] = b"\x00\x00"
    with pytest.raises(MalformedMessage, match="DialectCount"):
        NegotiateRequest.unpack(bytes(body))
    body[2:4] = b"\x05\x00"
    with pytest.raises(MalformedMessage):
        NegotiateRequest.unpack(bytes(body))


def test_negotiate_context_rules() -> None:
    request = NegotiateRequest((0x0311,), negotiate_contexts=(EncryptionCapabilities((1,)),))
    packed = request.pack()
    misaligned = packed[:28] + struct.pack("<I", 64 + 40 - 2) + packed[32:]
    with pytest.raises(MalformedMessage):
        NegotiateRequest.unpack(misaligned)
    zero_ciphers = packed[:-4] + b"\x00\x00" + packed[-2:]
    with pytest.raises(MalformedMessage):
        NegotiateRequest.unpack(zero_ciphers)
    twice = NegotiateRequest((0x0311,), negotiate_contexts=(EncryptionCapabilities((1,)),) * 2).pack()
    with pytest.raises(MalformedMessage, match="twice"):
        NegotiateRequest.unpack(twice)
    count_too_big = packed[:32] + struct.pack("<H", 2) + packed[34:]
    with pytest.raises(MalformedMessage):
        NegotiateRequest.unpack(count_too_big)


def test_contexts_are_8_byte_aligned() -> None:
    request = NegotiateRequest(
        (0x0202, 0x0311),
        negotiate_contexts=(NetnameNegotiateContextId("abc"), EncryptionCapabilities((2, 1))),
    )
    packed = request.pack()
    (offset,) = struct.unpack_from("<I", packed, 28)
    assert offset % 8 == 0 and offset == 64 + 40
    second = offset - 64 + 8 + 6  # netname data is 6 bytes
    assert packed[second : second + 2] == b"\x00\x00"  # padding before the next context
    assert packed[second + 2 : second + 4] == b"\x02\x00"


def test_error_response_carries_one_byte_of_error_data() -> None:
    assert ErrorResponse().pack() == b"\x09\x00\x00\x00\x00\x00\x00\x00\x00"
    header = Smb2Header(
        Command.SESSION_SETUP, HeaderFlags.SERVER_TO_REDIR, status=NtStatus.STATUS_LOGON_FAILURE
    )
    _, body = parse_message(header.pack() + ErrorResponse().pack())
    assert body == ErrorResponse()
    more = Smb2Header(
        Command.SESSION_SETUP, HeaderFlags.SERVER_TO_REDIR, status=NtStatus.STATUS_MORE_PROCESSING_REQUIRED
    )
    _, body = parse_message(more.pack() + SessionSetupResponse(b"x").pack())
    assert body == SessionSetupResponse(b"x")


def test_tree_connect_path_utf16() -> None:
    request = TreeConnectRequest("\\\\server\\šhare")
    assert TreeConnectRequest.unpack(request.pack()) == request
    odd = request.pack()[:6] + struct.pack("<H", 3) + request.pack()[8:]
    with pytest.raises(MalformedMessage):
        TreeConnectRequest.unpack(odd)


def test_smb1_negotiate_round_trip_and_selection() -> None:
    request = Smb1NegotiateRequest(("NT LM 0.12", "SMB 2.002"))
    parsed = Smb1NegotiateRequest.unpack(request.pack())
    assert parsed == request
    assert select_smb1_upgrade_dialect(parsed, [Dialect.SMB2_0_2, Dialect.SMB3_1_1]) == Dialect.SMB2_0_2
    assert select_smb1_upgrade_dialect(parsed, [Dialect.SMB3_1_1]) is None
    only_nt1 = Smb1NegotiateRequest(("NT LM 0.12",))
    assert only_nt1.smb2_dialects() == ()
    wildcard = Smb1NegotiateRequest(("SMB 2.002", "SMB 2.???"))
    assert select_smb1_upgrade_dialect(wildcard, [Dialect.SMB2_0_2]) == Dialect.SMB2_0_2
    assert select_smb1_upgrade_dialect(wildcard, [Dialect.SMB2_1]) == Dialect.SMB2_WILDCARD
    with pytest.raises(MalformedMessage):
        Smb1NegotiateRequest.unpack(request.pack()[:-1])  # last string lost its NUL


# --- compounding ------------------------------------------------------------------------------------


def test_compound_split_and_join() -> None:
    first = Smb2Header(Command.TREE_CONNECT, message_id=1).pack() + TreeConnectRequest("\\\\s\\a").pack()
    second = (
        Smb2Header(Command.ECHO, HeaderFlags.RELATED_OPERATIONS, message_id=2).pack() + EchoRequest().pack()
    )
    packet = join_compound([first, second])
    parts = split_compound(packet)
    assert [p.header.command for p in parts] == [Command.TREE_CONNECT, Command.ECHO]
    assert parts[0].header.next_command % 8 == 0
    assert parts[0].raw[len(first) :] == bytes(len(parts[0].raw) - len(first))
    assert parts[1].raw == second
    bad = packet[:20] + struct.pack("<I", parts[0].header.next_command + 4) + packet[24:]
    with pytest.raises(MalformedMessage, match="aligned|past"):
        split_compound(bad)


# --- framing ----------------------------------------------------------------------------------------


@given(st.lists(st.binary(max_size=300), max_size=5), st.data())
def test_frame_reader_reassembles_any_split(payloads: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(frame(p) for p in payloads)
    reader = FrameReader()
    out: list[bytes] = []
    pos = 0
    while pos < len(stream):
        step = data.draw(st.integers(1, 50))
        out += reader.feed(stream[pos : pos + step])
        pos += step
    assert out == payloads and reader.pending == 0


def test_frame_reader_rejects_bad_frames() -> None:
    with pytest.raises(MalformedMessage):
        FrameReader().feed(b"\x01\x00\x00\x04abcd")
    reader = FrameReader(max_size=1024)
    with pytest.raises(MalformedMessage, match="exceeds"):
        reader.feed(b"\x00\x00\x04\x01")  # 1025 bytes announced: refused before any body is buffered
    assert frame(b"abc") == b"\x00\x00\x00\x03abc"
    with pytest.raises(ValueError):
        frame(bytes(0x1000000))


# --- signing and encryption round trips ---------------------------------------------------------------


@given(
    headers(), st.binary(max_size=100), st.sampled_from(SigningAlgorithm), st.binary(min_size=16, max_size=16)
)
def test_sign_verify_round_trip(
    header: Smb2Header, body: bytes, algorithm: SigningAlgorithm, key: bytes
) -> None:
    signed = sign(header.pack() + body, key, algorithm)
    assert Smb2Header.unpack(signed).is_signed
    assert verify(signed, key, algorithm)
    flipped = (
        signed[:-1] + bytes([signed[-1] ^ 0x80])
        if body
        else signed[:30] + bytes([signed[30] ^ 1]) + signed[31:]
    )
    assert not verify(flipped, key, algorithm)


def test_gmac_nonce_role_bits() -> None:
    """MS-SMB2 3.1.4.1: nonce = MessageId (8 bytes LE) || 4 bytes, bit 0 = response, bit 1 = CANCEL."""
    request = Smb2Header(Command.ECHO, message_id=7).pack()
    response = Smb2Header(Command.ECHO, HeaderFlags.SERVER_TO_REDIR, message_id=7).pack()
    cancel = Smb2Header(Command.CANCEL, message_id=7).pack()
    assert gmac_nonce(request) == bytes.fromhex("0700000000000000 00000000")
    assert gmac_nonce(response) == bytes.fromhex("0700000000000000 01000000")
    assert gmac_nonce(cancel) == bytes.fromhex("0700000000000000 02000000")


@given(st.binary(min_size=64, max_size=200), st.sampled_from(Cipher), st.data())
def test_encrypt_decrypt_round_trip(message: bytes, cipher: Cipher, data: st.DataObject) -> None:
    key_size = 32 if cipher in (Cipher.AES_256_CCM, Cipher.AES_256_GCM) else 16
    key = data.draw(st.binary(min_size=key_size, max_size=key_size))
    nonce_size = 11 if cipher in (Cipher.AES_128_CCM, Cipher.AES_256_CCM) else 12
    nonce = data.draw(st.binary(min_size=nonce_size, max_size=nonce_size))
    out = encrypt(message, key, cipher, 0x1234, nonce)
    header, plain = decrypt(out, key, cipher)
    assert plain == message and header.session_id == 0x1234
    assert header.nonce == nonce + bytes(16 - nonce_size)
    tampered = out[:-1] + bytes([out[-1] ^ 1])
    with pytest.raises(MalformedMessage):
        decrypt(tampered, key, cipher)
    aad_tampered = out[:44] + bytes([out[44] ^ 1]) + out[45:]  # SessionId is authenticated
    with pytest.raises(MalformedMessage):
        decrypt(aad_tampered, key, cipher)


def test_transform_header_size_checked() -> None:
    out = encrypt(bytes(64), bytes(16), Cipher.AES_128_GCM, 1, bytes(12))
    with pytest.raises(MalformedMessage, match="OriginalMessageSize"):
        TransformHeader.unpack(out[:-1])
