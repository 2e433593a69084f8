"""SMB2 NEGOTIATE (MS-SMB2 2.2.3, 2.2.4): dialects, security mode, capabilities, the request and the response,
and the SMB1 multi-protocol NEGOTIATE a client may open with (MS-SMB 2.2.4.52, MS-SMB2 3.3.5.3)."""

from __future__ import annotations

import enum
import functools
import struct
from dataclasses import dataclass, field
from typing import ClassVar

from smb2auth._frozen import quick_init
from smb2auth.smb2._body import U16, align8, bad, buffer_at, check_structure_size
from smb2auth.smb2.header import HEADER_SIZE, Smb1Header
from smb2auth.smb2.negotiate_contexts import NegotiateContext, pack_contexts, unpack_contexts


class Dialect(enum.IntEnum):
    """MS-SMB2 2.2.3: dialect revision numbers."""

    SMB2_0_2 = 0x0202
    SMB2_1 = 0x0210
    SMB3_0 = 0x0300
    SMB3_0_2 = 0x0302
    SMB3_1_1 = 0x0311
    SMB2_WILDCARD = 0x02FF


# MS-SMB2 2.2.3: the dialects a NEGOTIATE can select, lowest first, each with its name and Samba's
# (smbclient -m, "client max protocol").
_DIALECT_TABLE: tuple[tuple[Dialect, str, str], ...] = (
    (Dialect.SMB2_0_2, "2.0.2", "SMB2_02"),
    (Dialect.SMB2_1, "2.1", "SMB2_10"),
    (Dialect.SMB3_0, "3.0", "SMB3_00"),
    (Dialect.SMB3_0_2, "3.0.2", "SMB3_02"),
    (Dialect.SMB3_1_1, "3.1.1", "SMB3_11"),
)
SMB2_DIALECTS: tuple[Dialect, ...] = tuple(d for d, _, _ in _DIALECT_TABLE)
DIALECT_NAMES: dict[int, str] = {
    **{d: name for d, name, _ in _DIALECT_TABLE},
    Dialect.SMB2_WILDCARD: "2.???",
}
# What parse_dialect takes: both names, their variants, and Samba's SMB2 and SMB3 (the newest of each).
_DIALECT_ALIASES: dict[str, Dialect] = {
    **{name: d for d, name, _ in _DIALECT_TABLE},
    **{samba: d for d, _, samba in _DIALECT_TABLE},
    "2.02": Dialect.SMB2_0_2,
    "2.10": Dialect.SMB2_1,
    "2.1.0": Dialect.SMB2_1,
    "3.00": Dialect.SMB3_0,
    "3.0.0": Dialect.SMB3_0,
    "3.02": Dialect.SMB3_0_2,
    "3.11": Dialect.SMB3_1_1,
    "SMB2": Dialect.SMB2_1,
    "SMB3": Dialect.SMB3_1_1,
}


def dialect_name(dialect: int) -> str:
    """"3.1.1" for 0x0311, "2.???" for the wildcard, the hex value for anything else."""
    return DIALECT_NAMES.get(dialect, f"0x{dialect:04x}")


def parse_dialect(text: str) -> Dialect:
    """A dialect from "3.1.1", "0x0311", or smbclient's names ("SMB3_11", "SMB2_02", ...)."""
    key = text.strip().upper()
    if key in _DIALECT_ALIASES:
        return _DIALECT_ALIASES[key]
    try:
        dialect = Dialect(int(key, 16) if key.startswith("0X") else -1)
    except ValueError:
        dialect = None
    if dialect not in SMB2_DIALECTS:
        raise ValueError(f"unknown SMB2 dialect {text!r} (use e.g. 3.1.1, SMB3_11 or 0x0311)")
    return dialect


class SecurityMode(enum.IntFlag):
    """MS-SMB2 2.2.3: SecurityMode (SMB2_NEGOTIATE_SIGNING_*)."""

    SIGNING_ENABLED = 0x0001
    SIGNING_REQUIRED = 0x0002


class Capabilities(enum.IntFlag):
    """MS-SMB2 2.2.3: Capabilities (SMB2_GLOBAL_CAP_*)."""

    DFS = 0x00000001
    LEASING = 0x00000002
    LARGE_MTU = 0x00000004
    MULTI_CHANNEL = 0x00000008
    PERSISTENT_HANDLES = 0x00000010
    DIRECTORY_LEASING = 0x00000020
    ENCRYPTION = 0x00000040
    NOTIFICATIONS = 0x00000080


# --- NEGOTIATE (MS-SMB2 2.2.3, 2.2.4) --------------------------------------------------------------------


# SecurityMode and Capabilities from their wire values through a small cache: an IntFlag call runs in
# Python, and both peers read them from every NEGOTIATE.
security_mode_of = functools.lru_cache(maxsize=64)(SecurityMode)
capabilities_of = functools.lru_cache(maxsize=64)(Capabilities)


