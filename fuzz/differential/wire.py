"""The messages the differential client sends, as mutable field sets packed by hand.

Our codecs refuse to pack what is not well formed; a hostile client must be able to write any value in any
field, so each request here is a plain dataclass with one `pack()` that writes exactly its fields.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from smb2auth.smb2.header import HEADER_STRUCT, SMB2_PROTOCOL_ID, Command
from smb2auth.smb2.negotiate import Dialect
from smb2auth.smb2.negotiate_contexts import (
    EncryptionCapabilities,
    HashAlgorithm,
    NegotiateContextType,
    PreauthIntegrityCapabilities,
    SigningAlgorithm,
    SigningCapabilities,
)
from smb2auth.spnego.asn1 import NTLMSSP

__all__ = [
    "ALL_DIALECTS",
    "Header",
    "InitSpec",
    "NegotiateSpec",
    "RespSpec",
    "SetupSpec",
    "mech_types_der",
    "oid_content",
    "tlv",
]

ALL_DIALECTS = (Dialect.SMB2_0_2, Dialect.SMB2_1, Dialect.SMB3_0, Dialect.SMB3_0_2, Dialect.SMB3_1_1)


@dataclass
class Header:
    """MS-SMB2 2.2.1.2, every field settable (the sync form: Reserved and TreeId; async: AsyncId)."""

    command: int
    message_id: int = 0
    session_id: int = 0
    credit_charge: int = 1
    credit: int = 8
    flags: int = 0
    status: int = 0
    next_command: int = 0
    middle: int = 0  # Reserved (low 32 bits) and TreeId (high 32), or the AsyncId
    protocol_id: bytes = SMB2_PROTOCOL_ID
    structure_size: int = 64
    signature: bytes = bytes(16)

    def pack(self) -> bytes:
        return HEADER_STRUCT.pack(
            self.protocol_id, self.structure_size, self.credit_charge, self.status, self.command,
            self.credit, self.flags, self.next_command, self.message_id, self.middle, self.session_id,
            self.signature,
        )


_CONTEXT_HEAD = struct.Struct("<HHI")
_NEGOTIATE_FIXED = struct.Struct("<HHHHI16sIHH")


def default_contexts() -> list[tuple[int, bytes]]:
    """What smbclient offers on 3.1.1: preauth SHA-512, AES ciphers, CMAC/GMAC signing."""
    return [
        (NegotiateContextType.PREAUTH_INTEGRITY_CAPABILITIES,
         PreauthIntegrityCapabilities((HashAlgorithm.SHA_512,), b"\x11" * 32).pack_data()),
        (NegotiateContextType.ENCRYPTION_CAPABILITIES, EncryptionCapabilities((2, 1)).pack_data()),
        (NegotiateContextType.SIGNING_CAPABILITIES,
         SigningCapabilities((SigningAlgorithm.AES_GMAC, SigningAlgorithm.AES_CMAC)).pack_data()),
    ]


@dataclass
class NegotiateSpec:
    """MS-SMB2 2.2.3 NEGOTIATE request fields; `contexts` are (ContextType, Data), packed 8-aligned."""

    dialects: list[int] = field(default_factory=lambda: list(ALL_DIALECTS))
    security_mode: int = 1
    capabilities: int = 0x7F
    client_guid: bytes = b"G" * 16
    contexts: list[tuple[int, bytes]] = field(default_factory=default_contexts)
    structure_size: int = 36
    dialect_count: int | None = None
    context_count: int | None = None
    context_offset: int | None = None
    trailing: bytes = b""

    def pack(self) -> bytes:
        dialects = b"".join(struct.pack("<H", d) for d in self.dialects)
        fixed = _NEGOTIATE_FIXED.size
        packed_contexts = b""
        offset = 0
        if self.contexts and Dialect.SMB3_1_1 in self.dialects:
            start = 64 + fixed + len(dialects)
            pad = -start % 8
            offset = start + pad
            for i, (kind, data) in enumerate(self.contexts):
                one = _CONTEXT_HEAD.pack(kind, len(data), 0) + data
                if i < len(self.contexts) - 1:
                    one += bytes(-len(one) % 8)
                packed_contexts += one
            dialects += bytes(pad)
        count = len(self.contexts) if packed_contexts else 0
        head = _NEGOTIATE_FIXED.pack(
            self.structure_size,
            len(self.dialects) if self.dialect_count is None else self.dialect_count,
            self.security_mode, 0, self.capabilities, self.client_guid,
            offset if self.context_offset is None else self.context_offset,
            count if self.context_count is None else self.context_count, 0,
        )
        return head + dialects + packed_contexts + self.trailing


_SETUP_FIXED = struct.Struct("<HBBIIHHQ")


@dataclass
class SetupSpec:
    """MS-SMB2 2.2.5 SESSION_SETUP request fields."""

    token: bytes
    structure_size: int = 25
    flags: int = 0
    security_mode: int = 1
    capabilities: int = 1
    channel: int = 0
    buffer_offset: int = 88
    buffer_length: int | None = None
    previous_session_id: int = 0
    trailing: bytes = b""

    def pack(self) -> bytes:
        length = len(self.token) if self.buffer_length is None else self.buffer_length
        head = _SETUP_FIXED.pack(
            self.structure_size, self.flags, self.security_mode, self.capabilities, self.channel,
            self.buffer_offset, length, self.previous_session_id,
        )
        return head + self.token + self.trailing


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, content: bytes) -> bytes:
    """X.690 DER: tag, minimal definite length, content."""
    return bytes((tag,)) + _length(len(content)) + content


def oid_content(dotted: str) -> bytes:
    """X.690 8.19: the content octets of an OBJECT IDENTIFIER, arcs of any size."""
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


def mech_types_der(oids: list[bytes]) -> bytes:
    """RFC 4178 5: the DER MechTypeList the mechListMIC covers (the OIDs as the client meant them)."""
    return tlv(0x30, b"".join(tlv(0x06, o) for o in oids))


SPNEGO_OID = oid_content("1.3.6.1.5.5.2")
NTLMSSP_OID = oid_content(NTLMSSP)


@dataclass
class InitSpec:
    """RFC 4178 4.2.1 NegTokenInit (MS-SPNG 2.2.1 NegTokenInit2 fields too), in its GSS framing."""

    mech_oids: list[bytes] = field(default_factory=lambda: [NTLMSSP_OID])
    mech_token: bytes | None = None
    req_flags: bytes | None = None  # the BIT STRING content
    hint_name: bytes | None = None  # MS-SPNG negHints [3] hintName
    mic: bytes | None = None  # [3] in RFC 4178, [4] when negHints are present
    framed: bool = True
    extra: list[tuple[int, bytes]] = field(default_factory=list)  # (context tag, content) appended

    def encode(self) -> bytes:
        body = tlv(0xA0, mech_types_der(self.mech_oids))
        if self.req_flags is not None:
            body += tlv(0xA1, tlv(0x03, self.req_flags))
        if self.mech_token is not None:
            body += tlv(0xA2, tlv(0x04, self.mech_token))
        if self.hint_name is not None:
            body += tlv(0xA3, tlv(0x30, tlv(0xA0, tlv(0x1B, self.hint_name))))
            if self.mic is not None:
                body += tlv(0xA4, tlv(0x04, self.mic))
        elif self.mic is not None:
            body += tlv(0xA3, tlv(0x04, self.mic))
        for tag, content in self.extra:
            body += tlv(tag, content)
        inner = tlv(0xA0, tlv(0x30, body))
        return tlv(0x60, tlv(0x06, SPNEGO_OID) + inner) if self.framed else inner


@dataclass
class RespSpec:
    """RFC 4178 4.2.2 NegTokenResp."""

    neg_state: int | None = None
    supported_mech: bytes | None = None
    response_token: bytes | None = None
    mic: bytes | None = None

    def encode(self) -> bytes:
        body = b""
        if self.neg_state is not None:
            body += tlv(0xA0, tlv(0x0A, bytes((self.neg_state,))))
        if self.supported_mech is not None:
            body += tlv(0xA1, tlv(0x06, self.supported_mech))
        if self.response_token is not None:
            body += tlv(0xA2, tlv(0x04, self.response_token))
        if self.mic is not None:
            body += tlv(0xA3, tlv(0x04, self.mic))
        return tlv(0xA1, tlv(0x30, body))


def echo(message_id: int) -> bytes:
    """An ECHO request (MS-SMB2 2.2.28) without a session: the probe whether a connection still answers."""
    return Header(Command.ECHO, message_id, credit=1).pack() + struct.pack("<HH", 4, 0)
