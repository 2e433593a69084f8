"""SMB2 message bodies (MS-SMB2 2.2.2 - 2.2.32) as trees, rendered from the codec's message dataclasses; the
security buffer's token is decoded in place.

The dataclasses keep each buffer but not the header-relative offset field that located it, so `_offset`
reads those fields (and only those) to say where a buffer lies."""

from __future__ import annotations

import struct

from smb2auth.decode.spnego import decode_token
from smb2auth.decode.tree import Node, add_flags, enum_name, filetime, guid, hexed
from smb2auth.errors import MalformedMessage
from smb2auth.smb2 import (
    FSCTL_VALIDATE_NEGOTIATE_INFO,
    HEADER_SIZE,
    Capabilities,
    Cipher,
    Dialect,
    EchoRequest,
    EchoResponse,
    EncryptionCapabilities,
    ErrorResponse,
    HashAlgorithm,
    IoctlRequest,
    IoctlResponse,
    LogoffRequest,
    LogoffResponse,
    Message,
    NegotiateContext,
    NegotiateContextType,
    NegotiateRequest,
    NegotiateResponse,
    NetnameNegotiateContextId,
    PreauthIntegrityCapabilities,
    RawBody,
    SecurityMode,
    SessionFlags,
    SessionSetupFlags,
    SessionSetupRequest,
    SessionSetupResponse,
    ShareCapabilities,
    ShareFlags,
    SigningAlgorithm,
    SigningCapabilities,
    TreeConnectFlags,
    TreeConnectRequest,
    TreeConnectResponse,
    TreeDisconnectRequest,
    TreeDisconnectResponse,
    UnknownNegotiateContext,
    ValidateNegotiateInfoRequest,
    ValidateNegotiateInfoResponse,
)
from smb2auth.smb2.negotiate import DIALECT_NAMES

# MS-SMB2 2.2.7, 2.2.8, 2.2.11, 2.2.12, 2.2.28, 2.2.29: the bodies that are a StructureSize and Reserved.
_SMALL = (
    LogoffRequest,
    LogoffResponse,
    TreeDisconnectRequest,
    TreeDisconnectResponse,
    EchoRequest,
    EchoResponse,
)
# MS-SMB2 2.2.10: the 2-bit caching policy in ShareFlags.
_CACHING = {0: "MANUAL_CACHING", 0x10: "AUTO_CACHING", 0x20: "VDO_CACHING", 0x30: "NO_CACHING"}


def _dialect(value: int) -> str:
    name = DIALECT_NAMES.get(value, "unknown")
    return f"0x{value:04x} ({name}{' (wildcard)' if value == Dialect.SMB2_WILDCARD else ''})"


def _offset(body: bytes, at: int, fmt: str = "<H") -> int:
    """A header-relative offset field at `at` in the body, as a body-relative offset (MS-SMB2 2.2)."""
    return int(struct.unpack_from(fmt, body, at)[0]) - HEADER_SIZE


