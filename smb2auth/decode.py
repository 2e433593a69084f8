"""`smb2auth decode`: an annotated tree of an NTLMSSP message, a SPNEGO / GSS-API token or an SMB2 message.

`decode_input(raw)` takes what a person pastes (hex, a hex dump, base64, an HTTP auth header line, or raw
bytes) and `decode_bytes(data)` the bytes themselves; both return a `Node` tree and raise only `DecodeError`
(a `MalformedMessage` whose `offset` counts from the start of the decoded bytes). Tokens nested in another
message (the SMB2 security buffer, the SPNEGO mechToken) that do not parse become raw hex with a note.

The codecs in ntlm/, spnego/ and smb2/ say whether bytes parse but not where each field lies, so this module
walks the fixed layouts itself for offsets and uses the codecs' enums, dataclasses and checks.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime
import json
import re
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from smb2auth.errors import MalformedMessage
from smb2auth.events import flag_names

__all__ = ["DecodeError", "Node", "decode_bytes", "decode_input", "register", "render_json", "render_text"]

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_NTLM_FIELD = struct.Struct("<HHI")
_MAX_DEPTH = 24


@dataclass
class Node:
    """One line of the annotated tree: a field name, its value as text, a note, and where it starts."""

    name: str
    value: str | None = None
    note: str | None = None
    offset: int | None = None
    children: list[Node] = field(default_factory=list)

    def add(
        self, name: str, value: str | None = None, note: str | None = None, offset: int | None = None
    ) -> Node:
        child = Node(name, value, note, offset)
        self.children.append(child)
        return child

    def find(self, name: str) -> Node | None:
        """The first node named `name` in this subtree (depth first), or None."""
        for node in self.walk():
            if node.name == name:
                return node
        return None

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.value is not None:
            out["value"] = self.value
        if self.note is not None:
            out["note"] = self.note
        if self.offset is not None:
            out["offset"] = self.offset
        out["children"] = [c.to_dict() for c in self.children]
        return out


class DecodeError(MalformedMessage):
    """Input that does not decode: `what` names the structure ("NTLMSSP AUTHENTICATE"), `offset` the byte."""

    def __init__(self, what: str, reason: str, offset: int | None = None) -> None:
        super().__init__(reason, offset=offset)
        self.what = what

    def __str__(self) -> str:
        where = f" at offset {self.offset}" if self.offset is not None else ""
        return f"malformed {self.what}{where}: {self.reason}"


# --- small formatters ------------------------------------------------------------------------------------


def _hex(data: bytes) -> str:
    return data.hex()


def _flag_names(enum_cls: Any, value: int) -> list[str]:
    """Names of the single-bit members set in `value`, then any unknown bits as hex."""
    names = list(flag_names(enum_cls, value))
    known = 0
    for name in names:
        known |= int(enum_cls[name])
    rest = value & ~known
    if rest:
        names.append(f"0x{rest:x} (unknown bits)")
    return names


def _add_flags(parent: Node, name: str, value: int, enum_cls: Any, width: int, offset: int | None) -> Node:
    names = _flag_names(enum_cls, value)
    node = parent.add(name, f"0x{value:0{width * 2}x}", None if names else "none set", offset)
    for flag in names:
        node.add(flag)
    return node


def _enum_name(enum_cls: Any, value: int) -> str:
    try:
        return str(enum_cls(value).name)
    except ValueError:
        return "unknown"


def _filetime(value: int) -> str:
    """A FILETIME (100 ns since 1601-01-01 UTC) as a UTC date."""
    if value == 0:
        return "0 (not set)"
    try:
        when = datetime.datetime(1601, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(
            microseconds=value // 10
        )
    except OverflowError:
        return f"0x{value:016x} (out of range)"
    return when.strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def _guid(data: bytes) -> str:
    if len(data) != 16:
        return _hex(data)
    a, b, c = struct.unpack_from("<IHH", data)
    return f"{a:08x}-{b:04x}-{c:04x}-{data[8:10].hex()}-{data[10:].hex()}"


def _utf16(data: bytes) -> tuple[str, str | None]:
    """A UTF-16LE string for display, and a note when it is not well formed."""
    note = "odd length" if len(data) % 2 else None
    try:
        return data[: len(data) & ~1].decode("utf-16-le"), note
    except UnicodeDecodeError:
        return data[: len(data) & ~1].decode("utf-16-le", "replace"), "invalid UTF-16"


# --- NTLMSSP (MS-NLMP 2.2) -------------------------------------------------------------------------------

_NTLM_KINDS = {1: "NEGOTIATE", 2: "CHALLENGE", 3: "AUTHENTICATE"}


class _Ntlm:
    """Annotates one NTLM message; `base` is where it starts in the whole input."""

    def __init__(self, data: bytes, base: int) -> None:
        self.data = data
        self.base = base
        self.what = "NTLMSSP"

    def fail(self, reason: str, at: int) -> DecodeError:
        return DecodeError(self.what, reason, self.base + at)

    def field(self, parent: Node, at: int, name: str) -> tuple[bytes, int]:
        """A (Len, MaxLen, BufferOffset) field (MS-NLMP 2.2.1): its bytes and the offset they start at."""
        length, maxlen, offset = _NTLM_FIELD.unpack_from(self.data, at)
        if length and offset + length > len(self.data):
            raise self.fail(
                f"{name} runs past the end (len {length} at {offset}, message is {len(self.data)} bytes)", at
            )
        note = f"len {length}, maxlen {maxlen}, at {offset}" if length else "empty"
        parent.add(f"{name}Fields", note=note, offset=self.base + at)
        return self.data[offset : offset + length], offset

    def decode(self) -> Node:
        from smb2auth.ntlm.messages import SIGNATURE, MessageType

        data = self.data
        if len(data) < 12:
            raise self.fail(f"message is {len(data)} bytes, shorter than the 12-byte prefix", len(data))
        if data[:8] != SIGNATURE:
            raise self.fail("Signature is not 'NTLMSSP\\0'", 0)
        (kind,) = _U32.unpack_from(data, 8)
        name = _NTLM_KINDS.get(kind)
        if name is None:
            raise self.fail(f"unknown MessageType {kind}", 8)
        self.what = f"NTLMSSP {name}"
        root = Node(f"NTLMSSP {name}", note=f"{len(data)} bytes", offset=self.base)
        root.add("Signature", "NTLMSSP\\0", offset=self.base)
        root.add("MessageType", f"{kind} ({MessageType(kind).name})", offset=self.base + 8)
        if kind == 1:
            self.negotiate(root)
        elif kind == 2:
            self.challenge(root)
        else:
            self.authenticate(root)
        self.codec_check(root, kind)
        return root

    def need(self, size: int) -> None:
        if len(self.data) < size:
            raise self.fail(
                f"message is {len(self.data)} bytes, the {self.what} header needs {size}", len(self.data)
            )

    def flags(self, parent: Node, at: int) -> int:
        from smb2auth.ntlm.messages import NegotiateFlags

        (flags,) = _U32.unpack_from(self.data, at)
        _add_flags(parent, "NegotiateFlags", flags, NegotiateFlags, 4, self.base + at)
        return int(flags)

    def string(self, parent: Node, name: str, raw: bytes, at: int, flags: int | None) -> str:
        from smb2auth.ntlm.messages import NegotiateFlags, decode_oem

        if not raw:
            parent.add(name, "''")
            return ""
        # MS-NLMP 2.2.2.5: UNICODE wins over OEM; NEGOTIATE strings are always OEM (2.2.1.1).
        if flags is not None and flags & NegotiateFlags.NTLMSSP_NEGOTIATE_UNICODE:
            text, bad = _utf16(raw)
            note = "Unicode" + (f", {bad}" if bad else "")
        else:
            text, note = decode_oem(raw), "OEM"
        parent.add(name, repr(text), note, self.base + at)
        return text

    def version(self, parent: Node, at: int) -> None:
        from smb2auth.ntlm.messages import Version

        v = Version.unpack(self.data, at)
        parent.add(
            "Version",
            f"{v.major}.{v.minor} build {v.build}, NTLM revision {v.revision}",
            offset=self.base + at,
        )

    def lowest(self, positions: tuple[int, ...]) -> int:
        lowest = len(self.data)
        for at in positions:
            length, _, offset = _NTLM_FIELD.unpack_from(self.data, at)
            if length and offset < lowest:
                lowest = offset
        return lowest

    def negotiate(self, root: Node) -> None:
        from smb2auth.ntlm.messages import NegotiateFlags

        self.need(16)
        flags = self.flags(root, 12)
        if len(self.data) < 32:
            root.add("DomainNameFields", note="absent (16-byte NEGOTIATE, MS-NLMP 2.2.1.1)")
            return
        domain, d_at = self.field(root, 16, "DomainName")
        ws, w_at = self.field(root, 24, "Workstation")
        version = flags & NegotiateFlags.NTLMSSP_NEGOTIATE_VERSION
        if version and self.lowest((16, 24)) >= 40 and len(self.data) >= 40:
            self.version(root, 32)
        self.string(root, "DomainName", domain, d_at, None)
        self.string(root, "Workstation", ws, w_at, None)

    def challenge(self, root: Node) -> None:
        from smb2auth.ntlm.messages import NegotiateFlags

        self.need(32)
        name, name_at = self.field(root, 12, "TargetName")
        flags = self.flags(root, 20)
        root.add("ServerChallenge", _hex(self.data[24:32]), offset=self.base + 24)
        if len(self.data) < 48:
            self.string(root, "TargetName", name, name_at, flags)
            root.add("TargetInfoFields", note="absent (32-byte CHALLENGE, MS-NLMP 2.2.1.2)")
            return
        root.add("Reserved", _hex(self.data[32:40]), offset=self.base + 32)
        info, info_at = self.field(root, 40, "TargetInfo")
        version = flags & NegotiateFlags.NTLMSSP_NEGOTIATE_VERSION
        if version and self.lowest((12, 40)) >= 56 and len(self.data) >= 56:
            self.version(root, 48)
        self.string(root, "TargetName", name, name_at, flags)
        if info:
            node = root.add("TargetInfo", note=f"{len(info)} bytes", offset=self.base + info_at)
            self.av_pairs(node, info, info_at, fatal=True)

    def av_pairs(self, parent: Node, data: bytes, at: int, *, fatal: bool) -> dict[int, bytes]:
        """MS-NLMP 2.2.2.1: AV_PAIRs up to MsvAvEOL. Returns the values by AvId."""
        from smb2auth.ntlm.messages import AvId

        pos = 0
        seen: dict[int, bytes] = {}
        while True:
            if pos + 4 > len(data):
                reason = "AV_PAIR list does not end with MsvAvEOL"
                if fatal:
                    raise self.fail(reason, at + pos)
                parent.add("(truncated)", _hex(data[pos:]), reason, self.base + at + pos)
                return seen
            av_id, av_len = struct.unpack_from("<HH", data, pos)
            if pos + 4 + av_len > len(data):
                reason = (
                    f"AV_PAIR {_enum_name(AvId, av_id)} value runs past the end of the list (len {av_len})"
                )
                if fatal:
                    raise self.fail(reason, at + pos)
                parent.add("(truncated)", _hex(data[pos:]), reason, self.base + at + pos)
                return seen
            value = data[pos + 4 : pos + 4 + av_len]
            name = _enum_name(AvId, av_id)
            if name == "unknown":
                name = f"AvId {av_id}"
            node = parent.add(name, offset=self.base + at + pos)
            if av_id == AvId.MsvAvEOL:
                node.note = "end of list"
                rest = data[pos + 4 :]
                if rest:
                    parent.add("(after MsvAvEOL)", _hex(rest), offset=self.base + at + pos + 4)
                return seen
            seen.setdefault(av_id, value)
            self.av_value(node, av_id, value, self.base + at + pos + 4)
            pos += 4 + av_len

    def av_value(self, node: Node, av_id: int, value: bytes, at: int) -> None:
        from smb2auth.ntlm.messages import AvFlags

        if av_id in (1, 2, 3, 4, 5, 9):
            text, bad = _utf16(value)
            node.value, node.note = repr(text), bad
        elif av_id == 6 and len(value) == 4:
            (flags,) = _U32.unpack(value)
            node.value = f"0x{flags:08x}"
            for name in _flag_names(AvFlags, flags):
                node.add(name)
        elif av_id == 7 and len(value) == 8:
            (ft,) = _U64.unpack(value)
            node.value = _filetime(ft)
            node.note = f"FILETIME 0x{ft:016x}"
        elif av_id == 8 and len(value) >= 48:
            # MS-NLMP 2.2.2.2: Single_Host_Data: Size, Z4, CustomData (8), MachineID (32).
            size, z4 = struct.unpack_from("<II", value)
            node.value = f"{len(value)} bytes"
            node.add("Size", str(size), offset=at)
            node.add("Z4", f"0x{z4:08x}", offset=at + 4)
            node.add("CustomData", _hex(value[8:16]), offset=at + 8)
            node.add("MachineID", _hex(value[16:48]), offset=at + 16)
        elif av_id == 10:
            node.value = _hex(value)
            if value == bytes(len(value)):
                node.note = "all zero: no channel binding"
            else:
                node.note = "MD5 of gss_channel_bindings_struct"
        else:
            node.value = _hex(value)
            if av_id in (6, 7, 8):
                node.note = f"unexpected length {len(value)}"

    def authenticate(self, root: Node) -> None:
        self.need(64)
        lm, lm_at = self.field(root, 12, "LmChallengeResponse")
        nt, nt_at = self.field(root, 20, "NtChallengeResponse")
        domain, d_at = self.field(root, 28, "DomainName")
        user, u_at = self.field(root, 36, "UserName")
        ws, w_at = self.field(root, 44, "Workstation")
        key, k_at = self.field(root, 52, "EncryptedRandomSessionKey")
        flags = self.flags(root, 60)
        # MS-NLMP 2.2.1.3: VERSION and MIC are present when the payload leaves room for them.
        lowest = self.lowest((12, 20, 28, 36, 44, 52))
        if lowest >= 72 and len(self.data) >= 72:
            self.version(root, 64)
        if lowest >= 88 and len(self.data) >= 88:
            mic = self.data[72:88]
            root.add("MIC", _hex(mic), "all zero" if mic == bytes(16) else None, self.base + 72)
        else:
            root.add("MIC", note="absent (no room before the payload)")
        self.string(root, "DomainName", domain, d_at, flags)
        user_name = self.string(root, "UserName", user, u_at, flags)
        self.string(root, "Workstation", ws, w_at, flags)
        self.responses(root, flags, lm, lm_at, nt, nt_at, user_name)
        if key:
            root.add("EncryptedRandomSessionKey", _hex(key), offset=self.base + k_at)

    def responses(
        self, root: Node, flags: int, lm: bytes, lm_at: int, nt: bytes, nt_at: int, user: str
    ) -> None:
        from smb2auth.ntlm.messages import NegotiateFlags

        ess = bool(flags & NegotiateFlags.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY)
        kind = root.add("ResponseKind")
        lm_node = root.add(
            "LmChallengeResponse", _hex(lm) if lm else "''", offset=self.base + lm_at if lm else None
        )
        nt_node = root.add(
            "NtChallengeResponse", _hex(nt) if nt else "''", offset=self.base + nt_at if nt else None
        )
        if not nt and lm in (b"", b"\x00"):
            # MS-NLMP 3.2.5.1.2 / 3.3: anonymous has an empty NT response and an empty or Z(1) LM response.
            kind.value = "anonymous"
            kind.note = "empty NtChallengeResponse" + ("" if not user else f", but UserName is {user!r}")
        elif not nt and len(lm) == 24:
            kind.value = "LM"
            kind.note = "LM response only (MS-NLMP 3.3.1)"
        elif len(nt) == 24:
            if ess and len(lm) == 24 and lm[8:] == bytes(16):
                kind.value = "NTLMv1 with client challenge"
                kind.note = "ESS: LmChallengeResponse = client challenge + 16 zeros (MS-NLMP 3.3.1)"
                lm_node.add("ClientChallenge", _hex(lm[:8]), offset=self.base + lm_at)
                lm_node.add("Z(16)", _hex(lm[8:]), offset=self.base + lm_at + 8)
            else:
                kind.value = "NTLMv1"
                if lm == nt:
                    lm_node.note = "a copy of NtChallengeResponse (MS-NLMP 3.3.1)"
                elif ess:
                    kind.note = "ESS flag set, but the LM response is not client challenge + zeros"
        elif len(nt) > 24:
            kind.value = "NTLMv2"
            nt_node.value = None
            nt_node.note = f"NTLMv2_RESPONSE, {len(nt)} bytes"
            nt_node.add("NTProofStr", _hex(nt[:16]), offset=self.base + nt_at)
            self.blob(nt_node, nt[16:], nt_at + 16)
            if len(lm) == 24:
                if lm == bytes(24):
                    lm_node.note = "zero LMv2 (MsvAvTimestamp was sent, MS-NLMP 3.1.5.1.2)"
                else:
                    lm_node.note = "LMv2_RESPONSE"
                    lm_node.add("Response", _hex(lm[:16]), offset=self.base + lm_at)
                    lm_node.add("ChallengeFromClient", _hex(lm[16:]), offset=self.base + lm_at + 16)
        else:
            kind.value = "unknown"
            kind.note = f"NtChallengeResponse of {len(nt)} bytes fits no response kind"

    def blob(self, parent: Node, blob: bytes, at: int) -> None:
        """MS-NLMP 2.2.2.7: NTLMv2_CLIENT_CHALLENGE."""
        node = parent.add("NTLMv2_CLIENT_CHALLENGE", note=f"{len(blob)} bytes", offset=self.base + at)
        if len(blob) < 28:
            node.value = _hex(blob)
            node.note = "too short for NTLMv2_CLIENT_CHALLENGE (28-byte header)"
            return
        resp, hi, r1, r2, ts, cc, r3 = struct.unpack_from("<BBHIQ8sI", blob)
        b = self.base + at
        node.add("RespType", str(resp), None if resp == 1 else "expected 1", b)
        node.add("HiRespType", str(hi), None if hi == 1 else "expected 1", b + 1)
        node.add("Reserved1", f"0x{r1:04x}", offset=b + 2)
        node.add("Reserved2", f"0x{r2:08x}", offset=b + 4)
        node.add("TimeStamp", _filetime(ts), f"FILETIME 0x{ts:016x}", b + 8)
        node.add("ChallengeFromClient", _hex(cc), offset=b + 16)
        node.add("Reserved3", f"0x{r3:08x}", offset=b + 24)
        pairs = node.add("AvPairs", offset=b + 28)
        seen = self.av_pairs(pairs, blob[28:], at + 28, fatal=False)
        flags = seen.get(6)
        if flags is not None and len(flags) == 4 and _U32.unpack(flags)[0] & 0x2:
            pairs.note = "MsvAvFlags says a MIC is present"

    def codec_check(self, root: Node, kind: int) -> None:
        """Note what smb2auth's own NTLM codec (the one the server runs) refuses."""
        from smb2auth.ntlm import messages

        try:
            if kind == 1:
                messages.NegotiateMessage.unpack(self.data)
            elif kind == 2:
                messages.ChallengeMessage.unpack(self.data)
            else:
                messages.AuthenticateMessage.unpack(self.data)
        except MalformedMessage as exc:
            root.note = f"{root.note}; smb2auth's NTLM codec rejects it: {exc}"


