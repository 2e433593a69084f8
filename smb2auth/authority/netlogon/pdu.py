"""DCE/RPC connection-oriented PDUs (C706 chapter 12, MS-RPCE 2.2.2): the common header, bind, bind_ack,
bind_nak, request, response, fault, and the auth verifier (sec_trailer + auth_value)."""

from __future__ import annotations

import enum
import struct
import uuid
from dataclasses import dataclass, field

from smb2auth.errors import MalformedMessage

HEADER = struct.Struct("<BBBB4sHHI")
HEADER_SIZE = HEADER.size
SEC_TRAILER = struct.Struct("<BBBBI")
NDR_DREP = b"\x10\x00\x00\x00"  # C706 14.1: little-endian integers, ASCII, IEEE floats
NDR_SYNTAX = (uuid.UUID("8a885d04-1ceb-11c9-9fe8-08002b104860"), 2, 0)
MAX_FRAGMENT = 5840
_BIND = struct.Struct("<HHI")
_REQUEST = struct.Struct("<IHH")
_RESPONSE = struct.Struct("<IHBB")
_FAULT = struct.Struct("<IHBBII")
_CONTEXT = struct.Struct("<HBB")
_RESULT = struct.Struct("<HH")


class PacketType(enum.IntEnum):
    REQUEST = 0
    RESPONSE = 2
    FAULT = 3
    BIND = 11
    BIND_ACK = 12
    BIND_NAK = 13
    ALTER_CONTEXT = 14
    ALTER_CONTEXT_RESP = 15
    AUTH3 = 16
    SHUTDOWN = 17


class PfcFlags(enum.IntFlag):
    PFC_FIRST_FRAG = 0x01
    PFC_LAST_FRAG = 0x02
    PFC_PENDING_CANCEL = 0x04
    PFC_CONC_MPX = 0x10
    PFC_DID_NOT_EXECUTE = 0x20
    PFC_MAYBE = 0x40
    PFC_OBJECT_UUID = 0x80


class AuthLevel(enum.IntEnum):
    """MS-RPCE 2.2.1.1.8."""

    NONE = 1
    CONNECT = 2
    CALL = 3
    PKT = 4
    PKT_INTEGRITY = 5
    PKT_PRIVACY = 6


RPC_C_AUTHN_NETLOGON = 0x44  # MS-RPCE 2.2.1.1.7


@dataclass(frozen=True)
class AuthVerifier:
    """sec_trailer (MS-RPCE 2.2.2.11) and the auth_value that follows it."""

    auth_type: int
    auth_level: int
    pad_length: int
    context_id: int
    value: bytes = field(repr=False)

    def pack(self) -> bytes:
        trailer = SEC_TRAILER.pack(self.auth_type, self.auth_level, self.pad_length, 0, self.context_id)
        return trailer + self.value


@dataclass(frozen=True)
class Pdu:
    """One PDU: the header fields, the PDU body after the header (auth padding included, verifier not)."""

    ptype: PacketType
    flags: PfcFlags
    call_id: int
    body: bytes
    auth: AuthVerifier | None = None

    def pack(self) -> bytes:
        verifier = self.auth.pack() if self.auth is not None else b""
        auth_length = len(self.auth.value) if self.auth is not None else 0
        length = HEADER_SIZE + len(self.body) + len(verifier)
        header = HEADER.pack(5, 0, self.ptype, self.flags, NDR_DREP, length, auth_length, self.call_id)
        return header + self.body + verifier

    @classmethod
    def unpack(cls, data: bytes) -> Pdu:
        if len(data) < HEADER_SIZE:
            raise MalformedMessage(f"RPC PDU of {len(data)} bytes is shorter than its header", offset=0)
        vers, minor, ptype, flags, drep, length, auth_length, call_id = HEADER.unpack_from(data)
        # C706 12.6.3.1: version 5.0; we speak only NDR little-endian
        if vers != 5 or minor != 0:
            raise MalformedMessage(f"RPC version {vers}.{minor}", offset=0)
        if drep[0] != 0x10:
            raise MalformedMessage(f"data representation {drep.hex()} is not little-endian ASCII", offset=4)
        if length != len(data):
            raise MalformedMessage(f"frag_length {length} but {len(data)} bytes", offset=8)
        try:
            kind = PacketType(ptype)
        except ValueError:
            raise MalformedMessage(f"unknown PDU type {ptype}", offset=2) from None
        auth = None
        end = length
        if auth_length:
            # MS-RPCE 2.2.2.11: the sec_trailer precedes auth_value at the end of the PDU
            end = length - auth_length - SEC_TRAILER.size
            if end < HEADER_SIZE:
                raise MalformedMessage(f"auth_length {auth_length} past the PDU's start", offset=10)
            atype, level, pad, _, ctx = SEC_TRAILER.unpack_from(data, end)
            auth = AuthVerifier(atype, level, pad, ctx, data[end + SEC_TRAILER.size:])
        return cls(kind, PfcFlags(flags), call_id, data[HEADER_SIZE:end], auth)


