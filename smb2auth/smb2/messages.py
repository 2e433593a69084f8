"""SMB2 message bodies (MS-SMB2 2.2): what follows the 64-byte header, for the commands that set up a session.

Offsets on the wire count from the start of the SMB2 header; every body here starts 64 bytes after it, so
`pack()` and `unpack()` take and return the body alone and convert offsets with `HEADER_SIZE`.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

from smb2auth.errors import MalformedMessage
from smb2auth.smb2.header import (
    HEADER_SIZE,
    SMB1_PROTOCOL_ID,
    SMB2_PROTOCOL_ID,
    TRANSFORM_PROTOCOL_ID,
    Command,
    Smb1Header,
    Smb2Header,
    split_compound,
)
from smb2auth.status import NtStatus

_U16 = struct.Struct("<H")


class Dialect(enum.IntEnum):
    """MS-SMB2 2.2.3: dialect revision numbers."""

    SMB2_0_2 = 0x0202
    SMB2_1 = 0x0210
    SMB3_0 = 0x0300
    SMB3_0_2 = 0x0302
    SMB3_1_1 = 0x0311
    SMB2_WILDCARD = 0x02FF


# MS-SMB2 2.2.3: the dialects a NEGOTIATE can select, lowest first, and their names.
SMB2_DIALECTS: tuple[Dialect, ...] = (
    Dialect.SMB2_0_2,
    Dialect.SMB2_1,
    Dialect.SMB3_0,
    Dialect.SMB3_0_2,
    Dialect.SMB3_1_1,
)
DIALECT_NAMES: dict[int, str] = {
    Dialect.SMB2_0_2: "2.0.2",
    Dialect.SMB2_1: "2.1",
    Dialect.SMB3_0: "3.0",
    Dialect.SMB3_0_2: "3.0.2",
    Dialect.SMB3_1_1: "3.1.1",
    Dialect.SMB2_WILDCARD: "2.???",
}
# smbclient's protocol names ("client max protocol"), where SMB2 and SMB3 mean the newest of each.
_DIALECT_ALIASES: dict[str, Dialect] = {
    **{name: Dialect(d) for d, name in DIALECT_NAMES.items() if d in SMB2_DIALECTS},
    "2.02": Dialect.SMB2_0_2,
    "2.10": Dialect.SMB2_1,
    "2.1.0": Dialect.SMB2_1,
    "3.00": Dialect.SMB3_0,
    "3.0.0": Dialect.SMB3_0,
    "3.02": Dialect.SMB3_0_2,
    "3.11": Dialect.SMB3_1_1,
    "SMB2_02": Dialect.SMB2_0_2,
    "SMB2_10": Dialect.SMB2_1,
    "SMB3_00": Dialect.SMB3_0,
    "SMB3_02": Dialect.SMB3_0_2,
    "SMB3_11": Dialect.SMB3_1_1,
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


class NegotiateContextType(enum.IntEnum):
    """MS-SMB2 2.2.3.1: ContextType."""

    PREAUTH_INTEGRITY_CAPABILITIES = 0x0001
    ENCRYPTION_CAPABILITIES = 0x0002
    COMPRESSION_CAPABILITIES = 0x0003
    NETNAME_NEGOTIATE_CONTEXT_ID = 0x0005
    TRANSPORT_CAPABILITIES = 0x0006
    RDMA_TRANSFORM_CAPABILITIES = 0x0007
    SIGNING_CAPABILITIES = 0x0008


class HashAlgorithm(enum.IntEnum):
    """MS-SMB2 2.2.3.1.1: HashAlgorithms."""

    SHA_512 = 0x0001


class Cipher(enum.IntEnum):
    """MS-SMB2 2.2.3.1.2: Ciphers."""

    AES_128_CCM = 0x0001
    AES_128_GCM = 0x0002
    AES_256_CCM = 0x0003
    AES_256_GCM = 0x0004


class SigningAlgorithm(enum.IntEnum):
    """MS-SMB2 2.2.3.1.7: SigningAlgorithms."""

    HMAC_SHA256 = 0x0000
    AES_CMAC = 0x0001
    AES_GMAC = 0x0002


def _bad(message: str, offset: int | None = None) -> MalformedMessage:
    return MalformedMessage(message, offset=offset, status=NtStatus.STATUS_INVALID_PARAMETER)


def _check_structure_size(body: bytes, expected: int, name: str) -> None:
    if len(body) < 2:
        raise _bad(f"{name}: body too short for StructureSize", HEADER_SIZE)
    (size,) = _U16.unpack_from(body)
    if size != expected:
        # MS-SMB2 3.3.5.2.6: a wrong StructureSize is answered STATUS_INVALID_PARAMETER.
        raise _bad(f"{name}: StructureSize {size}, expected {expected}", HEADER_SIZE)
    if len(body) < expected - (expected & 1):
        raise _bad(f"{name}: {len(body)} bytes, fixed part needs {expected & ~1}", HEADER_SIZE)


def _buffer(body: bytes, offset: int, length: int, fixed: int, name: str) -> bytes:
    """The buffer at header-relative `offset`; MS-SMB2 2.2: it lies after the fixed part, in the message."""
    if length == 0:
        return b""
    start = offset - HEADER_SIZE
    if start < fixed or start + length > len(body):
        raise _bad(f"{name}: buffer {offset}+{length} outside the message", HEADER_SIZE + fixed)
    return body[start : start + length]


def _align8(n: int) -> int:
    return (n + 7) & ~7


def _utf16(data: bytes, name: str) -> str:
    if len(data) % 2:
        raise _bad(f"{name}: odd-length UTF-16 string")
    try:
        return data.decode("utf-16-le")
    except UnicodeDecodeError:
        raise _bad(f"{name}: invalid UTF-16") from None


# --- negotiate contexts (MS-SMB2 2.2.3.1) ---------------------------------------------------------------

_CONTEXT_HEAD = struct.Struct("<HHI")


@dataclass(frozen=True)
class PreauthIntegrityCapabilities:
    """MS-SMB2 2.2.3.1.1: SMB2_PREAUTH_INTEGRITY_CAPABILITIES."""

    hash_algorithms: tuple[int, ...]
    salt: bytes = b""

    context_type: ClassVar[NegotiateContextType] = NegotiateContextType.PREAUTH_INTEGRITY_CAPABILITIES

    def pack_data(self) -> bytes:
        head = struct.pack("<HH", len(self.hash_algorithms), len(self.salt))
        return head + struct.pack(f"<{len(self.hash_algorithms)}H", *self.hash_algorithms) + self.salt

    @classmethod
    def unpack_data(cls, data: bytes) -> PreauthIntegrityCapabilities:
        if len(data) < 4:
            raise _bad("PREAUTH_INTEGRITY_CAPABILITIES: too short")
        count, salt_length = struct.unpack_from("<HH", data)
        if count == 0:
            # MS-SMB2 3.3.5.4: HashAlgorithmCount 0 fails with STATUS_INVALID_PARAMETER.
            raise _bad("PREAUTH_INTEGRITY_CAPABILITIES: HashAlgorithmCount is 0")
        if len(data) != 4 + 2 * count + salt_length:
            raise _bad("PREAUTH_INTEGRITY_CAPABILITIES: DataLength does not match its counts")
        algorithms = struct.unpack_from(f"<{count}H", data, 4)
        return cls(tuple(algorithms), data[4 + 2 * count :])


@dataclass(frozen=True)
class EncryptionCapabilities:
    """MS-SMB2 2.2.3.1.2: SMB2_ENCRYPTION_CAPABILITIES."""

    ciphers: tuple[int, ...]

    context_type: ClassVar[NegotiateContextType] = NegotiateContextType.ENCRYPTION_CAPABILITIES

    def pack_data(self) -> bytes:
        return struct.pack(f"<H{len(self.ciphers)}H", len(self.ciphers), *self.ciphers)

    @classmethod
    def unpack_data(cls, data: bytes) -> EncryptionCapabilities:
        if len(data) < 2:
            raise _bad("ENCRYPTION_CAPABILITIES: too short")
        (count,) = _U16.unpack_from(data)
        if count == 0:
            # MS-SMB2 3.3.5.4: CipherCount 0 fails with STATUS_INVALID_PARAMETER.
            raise _bad("ENCRYPTION_CAPABILITIES: CipherCount is 0")
        if len(data) != 2 + 2 * count:
            raise _bad("ENCRYPTION_CAPABILITIES: DataLength does not match CipherCount")
        return cls(tuple(struct.unpack_from(f"<{count}H", data, 2)))


@dataclass(frozen=True)
class SigningCapabilities:
    """MS-SMB2 2.2.3.1.7: SMB2_SIGNING_CAPABILITIES."""

    signing_algorithms: tuple[int, ...]

    context_type: ClassVar[NegotiateContextType] = NegotiateContextType.SIGNING_CAPABILITIES

    def pack_data(self) -> bytes:
        n = len(self.signing_algorithms)
        return struct.pack(f"<H{n}H", n, *self.signing_algorithms)

    @classmethod
    def unpack_data(cls, data: bytes) -> SigningCapabilities:
        if len(data) < 2:
            raise _bad("SIGNING_CAPABILITIES: too short")
        (count,) = _U16.unpack_from(data)
        if count == 0:
            # MS-SMB2 3.3.5.4: SigningAlgorithmCount 0 fails with STATUS_INVALID_PARAMETER.
            raise _bad("SIGNING_CAPABILITIES: SigningAlgorithmCount is 0")
        if len(data) != 2 + 2 * count:
            raise _bad("SIGNING_CAPABILITIES: DataLength does not match SigningAlgorithmCount")
        return cls(tuple(struct.unpack_from(f"<{count}H", data, 2)))


@dataclass(frozen=True)
class NetnameNegotiateContextId:
    """MS-SMB2 2.2.3.1.4: SMB2_NETNAME_NEGOTIATE_CONTEXT_ID, the server name the client connects to."""

    net_name: str

    context_type: ClassVar[NegotiateContextType] = NegotiateContextType.NETNAME_NEGOTIATE_CONTEXT_ID

    def pack_data(self) -> bytes:
        return self.net_name.encode("utf-16-le")

    @classmethod
    def unpack_data(cls, data: bytes) -> NetnameNegotiateContextId:
        return cls(_utf16(data, "NETNAME_NEGOTIATE_CONTEXT_ID"))


@dataclass(frozen=True)
class UnknownNegotiateContext:
    """A negotiate context we do not interpret (MS-SMB2 3.3.5.4: ignored by the server), kept as bytes."""

    type: int
    data: bytes

    @property
    def context_type(self) -> int:
        return self.type

    def pack_data(self) -> bytes:
        return self.data


NegotiateContext = (
    PreauthIntegrityCapabilities
    | EncryptionCapabilities
    | SigningCapabilities
    | NetnameNegotiateContextId
    | UnknownNegotiateContext
)

_CONTEXT_CLASSES: dict[
    int,
    type[
        PreauthIntegrityCapabilities
        | EncryptionCapabilities
        | SigningCapabilities
        | NetnameNegotiateContextId
    ],
] = {
    NegotiateContextType.PREAUTH_INTEGRITY_CAPABILITIES: PreauthIntegrityCapabilities,
    NegotiateContextType.ENCRYPTION_CAPABILITIES: EncryptionCapabilities,
    NegotiateContextType.SIGNING_CAPABILITIES: SigningCapabilities,
    NegotiateContextType.NETNAME_NEGOTIATE_CONTEXT_ID: NetnameNegotiateContextId,
}


def _pack_contexts(contexts: tuple[NegotiateContext, ...], start: int) -> bytes:
    """Contexts laid out from header offset `start` (already 8-aligned), each 8-byte aligned."""
    out = bytearray()
    for i, context in enumerate(contexts):
        if i:
            out += bytes(-(start + len(out)) % 8)
        data = context.pack_data()
        out += _CONTEXT_HEAD.pack(context.context_type, len(data), 0) + data
    return bytes(out)


def _unpack_contexts(body: bytes, offset: int, count: int, fixed: int) -> tuple[NegotiateContext, ...]:
    pos = offset - HEADER_SIZE
    if count and (offset % 8 or pos < fixed):
        # MS-SMB2 2.2.3: NegotiateContextOffset is 8-byte aligned and follows the fixed part and buffers.
        raise _bad("NegotiateContextOffset misaligned or inside the fixed part", HEADER_SIZE + fixed)
    contexts: list[NegotiateContext] = []
    seen: set[int] = set()
    for i in range(count):
        if i:
            pos = _align8(pos)  # MS-SMB2 2.2.3.1: each context starts 8-byte aligned
        if pos + _CONTEXT_HEAD.size > len(body):
            raise _bad(f"negotiate context {i} header outside the message", HEADER_SIZE + pos)
        context_type, length, _ = _CONTEXT_HEAD.unpack_from(body, pos)
        data_start = pos + _CONTEXT_HEAD.size
        if data_start + length > len(body):
            raise _bad(f"negotiate context {i} data outside the message", HEADER_SIZE + pos)
        data = body[data_start : data_start + length]
        known = _CONTEXT_CLASSES.get(context_type)
        if known is not None:
            if context_type in seen:
                # MS-SMB2 3.3.5.4: a context type given twice fails with STATUS_INVALID_PARAMETER.
                raise _bad(f"negotiate context type {context_type} given twice", HEADER_SIZE + pos)
            seen.add(context_type)
            try:
                contexts.append(known.unpack_data(data))
            except MalformedMessage as exc:
                raise _bad(exc.reason, HEADER_SIZE + data_start) from None
        else:
            contexts.append(UnknownNegotiateContext(context_type, data))
        pos = data_start + length
    return tuple(contexts)


def find_context(
    contexts: Iterable[NegotiateContext], kind: type[NegotiateContext]
) -> NegotiateContext | None:
    """The first context of class `kind`, or None."""
    return next((c for c in contexts if isinstance(c, kind)), None)


# --- NEGOTIATE (MS-SMB2 2.2.3, 2.2.4) --------------------------------------------------------------------


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
            offset = _align8(end) if self.negotiate_contexts else 0
            middle = struct.pack("<IHH", offset, len(self.negotiate_contexts), 0)
            if self.negotiate_contexts:
                tail = bytes(offset - end) + _pack_contexts(self.negotiate_contexts, offset)
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
        _check_structure_size(body, cls.STRUCTURE_SIZE, "NEGOTIATE request")
        _, count, security_mode, _, capabilities, guid, middle = cls._FIXED.unpack_from(body)
        if count == 0:
            # MS-SMB2 3.3.5.4: DialectCount 0 fails with STATUS_INVALID_PARAMETER.
            raise _bad("NEGOTIATE request: DialectCount is 0", HEADER_SIZE + 2)
        fixed = cls._FIXED.size + 2 * count
        if len(body) < fixed:
            raise _bad("NEGOTIATE request: Dialects run past the message", HEADER_SIZE + cls._FIXED.size)
        dialects = struct.unpack_from(f"<{count}H", body, cls._FIXED.size)
        contexts: tuple[NegotiateContext, ...] = ()
        start_time = 0
        if Dialect.SMB3_1_1 in dialects:
            offset, context_count, _ = struct.unpack("<IHH", middle)
            contexts = _unpack_contexts(body, offset, context_count, fixed)
        else:
            (start_time,) = struct.unpack("<Q", middle)
        return cls(
            tuple(dialects),
            SecurityMode(security_mode),
            Capabilities(capabilities),
            guid,
            contexts,
            start_time,
        )


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
            context_offset = _align8(end)
            tail = bytes(context_offset - end) + _pack_contexts(self.negotiate_contexts, context_offset)
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
        _check_structure_size(body, cls.STRUCTURE_SIZE, "NEGOTIATE response")
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
        security_buffer = _buffer(body, buffer_offset, buffer_length, cls._FIXED.size, "NEGOTIATE response")
        contexts: tuple[NegotiateContext, ...] = ()
        if dialect == Dialect.SMB3_1_1:
            contexts = _unpack_contexts(body, context_offset, context_count, cls._FIXED.size)
        return cls(
            dialect,
            SecurityMode(security_mode),
            guid,
            Capabilities(capabilities),
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
        return self.header.pack() + b"\x00" + _U16.pack(len(data)) + data

    @classmethod
    def unpack(cls, data: bytes) -> Smb1NegotiateRequest:
        header = Smb1Header.unpack(data)
        if header.command != Smb1Header.SMB_COM_NEGOTIATE:
            raise _bad(f"SMB1 command 0x{header.command:02x} is not SMB_COM_NEGOTIATE", 4)
        pos = Smb1Header.SIZE
        if len(data) < pos + 3:
            raise _bad("SMB1 NEGOTIATE: too short", pos)
        if data[pos] != 0:
            # MS-CIFS 2.2.4.52.1: WordCount MUST be 0x00.
            raise _bad("SMB1 NEGOTIATE: WordCount is not 0", pos)
        (byte_count,) = _U16.unpack_from(data, pos + 1)
        blob = data[pos + 3 : pos + 3 + byte_count]
        if len(blob) != byte_count:
            raise _bad("SMB1 NEGOTIATE: ByteCount runs past the message", pos + 1)
        dialects: list[str] = []
        i = 0
        while i < len(blob):
            # MS-CIFS 2.2.4.52.1: each dialect is 0x02 then a NUL-terminated OEM string.
            end = blob.find(b"\x00", i + 1)
            if blob[i] != 0x02 or end < 0:
                raise _bad("SMB1 NEGOTIATE: malformed dialect string", pos + 3 + i)
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


def select_smb1_upgrade_dialect(request: Smb1NegotiateRequest, supported: Iterable[int]) -> Dialect | None:
    """MS-SMB2 3.3.5.3.1: the DialectRevision of the SMB2 NEGOTIATE response to an SMB1 NEGOTIATE.

    0x02FF when the client offers "SMB 2.???" and the server supports a dialect after 2.0.2, 0x0202 when it
    offers "SMB 2.002" and the server supports 2.0.2, else None (no SMB2 dialect in common).
    """
    supported_set = set(supported)
    offered = request.smb2_dialects()
    if Dialect.SMB2_WILDCARD in offered and any(d > Dialect.SMB2_0_2 for d in supported_set):
        return Dialect.SMB2_WILDCARD
    if Dialect.SMB2_0_2 in offered and Dialect.SMB2_0_2 in supported_set:
        return Dialect.SMB2_0_2
    return None


# --- SESSION_SETUP (MS-SMB2 2.2.5, 2.2.6) ------------------------------------------------------------------


class SessionSetupFlags(enum.IntFlag):
    """MS-SMB2 2.2.5: Flags."""

    BINDING = 0x01


class SessionFlags(enum.IntFlag):
    """MS-SMB2 2.2.6: SessionFlags (SMB2_SESSION_FLAG_*)."""

    IS_GUEST = 0x0001
    IS_NULL = 0x0002
    ENCRYPT_DATA = 0x0004


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
            + self.security_buffer
        )

    @classmethod
    def unpack(cls, body: bytes) -> SessionSetupRequest:
        _check_structure_size(body, cls.STRUCTURE_SIZE, "SESSION_SETUP request")
        _, flags, security_mode, capabilities, channel, offset, length, previous = cls._FIXED.unpack_from(
            body
        )
        buffer = _buffer(body, offset, length, cls._FIXED.size, "SESSION_SETUP request")
        return cls(
            buffer,
            SessionSetupFlags(flags),
            SecurityMode(security_mode),
            Capabilities(capabilities),
            channel,
            previous,
        )


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
        _check_structure_size(body, cls.STRUCTURE_SIZE, "SESSION_SETUP response")
        _, flags, offset, length = cls._FIXED.unpack_from(body)
        buffer = _buffer(body, offset, length, cls._FIXED.size, "SESSION_SETUP response")
        return cls(buffer, SessionFlags(flags))


# --- 4-byte bodies: LOGOFF, TREE_DISCONNECT, ECHO (MS-SMB2 2.2.7, 2.2.8, 2.2.11, 2.2.12, 2.2.28, 2.2.29)

_SMALL = struct.Struct("<HH")
_SmallT = TypeVar("_SmallT", bound="_Small")


@dataclass(frozen=True)
class _Small:
    STRUCTURE_SIZE: ClassVar[int] = 4
    NAME: ClassVar[str] = ""

    def pack(self) -> bytes:
        return _SMALL.pack(self.STRUCTURE_SIZE, 0)

    @classmethod
    def unpack(cls: type[_SmallT], body: bytes) -> _SmallT:
        _check_structure_size(body, cls.STRUCTURE_SIZE, cls.NAME)
        return cls()


@dataclass(frozen=True)
class LogoffRequest(_Small):
    """MS-SMB2 2.2.7: SMB2 LOGOFF Request."""

    NAME: ClassVar[str] = "LOGOFF request"


@dataclass(frozen=True)
class LogoffResponse(_Small):
    """MS-SMB2 2.2.8: SMB2 LOGOFF Response."""

    NAME: ClassVar[str] = "LOGOFF response"


@dataclass(frozen=True)
class TreeDisconnectRequest(_Small):
    """MS-SMB2 2.2.11: SMB2 TREE_DISCONNECT Request."""

    NAME: ClassVar[str] = "TREE_DISCONNECT request"


@dataclass(frozen=True)
class TreeDisconnectResponse(_Small):
    """MS-SMB2 2.2.12: SMB2 TREE_DISCONNECT Response."""

    NAME: ClassVar[str] = "TREE_DISCONNECT response"


@dataclass(frozen=True)
class EchoRequest(_Small):
    """MS-SMB2 2.2.28: SMB2 ECHO Request."""

    NAME: ClassVar[str] = "ECHO request"


@dataclass(frozen=True)
class EchoResponse(_Small):
    """MS-SMB2 2.2.29: SMB2 ECHO Response."""

    NAME: ClassVar[str] = "ECHO response"


# --- TREE_CONNECT (MS-SMB2 2.2.9, 2.2.10) -----------------------------------------------------------------


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
        return self._FIXED.pack(self.STRUCTURE_SIZE, self.flags, offset, len(path)) + path

    @classmethod
    def unpack(cls, body: bytes) -> TreeConnectRequest:
        _check_structure_size(body, cls.STRUCTURE_SIZE, "TREE_CONNECT request")
        _, flags, offset, length = cls._FIXED.unpack_from(body)
        path_bytes = _buffer(body, offset, length, cls._FIXED.size, "TREE_CONNECT request")
        path = _utf16(path_bytes, "TREE_CONNECT request path")
        extension = b""
        tflags = TreeConnectFlags(flags)
        if tflags & TreeConnectFlags.EXTENSION_PRESENT:
            start = offset - HEADER_SIZE if length else len(body)
            extension = body[cls._FIXED.size : start]
        return cls(path, tflags, extension)


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
        _check_structure_size(body, cls.STRUCTURE_SIZE, "TREE_CONNECT response")
        _, share_type, _, flags, capabilities, access = cls._FIXED.unpack_from(body)
        try:
            kind = ShareType(share_type)
        except ValueError:
            raise _bad(f"TREE_CONNECT response: unknown ShareType {share_type}", HEADER_SIZE + 2) from None
        return cls(kind, ShareFlags(flags), ShareCapabilities(capabilities), access)


# --- IOCTL (MS-SMB2 2.2.31, 2.2.32) and FSCTL_VALIDATE_NEGOTIATE_INFO (2.2.31.4, 2.2.32.6) ----------------

FSCTL_VALIDATE_NEGOTIATE_INFO = 0x00140204
# MS-SMB2 2.2.31: FileId {0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF} for control codes that name no open.
NO_FILE_ID = b"\xff" * 16


class IoctlFlags(enum.IntFlag):
    """MS-SMB2 2.2.31: Flags of an IOCTL request."""

    IS_IOCTL = 0x00000000
    IS_FSCTL = 0x00000001


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
        pad = bytes(_align8(len(self.input)) - len(self.input)) if self.output else b""
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
        _check_structure_size(body, cls.STRUCTURE_SIZE, "IOCTL request")
        if len(body) < cls._FIXED.size:
            raise _bad(f"IOCTL request: {len(body)} bytes, fixed part needs {cls._FIXED.size}", HEADER_SIZE)
        fields = cls._FIXED.unpack_from(body)
        _, _, ctl_code, file_id, in_off, in_count, max_in, out_off, out_count, max_out, flags, _ = fields
        # MS-SMB2 3.3.5.15: Input and Output buffers lie after the fixed part, inside the message.
        data = _buffer(body, in_off, in_count, cls._FIXED.size, "IOCTL request input")
        output = _buffer(body, out_off, out_count, cls._FIXED.size, "IOCTL request output")
        return cls(ctl_code, data, file_id, max_in, max_out, IoctlFlags(flags), output)


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
        pad = bytes(_align8(len(self.input)) - len(self.input)) if self.output else b""
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
        _check_structure_size(body, cls.STRUCTURE_SIZE, "IOCTL response")
        if len(body) < cls._FIXED.size:
            raise _bad(f"IOCTL response: {len(body)} bytes, fixed part needs {cls._FIXED.size}", HEADER_SIZE)
        _, _, ctl_code, file_id, in_off, in_count, out_off, out_count, flags, _ = cls._FIXED.unpack_from(body)
        # MS-SMB2 2.2.32: Input and Output buffers lie after the fixed part, inside the message.
        data = _buffer(body, in_off, in_count, cls._FIXED.size, "IOCTL response input")
        output = _buffer(body, out_off, out_count, cls._FIXED.size, "IOCTL response output")
        return cls(ctl_code, output, file_id, data, flags)


_VALIDATE = struct.Struct("<I16sHH")


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
            raise _bad(f"VALIDATE_NEGOTIATE_INFO request: {len(data)} bytes, needs {_VALIDATE.size}")
        capabilities, guid, mode, count = _VALIDATE.unpack_from(data)
        if len(data) < _VALIDATE.size + 2 * count:
            raise _bad(f"VALIDATE_NEGOTIATE_INFO request: {count} Dialects run past the input")
        dialects = struct.unpack_from(f"<{count}H", data, _VALIDATE.size)
        return cls(Capabilities(capabilities), guid, SecurityMode(mode), tuple(dialects))


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
            raise _bad(f"VALIDATE_NEGOTIATE_INFO response: {len(data)} bytes, expected {_VALIDATE.size}")
        capabilities, guid, mode, dialect = _VALIDATE.unpack(data)
        return cls(Capabilities(capabilities), guid, SecurityMode(mode), dialect)


# --- ERROR (MS-SMB2 2.2.2) ----------------------------------------------------------------------------------


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
        _check_structure_size(body, cls.STRUCTURE_SIZE, "ERROR response")
        _, context_count, _, byte_count = cls._FIXED.unpack_from(body)
        if cls._FIXED.size + byte_count > len(body):
            raise _bad("ERROR response: ByteCount runs past the message", HEADER_SIZE + 4)
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
            raise _bad("body too short for StructureSize", HEADER_SIZE)
        return cls(_U16.unpack_from(body)[0], body)


Message = (
    NegotiateRequest
    | NegotiateResponse
    | Smb1NegotiateRequest
    | SessionSetupRequest
    | SessionSetupResponse
    | LogoffRequest
    | LogoffResponse
    | TreeConnectRequest
    | TreeConnectResponse
    | TreeDisconnectRequest
    | TreeDisconnectResponse
    | EchoRequest
    | EchoResponse
    | IoctlRequest
    | IoctlResponse
    | ErrorResponse
    | RawBody
)

_REQUESTS: dict[Command, type[Message]] = {
    Command.NEGOTIATE: NegotiateRequest,
    Command.SESSION_SETUP: SessionSetupRequest,
    Command.LOGOFF: LogoffRequest,
    Command.TREE_CONNECT: TreeConnectRequest,
    Command.TREE_DISCONNECT: TreeDisconnectRequest,
    Command.ECHO: EchoRequest,
    Command.IOCTL: IoctlRequest,
}
_RESPONSES: dict[Command, type[Message]] = {
    Command.NEGOTIATE: NegotiateResponse,
    Command.SESSION_SETUP: SessionSetupResponse,
    Command.LOGOFF: LogoffResponse,
    Command.TREE_CONNECT: TreeConnectResponse,
    Command.TREE_DISCONNECT: TreeDisconnectResponse,
    Command.ECHO: EchoResponse,
    Command.IOCTL: IoctlResponse,
}


def _is_error(header: Smb2Header) -> bool:
    """MS-SMB2 3.2.5.1.x: a response whose status has error severity carries an ERROR body, except
    STATUS_MORE_PROCESSING_REQUIRED on SESSION_SETUP (MS-SMB2 3.3.4.4)."""
    if header.command == Command.SESSION_SETUP and header.status == NtStatus.STATUS_MORE_PROCESSING_REQUIRED:
        return False
    return header.status >> 30 == 3


def parse_body(header: Smb2Header, body: bytes) -> Message:
    """The body of one SMB2 message, chosen by command, SERVER_TO_REDIR and status."""
    if header.is_response:
        if _is_error(header):
            return ErrorResponse.unpack(body)
        cls = _RESPONSES.get(header.command, RawBody)
    else:
        cls = _REQUESTS.get(header.command, RawBody)
    return cls.unpack(body)


def parse_message(data: bytes) -> tuple[Smb2Header | Smb1Header, Message]:
    """Parse one SMB message (the first of a compound): its header and its body dataclass.

    An SMB1 NEGOTIATE gives (Smb1Header, Smb1NegotiateRequest). An encrypted message (transform header) must
    be decrypted first.
    """
    if data[:4] == SMB1_PROTOCOL_ID:
        request = Smb1NegotiateRequest.unpack(data)
        return request.header, request
    if data[:4] == TRANSFORM_PROTOCOL_ID:
        raise _bad("encrypted message (SMB2 TRANSFORM_HEADER): decrypt it first", 0)
    if data[:4] != SMB2_PROTOCOL_ID:
        raise _bad("not an SMB message (unknown ProtocolId)", 0)
    part = split_compound(data)[0]
    return part.header, parse_body(part.header, part.body)


def pack_message(header: Smb2Header, body: Message) -> bytes:
    """Header and body as one message."""
    if isinstance(body, Smb1NegotiateRequest):
        return body.pack()
    return header.pack() + body.pack()
