"""SMB packets as trees: Direct TCP frames (MS-SMB2 2.1), SMB2 compounds and headers (2.2.1), the SMB1
NEGOTIATE (MS-CIFS 2.2.4.52), TRANSFORM_HEADER (2.2.41), rendered from the codec's Smb2Header, Smb1Header,
Smb1NegotiateRequest and TransformHeader; each body is smb2_body's."""

from __future__ import annotations

import struct

from smb2auth.decode.smb2_body import render_body
from smb2auth.decode.tree import DecodeError, Node, add_flags, hexed
from smb2auth.errors import MalformedMessage
from smb2auth.smb2 import (
    FrameReader,
    HeaderFlags,
    Smb1Flags2,
    Smb1Header,
    Smb1NegotiateRequest,
    Smb2Header,
    TransformHeader,
    parse_body,
    split_compound,
)
from smb2auth.smb2.framing import MAX_FRAME
from smb2auth.smb2.header import (
    COMPRESSION_PROTOCOL_ID,
    SMB1_PROTOCOL_ID,
    SMB2_PROTOCOL_ID,
    TRANSFORM_PROTOCOL_ID,
)
from smb2auth.smb2.negotiate import SMB1_DIALECT_SMB2_002, SMB1_DIALECT_SMB2_WILDCARD
from smb2auth.status import NtStatus

PROTOCOL_IDS = (SMB2_PROTOCOL_ID, SMB1_PROTOCOL_ID, TRANSFORM_PROTOCOL_ID, COMPRESSION_PROTOCOL_ID)
_SMB1_SMB2_DIALECTS = {
    SMB1_DIALECT_SMB2_002: "SMB2 2.0.2",
    SMB1_DIALECT_SMB2_WILDCARD: "SMB2 wildcard (MS-SMB2 3.3.5.3.1)",
}


def decode_smb(data: bytes, base: int = 0) -> Node:
    """SMB2 (compounds included), the SMB1 NEGOTIATE, or a TRANSFORM_HEADER; with or without Direct TCP."""
    data = bytes(data)
    if data[:4] in PROTOCOL_IDS:
        return _packet(data, base)
    reader = FrameReader(MAX_FRAME)
    try:
        payloads = reader.feed(data)
    except MalformedMessage as exc:
        raise DecodeError.from_codec("Direct TCP frame", exc, base) from None
    if reader.pending:
        at = len(data) - reader.pending
        if reader.pending < 4:
            raise DecodeError("Direct TCP frame", f"header truncated ({reader.pending} bytes)", base + at)
        size = int.from_bytes(data[at + 1 : at + 4], "big")
        reason = f"StreamProtocolLength {size} runs past the end ({reader.pending - 4} bytes follow)"
        raise DecodeError("Direct TCP frame", reason, base + at)
    stream = Node("Direct TCP stream", offset=base)
    at = base
    for payload in payloads:
        frame = stream.add("Direct TCP frame", note="MS-SMB2 2.1", offset=at)
        frame.add("StreamProtocolLength", str(len(payload)), offset=at + 1)
        if payload[:4] not in PROTOCOL_IDS:
            raise DecodeError("Direct TCP frame", "payload is not an SMB message", at + 4)
        frame.children.append(_packet(payload, at + 4))
        at += 4 + len(payload)
    return stream.children[0] if len(stream.children) == 1 else stream


def _packet(data: bytes, base: int) -> Node:
    if data[:4] == SMB1_PROTOCOL_ID:
        return _smb1(data, base)
    if data[:4] == TRANSFORM_PROTOCOL_ID:
        return _transform(data, base)
    if data[:4] == COMPRESSION_PROTOCOL_ID:
        return _compression(data, base)
    try:
        parts = split_compound(data)
    except MalformedMessage as exc:
        raise DecodeError.from_codec("SMB2 message", exc, base) from None
    if len(parts) == 1:
        return _smb2(parts[0].header, parts[0].body, base)
    root = Node("SMB2 compound", note=f"{len(parts)} messages (MS-SMB2 3.2.4.1.4)", offset=base)
    at = base
    for part in parts:
        root.children.append(_smb2(part.header, part.body, at))
        at += len(part.raw)
    return root


def _smb2(header: Smb2Header, body: bytes, base: int) -> Node:
    """MS-SMB2 2.2.1: the header, then the body the codec parses for its command."""
    kind = "response" if header.is_response else "request"
    what = f"SMB2 {header.command.name} {kind}"
    try:
        message = parse_body(header, body)
    except MalformedMessage as exc:
        raise DecodeError.from_codec(what, exc, base) from None
    root = Node(what, offset=base)
    h = root.add("SMB2 header", note="MS-SMB2 2.2.1", offset=base)
    h.add("ProtocolId", "fe 'SMB'", offset=base)
    h.add("StructureSize", "64", offset=base + 4)
    h.add("CreditCharge", str(header.credit_charge), offset=base + 6)
    if header.is_response:
        h.add("Status", f"0x{header.status:08x} ({NtStatus.name_of(header.status)})", offset=base + 8)
        root.note = NtStatus.name_of(header.status)
    else:
        h.add("ChannelSequence/Reserved", f"0x{header.status:08x}", offset=base + 8)
    h.add("Command", f"0x{int(header.command):04x} ({header.command.name})", offset=base + 12)
    h.add("CreditResponse" if header.is_response else "CreditRequest", str(header.credit), offset=base + 14)
    flags_node = add_flags(h, "Flags", int(header.flags) & ~0x70, HeaderFlags, 4, base + 16)
    flags_node.value = f"0x{int(header.flags):08x}"
    priority = (int(header.flags) & 0x70) >> 4
    if priority:
        flags_node.note = None
        flags_node.add(f"PRIORITY {priority}", note="SMB2_FLAGS_PRIORITY_MASK (3.1.1)")
    h.add("NextCommand", str(header.next_command), offset=base + 20)
    h.add("MessageId", str(header.message_id), offset=base + 24)
    if header.is_async:
        h.add("AsyncId", f"0x{header.async_id:016x}", offset=base + 32)
    else:
        h.add("Reserved", f"0x{header.reserved:08x}", "ProcessId", base + 32)
        h.add("TreeId", f"0x{header.tree_id:08x}", offset=base + 36)
    h.add("SessionId", f"0x{header.session_id:016x}", offset=base + 40)
    h.add("Signature", hexed(header.signature), None if header.is_signed else "not signed", base + 48)
    render_body(root, message, body, base)
    return root