def decode_ntlm(data: bytes, base: int = 0) -> Node:
    return _Ntlm(data, base).decode()


# --- ASN.1 / SPNEGO (RFC 2743 3.1, RFC 4178 4.2, MS-SPNG 2.2) -------------------------------------------


@dataclass(frozen=True)
class _Tlv:
    tag: int
    start: int  # of the tag
    cstart: int  # of the contents
    cend: int  # end of the contents
    end: int  # end of the TLV (after end-of-contents when indefinite)


class _Der:
    """A BER walker over `data` that reports offsets in the whole input (`base`)."""

    def __init__(self, data: bytes, base: int, what: str) -> None:
        self.data = data
        self.base = base
        self.what = what

    def fail(self, reason: str, at: int) -> DecodeError:
        return DecodeError(self.what, reason, self.base + at)

    def tlv(self, pos: int, end: int, depth: int = 0) -> _Tlv:
        data = self.data
        if depth > _MAX_DEPTH:
            raise self.fail("ASN.1 nested too deeply", pos)
        if pos + 2 > end:
            raise self.fail("ASN.1 element truncated (no tag and length)", pos)
        tag = data[pos]
        if tag & 0x1F == 0x1F:
            raise self.fail(f"multi-byte ASN.1 tag 0x{tag:02x} (not used by SPNEGO)", pos)
        first = data[pos + 1]
        cstart = pos + 2
        if first < 0x80:
            cend = cstart + first
        elif first == 0x80:
            if not tag & 0x20:
                raise self.fail("indefinite length on a primitive ASN.1 element", pos + 1)
            p = cstart
            while True:
                if p + 2 > end:
                    raise self.fail("indefinite-length ASN.1 element has no end-of-contents", pos)
                if data[p] == 0 and data[p + 1] == 0:
                    return _Tlv(tag, pos, cstart, p, p + 2)
                p = self.tlv(p, end, depth + 1).end
        else:
            n = first & 0x7F
            if n > 4 or cstart + n > end:
                raise self.fail(f"bad ASN.1 length (0x{first:02x})", pos + 1)
            length = int.from_bytes(data[cstart : cstart + n], "big")
            cstart += n
            cend = cstart + length
        if cend > end:
            raise self.fail(
                f"ASN.1 element 0x{tag:02x} runs past its container (len {cend - cstart} at {cstart},"
                f" {end - cstart} bytes left)",
                pos,
            )
        return _Tlv(tag, pos, cstart, cend, cend)

    def children(self, outer: _Tlv) -> list[_Tlv]:
        out = []
        pos = outer.cstart
        while pos < outer.cend:
            child = self.tlv(pos, outer.cend)
            out.append(child)
            pos = child.end
        return out

    def expect(self, t: _Tlv, tag: int, what: str) -> None:
        if t.tag != tag:
            raise self.fail(f"{what}: expected tag 0x{tag:02x}, got 0x{t.tag:02x}", t.start)

    def inner(self, t: _Tlv, tag: int, what: str) -> _Tlv:
        """The single element inside an explicit tag."""
        kids = self.children(t)
        if len(kids) != 1:
            raise self.fail(f"{what}: expected one element inside [{t.tag & 0x1F}], got {len(kids)}", t.start)
        self.expect(kids[0], tag, what)
        return kids[0]

    def content(self, t: _Tlv) -> bytes:
        return self.data[t.cstart : t.cend]

    def oid(self, t: _Tlv) -> str:
        self.expect(t, 0x06, "OBJECT IDENTIFIER")
        raw = self.content(t)
        if not raw or raw[-1] & 0x80:
            raise self.fail("malformed OBJECT IDENTIFIER", t.start)
        arcs: list[int] = []
        value = 0
        for byte in raw:
            value = value << 7 | byte & 0x7F
            if not byte & 0x80:
                arcs.append(value)
                value = 0
        first = min(arcs[0] // 40, 2)
        return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])

    def octets(self, t: _Tlv, what: str) -> _Tlv:
        return self.inner(t, 0x04, what)


