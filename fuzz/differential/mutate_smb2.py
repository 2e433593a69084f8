"""The `smb2` family: NEGOTIATE and SESSION_SETUP headers (MS-SMB2 2.2.1.2), bodies (2.2.3, 2.2.5), the
negotiate contexts (2.2.3.1), compounding (3.2.4.1.4) and the Direct TCP / NetBIOS framing (2.1)."""

from __future__ import annotations

import random
import struct

from fuzz.differential.cases import applies, generator, junk
from fuzz.differential.script import Conversation, Edit
from fuzz.differential.wire import Header, NegotiateSpec, SetupSpec, echo
from smb2auth.smb2.header import HeaderFlags
from smb2auth.smb2.negotiate import Dialect
from smb2auth.smb2.negotiate_contexts import NegotiateContextType

TARGETS = ("negotiate", "first", "auth")
FLAG_NAMES = {int(f): f.name or "" for f in HeaderFlags if f.name and f != HeaderFlags.PRIORITY_MASK}
FLAG_BITS = (*sorted(FLAG_NAMES), 0x10, 0x80, 0x100, 0x8000, 0x01000000, 0x40000000, 0x80000000)


def _flag_name(bit: int) -> str:
    if bit in FLAG_NAMES:
        return FLAG_NAMES[bit]
    return "PRIORITY" if bit & 0x70 else f"undefined 0x{bit:08x}"


@generator("smb2")
def header_flag(rng: random.Random) -> Edit:
    target, bit = rng.choice(TARGETS), rng.choice(FLAG_BITS)
    return Edit("smb2.header-flag", f"header.{target}", (bit,), f"{_flag_name(bit)} @{target}")


@applies("smb2.header-flag")
def _header_flag(header: Header, args: tuple[int], conv: Conversation) -> Header:
    header.flags |= args[0]
    return header


@generator("smb2")
def header_signed(rng: random.Random) -> Edit:
    target = rng.choice(TARGETS)
    label = f"SIGNED, random signature @{target}"
    return Edit("smb2.signed-random", f"header.{target}", (junk(rng, 16),), label)


@applies("smb2.signed-random")
def _header_signed(header: Header, args: tuple[bytes], conv: Conversation) -> Header:
    header.flags |= HeaderFlags.SIGNED
    header.signature = args[0]
    return header


HEADER_FIELDS = {
    "credit_charge": (0, 2, 3, 64, 0xFFFF),
    "credit": (0, 0xFFFF),
    "status": (1, 0xC0000022, 0x103),
    "next_command": (8, 64, 72, 0x1000, 0xFFFFFFF8, 7),
    "structure_size": (0, 63, 65, 0xFFFF),
    "message_id": (1, 2, 0xFFFFFFFFFFFFFFFF, 1000),
    "session_id": (1, 0xFFFFFFFFFFFFFFFF),
    "middle": (0xFEFF, 1 << 32, 0xFFFFFFFFFFFFFFFF),
}


@generator("smb2")
def header_field(rng: random.Random) -> Edit:
    target = rng.choice(TARGETS)
    name = rng.choice(sorted(HEADER_FIELDS))
    value = rng.choice(HEADER_FIELDS[name])
    shown = name in ("credit_charge", "structure_size")
    label = f"{name} {value} @{target}" if shown else f"{name} @{target}"
    return Edit("smb2.header-field", f"header.{target}", (name, value), label)


@applies("smb2.header-field")
def _header_field(header: Header, args: tuple[str, int], conv: Conversation) -> Header:
    name, value = args
    if name in ("message_id", "session_id"):
        value = value if value > 0xFFFF or not getattr(header, name) else getattr(header, name) + value
    setattr(header, name, value)
    return header


@generator("smb2")
def header_protocol(rng: random.Random) -> Edit:
    target = rng.choice(TARGETS)
    value = rng.choice((b"\xffSMB", b"\xfdSMB", b"\xfcSMB", b"\xfeSMc", b"\x00\x00\x00\x00"))
    return Edit("smb2.protocol-id", f"header.{target}", (value,), f"ProtocolId {value.hex()} @{target}")


@applies("smb2.protocol-id")
def _header_protocol(header: Header, args: tuple[bytes], conv: Conversation) -> Header:
    header.protocol_id = args[0]
    return header


