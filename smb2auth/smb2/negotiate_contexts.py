"""SMB2 NEGOTIATE contexts (MS-SMB2 2.2.3.1, 2.2.4.1): preauth integrity, encryption, signing and netname,
the identifiers they carry, and their 8-byte aligned list."""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from smb2auth._frozen import quick_init
from smb2auth.errors import MalformedMessage
from smb2auth.smb2._body import U16, align8, bad, utf16
from smb2auth.smb2.header import HEADER_SIZE


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


_CONTEXT_HEAD = struct.Struct("<HHI")


@quick_init
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
            raise bad("PREAUTH_INTEGRITY_CAPABILITIES: too short")
        count, salt_length = struct.unpack_from("<HH", data)
        if count == 0:
            # MS-SMB2 3.3.5.4: HashAlgorithmCount 0 fails with STATUS_INVALID_PARAMETER.
            raise bad("PREAUTH_INTEGRITY_CAPABILITIES: HashAlgorithmCount is 0")
        if len(data) < 4 + 2 * count + salt_length:
            # Samba smbd_smb2_request_process_negprot: DataLength short of the counts fails; octets beyond
            # them are left unread (MS-SMB2 2.2.3.1.1 sizes the fields by the counts).
            raise bad("PREAUTH_INTEGRITY_CAPABILITIES: DataLength short of its counts")
        algorithms = struct.unpack_from(f"<{count}H", data, 4)
        return cls(tuple(algorithms), data[4 + 2 * count : 4 + 2 * count + salt_length])


@quick_init
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
            raise bad("ENCRYPTION_CAPABILITIES: too short")
        (count,) = U16.unpack_from(data)
        if count == 0:
            # MS-SMB2 3.3.5.4: CipherCount 0 fails with STATUS_INVALID_PARAMETER.
            raise bad("ENCRYPTION_CAPABILITIES: CipherCount is 0")
        if len(data) < 2 + 2 * count:
            # Samba: DataLength short of CipherCount fails; octets beyond the list are left unread.
            raise bad("ENCRYPTION_CAPABILITIES: DataLength short of CipherCount")
        return cls(tuple(struct.unpack_from(f"<{count}H", data, 2)))


@quick_init
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
            raise bad("SIGNING_CAPABILITIES: too short")
        (count,) = U16.unpack_from(data)
        if count == 0:
            # MS-SMB2 3.3.5.4: SigningAlgorithmCount 0 fails with STATUS_INVALID_PARAMETER.
            raise bad("SIGNING_CAPABILITIES: SigningAlgorithmCount is 0")
        if len(data) < 2 + 2 * count:
            # Samba: DataLength short of SigningAlgorithmCount fails; octets beyond the list are left unread.
            raise bad("SIGNING_CAPABILITIES: DataLength short of SigningAlgorithmCount")
        return cls(tuple(struct.unpack_from(f"<{count}H", data, 2)))


@quick_init
@dataclass(frozen=True)
class NetnameNegotiateContextId:
    """MS-SMB2 2.2.3.1.4: SMB2_NETNAME_NEGOTIATE_CONTEXT_ID, the server name the client connects to."""

    net_name: str

    context_type: ClassVar[NegotiateContextType] = NegotiateContextType.NETNAME_NEGOTIATE_CONTEXT_ID

    def pack_data(self) -> bytes:
        return self.net_name.encode("utf-16-le")

    @classmethod
    def unpack_data(cls, data: bytes) -> NetnameNegotiateContextId:
        return cls(utf16(data, "NETNAME_NEGOTIATE_CONTEXT_ID"))


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


_ONCE = frozenset(
    (NegotiateContextType.PREAUTH_INTEGRITY_CAPABILITIES, NegotiateContextType.ENCRYPTION_CAPABILITIES)
)


def pack_contexts(contexts: tuple[NegotiateContext, ...], start: int) -> bytes:
    """Contexts laid out from header offset `start` (already 8-aligned), each 8-byte aligned."""
    out = bytearray()
    for i, context in enumerate(contexts):
        if i:
            out += bytes(-(start + len(out)) % 8)
        data = context.pack_data()
        out += _CONTEXT_HEAD.pack(context.context_type, len(data), 0) + data
    return bytes(out)


def unpack_contexts(body: bytes, offset: int, count: int, fixed: int) -> tuple[NegotiateContext, ...]:
    pos = offset - HEADER_SIZE
    if count and (offset % 8 or pos < fixed):
        # MS-SMB2 2.2.3: NegotiateContextOffset is 8-byte aligned and follows the fixed part and buffers.
        raise bad("NegotiateContextOffset misaligned or inside the fixed part", HEADER_SIZE + fixed)
    contexts: list[NegotiateContext] = []
    seen: set[int] = set()
    for i in range(count):
        if i:
            pos = align8(pos)  # MS-SMB2 2.2.3.1: each context starts 8-byte aligned
        if pos + _CONTEXT_HEAD.size > len(body):
            raise bad(f"negotiate context {i} header outside the message", HEADER_SIZE + pos)
        context_type, length, _ = _CONTEXT_HEAD.unpack_from(body, pos)
        data_start = pos + _CONTEXT_HEAD.size
        if data_start + length > len(body):
            raise bad(f"negotiate context {i} data outside the message", HEADER_SIZE + pos)
        data = body[data_start : data_start + length]
        known = _CONTEXT_CLASSES.get(context_type)
        if known is not None and context_type in seen:
            if context_type in _ONCE:
                # MS-SMB2 3.3.5.4: a second PREAUTH_INTEGRITY or ENCRYPTION context fails the request.
                raise bad(f"negotiate context type {context_type} given twice", HEADER_SIZE + pos)
            # Samba smb2_negotiate_context_find: the first of a type counts, a later one is left unread.
            contexts.append(UnknownNegotiateContext(context_type, data))
        elif known is not None:
            seen.add(context_type)
            try:
                contexts.append(known.unpack_data(data))
            except MalformedMessage as exc:
                raise bad(exc.reason, HEADER_SIZE + data_start) from None
        else:
            contexts.append(UnknownNegotiateContext(context_type, data))
        pos = data_start + length
    return tuple(contexts)


def find_context(
    contexts: Iterable[NegotiateContext], kind: type[NegotiateContext]
) -> NegotiateContext | None:
    """The first context of class `kind`, or None."""
    return next((c for c in contexts if isinstance(c, kind)), None)

