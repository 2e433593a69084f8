"""The SMB2 bodies of no particular command: ECHO (MS-SMB2 2.2.28, 2.2.29), ERROR (2.2.2), and the raw body of
a command this package does not interpret."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import ClassVar

from smb2auth._frozen import quick_init
from smb2auth.smb2._body import U16, FourByteBody, bad, check_structure_size
from smb2auth.smb2.header import HEADER_SIZE


@quick_init
@dataclass(frozen=True)
class EchoRequest(FourByteBody):
    """MS-SMB2 2.2.28: SMB2 ECHO Request."""

    NAME: ClassVar[str] = "ECHO request"


@quick_init
@dataclass(frozen=True)
class EchoResponse(FourByteBody):
    """MS-SMB2 2.2.29: SMB2 ECHO Response."""

    NAME: ClassVar[str] = "ECHO response"


@quick_init
@dataclass(frozen=True)
class ErrorResponse:
    """MS-SMB2 2.2.2: SMB2 ERROR Response. With no error data one zero byte is sent, as Windows and Samba do;
    `error_data` holds ByteCount bytes (error contexts for 3.1.1 when `error_context_count` > 0)."""

    error_data: bytes = b""
    error_context_count: int = 0

    STRUCTURE_SIZE: ClassVar[int] = 9
    _FIXED: ClassVar[struct.Struct] = struct.Struct("<HBBI")

    def pack(self) -> bytes:
        fixed = self._FIXED.pack(self.STRUCTURE_SIZE, self.error_context_count, 0, len(self.error_data))
        return fixed + (self.error_data or b"\x00")

    @classmethod
    def unpack(cls, body: bytes) -> ErrorResponse:
        check_structure_size(body, cls.STRUCTURE_SIZE, "ERROR response")
        _, context_count, _, byte_count = cls._FIXED.unpack_from(body)
        if cls._FIXED.size + byte_count > len(body):
            raise bad("ERROR response: ByteCount runs past the message", HEADER_SIZE + 4)
        return cls(body[cls._FIXED.size : cls._FIXED.size + byte_count], context_count)


@dataclass(frozen=True)
class RawBody:
    """A body this package does not interpret (CREATE, READ, ...): its StructureSize and bytes."""

    structure_size: int
    data: bytes = field(repr=False)

    def pack(self) -> bytes:
        return self.data

    @classmethod
    def unpack(cls, body: bytes) -> RawBody:
        if len(body) < 2:
            raise bad("body too short for StructureSize", HEADER_SIZE)
        return cls(U16.unpack_from(body)[0], body)
