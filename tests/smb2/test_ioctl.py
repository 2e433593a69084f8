"""IOCTL and FSCTL_VALIDATE_NEGOTIATE_INFO codec (MS-SMB2 2.2.31, 2.2.31.4, 2.2.32, 2.2.32.6): layout, bounds,
round trips and arbitrary bytes."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smb2auth.errors import MalformedMessage
from smb2auth.smb2 import (
    FSCTL_VALIDATE_NEGOTIATE_INFO,
    NO_FILE_ID,
    Capabilities,
    Dialect,
    IoctlFlags,
    IoctlRequest,
    IoctlResponse,
    NtStatus,
    SecurityMode,
    ValidateNegotiateInfoRequest,
    ValidateNegotiateInfoResponse,
)

guid = st.binary(min_size=16, max_size=16)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)

validate_requests = st.builds(
    ValidateNegotiateInfoRequest,
    st.builds(Capabilities, u32),
    guid,
    st.builds(SecurityMode, u16),
    st.lists(u16, max_size=8).map(tuple),
)
validate_responses = st.builds(
    ValidateNegotiateInfoResponse, st.builds(Capabilities, u32), guid, st.builds(SecurityMode, u16), u16
)


def test_validate_request_layout() -> None:
    # MS-SMB2 2.2.31.4 field layout, and 2.2.31 for the IOCTL carrying it (values as Samba's
    # smb2cli_validate_negotiate_info sends: FileId all ones, MaxOutputResponse 24, IS_FSCTL).
    info = ValidateNegotiateInfoRequest(
        Capabilities.DFS | Capabilities.LARGE_MTU,
        bytes(range(16)),
        SecurityMode.SIGNING_ENABLED,
        (Dialect.SMB2_0_2, Dialect.SMB3_0, Dialect.SMB3_0_2),
    )
    data = info.pack()
    assert data == struct.pack("<I16sHH3H", 5, bytes(range(16)), 1, 3, 0x0202, 0x0300, 0x0302)
    body = IoctlRequest(FSCTL_VALIDATE_NEGOTIATE_INFO, data, max_output_response=24).pack()
    assert len(body) == 56 + len(data)
    fields = struct.unpack_from("<HHI16sIIIIIIII", body)
    assert fields[:4] == (57, 0, 0x00140204, b"\xff" * 16)
    # InputOffset, InputCount, MaxInputResponse, OutputOffset, OutputCount, MaxOutputResponse, Flags
    assert fields[4:11] == (120, len(data), 0, 120, 0, 24, 1)
    assert ValidateNegotiateInfoRequest.unpack(IoctlRequest.unpack(body).input) == info


def test_validate_response_layout() -> None:
    # MS-SMB2 2.2.32 / 2.2.32.6: the answer in Output, right after the 48-byte fixed part (offset 112).
    info = ValidateNegotiateInfoResponse(Capabilities.LARGE_MTU, b"S" * 16, SecurityMode(3), Dialect.SMB3_0_2)
    body = IoctlResponse(FSCTL_VALIDATE_NEGOTIATE_INFO, info.pack()).pack()
    assert struct.unpack_from("<HHI16sIIII", body) == (
        49, 0, FSCTL_VALIDATE_NEGOTIATE_INFO, NO_FILE_ID, 112, 0, 112, 24
    )
    assert ValidateNegotiateInfoResponse.unpack(IoctlResponse.unpack(body).output) == info


@given(validate_requests)
def test_validate_request_round_trip(info: ValidateNegotiateInfoRequest) -> None:
    assert ValidateNegotiateInfoRequest.unpack(info.pack()) == info


@given(validate_responses)
def test_validate_response_round_trip(info: ValidateNegotiateInfoResponse) -> None:
    assert ValidateNegotiateInfoResponse.unpack(info.pack()) == info


@given(
    st.builds(
        IoctlRequest,
        u32,
        st.binary(max_size=64),
        guid,
        u32,
        u32,
        st.builds(IoctlFlags, u32),
        st.binary(max_size=64),
    )
)
def test_ioctl_request_round_trip(request: IoctlRequest) -> None:
    assert IoctlRequest.unpack(request.pack()) == request


@given(st.builds(IoctlResponse, u32, st.binary(max_size=64), guid, st.binary(max_size=64), u32))
def test_ioctl_response_round_trip(response: IoctlResponse) -> None:
    assert IoctlResponse.unpack(response.pack()) == response


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_malformed(data: bytes) -> None:
    for parser in (
        IoctlRequest.unpack,
        IoctlResponse.unpack,
        ValidateNegotiateInfoRequest.unpack,
        ValidateNegotiateInfoResponse.unpack,
    ):
        with contextlib.suppress(MalformedMessage):
            parser(data)
    # With a valid StructureSize in front, the buffer bounds are what is exercised.
    with contextlib.suppress(MalformedMessage):
        IoctlRequest.unpack(struct.pack("<H", 57) + data)
    with contextlib.suppress(MalformedMessage):
        IoctlResponse.unpack(struct.pack("<H", 49) + data)


def _request_with(
    in_off: int, in_count: int, out_off: int = 0, out_count: int = 0, tail: bytes = b""
) -> bytes:
    return struct.pack(
        "<HHI16sIIIIIIII", 57, 0, FSCTL_VALIDATE_NEGOTIATE_INFO, NO_FILE_ID, in_off, in_count, 0, out_off,
        out_count, 24, 1, 0
    ) + tail


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (_request_with(120, 25, tail=bytes(24)), "input runs past the message"),
        (_request_with(64 + 8, 8, tail=bytes(24)), "input inside the fixed part"),
        (_request_with(120, 0, 120, 30, tail=bytes(24)), "output runs past the message"),
        (_request_with(0xFFFFFFFF, 0xFFFFFFFF, tail=bytes(24)), "huge offset and count"),
        (_request_with(120, 0)[:50], "fixed part cut short"),
        (struct.pack("<H", 56) + bytes(70), "wrong StructureSize"),
    ],
)
def test_ioctl_request_bounds(body: bytes, why: str) -> None:
    # MS-SMB2 3.3.5.15: a buffer outside the message is STATUS_INVALID_PARAMETER.
    with pytest.raises(MalformedMessage) as info:
        IoctlRequest.unpack(body)
    assert info.value.status == NtStatus.STATUS_INVALID_PARAMETER, why


def test_validate_bounds() -> None:
    info = ValidateNegotiateInfoRequest(Capabilities(0), bytes(16), SecurityMode(1), (0x0300, 0x0302))
    data = info.pack()
    with pytest.raises(MalformedMessage):
        ValidateNegotiateInfoRequest.unpack(data[:-1])  # DialectCount says 2, one and a half present
    with pytest.raises(MalformedMessage):
        ValidateNegotiateInfoRequest.unpack(data[:23])
    answer = ValidateNegotiateInfoResponse(Capabilities(0), bytes(16), SecurityMode(1), 0x0300).pack()
    for bad in (answer[:23], answer + b"\x00"):
        with pytest.raises(MalformedMessage):
            ValidateNegotiateInfoResponse.unpack(bad)


@pytest.mark.parametrize("name", ["smb202", "smb210", "smb300", "smb302"])
def test_smbclient_validate_negotiate_vectors(name: str) -> None:
    # fixtures/smb2/<name>: smbclient against smbd (fixtures/smb2/README); its FSCTL_VALIDATE_NEGOTIATE_INFO
    # repeats the NEGOTIATE request, and smbd's answer repeats the NEGOTIATE response.
    from smb2auth.smb2 import NegotiateRequest, NegotiateResponse, parse_message
    from tests.smb2.test_fixtures import load, smb2_negotiation

    capture = load(name)
    _, _, negotiate, answer = smb2_negotiation(capture)
    frames = dict(capture.frames)
    assert isinstance(negotiate, NegotiateRequest) and isinstance(answer, NegotiateResponse)
    _, ioctl = parse_message(frames["08_c2s_IOCTL_REQUEST.hex"])
    assert isinstance(ioctl, IoctlRequest) and ioctl.ctl_code == FSCTL_VALIDATE_NEGOTIATE_INFO
    assert ioctl.file_id == NO_FILE_ID and ioctl.flags == IoctlFlags.IS_FSCTL
    assert ioctl.max_output_response == 24
    sent = ValidateNegotiateInfoRequest.unpack(ioctl.input)
    assert sent.client_guid == negotiate.client_guid and sent.dialects == negotiate.dialects
    assert sent.capabilities == negotiate.capabilities and sent.security_mode == negotiate.security_mode
    _, reply = parse_message(frames["09_s2c_IOCTL_RESPONSE.hex"])
    assert isinstance(reply, IoctlResponse) and not reply.input
    got = ValidateNegotiateInfoResponse.unpack(reply.output)
    assert (got.capabilities, got.server_guid, got.security_mode, got.dialect) == (
        answer.capabilities, answer.server_guid, answer.security_mode, answer.dialect_revision
    )