def _mech(oid: str) -> str:
    from smb2auth.spnego.asn1 import mech_name

    name = mech_name(oid)
    return f"{name} ({oid})" if name != oid else oid


def decode_gss(data: bytes, base: int = 0) -> Node:
    """A GSS-API token: an InitialContextToken (RFC 2743 3.1) or a bare SPNEGO NegotiationToken."""
    from smb2auth.spnego.asn1 import NTLMSSP, SPNEGO

    der = _Der(data, base, "SPNEGO token")
    if not data:
        raise der.fail("empty token", 0)
    top = der.tlv(0, len(data))
    if top.end != len(data):
        raise der.fail(f"{len(data) - top.end} bytes after the token", top.end)
    if top.tag in (0xA0, 0xA1):
        root = _negotiation_token(der, top)
        _spnego_codec_check(root, data)
        return root
    if top.tag != 0x60:
        raise der.fail(f"not a GSS-API or SPNEGO token (first byte 0x{top.tag:02x})", 0)
    der.what = "GSS-API InitialContextToken"
    root = Node("GSS-API InitialContextToken", note="RFC 2743 3.1 [APPLICATION 0]", offset=base)
    mech_tlv = der.tlv(top.cstart, top.cend)
    mech = der.oid(mech_tlv)
    root.add("thisMech", _mech(mech), offset=base + mech_tlv.start)
    rest_at = mech_tlv.end
    rest = data[rest_at : top.cend]
    if mech == SPNEGO:
        der.what = "SPNEGO token"
        inner = der.tlv(rest_at, top.cend)
        if inner.end != top.cend:
            raise der.fail("bytes after the NegotiationToken", inner.end)
        if inner.tag != 0xA0:
            raise der.fail("RFC 4178 4.2: only negTokenInit is framed as an InitialContextToken", inner.start)
        root.children.append(_negotiation_token(der, inner))
        _spnego_codec_check(root, data)
    elif mech == NTLMSSP:
        root.children.append(_nested(rest, base + rest_at))
    else:
        node = root.add("innerContextToken", _hex(rest), offset=base + rest_at)
        if len(rest) >= 2 and mech in ("1.2.840.113554.1.2.2", "1.2.840.48018.1.2.2"):
            # RFC 4121 4.1: a 2-byte TOK_ID precedes the Kerberos message.
            tok = {b"\x01\x00": "KRB_AP_REQ", b"\x02\x00": "KRB_AP_REP", b"\x03\x00": "KRB_ERROR"}
            node.note = f"TOK_ID {rest[:2].hex()} ({tok.get(rest[:2], 'unknown')}), Kerberos not decoded"
        else:
            node.note = "not decoded"
    return root


