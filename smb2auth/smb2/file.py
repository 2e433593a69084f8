"""SMB2 CREATE, CLOSE and READ (MS-SMB2 2.2.13 - 2.2.16, 2.2.19, 2.2.20), as far as opening a named pipe
on IPC$ and reading it needs: no create contexts, no read channel."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

from smb2auth._frozen import quick_init
from smb2auth.smb2._body import bad, buffer_at, check_structure_size, utf16
from smb2auth.smb2.header import HEADER_SIZE

# MS-SMB2 2.2.13 / MS-FSCC 2.4: what an RPC client asks of a pipe (as Samba's and Windows' clients do)
PIPE_ACCESS = 0x0012019F  # read/write data and attributes, EA, READ_CONTROL, SYNCHRONIZE
SHARE_READ_WRITE_DELETE = 0x00000007
FILE_OPEN = 0x00000001
FILE_NON_DIRECTORY_FILE = 0x00000040
IMPERSONATION = 0x00000002
FSCTL_PIPE_TRANSCEIVE = 0x0011C017  # MS-FSCC 2.3.49


@quick_init
@dataclass(frozen=True)
class CreateRequest:
    """MS-SMB2 2.2.13: SMB2 CREATE Request without create contexts."""

    name: str
    desired_access: int = PIPE_ACCESS
    share_access: int = SHARE_READ_WRITE_DELETE
    disposition: int = FILE_OPEN
    options: int = FILE_NON_DIRECTORY_FILE
    impersonation: int = IMPERSONATION
    attributes: int = 0
    oplock: int = 0

    STRUCTURE_SIZE: ClassVar[int] = 57
    _FIXED: ClassVar[struct.Struct] = struct.Struct("<HBBIQQIIIIIHHII")

    def pack(self) -> bytes:
        name = self.name.encode("utf-16-le")
        fixed = self._FIXED.pack(
            self.STRUCTURE_SIZE, 0, self.oplock, self.impersonation, 0, 0, self.desired_access,
            self.attributes, self.share_access, self.disposition, self.options,
            HEADER_SIZE + self._FIXED.size, len(name), 0, 0,
        )
        # MS-SMB2 2.2.13: the Buffer is at least one byte, even for an empty name
        return fixed + (name or b"\x00")

    @classmethod
    def unpack(cls, body: bytes) -> CreateRequest:
        check_structure_size(body, cls.STRUCTURE_SIZE, "CREATE request")
        (_, _, oplock, impersonation, _, _, access, attributes, share, disposition, options, name_offset,
         name_length, _, _) = cls._FIXED.unpack_from(body)
        name = utf16(buffer_at(body, name_offset, name_length, cls._FIXED.size, "CREATE name"), "CREATE name")
        return cls(name, access, share, disposition, options, impersonation, attributes, oplock)


@quick_init
@dataclass(frozen=True)
class CreateResponse:
    """MS-SMB2 2.2.14: SMB2 CREATE Response (create contexts not kept)."""

    file_id: bytes
    create_action: int = 1
    attributes: int = 0x80
    end_of_file: int = 0
    oplock: int = 0

    STRUCTURE_SIZE: ClassVar[int] = 89
    _FIXED: ClassVar[struct.Struct] = struct.Struct("<HBBIQQQQQQII16sII")

    def __post_init__(self) -> None:
        if len(self.file_id) != 16:
            raise ValueError("file_id must be 16 bytes")

    def pack(self) -> bytes:
        return self._FIXED.pack(self.STRUCTURE_SIZE, self.oplock, 0, self.create_action, 0, 0, 0, 0, 0,
                                self.end_of_file, self.attributes, 0, self.file_id, 0, 0) + b"\x00"

    @classmethod
    def unpack(cls, body: bytes) -> CreateResponse:
        check_structure_size(body, cls.STRUCTURE_SIZE, "CREATE response")
        if len(body) < cls._FIXED.size:
            raise bad(f"CREATE response: {len(body)} bytes, fixed part needs {cls._FIXED.size}", HEADER_SIZE)
        fields = cls._FIXED.unpack_from(body)
        return cls(fields[12], fields[3], fields[10], fields[9], fields[1])


@quick_init
@dataclass(frozen=True)
class CloseRequest:
    """MS-SMB2 2.2.15."""

    file_id: bytes
    flags: int = 0

    STRUCTURE_SIZE: ClassVar[int] = 24
    _FIXED: ClassVar[struct.Struct] = struct.Struct("<HHI16s")

    def __post_init__(self) -> None:
        if len(self.file_id) != 16:
            raise ValueError("file_id must be 16 bytes")

    def pack(self) -> bytes:
        return self._FIXED.pack(self.STRUCTURE_SIZE, self.flags, 0, self.file_id)

    @classmethod
    def unpack(cls, body: bytes) -> CloseRequest:
        check_structure_size(body, cls.STRUCTURE_SIZE, "CLOSE request")
        _, flags, _, file_id = cls._FIXED.unpack_from(body)
        return cls(file_id, flags)


@quick_init
@dataclass(frozen=True)
class CloseResponse:
    """MS-SMB2 2.2.16 (the attributes are not kept: SMB2_CLOSE_FLAG_POSTQUERY_ATTRIB is never asked)."""

    flags: int = 0

    STRUCTURE_SIZE: ClassVar[int] = 60
    _FIXED: ClassVar[struct.Struct] = struct.Struct("<HHIQQQQQQI")

    def pack(self) -> bytes:
        return self._FIXED.pack(self.STRUCTURE_SIZE, self.flags, 0, 0, 0, 0, 0, 0, 0, 0)

    @classmethod
    def unpack(cls, body: bytes) -> CloseResponse:
        check_structure_size(body, cls.STRUCTURE_SIZE, "CLOSE response")
        return cls(cls._FIXED.unpack_from(body)[1])


@quick_init
@dataclass(frozen=True)
class ReadRequest:
    """MS-SMB2 2.2.19, without a read channel."""

    file_id: bytes
    length: int
    offset: int = 0
    minimum: int = 0

    STRUCTURE_SIZE: ClassVar[int] = 49
    _FIXED: ClassVar[struct.Struct] = struct.Struct("<HBBIQ16sIIIHH")

    def __post_init__(self) -> None:
        if len(self.file_id) != 16:
            raise ValueError("file_id must be 16 bytes")

    def pack(self) -> bytes:
        # MS-SMB2 2.2.19: the Buffer is one byte when there is no channel info
        return self._FIXED.pack(self.STRUCTURE_SIZE, 0, 0, self.length, self.offset, self.file_id,
                                self.minimum, 0, 0, 0, 0) + b"\x00"

    @classmethod
    def unpack(cls, body: bytes) -> ReadRequest:
        check_structure_size(body, cls.STRUCTURE_SIZE, "READ request")
        _, _, _, length, offset, file_id, minimum, _, _, _, _ = cls._FIXED.unpack_from(body)
        return cls(file_id, length, offset, minimum)


@quick_init
@dataclass(frozen=True)
class ReadResponse:
    """MS-SMB2 2.2.20."""

    data: bytes
    remaining: int = 0

    STRUCTURE_SIZE: ClassVar[int] = 17
    _FIXED: ClassVar[struct.Struct] = struct.Struct("<HBBIII")

    def pack(self) -> bytes:
        offset = HEADER_SIZE + self._FIXED.size
        return self._FIXED.pack(self.STRUCTURE_SIZE, offset, 0, len(self.data), self.remaining, 0) + (
            self.data or b"\x00")

    @classmethod
    def unpack(cls, body: bytes) -> ReadResponse:
        check_structure_size(body, cls.STRUCTURE_SIZE, "READ response")
        _, offset, _, length, remaining, _ = cls._FIXED.unpack_from(body)
        return cls(buffer_at(body, offset, length, cls._FIXED.size, "READ data"), remaining)
