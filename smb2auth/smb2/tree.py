"""SMB2 TREE_CONNECT and TREE_DISCONNECT (MS-SMB2 2.2.9 - 2.2.12)."""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import ClassVar

from smb2auth._frozen import quick_init
from smb2auth.smb2._body import FourByteBody, bad, buffer_at, check_request_size, check_structure_size, utf16
from smb2auth.smb2.header import HEADER_SIZE


class TreeConnectFlags(enum.IntFlag):
    """MS-SMB2 2.2.9: Flags (3.1.1; Reserved before)."""

    CLUSTER_RECONNECT = 0x0001
    REDIRECT_TO_OWNER = 0x0002
    EXTENSION_PRESENT = 0x0004


class ShareType(enum.IntEnum):
    """MS-SMB2 2.2.10: ShareType (SMB2_SHARE_TYPE_*)."""

    DISK = 0x01
    PIPE = 0x02
    PRINT = 0x03


class ShareFlags(enum.IntFlag):
    """MS-SMB2 2.2.10: ShareFlags (SMB2_SHAREFLAG_*); caching is the 2-bit field 0x30 (0 = manual)."""

    DFS = 0x00000001
    DFS_ROOT = 0x00000002
    AUTO_CACHING = 0x00000010
    VDO_CACHING = 0x00000020
    NO_CACHING = 0x00000030
    RESTRICT_EXCLUSIVE_OPENS = 0x00000100
    FORCE_SHARED_DELETE = 0x00000200
    ALLOW_NAMESPACE_CACHING = 0x00000400
    ACCESS_BASED_DIRECTORY_ENUM = 0x00000800
    FORCE_LEVELII_OPLOCK = 0x00001000
    ENABLE_HASH_V1 = 0x00002000
    ENABLE_HASH_V2 = 0x00004000
    ENCRYPT_DATA = 0x00008000
    IDENTITY_REMOTING = 0x00040000
    COMPRESS_DATA = 0x00100000
    ISOLATED_TRANSPORT = 0x00200000


class ShareCapabilities(enum.IntFlag):
    """MS-SMB2 2.2.10: Capabilities (SMB2_SHARE_CAP_*)."""

    DFS = 0x00000008
    CONTINUOUS_AVAILABILITY = 0x00000010
    SCALEOUT = 0x00000020
    CLUSTER = 0x00000040
    ASYMMETRIC = 0x00000080
    REDIRECT_TO_OWNER = 0x00000100


@quick_init
@dataclass(frozen=True)
class TreeConnectRequest:
    """MS-SMB2 2.2.9: SMB2 TREE_CONNECT Request; `path` is "\\\\server\\share".

    With EXTENSION_PRESENT (2.2.9.1) the path is still found through PathOffset/PathLength and the rest of the
    buffer (TreeConnectContextOffset/Count and the contexts) is kept in `extension` unparsed.
    """

    path: str
    flags: TreeConnectFlags = TreeConnectFlags(0)
    extension: bytes = b""

    STRUCTURE_SIZE: ClassVar[int] = 9
    _FIXED: ClassVar[struct.Struct] = struct.Struct("<HHHH")

    def pack(self) -> bytes:
        path = self.path.encode("utf-16-le")
        if self.flags & TreeConnectFlags.EXTENSION_PRESENT:
            offset = HEADER_SIZE + self._FIXED.size + len(self.extension)
            return (
                self._FIXED.pack(self.STRUCTURE_SIZE, self.flags, offset, len(path)) + self.extension + path
            )
        offset = HEADER_SIZE + self._FIXED.size
        # MS-SMB2 2.2.9: StructureSize 9 counts one byte of the buffer; an empty one goes as a zero byte.
        return self._FIXED.pack(self.STRUCTURE_SIZE, self.flags, offset, len(path)) + (path or b"\x00")

    @classmethod
    def unpack(cls, body: bytes) -> TreeConnectRequest:
        check_request_size(body, cls.STRUCTURE_SIZE, "TREE_CONNECT request")
        _, flags, offset, length = cls._FIXED.unpack_from(body)
        path_bytes = buffer_at(body, offset, length, cls._FIXED.size, "TREE_CONNECT request")
        path = utf16(path_bytes, "TREE_CONNECT request path")
        extension = b""
        tflags = TreeConnectFlags(flags)
        if tflags & TreeConnectFlags.EXTENSION_PRESENT:
            start = offset - HEADER_SIZE if length else len(body)
            extension = body[cls._FIXED.size : start]
        return cls(path, tflags, extension)


@quick_init
@dataclass(frozen=True)
class TreeConnectResponse:
    """MS-SMB2 2.2.10: SMB2 TREE_CONNECT Response."""

    share_type: ShareType
    share_flags: ShareFlags = ShareFlags(0)
    capabilities: ShareCapabilities = ShareCapabilities(0)
    maximal_access: int = 0

    STRUCTURE_SIZE: ClassVar[int] = 16
    _FIXED: ClassVar[struct.Struct] = struct.Struct("<HBBIII")

    def pack(self) -> bytes:
        return self._FIXED.pack(
            self.STRUCTURE_SIZE, self.share_type, 0, self.share_flags, self.capabilities, self.maximal_access
        )

    @classmethod
    def unpack(cls, body: bytes) -> TreeConnectResponse:
        check_structure_size(body, cls.STRUCTURE_SIZE, "TREE_CONNECT response")
        _, share_type, _, flags, capabilities, access = cls._FIXED.unpack_from(body)
        try:
            kind = ShareType(share_type)
        except ValueError:
            raise bad(f"TREE_CONNECT response: unknown ShareType {share_type}", HEADER_SIZE + 2) from None
        return cls(kind, ShareFlags(flags), ShareCapabilities(capabilities), access)


@quick_init
@dataclass(frozen=True)
class TreeDisconnectRequest(FourByteBody):
    """MS-SMB2 2.2.11: SMB2 TREE_DISCONNECT Request."""

    NAME: ClassVar[str] = "TREE_DISCONNECT request"


@quick_init
@dataclass(frozen=True)
class TreeDisconnectResponse(FourByteBody):
    """MS-SMB2 2.2.12: SMB2 TREE_DISCONNECT Response."""

    NAME: ClassVar[str] = "TREE_DISCONNECT response"