def _spnego_codec_check(root: Node, data: bytes) -> None:
    from smb2auth.spnego import tokens

    try:
        tokens.decode(data)
    except MalformedMessage as exc:
        root.note = f"{root.note + '; ' if root.note else ''}smb2auth's SPNEGO codec rejects it: {exc}"


_NEG_STATES = {0: "accept-completed", 1: "accept-incomplete", 2: "reject", 3: "request-mic"}


def _negotiation_token(der: _Der, t: _Tlv) -> Node:
    b = der.base
    seq = der.inner(t, 0x30, "NegotiationToken")
    fields = der.children(seq)
    if t.tag == 0xA1:
        root = Node("SPNEGO NegTokenResp", note="RFC 4178 4.2.2", offset=b + t.start)
        for f in fields:
            if f.tag == 0xA0:
                e = der.inner(f, 0x0A, "negState")
                raw = der.content(e)
                state = int.from_bytes(raw, "big") if raw else -1
                root.add("negState", f"{state} ({_NEG_STATES.get(state, 'undefined')})", offset=b + f.start)
            elif f.tag == 0xA1:
                oid_tlv = der.inner(f, 0x06, "supportedMech")
                root.add("supportedMech", _mech(der.oid(oid_tlv)), offset=b + f.start)
            elif f.tag == 0xA2:
                o = der.octets(f, "responseToken")
                node = root.add("responseToken", note=f"{o.cend - o.cstart} bytes", offset=b + o.cstart)
                node.children.append(_nested(der.content(o), b + o.cstart))
            elif f.tag == 0xA3:
                o = der.octets(f, "mechListMIC")
                root.add("mechListMIC", _hex(der.content(o)), offset=b + o.cstart)
            else:
                root.add(f"[{f.tag & 0x1F}]", _hex(der.data[f.start : f.end]), "unknown field", b + f.start)
        return root
    root = Node("SPNEGO NegTokenInit", note="RFC 4178 4.2.1", offset=b + t.start)
    for f in fields:
        if f.tag == 0xA0:
            lst = der.inner(f, 0x30, "mechTypes")
            node = root.add("mechTypes", offset=b + f.start)
            for i, o in enumerate(der.children(lst)):
                node.add(f"mechType[{i}]", _mech(der.oid(o)), "preferred" if i == 0 else None, b + o.start)
        elif f.tag == 0xA1:
            bits = der.inner(f, 0x03, "reqFlags")
            node = root.add("reqFlags", _hex(der.content(bits)), offset=b + f.start)
            _bit_flags(node, der.content(bits))
        elif f.tag == 0xA2:
            o = der.octets(f, "mechToken")
            node = root.add("mechToken", note=f"{o.cend - o.cstart} bytes", offset=b + o.cstart)
            node.children.append(_nested(der.content(o), b + o.cstart))
        elif f.tag == 0xA3 and f.cstart < f.cend and der.data[f.cstart] == 0x30:
            root.name = "SPNEGO NegTokenInit2"
            root.note = "MS-SPNG 2.2.1"
            _neg_hints(der, root.add("negHints", offset=b + f.start), der.inner(f, 0x30, "negHints"))
        elif f.tag in (0xA3, 0xA4):
            o = der.octets(f, "mechListMIC")
            root.add("mechListMIC", _hex(der.content(o)), offset=b + o.cstart)
        else:
            root.add(f"[{f.tag & 0x1F}]", _hex(der.data[f.start : f.end]), "unknown field", b + f.start)
    return root


def _bit_flags(node: Node, raw: bytes) -> None:
    from smb2auth.spnego.tokens import ContextFlags

    if not raw:
        return
    value = 0
    for i, byte in enumerate(raw[1:]):
        for bit in range(8):
            if byte & (0x80 >> bit):
                value |= 1 << (i * 8 + bit)
    for name in _flag_names(ContextFlags, value):
        node.add(name)


def _neg_hints(der: _Der, node: Node, seq: _Tlv) -> None:
    from smb2auth.spnego.asn1 import IGNORE_PRINCIPAL

    for f in der.children(seq):
        if f.tag == 0xA0:
            s = der.inner(f, 0x1B, "hintName")
            name = der.content(s).decode("latin-1")
            note = "MS-SPNG 3.2.5.2 placeholder" if name == IGNORE_PRINCIPAL else None
            node.add("hintName", repr(name), note, der.base + s.cstart)
        elif f.tag == 0xA1:
            o = der.octets(f, "hintAddress")
            node.add("hintAddress", _hex(der.content(o)), offset=der.base + o.cstart)
        else:
            node.add(
                f"[{f.tag & 0x1F}]", _hex(der.data[f.start : f.end]), "unknown field", der.base + f.start
            )


