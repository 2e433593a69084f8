"""CREATE / CLOSE / READ codecs (MS-SMB2 2.2.13 - 2.2.20): round trips, and arbitrary bytes raise only
MalformedMessage."""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from smb2auth.errors import MalformedMessage
from smb2auth.smb2.file import (
    CloseRequest,
    CloseResponse,
    CreateRequest,
    CreateResponse,
    ReadRequest,
    ReadResponse,
)

FILE_ID = st.binary(min_size=16, max_size=16)
U32 = st.integers(0, 0xFFFFFFFF)


@given(st.text(max_size=30).filter(lambda t: "\x00" not in t), U32, U32, U32, U32)
def test_create_request_round_trip(
    name: str, access: int, share: int, disposition: int, options: int
) -> None:
    name = name.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    request = CreateRequest(name, access, share, disposition, options)
    assert CreateRequest.unpack(request.pack()) == request


@given(FILE_ID, U32, st.integers(0, 2**64 - 1), st.integers(0, 255))
def test_create_response_round_trip(file_id: bytes, action: int, eof: int, oplock: int) -> None:
    response = CreateResponse(file_id, action, 0x80, eof, oplock)
    assert CreateResponse.unpack(response.pack()) == response


@given(FILE_ID, U32, st.integers(0, 2**64 - 1), st.binary(max_size=100))
def test_close_and_read_round_trip(file_id: bytes, length: int, offset: int, data: bytes) -> None:
    assert CloseRequest.unpack(CloseRequest(file_id, 1).pack()) == CloseRequest(file_id, 1)
    assert CloseResponse.unpack(CloseResponse(1).pack()) == CloseResponse(1)
    read = ReadRequest(file_id, length, offset)
    assert ReadRequest.unpack(read.pack()) == read
    assert ReadResponse.unpack(ReadResponse(data, 3).pack()) == ReadResponse(data, 3)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_malformed(data: bytes) -> None:
    for cls in (CreateRequest, CreateResponse, CloseRequest, CloseResponse, ReadRequest, ReadResponse):
        with contextlib.suppress(MalformedMessage):
            cls.unpack(data)
        with contextlib.suppress(MalformedMessage):
            cls.unpack(cls.STRUCTURE_SIZE.to_bytes(2, "little") + data)