def render_body(root: Node, message: Message, body: bytes, base: int) -> None:
    """The body of the SMB2 message at `base`; it starts 64 bytes after it."""
    b = base + HEADER_SIZE
    node = root.add(type(message).__name__, note="body", offset=b)
    if isinstance(message, NegotiateRequest):
        node.add("DialectCount", str(len(message.dialects)), offset=b + 2)
        add_flags(node, "SecurityMode", int(message.security_mode), SecurityMode, 2, b + 4)
        add_flags(node, "Capabilities", int(message.capabilities), Capabilities, 4, b + 8)
        node.add("ClientGuid", guid(message.client_guid), offset=b + 12)
        contexts_at = 0
        if Dialect.SMB3_1_1 in message.dialects:
            # MS-SMB2 2.2.3: with 3.1.1 offered the 8 bytes after ClientGuid locate the contexts.
            contexts_at = _offset(body, 28, "<I")
            node.add("NegotiateContextOffset", str(contexts_at + HEADER_SIZE), offset=b + 28)
            node.add("NegotiateContextCount", str(len(message.negotiate_contexts)), offset=b + 32)
        else:
            node.add("ClientStartTime", filetime(message.client_start_time), offset=b + 28)
        dialects = node.add("Dialects", offset=b + 36)
        for i, d in enumerate(message.dialects):
            dialects.add(f"Dialect[{i}]", _dialect(d), offset=b + 36 + 2 * i)
        _contexts(node, message.negotiate_contexts, base, contexts_at + HEADER_SIZE)
    elif isinstance(message, NegotiateResponse):
        add_flags(node, "SecurityMode", int(message.security_mode), SecurityMode, 2, b + 2)
        node.add("DialectRevision", _dialect(message.dialect_revision), offset=b + 4)
        node.add("NegotiateContextCount", str(len(message.negotiate_contexts)), offset=b + 6)
        node.add("ServerGuid", guid(message.server_guid), offset=b + 8)
        add_flags(node, "Capabilities", int(message.capabilities), Capabilities, 4, b + 24)
        node.add("MaxTransactSize", str(message.max_transact_size), offset=b + 28)
        node.add("MaxReadSize", str(message.max_read_size), offset=b + 32)
        node.add("MaxWriteSize", str(message.max_write_size), offset=b + 36)
        node.add("SystemTime", filetime(message.system_time), offset=b + 40)
        node.add("ServerStartTime", filetime(message.server_start_time), offset=b + 48)
        _security_buffer(node, message.security_buffer, b + _offset(body, 56), b + 56)
        contexts_at = _offset(body, 60, "<I")
        node.add("NegotiateContextOffset", str(contexts_at + HEADER_SIZE), offset=b + 60)
        _contexts(node, message.negotiate_contexts, base, contexts_at + HEADER_SIZE)
    elif isinstance(message, SessionSetupRequest):
        add_flags(node, "Flags", int(message.flags), SessionSetupFlags, 1, b + 2)
        add_flags(node, "SecurityMode", int(message.security_mode), SecurityMode, 1, b + 3)
        add_flags(node, "Capabilities", int(message.capabilities), Capabilities, 4, b + 4)
        node.add("Channel", str(message.channel), offset=b + 8)
        node.add("PreviousSessionId", f"0x{message.previous_session_id:016x}", offset=b + 16)
        _security_buffer(node, message.security_buffer, b + _offset(body, 12), b + 12)
    elif isinstance(message, SessionSetupResponse):
        add_flags(node, "SessionFlags", int(message.session_flags), SessionFlags, 2, b + 2)
        _security_buffer(node, message.security_buffer, b + _offset(body, 4), b + 4)
    elif isinstance(message, TreeConnectRequest):
        add_flags(node, "Flags", int(message.flags), TreeConnectFlags, 2, b + 2)
        node.add("Path", repr(message.path), offset=b + 8)
        if message.extension:
            node.add("Extension", hexed(message.extension), "MS-SMB2 2.2.9.1, not decoded", b + 8)
    elif isinstance(message, TreeConnectResponse):
        node.add("ShareType", f"{int(message.share_type)} ({message.share_type.name})", offset=b + 2)
        share = int(message.share_flags)
        flags_node = add_flags(node, "ShareFlags", share & ~0x30, ShareFlags, 4, b + 4)
        flags_node.value = f"0x{share:08x}"
        flags_node.note = None
        flags_node.add(_CACHING[share & 0x30], note="caching policy (bits 0x30)")
        add_flags(node, "Capabilities", int(message.capabilities), ShareCapabilities, 4, b + 8)
        node.add("MaximalAccess", f"0x{message.maximal_access:08x}", offset=b + 12)
    elif isinstance(message, ErrorResponse):
        node.add("ErrorContextCount", str(message.error_context_count), offset=b + 2)
        node.add("ByteCount", str(len(message.error_data)), offset=b + 4)
        if message.error_data:
            node.add("ErrorData", hexed(message.error_data), offset=b + 8)
    elif isinstance(message, (IoctlRequest, IoctlResponse)):
        _ioctl(node, message, body, b)
    elif isinstance(message, RawBody):
        node.name = "body"
        node.note = f"{len(message.data)} bytes, not decoded"
        node.add("StructureSize", str(message.structure_size), offset=b)
        node.add("data", hexed(message.data[2:]), offset=b + 2)
    elif isinstance(message, _SMALL):
        node.add("StructureSize", str(message.STRUCTURE_SIZE), offset=b)


def _security_buffer(parent: Node, buffer: bytes, at: int, field_at: int) -> None:
    if not buffer:
        parent.add("SecurityBuffer", note="empty", offset=field_at)
        return
    node = parent.add("SecurityBuffer", note=f"{len(buffer)} bytes", offset=at)
    node.children.append(decode_token(buffer, at))


