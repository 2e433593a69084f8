"""SMB2 IOCTL (MS-SMB2 2.2.31, 2.2.32) and FSCTL_VALIDATE_NEGOTIATE_INFO (2.2.31.4, 2.2.32.6)."""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import ClassVar

from smb2auth._frozen import quick_init
from smb2auth.smb2._body import align8, bad, buffer_at, check_structure_size
from smb2auth.smb2.header import HEADER_SIZE
from smb2auth.smb2.negotiate import Capabilities, SecurityMode

FSCTL_VALIDATE_NEGOTIATE_INFO = 0x00140204
# MS-SMB2 2.2.31: FileId {0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF} for control codes that name no open.
NO_FILE_ID = b"\xff" * 16


class IoctlFlags(enum.IntFlag):
    """MS-SMB2 2.2.31: Flags of an IOCTL request."""

    IS_IOCTL = 0x00000000
    IS_FSCTL = 0x00000001


@quick_init
@dataclass(frozen=True)
class IoctlRequest:
    """MS-SMB2 2.2.31: SMB2 IOCTL Request; `input` and `output` are the Buffer's parts, the input first."""

    ctl_code: int
    input: bytes = b""
    file_id: bytes = NO_FILE_ID
    max_input_response: int = 0
    max_output_response: int = 0
    flags: IoctlFlags = IoctlFlags.IS_FSCTL
    output: bytes = b""

    STRUCTURE_SIZE: ClassVar[int] = 57
    _FIXED: ClassVar[struct.Struct] = struct.Struct("<HHI16sIIIIIIII")

    def __post_init__(self) -> None:
        if len(self.file_id) != 16:
            raise ValueError("file_id must be 16 bytes")

    def pack(self) -> bytes:
        in_offset = HEADER_SIZE + self._FIXED.size
        pad = bytes(align8(len(self.input)) - len(self.input)) if self.output else b""
        # With no output Samba's smb2cli_ioctl points OutputOffset at the buffer (MS-SMB2 2.2.31 allows 0).
        out_offset = in_offset + len(self.input) + len(pad) if self.output else in_offset
        fixed = self._FIXED.pack(
            self.STRUCTURE_SIZE,
            0,
            self.ctl_code,
            self.file_id,
            in_offset,
            len(self.input),
            self.max_input_response,
            out_offset,
            len(self.output),
            self.max_output_response,
            self.flags,
            0,
        )
        return fixed + self.input + pad + self.output

    @classmethod
    def unpack(cls, body: bytes) -> IoctlRequest:
        check_structure_size(body, cls.STRUCTURE_SIZE, "IOCTL request")
        if len(body) < cls._FIXED.size:
            raise bad(f"IOCTL request: {len(body)} bytes, fixed part needs {cls._FIXED.size}", HEADER_SIZE)
        fields = cls._FIXED.unpack_from(body)
        _, _, ctl_code, file_id, in_off, in_count, max_in, out_off, out_count, max_out, flags, _ = fields
        # MS-SMB2 3.3.5.15: Input and Output buffers lie after the fixed part, inside the message.
        data = buffer_at(body, in_off, in_count, cls._FIXED.size, "IOCTL request input")
        output = buffer_at(body, out_off, out_count, cls._FIXED.size, "IOCTL request output")
        return cls(ctl_code, data, file_id, max_in, max_out, IoctlFlags(flags), output)