def fragment_length(header: bytes) -> int:
    """The frag_length of a PDU from its first 16 bytes (C706 12.6.3.1)."""
    if len(header) < HEADER_SIZE:
        raise MalformedMessage("short RPC header", offset=0)
    length = int(HEADER.unpack_from(header)[5])
    if length < HEADER_SIZE:
        raise MalformedMessage(f"frag_length {length} is shorter than the header", offset=8)
    return length


def _syntax(ident: tuple[uuid.UUID, int, int]) -> bytes:
    return ident[0].bytes_le + struct.pack("<HH", ident[1], ident[2])


def bind(
    call_id: int, interface: tuple[uuid.UUID, int, int], auth: AuthVerifier | None = None,
    assoc_group: int = 0,
) -> Pdu:
    """C706 12.6.4.3: one presentation context (id 0) for `interface` with the NDR transfer syntax."""
    body = _BIND.pack(MAX_FRAGMENT, MAX_FRAGMENT, assoc_group)
    body += struct.pack("<BBH", 1, 0, 0) + _CONTEXT.pack(0, 1, 0) + _syntax(interface) + _syntax(NDR_SYNTAX)
    if auth is not None:
        body += b"\x00" * (-(HEADER_SIZE + len(body)) % 4)
    return Pdu(PacketType.BIND, PfcFlags.PFC_FIRST_FRAG | PfcFlags.PFC_LAST_FRAG, call_id, body, auth)


@dataclass(frozen=True)
class BindAck:
    max_xmit: int
    max_recv: int
    assoc_group: int
    results: tuple[tuple[int, int], ...]
    auth: AuthVerifier | None

    @classmethod
    def parse(cls, pdu: Pdu) -> BindAck:
        body = pdu.body
        if len(body) < _BIND.size + 2:
            raise MalformedMessage("short bind_ack", offset=HEADER_SIZE)
        max_xmit, max_recv, group = _BIND.unpack_from(body)
        (addr_len,) = struct.unpack_from("<H", body, _BIND.size)
        pos = _BIND.size + 2 + addr_len
        pos += -(HEADER_SIZE + pos) % 4  # C706 12.6.4.4: p_result_list is 4-byte aligned
        if pos + 4 > len(body):
            raise MalformedMessage("bind_ack ends in its secondary address", offset=HEADER_SIZE + pos)
        count = body[pos]
        pos += 4
        results = []
        for _ in range(count):
            if pos + 24 > len(body):
                raise MalformedMessage("bind_ack ends in its result list", offset=HEADER_SIZE + pos)
            results.append(_RESULT.unpack_from(body, pos))
            pos += 24
        return cls(max_xmit, max_recv, group, tuple(results), pdu.auth)


def bind_nak_reason(pdu: Pdu) -> int:
    """C706 12.6.4.5: provider_reject_reason."""
    if len(pdu.body) < 2:
        raise MalformedMessage("short bind_nak", offset=HEADER_SIZE)
    return int(struct.unpack_from("<H", pdu.body)[0])


def request(
    call_id: int, opnum: int, stub: bytes, auth: AuthVerifier | None = None, alloc_hint: int | None = None
) -> Pdu:
    """C706 12.6.4.9: one fragment; `stub` includes any auth padding, `alloc_hint` is the stub's own size."""
    body = _REQUEST.pack(len(stub) if alloc_hint is None else alloc_hint, 0, opnum) + stub
    return Pdu(PacketType.REQUEST, PfcFlags.PFC_FIRST_FRAG | PfcFlags.PFC_LAST_FRAG, call_id, body, auth)


def response_stub(pdu: Pdu) -> bytes:
    """C706 12.6.4.10: the stub data (with any auth padding) of a response fragment."""
    if len(pdu.body) < _RESPONSE.size:
        raise MalformedMessage("short response PDU", offset=HEADER_SIZE)
    return pdu.body[_RESPONSE.size:]


def fault_status(pdu: Pdu) -> int:
    """C706 12.6.4.7: the fault's status code (nca_s_* or a Win32/NTSTATUS value)."""
    if len(pdu.body) < _FAULT.size:
        raise MalformedMessage("short fault PDU", offset=HEADER_SIZE)
    return int(_FAULT.unpack_from(pdu.body)[4])


NCA_S_FAULT_ACCESS_DENIED = 0x00000005
NCA_S_OP_RNG_ERROR = 0x1C010002
NCA_S_FAULT_SEC_PKG_ERROR = 0x00000721
