"""Codec properties (hypothesis): unpack(pack(x)) == x, and arbitrary bytes raise only MalformedMessage."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smb2auth.errors import MalformedMessage
from smb2auth.ntlm.messages import (
    SIGNATURE,
    AuthenticateMessage,
    AvId,
    AvPair,
    ChallengeMessage,
    NegotiateMessage,
    NtlmV2ClientChallenge,
    NtlmV2Response,
    SingleHostData,
    Version,
    encode_string,
    message_type,
)
from smb2auth.ntlm.messages import NegotiateFlags as F

oem_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)
uni_text = st.text(max_size=20)
u32 = st.integers(0, 2**32 - 1)
versions = st.builds(
    Version, st.integers(0, 255), st.integers(0, 255), st.integers(0, 65535), st.integers(0, 255)
)
av_pairs = st.lists(
    st.builds(AvPair, st.sampled_from([a for a in AvId if a != AvId.MsvAvEOL]), st.binary(max_size=40)),
    max_size=6,
).map(tuple)


@given(u32, oem_text, oem_text, st.none() | versions)
def test_negotiate_round_trip(flags: int, domain: str, ws: str, version: Version | None) -> None:
    flags = (
        flags | F.NTLMSSP_NEGOTIATE_VERSION if version is not None else flags & ~F.NTLMSSP_NEGOTIATE_VERSION
    )
    msg = NegotiateMessage(flags, domain, ws, version)
    assert NegotiateMessage.unpack(msg.pack()) == msg


@given(u32, st.binary(min_size=8, max_size=8), uni_text, st.none() | av_pairs, st.none() | versions)
def test_challenge_round_trip(
    flags: int, sc: bytes, name: str, info: tuple[AvPair, ...] | None, version: Version | None
) -> None:
    flags |= F.NTLMSSP_NEGOTIATE_UNICODE
    flags = (
        flags | F.NTLMSSP_NEGOTIATE_VERSION if version is not None else flags & ~F.NTLMSSP_NEGOTIATE_VERSION
    )
    msg = ChallengeMessage(flags, sc, name, info or None, version)
    assert ChallengeMessage.unpack(msg.pack()) == msg


@given(
    u32,
    st.binary(max_size=30),
    st.binary(max_size=120),
    uni_text,
    uni_text,
    uni_text,
    st.sampled_from([b"", b"k" * 16]),
    st.sampled_from(["none", "version", "mic"]),
    st.booleans(),
)
def test_authenticate_round_trip(
    flags: int, lm: bytes, nt: bytes, dom: str, user: str, ws: str, key: bytes, extra: str, unicode: bool
) -> None:
    if unicode:
        flags |= F.NTLMSSP_NEGOTIATE_UNICODE
    else:
        flags &= ~F.NTLMSSP_NEGOTIATE_UNICODE
        dom, user, ws = (s.encode("cp437", "replace").decode("cp437") for s in (dom, user, ws))
    version = Version() if extra != "none" else None
    mic = b"m" * 16 if extra == "mic" else None
    msg = AuthenticateMessage(flags, lm, nt, dom, user, ws, key, version, mic)
    assert AuthenticateMessage.unpack(msg.pack()) == msg
    if mic is not None:
        assert AuthenticateMessage.unpack(msg.pack(), strict=True) == msg


@given(st.integers(0, 2**64 - 1), st.binary(min_size=8, max_size=8), av_pairs, st.binary(max_size=8))
def test_blob_round_trip(ts: int, cc: bytes, pairs: tuple[AvPair, ...], trailer: bytes) -> None:
    blob = NtlmV2ClientChallenge(ts, cc, pairs, trailer=trailer)
    assert NtlmV2ClientChallenge.unpack(blob.pack()) == blob
    response = NtlmV2Response(b"p" * 16, blob.pack())
    assert NtlmV2Response.unpack(response.pack()) == response


@given(av_pairs)
def test_av_list_ends_with_eol(pairs: tuple[AvPair, ...]) -> None:
    packed = AvPair.pack_all(pairs)
    assert packed.endswith(b"\x00\x00\x00\x00")
    assert AvPair.unpack_all(packed) == pairs


def _only_malformed(parser: object, data: bytes) -> None:
    with contextlib.suppress(MalformedMessage):
        parser(data)  # type: ignore[operator]


prefixed = st.integers(1, 3).flatmap(
    lambda t: st.binary(max_size=200).map(lambda b: SIGNATURE + t.to_bytes(4, "little") + b)
)


@given(st.binary(max_size=200) | prefixed)
def test_arbitrary_bytes_raise_only_malformed(data: bytes) -> None:
    for parser in (
        message_type,
        NegotiateMessage.unpack,
        ChallengeMessage.unpack,
        AuthenticateMessage.unpack,
        lambda d: AuthenticateMessage.unpack(d, strict=True),
        NtlmV2ClientChallenge.unpack,
        NtlmV2Response.unpack,
        AvPair.unpack_all,
        SingleHostData.unpack,
    ):
        _only_malformed(parser, data)


def test_mic_detection_from_lowest_offset() -> None:
    msg = AuthenticateMessage(
        F.NTLMSSP_NEGOTIATE_UNICODE, b"\x00" * 24, b"n" * 60, "D", "U", "W", b"", Version(), b"M" * 16
    )
    assert AuthenticateMessage.unpack(msg.pack()).mic == b"M" * 16
    no_mic = AuthenticateMessage(
        F.NTLMSSP_NEGOTIATE_UNICODE, b"\x00" * 24, b"n" * 60, "D", "U", "W", b"", Version()
    )
    assert AuthenticateMessage.unpack(no_mic.pack()).mic is None


def test_oem_strings_never_fail() -> None:
    msg = AuthenticateMessage(0, b"", b"", "", "", "")
    raw = bytearray(msg.pack())
    raw += bytes(range(128, 256))
    raw[36:44] = (128).to_bytes(2, "little") * 2 + (64).to_bytes(4, "little")
    assert len(AuthenticateMessage.unpack(bytes(raw)).user) == 128


def test_authenticate_strings_in_the_negotiated_charset() -> None:
    """MS-NLMP 3.2.5.1.2: the AUTHENTICATE's strings are in the character set the CHALLENGE settled on.
    wget (Debian 1.21) negotiates OEM, then sets UNICODE in its AUTHENTICATE and sends OEM strings."""
    oem = AuthenticateMessage(int(F.NTLMSSP_NEGOTIATE_OEM), b"\x01" * 24, b"\x02" * 24, "DOM", "alice", "WS1")
    data = bytearray(oem.pack())
    data[60:64] = struct.pack("<I", int(F.NTLMSSP_NEGOTIATE_UNICODE | F.NTLMSSP_NEGOTIATE_NTLM))
    decoded = AuthenticateMessage.unpack(bytes(data), int(F.NTLMSSP_NEGOTIATE_OEM))
    assert (decoded.domain, decoded.user, decoded.workstation) == ("DOM", "alice", "WS1")
    assert decoded.flags & F.NTLMSSP_NEGOTIATE_UNICODE
    # by its own flags, "DOM" (3 bytes) is odd-length UTF-16
    with pytest.raises(MalformedMessage, match="odd-length UTF-16 DomainName"):
        AuthenticateMessage.unpack(bytes(data))


# --- the layout a decoder shows: OFFSETS and payload_fields against what pack() wrote --------------------


responses = st.binary(max_size=60)


@given(u32, oem_text, oem_text, uni_text, responses, responses, st.none() | av_pairs)
def test_offsets_and_payload_fields_match_pack(
    flags: int, domain: str, ws: str, user: str, lm: bytes, nt: bytes, info: tuple[AvPair, ...] | None
) -> None:
    flags |= F.NTLMSSP_NEGOTIATE_VERSION | F.NTLMSSP_NEGOTIATE_UNICODE
    info_bytes = AvPair.pack_all(info) if info is not None else b""
    negotiate = NegotiateMessage(flags, domain, ws, Version())
    challenge = ChallengeMessage(flags, b"c" * 8, user, info, Version())
    authenticate = AuthenticateMessage(flags, lm, nt, domain, user, ws, b"k" * 16, Version(), b"m" * 16)
    messages: list[tuple[NegotiateMessage | ChallengeMessage | AuthenticateMessage, dict[str, bytes]]] = [
        (negotiate, {"DomainName": domain.encode("cp437"), "Workstation": ws.encode("cp437")}),
        (challenge, {"TargetName": encode_string(user, flags), "TargetInfo": info_bytes}),
        (
            authenticate,
            {
                "LmChallengeResponse": lm,
                "NtChallengeResponse": nt,
                "DomainName": encode_string(domain, flags),
                "UserName": encode_string(user, flags),
                "Workstation": encode_string(ws, flags),
                "EncryptedRandomSessionKey": b"k" * 16,
            },
        ),
    ]
    for msg, payloads in messages:
        data = msg.pack()
        assert int.from_bytes(data[msg.OFFSETS["NegotiateFlags"] :][:4], "little") == flags
        assert Version.unpack(data, msg.OFFSETS["Version"]) == Version()
        fields = type(msg).payload_fields(data)
        assert [f.name for f in fields] == list(payloads)
        for f in fields:
            assert f.length == f.max_length == len(payloads[f.name])
            assert data[f.at : f.at + 2] == f.length.to_bytes(2, "little")
            if f.length:
                assert data[f.offset : f.offset + f.length] == payloads[f.name]
    packed = challenge.pack()
    assert packed[ChallengeMessage.OFFSETS["ServerChallenge"] :][:8] == b"c" * 8
    assert packed[ChallengeMessage.OFFSETS["Reserved"] :][:8] == bytes(8)
    assert authenticate.pack()[AuthenticateMessage.OFFSETS["MIC"] :][:16] == b"m" * 16


def test_short_forms_have_fewer_payload_fields() -> None:
    # MS-NLMP 2.2.1.1 / 2.2.1.2: the 16-byte NEGOTIATE and the 32-byte CHALLENGE.
    negotiate = SIGNATURE + (1).to_bytes(4, "little") + (0).to_bytes(4, "little")
    assert NegotiateMessage.payload_fields(negotiate) == ()
    challenge = ChallengeMessage(F.NTLMSSP_NEGOTIATE_UNICODE, b"c" * 8).pack()[:32]
    assert [f.name for f in ChallengeMessage.payload_fields(challenge)] == ["TargetName"]


@given(st.integers(0, 2**64 - 1), st.binary(min_size=8, max_size=8), av_pairs)
def test_blob_offsets_match_pack(ts: int, cc: bytes, pairs: tuple[AvPair, ...]) -> None:
    data = NtlmV2ClientChallenge(ts, cc, pairs, reserved3=7).pack()
    at = NtlmV2ClientChallenge.OFFSETS
    assert (data[at["RespType"]], data[at["HiRespType"]]) == (1, 1)
    assert int.from_bytes(data[at["TimeStamp"] :][:8], "little") == ts
    assert data[at["ChallengeFromClient"] :][:8] == cc
    assert int.from_bytes(data[at["Reserved3"] :][:4], "little") == 7
    assert AvPair.unpack_all(data[at["AvPairs"] :]) == pairs


@given(st.binary(min_size=8, max_size=8), st.binary(min_size=32, max_size=32), u32)
def test_single_host_data_round_trip(custom: bytes, machine: bytes, z4: int) -> None:
    # MS-NLMP 2.2.2.2: Size, Z4, CustomData, MachineID.
    value = SingleHostData(custom, machine, z4=z4)
    data = value.pack()
    assert len(data) == SingleHostData.SIZE and SingleHostData.unpack(data) == value
    assert data[SingleHostData.OFFSETS["MachineID"] :] == machine
    assert data[SingleHostData.OFFSETS["CustomData"] :][:8] == custom


def test_errors_say_where_in_the_message() -> None:
    flags = F.NTLMSSP_NEGOTIATE_UNICODE
    pairs = (AvPair(AvId.MsvAvNbComputerName, b"H\x00"),)
    bad_list = AvPair.pack_all(pairs)[:-4]  # no MsvAvEOL
    challenge = bytearray(ChallengeMessage(flags, b"c" * 8, "T", pairs).pack())
    info_at = int.from_bytes(challenge[44:48], "little")
    challenge[40:44] = (len(bad_list)).to_bytes(2, "little") * 2
    with pytest.raises(MalformedMessage) as err:
        ChallengeMessage.unpack(bytes(challenge))
    assert err.value.reason == "AV_PAIR list does not end with MsvAvEOL"
    assert err.value.offset == info_at + len(bad_list)
    authenticate = bytearray(AuthenticateMessage(flags, b"", b"", "D", "UU", "W").pack())
    user_at = int.from_bytes(authenticate[40:44], "little")
    authenticate[36:40] = (3).to_bytes(2, "little") * 2
    with pytest.raises(MalformedMessage) as err:
        AuthenticateMessage.unpack(bytes(authenticate))
    assert (err.value.reason, err.value.offset) == ("odd-length UTF-16 UserName", user_at)
    with pytest.raises(MalformedMessage) as err:
        AuthenticateMessage.unpack(bytes(authenticate[:65]))
    assert err.value.offset == 28
    assert err.value.reason == "DomainName runs past the end (len 2 at 64, message is 65 bytes)"


def _with_field(data: bytes, at: int, length: int, max_length: int, offset: int | None = None) -> bytes:
    out = bytearray(data)
    struct.pack_into("<HH", out, at, length, max_length)
    if offset is not None:
        struct.pack_into("<I", out, at + 4, offset)
    return bytes(out)


def test_strict_reading_is_smbds() -> None:
    # Samba msrpc_parse (ntlmssp_server_preauth), what smbd answers in tests/hardening/test_negative.py.
    flags = F.NTLMSSP_NEGOTIATE_UNICODE
    msg = AuthenticateMessage(flags, b"\x00" * 24, b"n" * 60, "D", "U", "W", b"k" * 16, Version(), b"M" * 16)
    raw = msg.pack()
    empty_domain = _with_field(raw, 28, 0, 2)  # Len 0, MaxLen 2: not empty to Samba
    assert AuthenticateMessage.unpack(empty_domain).domain == ""
    with pytest.raises(MalformedMessage) as err:
        AuthenticateMessage.unpack(empty_domain, strict=True)
    assert (err.value.reason, err.value.offset) == ("DomainName Len 0 and MaxLen 2 differ", 28)
    # An empty session key field parses whatever its offset says.
    empty_key = AuthenticateMessage.unpack(_with_field(raw, 52, 0, 0, 0xFFFFFFFF), strict=True)
    assert (empty_key.encrypted_random_session_key, empty_key.mic) == (b"", b"M" * 16)
    # A session key field that does not parse: no key, and (Samba's shortest format) no NegotiateFlags (the
    # CHALLENGE's stay), no VERSION, no MIC.
    negotiated = int(F.NTLMSSP_NEGOTIATE_UNICODE | F.NTLMSSP_NEGOTIATE_KEY_EXCH)
    for length, max_length in ((16, 0), (0, 16), (0x7FFE, 0x7FFE)):
        loose = AuthenticateMessage.unpack(_with_field(raw, 52, length, max_length), strict=True)
        assert (loose.encrypted_random_session_key, loose.version, loose.mic) == (b"", None, None)
        assert loose.nt_response == msg.nt_response and loose.flags == flags
        read = AuthenticateMessage.unpack(_with_field(raw, 52, length, max_length), negotiated, strict=True)
        assert read.flags == negotiated
    # VERSION and MIC are read at their fixed offsets even where a payload starts inside them.
    overlapping = bytearray(raw)
    struct.pack_into("<I", overlapping, 28 + 4, 80)  # DomainName now at 80
    read = AuthenticateMessage.unpack(bytes(overlapping), strict=True)
    assert (read.mic, read.version) == (b"M" * 16, Version())
    assert AuthenticateMessage.unpack(bytes(overlapping)).mic is None


def test_blob_fields_read_unchecked_as_samba() -> None:
    # Samba ndr_pull_NTLMv2_CLIENT_CHALLENGE / ndr_pull_AV_PAIR_LIST: RespType and HiRespType are not checked,
    # an MsvAvEOL's value that fits is skipped; the NTProofStr over them refuses a changed one.
    pairs = (AvPair(AvId.MsvAvNbComputerName, b"H\x00"),)
    blob = bytearray(NtlmV2ClientChallenge(1, b"c" * 8, pairs, trailer=b"\x00" * 4).pack())
    blob[0], blob[1] = 2, 0
    eol = NtlmV2ClientChallenge.HEADER_SIZE + 6
    struct.pack_into("<H", blob, eol + 2, 4)  # MsvAvEOL with AvLen 4, over the 4-byte trailer
    read = NtlmV2ClientChallenge.unpack(bytes(blob))
    assert (read.resp_type, read.hi_resp_type, read.av_pairs, read.trailer) == (2, 0, pairs, b"")
    struct.pack_into("<H", blob, eol + 2, 5)  # one byte past the list
    with pytest.raises(MalformedMessage) as err:
        NtlmV2ClientChallenge.unpack(bytes(blob))
    assert err.value.reason == "AV_PAIR MsvAvEOL value runs past the end of the list (len 5)"