def _nested(data: bytes, base: int) -> Node:
    """A token inside another message: decoded when it parses, raw hex with a note when not."""
    if not data:
        return Node("(empty)", offset=base)
    try:
        if data[:8] == b"NTLMSSP\x00":
            return decode_ntlm(data, base)
        if data[0] in (0x60, 0xA0, 0xA1):
            return decode_gss(data, base)
    except DecodeError as exc:
        return Node("(undecoded)", _hex(data), f"does not parse: {exc}", base)
    if data[:8] == b"NEGOEXTS":
        return Node("NegoEx message", _hex(data), "MS-NEGOEX, not decoded", base)
    return Node("(unknown token)", _hex(data), "not NTLMSSP or SPNEGO", base)


# --- SMB2 (MS-SMB2 2.1, 2.2) -----------------------------------------------------------------------------

def _dialect(value: int) -> str:
    from smb2auth.smb2.negotiate import DIALECT_NAMES, Dialect

    name = DIALECT_NAMES.get(value, "unknown")
    if value == Dialect.SMB2_WILDCARD:
        name += " (wildcard)"
    return f"0x{value:04x} ({name})"


def decode_smb(data: bytes, base: int = 0) -> Node:
    """SMB2 (compounds included), the SMB1 NEGOTIATE, or a TRANSFORM_HEADER; with or without Direct TCP."""
    from smb2auth.smb2.header import (
        COMPRESSION_PROTOCOL_ID,
        SMB1_PROTOCOL_ID,
        SMB2_PROTOCOL_ID,
        TRANSFORM_PROTOCOL_ID,
    )

    magic = (SMB2_PROTOCOL_ID, SMB1_PROTOCOL_ID, TRANSFORM_PROTOCOL_ID, COMPRESSION_PROTOCOL_ID)
    if data[:4] in magic:
        return _smb_packet(data, base)
    frames = Node("Direct TCP stream", offset=base)
    pos = 0
    while pos < len(data):
        if len(data) - pos < 4 or data[pos] != 0:
            # MS-SMB2 2.1: a zero byte, then a 24-bit big-endian length.
            raise DecodeError("Direct TCP frame", "header is not a zero byte and a 24-bit length", base + pos)
        size = int.from_bytes(data[pos + 1 : pos + 4], "big")
        if pos + 4 + size > len(data):
            raise DecodeError(
                "Direct TCP frame",
                f"StreamProtocolLength {size} runs past the end ({len(data) - pos - 4} bytes follow)",
                base + pos,
            )
        frame = frames.add("Direct TCP frame", note="MS-SMB2 2.1", offset=base + pos)
        frame.add("StreamProtocolLength", str(size), offset=base + pos + 1)
        payload = data[pos + 4 : pos + 4 + size]
        if payload[:4] not in magic:
            raise DecodeError("Direct TCP frame", "payload is not an SMB message", base + pos + 4)
        frame.children.append(_smb_packet(payload, base + pos + 4))
        pos += 4 + size
    return frames.children[0] if len(frames.children) == 1 else frames


def _smb_packet(data: bytes, base: int) -> Node:
    from smb2auth.smb2.header import SMB1_PROTOCOL_ID, TRANSFORM_PROTOCOL_ID, split_compound

    if data[:4] == SMB1_PROTOCOL_ID:
        return _smb1(data, base)
    if data[:4] == TRANSFORM_PROTOCOL_ID:
        return _transform(data, base)
    if data[:4] != b"\xfeSMB":
        return _compression(data, base)
    try:
        parts = split_compound(data)
    except MalformedMessage as exc:
        raise DecodeError("SMB2 message", exc.reason, base + (exc.offset or 0)) from None
    if len(parts) == 1:
        return _smb2(parts[0].header, parts[0].raw, base)
    root = Node("SMB2 compound", note=f"{len(parts)} messages (MS-SMB2 3.2.4.1.4)", offset=base)
    at = 0
    for part in parts:
        root.children.append(_smb2(part.header, part.raw, base + at))
        at += len(part.raw)
    return root


def _smb2(header: Any, raw: bytes, base: int) -> Node:
    from smb2auth.smb2.body import parse_body
    from smb2auth.smb2.header import HeaderFlags
    from smb2auth.status import NtStatus

    kind = "response" if header.is_response else "request"
    root = Node(f"SMB2 {header.command.name} {kind}", offset=base)
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
    flags_node = _add_flags(h, "Flags", int(header.flags) & ~0x70, HeaderFlags, 4, base + 16)
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
    sig_note = None if header.is_signed else "not signed"
    h.add("Signature", _hex(header.signature), sig_note, base + 48)
    body = raw[64:]
    try:
        message = parse_body(header, body)
    except MalformedMessage as exc:
        what = f"SMB2 {header.command.name} {kind}"
        raise DecodeError(what, exc.reason, base + (exc.offset if exc.offset is not None else 64)) from None
    _smb2_body(root, message, raw, base)
    return root


def _smb2_body(root: Node, message: Any, raw: bytes, base: int) -> None:
    from smb2auth import smb2 as m

    b = base + 64
    node = root.add(f"{type(message).__name__}", note="body", offset=b)
    if isinstance(message, m.NegotiateRequest):
        node.add("DialectCount", str(len(message.dialects)), offset=b + 2)
        _add_flags(node, "SecurityMode", int(message.security_mode), m.SecurityMode, 2, b + 4)
        _add_flags(node, "Capabilities", int(message.capabilities), m.Capabilities, 4, b + 8)
        node.add("ClientGuid", _guid(message.client_guid), offset=b + 12)
        if m.Dialect.SMB3_1_1 in message.dialects:
            off, count = struct.unpack_from("<IH", raw, 64 + 28)
            node.add("NegotiateContextOffset", str(off), offset=b + 28)
            node.add("NegotiateContextCount", str(count), offset=b + 32)
        else:
            node.add("ClientStartTime", _filetime(message.client_start_time), offset=b + 28)
            off = 0
        dialects = node.add("Dialects", offset=b + 36)
        for i, d in enumerate(message.dialects):
            dialects.add(f"Dialect[{i}]", _dialect(d), offset=b + 36 + 2 * i)
        _contexts(node, message.negotiate_contexts, raw, off, base)
    elif isinstance(message, m.NegotiateResponse):
        _add_flags(node, "SecurityMode", int(message.security_mode), m.SecurityMode, 2, b + 2)
        node.add("DialectRevision", _dialect(message.dialect_revision), offset=b + 4)
        node.add("NegotiateContextCount", str(len(message.negotiate_contexts)), offset=b + 6)
        node.add("ServerGuid", _guid(message.server_guid), offset=b + 8)
        _add_flags(node, "Capabilities", int(message.capabilities), m.Capabilities, 4, b + 24)
        node.add("MaxTransactSize", str(message.max_transact_size), offset=b + 28)
        node.add("MaxReadSize", str(message.max_read_size), offset=b + 32)
        node.add("MaxWriteSize", str(message.max_write_size), offset=b + 36)
        node.add("SystemTime", _filetime(message.system_time), offset=b + 40)
        node.add("ServerStartTime", _filetime(message.server_start_time), offset=b + 48)
        buf_off, _, ctx_off = struct.unpack_from("<HHI", raw, 64 + 56)
        _security_buffer(node, message.security_buffer, base + buf_off, b + 56)
        node.add("NegotiateContextOffset", str(ctx_off), offset=b + 60)
        if message.dialect_revision == m.Dialect.SMB3_1_1:
            _contexts(node, message.negotiate_contexts, raw, ctx_off, base)
    elif isinstance(message, m.SessionSetupRequest):
        _add_flags(node, "Flags", int(message.flags), m.SessionSetupFlags, 1, b + 2)
        _add_flags(node, "SecurityMode", int(message.security_mode), m.SecurityMode, 1, b + 3)
        _add_flags(node, "Capabilities", int(message.capabilities), m.Capabilities, 4, b + 4)
        node.add("Channel", str(message.channel), offset=b + 8)
        node.add("PreviousSessionId", f"0x{message.previous_session_id:016x}", offset=b + 16)
        (buf_off,) = _U16.unpack_from(raw, 64 + 12)
        _security_buffer(node, message.security_buffer, base + buf_off, b + 12)
    elif isinstance(message, m.SessionSetupResponse):
        _add_flags(node, "SessionFlags", int(message.session_flags), m.SessionFlags, 2, b + 2)
        (buf_off,) = _U16.unpack_from(raw, 64 + 4)
        _security_buffer(node, message.security_buffer, base + buf_off, b + 4)
    elif isinstance(message, m.TreeConnectRequest):
        _add_flags(node, "Flags", int(message.flags), m.TreeConnectFlags, 2, b + 2)
        node.add("Path", repr(message.path), offset=b + 8)
        if message.extension:
            node.add("Extension", _hex(message.extension), "MS-SMB2 2.2.9.1, not decoded", b + 8)
    elif isinstance(message, m.TreeConnectResponse):
        node.add("ShareType", f"{int(message.share_type)} ({message.share_type.name})", offset=b + 2)
        share = int(message.share_flags)
        caching = {0: "MANUAL_CACHING", 0x10: "AUTO_CACHING", 0x20: "VDO_CACHING", 0x30: "NO_CACHING"}
        flags_node = _add_flags(node, "ShareFlags", share & ~0x30, m.ShareFlags, 4, b + 4)
        flags_node.value = f"0x{share:08x}"
        flags_node.note = None
        flags_node.add(caching[share & 0x30], note="caching policy (bits 0x30)")
        _add_flags(node, "Capabilities", int(message.capabilities), m.ShareCapabilities, 4, b + 8)
        node.add("MaximalAccess", f"0x{message.maximal_access:08x}", offset=b + 12)
    elif isinstance(message, m.ErrorResponse):
        node.add("ErrorContextCount", str(message.error_context_count), offset=b + 2)
        node.add("ByteCount", str(len(message.error_data)), offset=b + 4)
        if message.error_data:
            node.add("ErrorData", _hex(message.error_data), offset=b + 8)
    elif isinstance(message, (m.IoctlRequest, m.IoctlResponse)):
        _ioctl(node, message, raw, base)
    elif isinstance(message, m.RawBody):
        node.name = "body"
        node.note = f"{len(message.data)} bytes, not decoded"
        node.add("StructureSize", str(message.structure_size), offset=b)
        node.add("data", _hex(message.data[2:]), offset=b + 2)
    else:
        node.add("StructureSize", str(_U16.unpack_from(raw, 64)[0]), offset=b)