def _contexts(parent: Node, contexts: tuple[NegotiateContext, ...], base: int, offset: int) -> None:
    """MS-SMB2 2.2.3.1: negotiate contexts from the header-relative `offset` of the message at `base`: each
    an 8-byte header and its data (as the codec packs it), 8-byte aligned from the header."""
    if not contexts:
        return
    node = parent.add("NegotiateContexts", offset=base + offset)
    for i, ctx in enumerate(contexts):
        if i:
            offset += -offset % 8
        data = ctx.pack_data()
        ctype = int(ctx.context_type)
        name = enum_name(NegotiateContextType, ctype)
        c = node.add(name, f"type 0x{ctype:04x}", f"{len(data)} bytes", base + offset)
        d = base + offset + 8
        if isinstance(ctx, PreauthIntegrityCapabilities):
            for j, alg in enumerate(ctx.hash_algorithms):
                value = f"0x{alg:04x} ({enum_name(HashAlgorithm, alg)})"
                c.add(f"HashAlgorithm[{j}]", value, offset=d + 4 + 2 * j)
            salt_at = d + 4 + 2 * len(ctx.hash_algorithms)
            c.add("Salt", hexed(ctx.salt), f"{len(ctx.salt)} bytes", salt_at)
        elif isinstance(ctx, EncryptionCapabilities):
            for j, cipher in enumerate(ctx.ciphers):
                c.add(f"Cipher[{j}]", f"0x{cipher:04x} ({enum_name(Cipher, cipher)})", offset=d + 2 + 2 * j)
        elif isinstance(ctx, SigningCapabilities):
            for j, alg in enumerate(ctx.signing_algorithms):
                value = f"0x{alg:04x} ({enum_name(SigningAlgorithm, alg)})"
                c.add(f"SigningAlgorithm[{j}]", value, offset=d + 2 + 2 * j)
        elif isinstance(ctx, NetnameNegotiateContextId):
            c.add("NetName", repr(ctx.net_name), offset=d)
        elif isinstance(ctx, UnknownNegotiateContext):
            c.add("Data", hexed(ctx.data), "not decoded", d)
        offset += 8 + len(data)


def _ioctl(node: Node, message: IoctlRequest | IoctlResponse, body: bytes, b: int) -> None:
    """MS-SMB2 2.2.31 / 2.2.32, and FSCTL_VALIDATE_NEGOTIATE_INFO's structures (2.2.31.4 / 2.2.32.6)."""
    request = isinstance(message, IoctlRequest)
    validate = message.ctl_code == FSCTL_VALIDATE_NEGOTIATE_INFO
    name = "FSCTL_VALIDATE_NEGOTIATE_INFO" if validate else None
    node.add("CtlCode", f"0x{message.ctl_code:08x}", name, b + 4)
    node.add("FileId", hexed(message.file_id), offset=b + 8)
    if isinstance(message, IoctlRequest):
        in_at, out_at = _offset(body, 24, "<I"), _offset(body, 36, "<I")
        node.add("MaxInputResponse", str(message.max_input_response), offset=b + 32)
        node.add("MaxOutputResponse", str(message.max_output_response), offset=b + 44)
        flags_at = b + 48
    else:
        in_at, out_at = _offset(body, 24, "<I"), _offset(body, 32, "<I")
        flags_at = b + 40
    flags = int(message.flags)
    node.add("Flags", f"0x{flags:08x}", "SMB2_0_IOCTL_IS_FSCTL" if flags & 1 else None, flags_at)
    for label, data, at in (("Input", message.input, in_at), ("Output", message.output, out_at)):
        if not data:
            continue
        part = node.add(label, note=f"{len(data)} bytes", offset=b + at)
        if validate and (label == "Input") == request:
            _validate_negotiate(part, data, b + at, request)
        else:
            part.add("data", hexed(data))


def _validate_negotiate(part: Node, data: bytes, at: int, request: bool) -> None:
    info: ValidateNegotiateInfoRequest | ValidateNegotiateInfoResponse
    try:
        info = (ValidateNegotiateInfoRequest if request else ValidateNegotiateInfoResponse).unpack(data)
    except MalformedMessage as exc:
        part.note = f"{len(data)} bytes, malformed: {exc.reason}"
        return
    add_flags(part, "Capabilities", int(info.capabilities), Capabilities, 4, at)
    if isinstance(info, ValidateNegotiateInfoRequest):
        part.add("ClientGuid", guid(info.client_guid), offset=at + 4)
        add_flags(part, "SecurityMode", int(info.security_mode), SecurityMode, 2, at + 20)
        dialects = part.add("Dialects", offset=at + 24)
        for i, d in enumerate(info.dialects):
            dialects.add(f"Dialect[{i}]", _dialect(d), offset=at + 24 + 2 * i)
    else:
        part.add("ServerGuid", guid(info.server_guid), offset=at + 4)
        add_flags(part, "SecurityMode", int(info.security_mode), SecurityMode, 2, at + 20)
        part.add("Dialect", _dialect(info.dialect), offset=at + 22)