@quick_init
@dataclass(frozen=True)
class IoctlResponse:
    """MS-SMB2 2.2.32: SMB2 IOCTL Response; `output` holds the control code's answer."""

    ctl_code: int
    output: bytes = b""
    file_id: bytes = NO_FILE_ID
    input: bytes = b""
    flags: int = 0

    STRUCTURE_SIZE: ClassVar[int] = 49
    _FIXED: ClassVar[struct.Struct] = struct.Struct("<HHI16sIIIIII")

    def __post_init__(self) -> None:
        if len(self.file_id) != 16:
            raise ValueError("file_id must be 16 bytes")

    def pack(self) -> bytes:
        in_offset = HEADER_SIZE + self._FIXED.size
        pad = bytes(align8(len(self.input)) - len(self.input)) if self.output else b""
        out_offset = in_offset + len(self.input) + len(pad)
        fixed = self._FIXED.pack(
            self.STRUCTURE_SIZE,
            0,
            self.ctl_code,
            self.file_id,
            in_offset,
            len(self.input),
            out_offset,
            len(self.output),
            self.flags,
            0,
        )
        return fixed + self.input + pad + self.output

    @classmethod
    def unpack(cls, body: bytes) -> IoctlResponse:
        check_structure_size(body, cls.STRUCTURE_SIZE, "IOCTL response")
        if len(body) < cls._FIXED.size:
            raise bad(f"IOCTL response: {len(body)} bytes, fixed part needs {cls._FIXED.size}", HEADER_SIZE)
        _, _, ctl_code, file_id, in_off, in_count, out_off, out_count, flags, _ = cls._FIXED.unpack_from(body)
        # MS-SMB2 2.2.32: Input and Output buffers lie after the fixed part, inside the message.
        data = buffer_at(body, in_off, in_count, cls._FIXED.size, "IOCTL response input")
        output = buffer_at(body, out_off, out_count, cls._FIXED.size, "IOCTL response output")
        return cls(ctl_code, output, file_id, data, flags)


_VALIDATE = struct.Struct("<I16sHH")


@quick_init
@dataclass(frozen=True)
class ValidateNegotiateInfoRequest:
    """MS-SMB2 2.2.31.4: VALIDATE_NEGOTIATE_INFO Request, the input of FSCTL_VALIDATE_NEGOTIATE_INFO: what the
    client's NEGOTIATE request said."""

    capabilities: Capabilities
    client_guid: bytes
    security_mode: SecurityMode
    dialects: tuple[int, ...]

    SIZE: ClassVar[int] = _VALIDATE.size

    def __post_init__(self) -> None:
        if len(self.client_guid) != 16:
            raise ValueError("client_guid must be 16 bytes")

    def pack(self) -> bytes:
        fixed = _VALIDATE.pack(self.capabilities, self.client_guid, self.security_mode, len(self.dialects))
        return fixed + struct.pack(f"<{len(self.dialects)}H", *self.dialects)

    @classmethod
    def unpack(cls, data: bytes) -> ValidateNegotiateInfoRequest:
        if len(data) < _VALIDATE.size:
            raise bad(f"VALIDATE_NEGOTIATE_INFO request: {len(data)} bytes, needs {_VALIDATE.size}")
        capabilities, guid, mode, count = _VALIDATE.unpack_from(data)
        if len(data) < _VALIDATE.size + 2 * count:
            raise bad(f"VALIDATE_NEGOTIATE_INFO request: {count} Dialects run past the input")
        dialects = struct.unpack_from(f"<{count}H", data, _VALIDATE.size)
        return cls(Capabilities(capabilities), guid, SecurityMode(mode), tuple(dialects))


@quick_init
@dataclass(frozen=True)
class ValidateNegotiateInfoResponse:
    """MS-SMB2 2.2.32.6: VALIDATE_NEGOTIATE_INFO Response, the output of FSCTL_VALIDATE_NEGOTIATE_INFO: what
    the server's NEGOTIATE response said."""

    capabilities: Capabilities
    server_guid: bytes
    security_mode: SecurityMode
    dialect: int

    SIZE: ClassVar[int] = _VALIDATE.size

    def __post_init__(self) -> None:
        if len(self.server_guid) != 16:
            raise ValueError("server_guid must be 16 bytes")

    def pack(self) -> bytes:
        return _VALIDATE.pack(self.capabilities, self.server_guid, self.security_mode, self.dialect)

    @classmethod
    def unpack(cls, data: bytes) -> ValidateNegotiateInfoResponse:
        if len(data) != _VALIDATE.size:
            # MS-SMB2 2.2.32.6: exactly 24 bytes (Samba smb2cli_validate_negotiate_info_done checks the same).
            raise bad(f"VALIDATE_NEGOTIATE_INFO response: {len(data)} bytes, expected {_VALIDATE.size}")
        capabilities, guid, mode, dialect = _VALIDATE.unpack(data)
        return cls(Capabilities(capabilities), guid, SecurityMode(mode), dialect)