def _ioctl(node: Node, message: Any, raw: bytes, base: int) -> None:
    """MS-SMB2 2.2.31 / 2.2.32, and FSCTL_VALIDATE_NEGOTIATE_INFO's structures (2.2.31.4 / 2.2.32.6)."""
    from smb2auth import smb2 as m

    b = base + 64
    request = isinstance(message, m.IoctlRequest)
    validate = message.ctl_code == m.FSCTL_VALIDATE_NEGOTIATE_INFO
    name = "FSCTL_VALIDATE_NEGOTIATE_INFO" if validate else None
    node.add("CtlCode", f"0x{message.ctl_code:08x}", name, b + 4)
    node.add("FileId", _hex(message.file_id), offset=b + 8)
    fields = ("<IIIIII", 24) if request else ("<IIII", 24)
    values = struct.unpack_from(fields[0], raw, 64 + fields[1])
    if request:
        in_off, in_len, max_in, out_off, out_len, max_out = values
        node.add("MaxInputResponse", str(max_in), offset=b + 32)
        node.add("MaxOutputResponse", str(max_out), offset=b + 44)
        flags_at = b + 48
    else:
        in_off, in_len, out_off, out_len = values
        flags_at = b + 40
    node.add("Flags", f"0x{int(message.flags):08x}",
             "SMB2_0_IOCTL_IS_FSCTL" if int(message.flags) & 1 else None, flags_at)
    for label, data, off in (("Input", message.input, in_off), ("Output", message.output, out_off)):
        if not data:
            continue
        part = node.add(label, note=f"{len(data)} bytes", offset=base + off)
        if validate and (label == "Input") == request:
            _validate_negotiate(part, data, base + off, request)
        else:
            part.add("data", _hex(data))
    del in_len, out_len


def _validate_negotiate(part: Node, data: bytes, at: int, request: bool) -> None:
    from smb2auth import smb2 as m

    info: m.ValidateNegotiateInfoRequest | m.ValidateNegotiateInfoResponse
    try:
        info = (m.ValidateNegotiateInfoRequest if request else m.ValidateNegotiateInfoResponse).unpack(data)
    except MalformedMessage as exc:
        part.note = f"{len(data)} bytes, malformed: {exc.reason}"
        return
    _add_flags(part, "Capabilities", int(info.capabilities), m.Capabilities, 4, at)
    if isinstance(info, m.ValidateNegotiateInfoRequest):
        part.add("ClientGuid", _guid(info.client_guid), offset=at + 4)
        _add_flags(part, "SecurityMode", int(info.security_mode), m.SecurityMode, 2, at + 20)
        dialects = part.add("Dialects", offset=at + 24)
        for i, d in enumerate(info.dialects):
            dialects.add(f"Dialect[{i}]", _dialect(d), offset=at + 24 + 2 * i)
    else:
        part.add("ServerGuid", _guid(info.server_guid), offset=at + 4)
        _add_flags(part, "SecurityMode", int(info.security_mode), m.SecurityMode, 2, at + 20)
        part.add("Dialect", _dialect(info.dialect), offset=at + 22)


def _security_buffer(parent: Node, buffer: bytes, at: int, field_at: int) -> None:
    if not buffer:
        parent.add("SecurityBuffer", note="empty", offset=field_at)
        return
    node = parent.add("SecurityBuffer", note=f"{len(buffer)} bytes", offset=at)
    node.children.append(_nested(buffer, at))


def _contexts(parent: Node, contexts: Any, raw: bytes, offset: int, base: int) -> None:
    """MS-SMB2 2.2.3.1: negotiate contexts, each 8-byte aligned from NegotiateContextOffset."""
    from smb2auth import smb2 as m

    if not contexts:
        return
    node = parent.add("NegotiateContexts", offset=base + offset)
    pos = offset
    for i, ctx in enumerate(contexts):
        if i:
            pos = (pos + 7) & ~7
        ctype, length = struct.unpack_from("<HH", raw, pos)
        c = node.add(
            f"{_enum_name(m.NegotiateContextType, ctype)}",
            f"type 0x{ctype:04x}",
            f"{length} bytes",
            base + pos,
        )
        d = base + pos + 8
        if isinstance(ctx, m.PreauthIntegrityCapabilities):
            for j, alg in enumerate(ctx.hash_algorithms):
                c.add(
                    f"HashAlgorithm[{j}]",
                    f"0x{alg:04x} ({_enum_name(m.HashAlgorithm, alg)})",
                    offset=d + 4 + 2 * j,
                )
            c.add("Salt", _hex(ctx.salt), f"{len(ctx.salt)} bytes", d + 4 + 2 * len(ctx.hash_algorithms))
        elif isinstance(ctx, m.EncryptionCapabilities):
            for j, ciph in enumerate(ctx.ciphers):
                c.add(f"Cipher[{j}]", f"0x{ciph:04x} ({_enum_name(m.Cipher, ciph)})", offset=d + 2 + 2 * j)
        elif isinstance(ctx, m.SigningCapabilities):
            for j, alg in enumerate(ctx.signing_algorithms):
                name = _enum_name(m.SigningAlgorithm, alg)
                c.add(f"SigningAlgorithm[{j}]", f"0x{alg:04x} ({name})", offset=d + 2 + 2 * j)
        elif isinstance(ctx, m.NetnameNegotiateContextId):
            c.add("NetName", repr(ctx.net_name), offset=d)
        elif isinstance(ctx, m.UnknownNegotiateContext):
            c.add("Data", _hex(ctx.data), "not decoded", d)
        pos += 8 + length