@quick_init
@dataclass(frozen=True)
class NegotiateRequest:
    """MS-SMB2 2.2.3: SMB2 NEGOTIATE Request.

    With 0x0311 among `dialects` the 8 bytes after ClientGuid are NegotiateContextOffset/Count; otherwise they
    are ClientStartTime and `negotiate_contexts` must be empty.
    """

    dialects: tuple[int, ...]
    security_mode: SecurityMode = SecurityMode.SIGNING_ENABLED
    capabilities: Capabilities = Capabilities(0)
    client_guid: bytes = bytes(16)
    negotiate_contexts: tuple[NegotiateContext, ...] = ()
    client_start_time: int = 0

    STRUCTURE_SIZE: ClassVar[int] = 36
    _FIXED: ClassVar[struct.Struct] = struct.Struct("<HHHHI16s8s")

    def __post_init__(self) -> None:
        if len(self.client_guid) != 16:
            raise ValueError("client_guid must be 16 bytes")
        if Dialect.SMB3_1_1 in self.dialects and self.client_start_time:
            raise ValueError("a 3.1.1 NEGOTIATE has no ClientStartTime")
        if Dialect.SMB3_1_1 not in self.dialects and self.negotiate_contexts:
            raise ValueError("negotiate contexts need dialect 3.1.1")

    def pack(self) -> bytes:
        dialects = struct.pack(f"<{len(self.dialects)}H", *self.dialects)
        end = HEADER_SIZE + self._FIXED.size + len(dialects)
        tail = b""
        if Dialect.SMB3_1_1 in self.dialects:
            offset = align8(end) if self.negotiate_contexts else 0
            middle = struct.pack("<IHH", offset, len(self.negotiate_contexts), 0)
            if self.negotiate_contexts:
                tail = bytes(offset - end) + pack_contexts(self.negotiate_contexts, offset)
        else:
            middle = struct.pack("<Q", self.client_start_time)
        fixed = self._FIXED.pack(
            self.STRUCTURE_SIZE,
            len(self.dialects),
            self.security_mode,
            0,
            self.capabilities,
            self.client_guid,
            middle,
        )
        return fixed + dialects + tail

    @classmethod
    def unpack(cls, body: bytes) -> NegotiateRequest:
        check_structure_size(body, cls.STRUCTURE_SIZE, "NEGOTIATE request")
        _, count, security_mode, _, capabilities, guid, middle = cls._FIXED.unpack_from(body)
        if count == 0:
            # MS-SMB2 3.3.5.4: DialectCount 0 fails with STATUS_INVALID_PARAMETER.
            raise bad("NEGOTIATE request: DialectCount is 0", HEADER_SIZE + 2)
        fixed = cls._FIXED.size + 2 * count
        if len(body) < fixed:
            raise bad("NEGOTIATE request: Dialects run past the message", HEADER_SIZE + cls._FIXED.size)
        dialects = struct.unpack_from(f"<{count}H", body, cls._FIXED.size)
        contexts: tuple[NegotiateContext, ...] = ()
        start_time = 0
        if Dialect.SMB3_1_1 in dialects:
            offset, context_count, _ = struct.unpack("<IHH", middle)
            contexts = unpack_contexts(body, offset, context_count, fixed)
        else:
            (start_time,) = struct.unpack("<Q", middle)
        return cls(
            tuple(dialects),
            security_mode_of(security_mode),
            capabilities_of(capabilities),
            guid,
            contexts,
            start_time,
        )