# The last SESSION_SETUP's token follows the server's CHALLENGE, so there only the header and the fixed
# body (the same bytes for both servers) are flipped; the token is the ntlm and spnego families' business.
FLIP_END = {"negotiate": 1 << 16, "first": 1 << 16, "auth": 4 + 64 + 24}


@generator("smb2")
def raw_flip(rng: random.Random) -> Edit:
    target = rng.choice(TARGETS)
    where = "the header or fixed body" if target == "auth" else "the frame"
    return Edit("smb2.flip", f"frame.{target}", (FLIP_END[target], rng.randrange(4, 1 << 16),
                1 << rng.randrange(8)), f"a bit of {where} flipped @{target}")


@applies("smb2.flip")
def _raw_flip(data: bytes, args: tuple[int, int, int], conv: Conversation) -> bytes:
    out = bytearray(data)
    end = min(len(out), args[0])
    at = 4 + (args[1] - 4) % (end - 4)
    out[at] ^= args[2]
    return bytes(out)


# -- framing ---------------------------------------------------------------------------------------


@generator("smb2")
def frame_junk(rng: random.Random) -> Edit:
    target = rng.choice(TARGETS)
    n = rng.randrange(1, 16)
    label = f"junk after the frame @{target}"
    return Edit("smb2.junk-after-frame", f"frame.{target}", (junk(rng, n),), label)


@applies("smb2.junk-after-frame")
def _frame_junk(data: bytes, args: tuple[bytes], conv: Conversation) -> bytes:
    return data + args[0]


@generator("smb2")
def frame_short(rng: random.Random) -> Edit:
    target = rng.choice(TARGETS)
    n = rng.choice((1, 2, 8, 16, 30))
    return Edit("smb2.length-short", f"frame.{target}", (n,), f"NetBIOS length short @{target}")


@applies("smb2.length-short")
def _frame_short(data: bytes, args: tuple[int], conv: Conversation) -> bytes:
    size = int.from_bytes(data[1:4], "big")
    return b"\x00" + max(0, size - args[0]).to_bytes(3, "big") + data[4:]


@generator("smb2")
def frame_long(rng: random.Random) -> Edit:
    target = rng.choice(TARGETS)
    label = f"NetBIOS length long @{target}"
    return Edit("smb2.length-long", f"frame.{target}", (rng.choice((1, 8)),), label)


@applies("smb2.length-long")
def _frame_long(data: bytes, args: tuple[int], conv: Conversation) -> bytes:
    size = int.from_bytes(data[1:4], "big")
    return b"\x00" + (size + args[0]).to_bytes(3, "big") + data[4:]


def _netbios_name(name: str) -> bytes:
    """RFC 1002 4.1: a first-level encoded NetBIOS name (half-ASCII), length-prefixed, root label."""
    raw = name.upper().ljust(15)[:15].encode() + b"\x20"
    return b"\x20" + bytes(c for b in raw for c in (0x41 + (b >> 4), 0x41 + (b & 0xF))) + b"\x00"


@generator("smb2")
def frame_session_request(rng: random.Random) -> Edit:
    return Edit("smb2.nbss-session-request", "frame.negotiate", (), "NetBIOS session request first")


@applies("smb2.nbss-session-request")
def _frame_session_request(data: bytes, args: tuple[()], conv: Conversation) -> bytes:
    # RFC 1002 4.3.2: SESSION REQUEST, type 0x81, called then calling name.
    names = _netbios_name("*SMBSERVER") + _netbios_name("FUZZ")
    return b"\x81\x00" + struct.pack(">H", len(names)) + names + data


@generator("smb2")
def frame_keepalive(rng: random.Random) -> Edit:
    target = rng.choice(TARGETS)
    return Edit("smb2.nbss-keepalive", f"frame.{target}", (), f"NetBIOS keepalive first @{target}")


@applies("smb2.nbss-keepalive")
def _frame_keepalive(data: bytes, args: tuple[()], conv: Conversation) -> bytes:
    return b"\x85\x00\x00\x00" + data  # RFC 1002 4.3.7: SESSION KEEP ALIVE


@generator("smb2")
def frame_type(rng: random.Random) -> Edit:
    target = rng.choice(TARGETS)
    kind = rng.choice((0x01, 0x82, 0x83, 0x84, 0xFE))
    return Edit("smb2.nbss-type", f"frame.{target}", (kind,), f"NBSS type 0x{kind:02x} @{target}")


@applies("smb2.nbss-type")
def _frame_type(data: bytes, args: tuple[int], conv: Conversation) -> bytes:
    return bytes((args[0],)) + data[1:]