def _smb1(data: bytes, base: int) -> Node:
    from smb2auth.smb2.header import Smb1Flags2, Smb1Header
    from smb2auth.smb2.negotiate import (
        SMB1_DIALECT_SMB2_002,
        SMB1_DIALECT_SMB2_WILDCARD,
        Smb1NegotiateRequest,
    )

    try:
        header = Smb1Header.unpack(data)
        request = (
            Smb1NegotiateRequest.unpack(data) if header.command == Smb1Header.SMB_COM_NEGOTIATE else None
        )
    except MalformedMessage as exc:
        raise DecodeError("SMB1 message", exc.reason, base + (exc.offset or 0)) from None
    name = "SMB1 NEGOTIATE request" if request is not None else f"SMB1 command 0x{header.command:02x}"
    root = Node(name, note="MS-CIFS 2.2.3.1 / MS-SMB 2.2.3.1", offset=base)
    h = root.add("SMB1 header", offset=base)
    h.add("Protocol", "ff 'SMB'", offset=base)
    h.add("Command", f"0x{header.command:02x}", "SMB_COM_NEGOTIATE" if request else "not decoded", base + 4)
    h.add("Status", f"0x{header.status:08x}", offset=base + 5)
    h.add("Flags", f"0x{header.flags:02x}", offset=base + 9)
    _add_flags(h, "Flags2", int(header.flags2), Smb1Flags2, 2, base + 10)
    h.add("PIDHigh", str(header.pid_high), offset=base + 12)
    h.add("SecurityFeatures", _hex(header.security_features), offset=base + 14)
    h.add("TID", str(header.tid), offset=base + 24)
    h.add("PIDLow", str(header.pid_low), offset=base + 26)
    h.add("UID", str(header.uid), offset=base + 28)
    h.add("MID", str(header.mid), offset=base + 30)
    if request is None:
        root.add("parameters and data", _hex(data[32:]), "not decoded", base + 32)
        return root
    dialects = root.add("Dialects", note="MS-CIFS 2.2.4.52.1", offset=base + 35)
    pos = 35
    for i, d in enumerate(request.dialects):
        smb2 = {
            SMB1_DIALECT_SMB2_002: "SMB2 2.0.2",
            SMB1_DIALECT_SMB2_WILDCARD: "SMB2 wildcard (MS-SMB2 3.3.5.3.1)",
        }
        dialects.add(f"Dialect[{i}]", repr(d), smb2.get(d), base + pos)
        pos += len(d) + 2
    return root


def _transform(data: bytes, base: int) -> Node:
    from smb2auth.smb2.crypto import TransformHeader

    try:
        th = TransformHeader.unpack(data)
    except MalformedMessage as exc:
        raise DecodeError("SMB2 TRANSFORM_HEADER", exc.reason, base + (exc.offset or 0)) from None
    root = Node("SMB2 TRANSFORM_HEADER", note="MS-SMB2 2.2.41: encrypted message", offset=base)
    root.add("ProtocolId", "fd 'SMB'", offset=base)
    root.add("Signature", _hex(th.signature), "AES tag", base + 4)
    root.add("Nonce", _hex(th.nonce), offset=base + 20)
    root.add("OriginalMessageSize", str(th.original_message_size), offset=base + 36)
    flags = int(th.flags)
    root.add(
        "Flags/EncryptionAlgorithm",
        f"0x{flags:04x}",
        "ENCRYPTED (3.1.1) / AES-128-CCM (3.0, 3.0.2)" if flags == 1 else None,
        base + 42,
    )
    root.add("SessionId", f"0x{th.session_id:016x}", offset=base + 44)
    root.add("EncryptedMessage", _hex(data[52:]), f"{len(data) - 52} bytes, not decrypted", base + 52)
    return root


def _compression(data: bytes, base: int) -> Node:
    root = Node("SMB2 COMPRESSION_TRANSFORM_HEADER", note="MS-SMB2 2.2.42, not decoded", offset=base)
    if len(data) >= 16:
        size, alg, flags, off = struct.unpack_from("<IHHI", data, 4)
        root.add("OriginalCompressedSegmentSize", str(size), offset=base + 4)
        root.add("CompressionAlgorithm", f"0x{alg:04x}", offset=base + 8)
        root.add("Flags", f"0x{flags:04x}", offset=base + 10)
        root.add("Offset/Length", str(off), offset=base + 12)
    root.add("data", _hex(data[16:]), offset=base + 16)
    return root


# --- detection and input forms -------------------------------------------------------------------------


def decode_bytes(data: bytes) -> Node:
    """The annotated tree of one NTLMSSP message, GSS-API/SPNEGO token or SMB packet."""
    data = bytes(data)
    if not data:
        raise DecodeError("input", "no bytes to decode", 0)
    if data[:8] == b"NTLMSSP\x00":
        return decode_ntlm(data)
    if data[:1] == b"\x00" and data[4:8] in (b"\xfeSMB", b"\xffSMB", b"\xfdSMB", b"\xfcSMB"):
        return decode_smb(data)
    if data[:4] in (b"\xfeSMB", b"\xffSMB", b"\xfdSMB", b"\xfcSMB"):
        return decode_smb(data)
    if data[0] in (0x60, 0xA0, 0xA1):
        return decode_gss(data)
    raise _UnknownInput(
        "input", f"not NTLMSSP, a GSS-API/SPNEGO token or an SMB message (starts {data[:8].hex()})", 0
    )


class _UnknownInput(DecodeError):
    """Bytes that start like none of the messages decode_bytes knows."""


_HEADER_RE = re.compile(
    r"^\s*(www-authenticate|authorization|proxy-authenticate|proxy-authorization)\s*:\s*(.*)$", re.IGNORECASE
)
_HEADER_NAMES = {
    n.lower(): n for n in ("WWW-Authenticate", "Authorization", "Proxy-Authenticate", "Proxy-Authorization")
}
_SCHEME_RE = re.compile(r"^\s*(NTLM|Negotiate|Kerberos|Nego2)(?:\s+(\S+))?\s*$", re.IGNORECASE)
_DUMP_FIRST_RE = re.compile(r"^\s*0{4,8}:?\s")
_HEX_CHARS = frozenset("0123456789abcdefABCDEF")


def decode_input(raw: bytes) -> Node:
    """Decode what a person gives: raw bytes, hex (spaces, colons, 0x, dumps), base64, or header lines."""
    text = _as_text(raw)
    if text is None:
        return decode_bytes(raw)
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise DecodeError("input", "empty input", 0)
    if any(_HEADER_RE.match(line) for line in lines):
        nodes = [_header_line(line) for line in lines if line.strip()]
        if len(nodes) == 1:
            return nodes[0]
        root = Node("HTTP headers")
        root.children.extend(nodes)
        return root
    scheme = _SCHEME_RE.match(text.strip()) if len(lines) == 1 else None
    if scheme and scheme.group(2):
        return _challenge(Node("HTTP authorization"), scheme.group(1), scheme.group(2))
    data, form = _text_bytes(text)
    try:
        return decode_bytes(data)
    except _UnknownInput as exc:
        if form != "base64":
            raise
        raise DecodeError("input", f"text is not hex, and read as base64 it is {len(data)} bytes that are "
                          f"{exc.reason}", None) from None


