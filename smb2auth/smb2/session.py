"""SMB2 SESSION_SETUP and LOGOFF (MS-SMB2 2.2.5 - 2.2.8)."""

from __future__ import annotations

import enum
import functools
import struct
from dataclasses import dataclass
from typing import ClassVar

from smb2auth._frozen import quick_init
from smb2auth.smb2._body import FourByteBody, buffer_at, check_request_size, check_structure_size
from smb2auth.smb2.header import HEADER_SIZE
from smb2auth.smb2.negotiate import Capabilities, SecurityMode, capabilities_of, security_mode_of


class SessionSetupFlags(enum.IntFlag):
    """MS-SMB2 2.2.5: Flags."""

    BINDING = 0x01


class SessionFlags(enum.IntFlag):
    """MS-SMB2 2.2.6: SessionFlags (SMB2_SESSION_FLAG_*)."""

    IS_GUEST = 0x0001
    IS_NULL = 0x0002
    ENCRYPT_DATA = 0x0004


# The flags from their wire values through a small cache (an IntFlag call runs in Python; every
# SESSION_SETUP carries them).
_setup_flags = functools.lru_cache(maxsize=64)(SessionSetupFlags)
_session_flags = functools.lru_cache(maxsize=64)(SessionFlags)


@quick_init
@dataclass(frozen=True)
class SessionSetupRequest:
    """MS-SMB2 2.2.5: SMB2 SESSION_SETUP Request; `security_buffer` is the GSS (SPNEGO) token."""

    security_buffer: bytes = b""
    flags: SessionSetupFlags = SessionSetupFlags(0)
    security_mode: SecurityMode = SecurityMode.SIGNING_ENABLED
    capabilities: Capabilities = Capabilities(0)
    channel: int = 0
    previous_session_id: int = 0

    STRUCTURE_SIZE: ClassVar[int] = 25
    _FIXED: ClassVar[struct.Struct] = struct.Struct("<HBBIIHHQ")

    def pack(self) -> bytes:
        return (
            self._FIXED.pack(
                self.STRUCTURE_SIZE,
                self.flags,
                self.security_mode,
                self.capabilities,
                self.channel,
                HEADER_SIZE + self._FIXED.size,
                len(self.security_buffer),
                self.previous_session_id,
            )
            # MS-SMB2 2.2.5: StructureSize 25 counts one byte of the buffer; an empty one goes as a zero byte.
            + (self.security_buffer or b"\x00")
        )

    @classmethod
    def unpack(cls, body: bytes) -> SessionSetupRequest:
        check_request_size(body, cls.STRUCTURE_SIZE, "SESSION_SETUP request")
        _, flags, security_mode, capabilities, channel, offset, length, previous = cls._FIXED.unpack_from(
            body
        )
        buffer = buffer_at(body, offset, length, cls._FIXED.size, "SESSION_SETUP request")
        return cls(
            buffer,
            _setup_flags(flags),
            security_mode_of(security_mode),
            capabilities_of(capabilities),
            channel,
            previous,
        )


@quick_init
@dataclass(frozen=True)
class SessionSetupResponse:
    """MS-SMB2 2.2.6: SMB2 SESSION_SETUP Response."""

    security_buffer: bytes = b""
    session_flags: SessionFlags = SessionFlags(0)

    STRUCTURE_SIZE: ClassVar[int] = 9
    _FIXED: ClassVar[struct.Struct] = struct.Struct("<HHHH")

    def pack(self) -> bytes:
        offset = HEADER_SIZE + self._FIXED.size
        fixed = self._FIXED.pack(self.STRUCTURE_SIZE, self.session_flags, offset, len(self.security_buffer))
        return fixed + self.security_buffer

    @classmethod
    def unpack(cls, body: bytes) -> SessionSetupResponse:
        check_structure_size(body, cls.STRUCTURE_SIZE, "SESSION_SETUP response")
        _, flags, offset, length = cls._FIXED.unpack_from(body)
        buffer = buffer_at(body, offset, length, cls._FIXED.size, "SESSION_SETUP response")
        return cls(buffer, _session_flags(flags))


@quick_init
@dataclass(frozen=True)
class LogoffRequest(FourByteBody):
    """MS-SMB2 2.2.7: SMB2 LOGOFF Request."""

    NAME: ClassVar[str] = "LOGOFF request"


@quick_init
@dataclass(frozen=True)
class LogoffResponse(FourByteBody):
    """MS-SMB2 2.2.8: SMB2 LOGOFF Response."""

    NAME: ClassVar[str] = "LOGOFF response"