@generator("smb2")
def compound(rng: random.Random) -> Edit:
    target = rng.choice(TARGETS)
    related = rng.random() < 0.5
    return Edit("smb2.compound", f"frame.{target}", (related,),
                f"{'related ' if related else ''}ECHO compounded @{target}")


@applies("smb2.compound")
def _compound(data: bytes, args: tuple[bool], conv: Conversation) -> bytes:
    payload = data[4:]
    padded = payload + bytes(-len(payload) % 8)
    first = padded[:20] + struct.pack("<I", len(padded)) + padded[24:]
    second = bytearray(echo(conv.next_mid))
    conv.next_mid += 1
    if args[0]:
        struct.pack_into("<I", second, 16, HeaderFlags.RELATED_OPERATIONS)
    payload = first + bytes(second)
    return struct.pack(">I", len(payload)) + payload


# -- NEGOTIATE body -------------------------------------------------------------------------------

DIALECT_LISTS: dict[str, list[int]] = {
    "2.0.2 only": [Dialect.SMB2_0_2],
    "3.1.1 only": [Dialect.SMB3_1_1],
    "wildcard": [Dialect.SMB2_WILDCARD],
    "unknown only": [0x0222],
    "unknown and 3.1.1": [0x0222, Dialect.SMB3_1_1],
    "3.1.1 twice": [Dialect.SMB3_1_1, Dialect.SMB3_1_1],
    "none": [],
    "3.0 and 2.1": [Dialect.SMB3_0, Dialect.SMB2_1],
    "0xffff": [0xFFFF],
}


@generator("smb2")
def negotiate_dialects(rng: random.Random) -> Edit:
    name = rng.choice(sorted(DIALECT_LISTS))
    return Edit("smb2.dialects", "negotiate", (name,), name)


@applies("smb2.dialects")
def _negotiate_dialects(spec: NegotiateSpec, args: tuple[str], conv: Conversation) -> NegotiateSpec:
    spec.dialects = list(DIALECT_LISTS[args[0]])
    return spec


NEGOTIATE_FIELDS = {
    "structure_size": (0, 35, 37, 0xFFFF),
    "dialect_count": (0, 1, 6, 100, 0xFFFF),
    "security_mode": (0, 2, 3, 0xFF),
    "capabilities": (0, 0xFFFFFFFF, 0x80),
    "context_count": (0, 1, 4, 0xFFFF),
    "context_offset": (0, 1, 100, 0xFFFF, 0xFFFFFFFF),
}


@generator("smb2")
def negotiate_field(rng: random.Random) -> Edit:
    name = rng.choice(sorted(NEGOTIATE_FIELDS))
    value = rng.choice(NEGOTIATE_FIELDS[name])
    return Edit("smb2.negotiate-field", "negotiate", (name, value), f"{name} {value}")


@applies("smb2.negotiate-field")
def _negotiate_field(spec: NegotiateSpec, args: tuple[str, int], conv: Conversation) -> NegotiateSpec:
    setattr(spec, args[0], args[1])
    return spec


def _netname(name: str) -> tuple[int, bytes]:
    return NegotiateContextType.NETNAME_NEGOTIATE_CONTEXT_ID, name.encode("utf-16-le")


CONTEXT_EDITS = ("duplicate preauth", "duplicate signing", "duplicate encryption", "netname", "unknown type",
                 "transport", "compression", "no preauth", "none", "preauth no hash", "preauth unknown hash",
                 "cipher unknown only", "empty context", "rdma")


@generator("smb2")
def negotiate_context(rng: random.Random) -> Edit:
    name = rng.choice(CONTEXT_EDITS)
    return Edit("smb2.context", "negotiate", (name, junk(rng, 8)), name)