def _as_text(raw: bytes) -> str | None:
    """`raw` as text when it is printable ASCII (a paste or a text file), else None (binary)."""
    if raw[:8] == b"NTLMSSP\x00" or raw[:4] in (b"\xfeSMB", b"\xffSMB", b"\xfdSMB", b"\xfcSMB"):
        return None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    if any(not (c.isprintable() or c in "\r\n\t") for c in text):
        return None
    return text


def _header_line(line: str) -> Node:
    match = _HEADER_RE.match(line)
    if match is None:
        raise DecodeError("input", f"not an HTTP authentication header line: {line.strip()[:40]!r}", 0)
    name, rest = match.group(1), match.group(2)
    root = Node(_HEADER_NAMES[name.lower()], note="HTTP header")
    current: Node | None = None
    for piece in rest.split(","):
        piece = piece.strip()
        if not piece:
            continue
        words = piece.split(None, 1)
        if "=" in words[0] and current is not None:
            current.add("auth-param", piece)  # RFC 7235 2.1: an auth-param of the previous challenge
            continue
        current = _challenge(root, words[0], words[1] if len(words) > 1 else "")
    if not root.children:
        raise DecodeError("input", f"{name} header has no challenge or credentials", 0)
    return root


def _challenge(parent: Node, scheme: str, token: str) -> Node:
    """One challenge or credentials (RFC 7235 2.1) added to `parent`; returns its node."""
    node = parent.add(scheme, note="auth scheme")
    if scheme.lower() not in ("ntlm", "negotiate", "kerberos", "nego2"):
        if token:
            node.add("params", token, "not decoded")
        return node
    if not token:
        node.note = "auth scheme, no token"
        return node
    node.add("token", token if len(token) <= 80 else token[:77] + "...", "base64")
    node.children.append(decode_bytes(_base64(token.strip())))
    return node


def _base64(text: str, *, strict: bool = False) -> bytes:
    """Standard or URL-safe base64, padding optional. `strict` also refuses unused bits that are not zero
    (RFC 4648 3.5), so that a word like "zz" is not taken for base64 of one byte."""
    compact = "".join(text.split())
    if not re.fullmatch(r"[A-Za-z0-9+/\-_]*={0,2}", compact):
        bad = re.search(r"[^A-Za-z0-9+/\-_=]", compact)
        if bad is not None:
            raise DecodeError("base64 input", f"character {bad.group()!r} is not base64", bad.start())
        raise DecodeError("base64 input", "'=' padding before the end", compact.index("="))
    padded = compact.replace("-", "+").replace("_", "/")
    padded += "=" * (-len(padded.rstrip("=")) % 4 if not padded.endswith("=") else 0)
    try:
        data = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError("base64 input", str(exc), None) from None
    if strict and base64.b64encode(data).rstrip(b"=") != padded.rstrip("=").encode():
        last = len(compact.rstrip("=")) - 1
        raise DecodeError("base64 input", "its last character leaves unused bits set", last)
    return data


def _text_bytes(text: str) -> tuple[bytes, str]:
    """Bytes from hex (with spaces, colons, 0x prefixes, or a hex dump with offsets) or base64, and which."""
    lines = [line for line in text.splitlines() if line.strip()]
    if _DUMP_FIRST_RE.match(lines[0]):
        return _hex_dump(lines), "hex dump"
    compact = re.sub(r"0[xX]([0-9a-fA-F]{2})", r"\1", text)
    compact = re.sub(r"[\s:,]", "", compact)
    if compact and set(compact) <= _HEX_CHARS:
        if len(compact) % 2:
            raise DecodeError("hex input", f"odd number of hex digits ({len(compact)})", None)
        return bytes.fromhex(compact), "hex"
    try:
        return _base64(text, strict=True), "base64"
    except DecodeError as exc:
        where = f" at offset {exc.offset}" if exc.offset is not None else ""
        reason = f"text is neither valid hex nor valid base64 ({exc.reason}{where})"
        raise DecodeError("input", reason) from None


def _hex_dump(lines: list[str]) -> bytes:
    """xxd, `hexdump -C`, tshark/Wireshark dumps: offset, hex bytes (at most 16), then an ASCII column."""
    out = bytearray()
    for number, line in enumerate(lines, 1):
        m = re.match(r"\s*[0-9a-fA-F]+:?", line)
        if m is None:
            raise DecodeError("hex dump", f"line {number} does not start with an offset", None)
        rest = line[m.end() :].split("|", 1)[0]
        if not rest.strip():
            continue  # the closing offset line of xxd -r style and hexdump -C dumps
        got = 0
        for token in re.finditer(r"(\s*)(\S+)", rest):
            gap, word = len(token.group(1)), token.group(2)
            # A wide gap ends the hex columns, except hexdump -C's extra space after 8 bytes.
            if got and (gap >= 3 or (gap == 2 and got != 8)):
                break
            if len(word) not in (2, 4) or not set(word) <= _HEX_CHARS or got + len(word) // 2 > 16:
                break
            out += bytes.fromhex(word)
            got += len(word) // 2
        if not got:
            raise DecodeError("hex dump", f"line {number} has no hex bytes", None)
    return bytes(out)


# --- rendering and the command ---------------------------------------------------------------------------


def render_text(node: Node, *, width: int = 160) -> str:
    """One line per node: the offset column, then the indented name, value and note."""
    out: list[str] = []

    def walk(n: Node, depth: int) -> None:
        off = "" if n.offset is None else str(n.offset)
        line = f"{off:>6}  {'  ' * depth}{n.name}"
        if n.value is not None:
            value = n.value if len(n.value) <= width else f"{n.value[:width]}... ({len(n.value)} chars)"
            line += f": {value}"
        if n.note:
            line += f"  ({n.note})"
        out.append(line)
        for c in n.children:
            walk(c, depth + 1)

    walk(node, 0)
    return "\n".join(out) + "\n"


def render_json(node: Node) -> str:
    return json.dumps(node.to_dict(), indent=2) + "\n"


MAX_INPUT = 16 * 2**20  # bytes read from a file or stdin; a message or a paste of one is far smaller


def _read_argument(words: list[str]) -> bytes:
    """INPUT words, `-` (stdin) or `@FILE`: at most MAX_INPUT + 1 bytes are read (endless input ends)."""
    if len(words) == 1 and words[0] == "-":
        return sys.stdin.buffer.read(MAX_INPUT + 1)
    if len(words) == 1 and words[0].startswith("@"):
        with open(words[0][1:], "rb") as f:
            return f.read(MAX_INPUT + 1)
    return " ".join(words).encode("utf-8", "surrogateescape")


def _cmd_decode(args: argparse.Namespace) -> int:
    try:
        raw = _read_argument(args.input)
    except OSError as exc:
        print(f"smb2auth decode: cannot read {exc.filename or 'stdin'}: {exc.strerror}", file=sys.stderr)
        return 2
    if len(raw) > MAX_INPUT:
        print(f"smb2auth decode: input larger than {MAX_INPUT} bytes", file=sys.stderr)
        return 2
    try:
        tree = decode_input(raw)
    except DecodeError as exc:
        print(f"smb2auth decode: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render_json(tree) if args.json else render_text(tree))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "decode",
        help="annotate an NTLMSSP message, SPNEGO token or SMB2 message",
        description=(
            "INPUT is hex (spaces, colons, 0x, hex dumps), base64, an HTTP header line "
            "('WWW-Authenticate: NTLM ...'), @FILE (raw bytes or any of these as text), or - for stdin."
        ),
    )
    p.add_argument("input", nargs="+", metavar="INPUT", help="what to decode (several words are joined)")
    p.add_argument(
        "--json", action="store_true", help="the tree as JSON: name, value, note, offset, children"
    )
    p.set_defaults(handler=_cmd_decode)