@quick_init
@dataclass(frozen=True)
class NegotiateResponse:
    """MS-SMB2 2.2.4: SMB2 NEGOTIATE Response; `system_time` and `server_start_time` are FILETIMEs."""

    dialect_revision: int
    security_mode: SecurityMode = SecurityMode.SIGNING_ENABLED
    server_guid: bytes = bytes(16)
    capabilities: Capabilities = Capabilities(0)
    max_transact_size: int = 65536
    max_read_size: int = 65536
    max_write_size: int = 65536
    system_time: int = 0
    server_start_time: int = 0
    security_buffer: bytes = b""
    negotiate_contexts: tuple[NegotiateContext, ...] = ()

    STRUCTURE_SIZE: ClassVar[int] = 65
    _FIXED: ClassVar[struct.Struct] = struct.Struct("<HHHH16sIIIIQQHHI")

    def __post_init__(self) -> None:
        if len(self.server_guid) != 16:
            raise ValueError("server_guid must be 16 bytes")
        if self.dialect_revision != Dialect.SMB3_1_1 and self.negotiate_contexts:
            raise ValueError("negotiate contexts need dialect 3.1.1")

    def pack(self) -> bytes:
        buffer_offset = HEADER_SIZE + self._FIXED.size
        end = buffer_offset + len(self.security_buffer)
        tail = b""
        context_offset = 0
        if self.negotiate_contexts:
            context_offset = align8(end)
            tail = bytes(context_offset - end) + pack_contexts(self.negotiate_contexts, context_offset)
        fixed = self._FIXED.pack(
            self.STRUCTURE_SIZE,
            self.security_mode,
            self.dialect_revision,
            len(self.negotiate_contexts),
            self.server_guid,
            self.capabilities,
            self.max_transact_size,
            self.max_read_size,
            self.max_write_size,
            self.system_time,
            self.server_start_time,
            buffer_offset,
            len(self.security_buffer),
            context_offset,
        )
        return fixed + self.security_buffer + tail

    @classmethod
    def unpack(cls, body: bytes) -> NegotiateResponse:
        check_structure_size(body, cls.STRUCTURE_SIZE, "NEGOTIATE response")
        (
            _,
            security_mode,
            dialect,
            context_count,
            guid,
            capabilities,
            max_transact,
            max_read,
            max_write,
            system_time,
            start_time,
            buffer_offset,
            buffer_length,
            context_offset,
        ) = cls._FIXED.unpack_from(body)
        security_buffer = buffer_at(body, buffer_offset, buffer_length, cls._FIXED.size, "NEGOTIATE response")
        contexts: tuple[NegotiateContext, ...] = ()
        if dialect == Dialect.SMB3_1_1:
            contexts = unpack_contexts(body, context_offset, context_count, cls._FIXED.size)
        return cls(
            dialect,
            security_mode_of(security_mode),
            guid,
            capabilities_of(capabilities),
            max_transact,
            max_read,
            max_write,
            system_time,
            start_time,
            security_buffer,
            contexts,
        )


# --- SMB1 multi-protocol NEGOTIATE (MS-SMB 2.2.4.52, MS-SMB2 3.3.5.3) -------------------------------------

SMB1_DIALECT_NT_LM = "NT LM 0.12"
SMB1_DIALECT_SMB2_002 = "SMB 2.002"
SMB1_DIALECT_SMB2_WILDCARD = "SMB 2.???"


@dataclass(frozen=True)
class Smb1NegotiateRequest:
    """MS-CIFS 2.2.4.52.1 / MS-SMB 2.2.4.5.1: SMB_COM_NEGOTIATE request, header included."""

    dialects: tuple[str, ...]
    header: Smb1Header = field(default_factory=lambda: Smb1Header(Smb1Header.SMB_COM_NEGOTIATE))

    def pack(self) -> bytes:
        data = b"".join(b"\x02" + d.encode("ascii") + b"\x00" for d in self.dialects)
        return self.header.pack() + b"\x00" + U16.pack(len(data)) + data

    @classmethod
    def unpack(cls, data: bytes) -> Smb1NegotiateRequest:
        header = Smb1Header.unpack(data)
        if header.command != Smb1Header.SMB_COM_NEGOTIATE:
            raise bad(f"SMB1 command 0x{header.command:02x} is not SMB_COM_NEGOTIATE", 4)
        pos = Smb1Header.SIZE
        if len(data) < pos + 3:
            raise bad("SMB1 NEGOTIATE: too short", pos)
        if data[pos] != 0:
            # MS-CIFS 2.2.4.52.1: WordCount MUST be 0x00.
            raise bad("SMB1 NEGOTIATE: WordCount is not 0", pos)
        (byte_count,) = U16.unpack_from(data, pos + 1)
        blob = data[pos + 3 : pos + 3 + byte_count]
        if len(blob) != byte_count:
            raise bad("SMB1 NEGOTIATE: ByteCount runs past the message", pos + 1)
        dialects: list[str] = []
        i = 0
        while i < len(blob):
            # MS-CIFS 2.2.4.52.1: each dialect is 0x02 then a NUL-terminated OEM string.
            end = blob.find(b"\x00", i + 1)
            if blob[i] != 0x02 or end < 0:
                raise bad("SMB1 NEGOTIATE: malformed dialect string", pos + 3 + i)
            dialects.append(blob[i + 1 : end].decode("latin-1"))
            i = end + 1
        return cls(tuple(dialects), header)

    def smb2_dialects(self) -> tuple[Dialect, ...]:
        """The SMB2 dialects this SMB1 NEGOTIATE offers (MS-SMB2 3.3.5.3.1)."""
        offered: list[Dialect] = []
        if SMB1_DIALECT_SMB2_002 in self.dialects:
            offered.append(Dialect.SMB2_0_2)
        if SMB1_DIALECT_SMB2_WILDCARD in self.dialects:
            offered.append(Dialect.SMB2_WILDCARD)
        return tuple(offered)