@applies("smb2.context")
def _negotiate_context(spec: NegotiateSpec, args: tuple[str, bytes], conv: Conversation) -> NegotiateSpec:
    name, value = args
    ctx = spec.contexts
    kinds = [k for k, _ in ctx]
    if name.startswith("duplicate"):
        kind = {"preauth": 1, "signing": 8, "encryption": 2}[name.split()[1]]
        ctx.append(ctx[kinds.index(kind)])
    elif name == "netname":
        ctx.append(_netname("127.0.0.1"))
    elif name == "unknown type":
        ctx.append((0x00FF, value))
    elif name == "transport":
        ctx.append((NegotiateContextType.TRANSPORT_CAPABILITIES, struct.pack("<I", 1)))
    elif name == "compression":
        ctx.append((NegotiateContextType.COMPRESSION_CAPABILITIES, struct.pack("<HHIH", 1, 0, 0, 1)))
    elif name == "rdma":
        ctx.append((NegotiateContextType.RDMA_TRANSFORM_CAPABILITIES, struct.pack("<HHIH", 1, 0, 0, 1)))
    elif name == "no preauth":
        spec.contexts = [c for c in ctx if c[0] != 1]
    elif name == "none":
        spec.contexts = []
    elif name == "preauth no hash":
        ctx[kinds.index(1)] = (1, struct.pack("<HH", 0, 32) + bytes(32))
    elif name == "preauth unknown hash":
        ctx[kinds.index(1)] = (1, struct.pack("<HHH", 1, 32, 0x0002) + bytes(32))
    elif name == "cipher unknown only":
        ctx[kinds.index(2)] = (2, struct.pack("<HH", 1, 0x0009))
    elif name == "empty context":
        ctx.append((NegotiateContextType.SIGNING_CAPABILITIES, b""))
    return spec


@generator("smb2")
def negotiate_trailing(rng: random.Random) -> Edit:
    n = rng.choice((1, 2, 7, 64))
    return Edit("smb2.negotiate-trailing", "negotiate", (junk(rng, n),), "bytes after the NEGOTIATE body")


@applies("smb2.negotiate-trailing")
def _negotiate_trailing(spec: NegotiateSpec, args: tuple[bytes], conv: Conversation) -> NegotiateSpec:
    spec.trailing = args[0]
    return spec


# -- SESSION_SETUP body -----------------------------------------------------------------------------

SETUP_FIELDS = {
    "structure_size": (0, 24, 26, 0xFFFF, 9),
    "flags": (1, 2, 0x80, 0xFF),
    "security_mode": (0, 2, 3, 0xFF),
    "capabilities": (0, 0xFFFFFFFF),
    "channel": (1, 0xFFFFFFFF),
    "buffer_offset": (0, 64, 87, 89, 96, 0xFFFF),
    "previous_session_id": (1, 0xFFFFFFFFFFFFFFFF),
}


@generator("smb2")
def setup_field(rng: random.Random) -> Edit:
    target = rng.choice(("first", "auth"))
    name = rng.choice(sorted(SETUP_FIELDS))
    value = rng.choice(SETUP_FIELDS[name])
    shown = f"{name} {value}" if name in ("structure_size", "flags", "buffer_offset") else name
    return Edit("smb2.setup-field", f"setup.{target}", (name, value), f"{shown} @{target}")


@applies("smb2.setup-field")
def _setup_field(spec: SetupSpec, args: tuple[str, int], conv: Conversation) -> SetupSpec:
    setattr(spec, args[0], args[1])
    return spec


@generator("smb2")
def setup_length(rng: random.Random) -> Edit:
    target = rng.choice(("first", "auth"))
    delta = rng.choice((-1, -8, -30, 1, 8, 0x10000))
    word = "shorter" if delta < 0 else "longer"
    return Edit("smb2.setup-length", f"setup.{target}", (delta,), f"SecurityBufferLength {word} @{target}")


@applies("smb2.setup-length")
def _setup_length(spec: SetupSpec, args: tuple[int], conv: Conversation) -> SetupSpec:
    spec.buffer_length = max(0, min(0xFFFF, len(spec.token) + args[0]))
    return spec


@generator("smb2")
def setup_trailing(rng: random.Random) -> Edit:
    target = rng.choice(("first", "auth"))
    return Edit("smb2.setup-trailing", f"setup.{target}", (junk(rng, rng.choice((1, 8, 100))),),
                f"bytes after the SecurityBuffer @{target}")


@applies("smb2.setup-trailing")
def _setup_trailing(spec: SetupSpec, args: tuple[bytes], conv: Conversation) -> SetupSpec:
    spec.trailing = args[0]
    return spec


@generator("smb2")
def setup_empty(rng: random.Random) -> Edit:
    target = rng.choice(("first", "auth"))
    return Edit("smb2.setup-empty", f"setup.{target}", (), f"empty SecurityBuffer @{target}")


@applies("smb2.setup-empty")
def _setup_empty(spec: SetupSpec, args: tuple[()], conv: Conversation) -> SetupSpec:
    spec.token = b""
    return spec