def _smb1(data: bytes, base: int) -> Node:
    """MS-SMB 2.2.3.1 header; of the SMB1 commands only the multi-protocol NEGOTIATE is decoded."""
    try:
        header = Smb1Header.unpack(data)
        negotiate = header.command == Smb1Header.SMB_COM_NEGOTIATE
        request = Smb1NegotiateRequest.unpack(data) if negotiate else None
    except MalformedMessage as exc:
        raise DecodeError.from_codec("SMB1 message", exc, base) from None
    name = "SMB1 NEGOTIATE request" if request is not None else f"SMB1 command 0x{header.command:02x}"
    root = Node(name, note="MS-CIFS 2.2.3.1 / MS-SMB 2.2.3.1", offset=base)
    h = root.add("SMB1 header", offset=base)
    h.add("Protocol", "ff 'SMB'", offset=base)
    h.add("Command", f"0x{header.command:02x}", "SMB_COM_NEGOTIATE" if request else "not decoded", base + 4)
    h.add("Status", f"0x{header.status:08x}", offset=base + 5)
    h.add("Flags", f"0x{header.flags:02x}", offset=base + 9)
    add_flags(h, "Flags2", int(header.flags2), Smb1Flags2, 2, base + 10)
    h.add("PIDHigh", str(header.pid_high), offset=base + 12)
    h.add("SecurityFeatures", hexed(header.security_features), offset=base + 14)
    h.add("TID", str(header.tid), offset=base + 24)
    h.add("PIDLow", str(header.pid_low), offset=base + 26)
    h.add("UID", str(header.uid), offset=base + 28)
    h.add("MID", str(header.mid), offset=base + 30)
    if request is None:
        at = Smb1Header.SIZE
        root.add("parameters and data", hexed(data[at:]), "not decoded", base + at)
        return root
    # MS-CIFS 2.2.4.52.1: WordCount (0), ByteCount, then each dialect as 0x02 and a NUL-terminated string.
    at = Smb1Header.SIZE + 3
    dialects = root.add("Dialects", note="MS-CIFS 2.2.4.52.1", offset=base + at)
    for i, dialect in enumerate(request.dialects):
        dialects.add(f"Dialect[{i}]", repr(dialect), _SMB1_SMB2_DIALECTS.get(dialect), base + at)
        at += len(dialect) + 2
    return root


def _transform(data: bytes, base: int) -> Node:
    """MS-SMB2 2.2.41: the header of an encrypted message; the message is not decrypted."""
    try:
        th = TransformHeader.unpack(data)
    except MalformedMessage as exc:
        raise DecodeError.from_codec("SMB2 TRANSFORM_HEADER", exc, base) from None
    root = Node("SMB2 TRANSFORM_HEADER", note="MS-SMB2 2.2.41: encrypted message", offset=base)
    root.add("ProtocolId", "fd 'SMB'", offset=base)
    root.add("Signature", hexed(th.signature), "AES tag", base + 4)
    root.add("Nonce", hexed(th.nonce), offset=base + 20)
    root.add("OriginalMessageSize", str(th.original_message_size), offset=base + 36)
    flags = int(th.flags)
    note = "ENCRYPTED (3.1.1) / AES-128-CCM (3.0, 3.0.2)" if flags == 1 else None
    root.add("Flags/EncryptionAlgorithm", f"0x{flags:04x}", note, base + 42)
    root.add("SessionId", f"0x{th.session_id:016x}", offset=base + 44)
    encrypted = data[TransformHeader.SIZE :]
    root.add("EncryptedMessage", hexed(encrypted), f"{len(encrypted)} bytes, not decrypted", base + 52)
    return root


def _compression(data: bytes, base: int) -> Node:
    """MS-SMB2 2.2.42: the fixed header is shown (smb2auth has no codec for it); the payload is not
    decompressed."""
    root = Node("SMB2 COMPRESSION_TRANSFORM_HEADER", note="MS-SMB2 2.2.42, not decoded", offset=base)
    if len(data) >= 16:
        size, algorithm, flags, offset = struct.unpack_from("<IHHI", data, 4)
        root.add("OriginalCompressedSegmentSize", str(size), offset=base + 4)
        root.add("CompressionAlgorithm", f"0x{algorithm:04x}", offset=base + 8)
        root.add("Flags", f"0x{flags:04x}", offset=base + 10)
        root.add("Offset/Length", str(offset), offset=base + 12)
    root.add("data", hexed(data[16:]), offset=base + 16)
    return root
