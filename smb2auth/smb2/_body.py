"""What every SMB2 body codec shares (MS-SMB2 2.2): offsets on the wire count from the start of the SMB2
header and every body starts 64 bytes after it, so `pack()` and `unpack()` take and return the body alone and
convert offsets with `HEADER_SIZE`."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from smb2auth._frozen import quick_init
from smb2auth.errors import MalformedMessage
from smb2auth.smb2.header import HEADER_SIZE
from smb2auth.status import NtStatus

U16 = struct.Struct("<H")


def bad(message: str, offset: int | None = None) -> MalformedMessage:
    return MalformedMessage(message, offset=offset, status=NtStatus.STATUS_INVALID_PARAMETER)


def check_structure_size(body: bytes, expected: int, name: str) -> None:
    if len(body) < 2:
        raise bad(f"{name}: body too short for StructureSize", HEADER_SIZE)
    (size,) = U16.unpack_from(body)
    if size != expected:
        # MS-SMB2 3.3.5.2.6: a wrong StructureSize is answered STATUS_INVALID_PARAMETER.
        raise bad(f"{name}: StructureSize {size}, expected {expected}", HEADER_SIZE)
    if len(body) < expected - (expected & 1):
        raise bad(f"{name}: {len(body)} bytes, fixed part needs {expected & ~1}", HEADER_SIZE)


def check_request_size(body: bytes, expected: int, name: str) -> None:
    """check_structure_size for a request: an odd StructureSize counts the first byte of the variable part
    (MS-SMB2 2.2.5, 2.2.9), which Samba smbd_smb2_request_verify_sizes requires to be there."""
    check_structure_size(body, expected, name)
    if len(body) < expected:
        raise bad(f"{name}: {len(body)} bytes, StructureSize {expected} needs {expected}", HEADER_SIZE)


def buffer_at(body: bytes, offset: int, length: int, fixed: int, name: str) -> bytes:
    """The buffer at header-relative `offset`; MS-SMB2 2.2: it lies after the fixed part, in the message."""
    if length == 0:
        return b""
    start = offset - HEADER_SIZE
    if start < fixed or start + length > len(body):
        raise bad(f"{name}: buffer {offset}+{length} outside the message", HEADER_SIZE + fixed)
    return body[start : start + length]


def align8(n: int) -> int:
    return (n + 7) & ~7


def utf16(data: bytes, name: str) -> str:
    if len(data) % 2:
        raise bad(f"{name}: odd-length UTF-16 string")
    try:
        return data.decode("utf-16-le")
    except UnicodeDecodeError:
        raise bad(f"{name}: invalid UTF-16") from None



_FOUR_BYTES = struct.Struct("<HH")
_FourByteT = TypeVar("_FourByteT", bound="FourByteBody")


@quick_init
@dataclass(frozen=True)
class FourByteBody:
    """A body that is StructureSize 4 and two reserved bytes (LOGOFF, TREE_DISCONNECT, ECHO)."""

    STRUCTURE_SIZE: ClassVar[int] = 4
    NAME: ClassVar[str] = ""

    def pack(self) -> bytes:
        return _FOUR_BYTES.pack(self.STRUCTURE_SIZE, 0)

    @classmethod
    def unpack(cls: type[_FourByteT], body: bytes) -> _FourByteT:
        check_structure_size(body, cls.STRUCTURE_SIZE, cls.NAME)
        return cls()
