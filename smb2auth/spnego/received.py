"""The client's SPNEGO tokens as an SMB server reads them: by smbd's rules, which real clients are tested
against.

`tokens.decode` is the general codec (DER, BER through pyasn1). The acceptor reads with this module instead,
so that what it accepts and refuses is what Samba's smbd accepts and refuses (libcli/auth/spnego_parse.c
spnego_read_data over lib/util/asn1.c, and the reassembly of auth/gensec/spnego.c gensec_spnego_update_in):

* definite lengths only, in the short or the long form with any number of length octets (leading zeros
  included); the indefinite form is refused (X.690 10.1: DER uses the definite form);
* every tag exactly as RFC 4178 4.2 writes it (no constructed strings, no unknown fields); the fields of a
  NegTokenInit or NegTokenResp in any order, a repeated field replacing the earlier one;
* NegTokenInit only inside its RFC 2743 3.1 framing; [3] either the RFC 4178 mechListMIC or the MS-SPNG
  2.2.1 negHints (hintName only); the NegTokenInit2 [4] is not a client field;
* an OBJECT IDENTIFIER read arc by arc into 32 bits, as Samba's ber_read_OID_String (and Windows) do, and
  the mechTypes the mechListMIC covers written back from those arcs (RFC 4178 5);
* a negState of any value (an acceptor ignores the initiator's).

Everything malformed raises `MalformedMessage` (STATUS_INVALID_PARAMETER), or `NotSpnego` for input that is
not SPNEGO at all (a bare NTLM message, say).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from smb2auth._frozen import quick_init
from smb2auth.errors import MalformedMessage
from smb2auth.spnego.asn1 import SPNEGO
from smb2auth.spnego.tokens import (
    MAX_TOKEN_SIZE,
    ContextFlags,
    NegHints,
    NegState,
    NegTokenInit,
    NegTokenResp,
    NotSpnego,
    is_raw_ntlmssp,
)
from smb2auth.status import NtStatus

__all__ = ["Reassembly", "Received", "mech_list_der", "read", "read_oid"]

_ARC = 0xFFFFFFFF


@quick_init
@dataclass(frozen=True)
class Received:
    """A client token, and the DER of its mechTypes as the mechListMIC covers them (empty for a
    NegTokenResp)."""

    token: NegTokenInit | NegTokenResp
    mech_list: bytes = b""


def _fail(message: str, offset: int) -> MalformedMessage:
    return MalformedMessage(f"SPNEGO: {message}", offset=offset)


def _tlv(data: bytes, pos: int, end: int, tag: int) -> tuple[int, int]:
    """The content span of the TLV with `tag` at `pos`, which must end by `end`."""
    if pos >= end or data[pos] != tag:
        found = f"0x{data[pos]:02x}" if pos < end else "the end"
        raise _fail(f"expected tag 0x{tag:02x}, found {found}", pos)
    if pos + 1 >= end:
        raise _fail("length missing", pos + 1)
    first = data[pos + 1]
    start = pos + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0:
            # X.690 10.1: DER (and smbd) take only definite lengths.
            raise _fail("indefinite length", pos + 1)
        if start + count > end:
            raise _fail("length runs past the token", pos + 1)
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    if start + length > end:
        raise _fail(f"a length of {length} runs past its parent", pos + 1)
    return start, start + length


@functools.lru_cache(maxsize=256)
def read_oid(content: bytes) -> tuple[int, ...]:
    """The arcs of an OBJECT IDENTIFIER as Samba ber_read_OID_String reads them: the first octet split by
    40, every later arc kept in 32 bits; fewer than two octets or an unfinished last arc is malformed."""
    if len(content) < 2:
        raise _fail("OBJECT IDENTIFIER of fewer than two octets", 0)
    arcs = [content[0] // 40, content[0] % 40]
    value = 0
    for octet in content[1:]:
        value = ((value << 7) | (octet & 0x7F)) & _ARC
        if not octet & 0x80:
            arcs.append(value)
            value = 0
    if content[-1] & 0x80:
        raise _fail("OBJECT IDENTIFIER ends inside an arc", 0)
    return tuple(arcs)


@functools.lru_cache(maxsize=256)
def _dotted(arcs: tuple[int, ...]) -> str:
    return ".".join(str(a) for a in arcs)


def _oid_der(arcs: tuple[int, ...]) -> bytes:
    """Samba ber_write_OID_String: the first octet 40 * a + b (in 8 bits), then each arc in base 128."""
    out = bytearray(((40 * arcs[0] + arcs[1]) & 0xFF,))
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return bytes((0x06,)) + _length(len(out)) + bytes(out)


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


@functools.lru_cache(maxsize=256)
def mech_list_der(mech_types: tuple[tuple[int, ...], ...]) -> bytes:
    """RFC 4178 5: the DER MechTypeList the mechListMIC covers, as Samba spnego_write_mech_types writes
    the list it read (nothing at all for an empty list)."""
    if not mech_types:
        return b""
    body = b"".join(_oid_der(arcs) for arcs in mech_types)
    return b"\x30" + _length(len(body)) + body


def _octets(data: bytes, pos: int, end: int) -> bytes:
    s, e = _tlv(data, pos, end, 0x04)
    if e != end:
        raise _fail("bytes after an OCTET STRING", e)
    return data[s:e]


def _context_flags(data: bytes, pos: int, end: int) -> ContextFlags:
    s, e = _tlv(data, pos, end, 0x03)
    if e != end or s == e:
        raise _fail("reqFlags is not one BIT STRING", pos)
    bits = 0
    for i, octet in enumerate(data[s + 1 : e]):
        for j in range(8):
            if octet & (0x80 >> j):
                bits |= 1 << (i * 8 + j)
    return ContextFlags(bits & 0x7F)


def _init(data: bytes, pos: int, end: int) -> Received:
    s, e = _tlv(data, pos, end, 0xA0)
    if e != end:
        raise _fail("bytes after the NegTokenInit", e)
    pos, end = _tlv(data, s, e, 0x30)
    if end != e:
        raise _fail("bytes after the NegTokenInit SEQUENCE", end)
    arcs: tuple[tuple[int, ...], ...] | None = None
    flags = None
    mech_token = None
    hints = None
    mic = None
    while pos < end:
        tag = data[pos]
        fs, fe = _tlv(data, pos, end, tag)
        if tag == 0xA0:
            ls, le = _tlv(data, fs, fe, 0x30)
            if le != fe:
                raise _fail("bytes after mechTypes", le)
            found = []
            while ls < le:
                os_, oe = _tlv(data, ls, le, 0x06)
                found.append(read_oid(data[os_:oe]))
                ls = oe
            arcs = tuple(found)
        elif tag == 0xA1:
            flags = _context_flags(data, fs, fe)
        elif tag == 0xA2:
            mech_token = _octets(data, fs, fe)
        elif tag == 0xA3 and fs < fe and data[fs] == 0x04:
            mic = _octets(data, fs, fe)
        elif tag == 0xA3:
            # Samba read_negTokenInit: a [3] that is not the mechListMIC is a hintName (Windows 2000's form).
            hs, he = _tlv(data, fs, fe, 0x30)
            ns, ne = _tlv(data, hs, he, 0xA0)
            gs, ge = _tlv(data, ns, ne, 0x1B)
            if ge != ne or ne != he or he != fe:
                raise _fail("negHints is not one hintName", ge)
            hints = NegHints(data[gs:ge].decode("latin-1"))
        else:
            raise _fail(f"field 0x{tag:02x} is not a NegTokenInit field", pos)
        pos = fe
    if not arcs:
        # Samba gensec_spnego_server_negTokenInit_start: a NegTokenInit without mechTypes is refused.
        raise _fail("NegTokenInit without mechTypes", s)
    mech_types = tuple(_dotted(a) for a in arcs)
    return Received(NegTokenInit(mech_types, flags, mech_token, hints, mic), mech_list_der(arcs))


def _resp(data: bytes, pos: int, end: int) -> Received:
    pos, seq_end = _tlv(data, pos, end, 0x30)
    if seq_end != end:
        raise _fail("bytes after the NegTokenResp SEQUENCE", seq_end)
    state = None
    mech = None
    token = None
    mic = None
    while pos < end:
        tag = data[pos]
        fs, fe = _tlv(data, pos, end, tag)
        if tag == 0xA0:
            es, ee = _tlv(data, fs, fe, 0x0A)
            if ee != fe or ee - es != 1:
                raise _fail("negState is not one octet", fs)
            value = data[es]
            state = NegState(value) if value in NegState._value2member_map_ else None
        elif tag == 0xA1:
            os_, oe = _tlv(data, fs, fe, 0x06)
            if oe != fe:
                raise _fail("bytes after supportedMech", oe)
            mech = _dotted(read_oid(data[os_:oe]))
        elif tag == 0xA2:
            token = _octets(data, fs, fe)
        elif tag == 0xA3:
            mic = _octets(data, fs, fe)
        else:
            raise _fail(f"field 0x{tag:02x} is not a NegTokenResp field", pos)
        pos = fe
    return Received(NegTokenResp(state, mech, token, mic))


_SPNEGO_ARCS = tuple(int(a) for a in SPNEGO.split("."))


def read(data: bytes) -> Received:
    """One whole client token (Reassembly says where it ends)."""
    data = bytes(data)
    if not data:
        raise NotSpnego("empty token", raw_mech=None)
    try:
        if data[0] == 0x60:
            s, e = _tlv(data, 0, len(data), 0x60)
            os_, oe = _tlv(data, s, e, 0x06)
            if read_oid(data[os_:oe]) != _SPNEGO_ARCS:
                raise _fail("the framing names another mechanism than SPNEGO", s)
            return _init(data, oe, e)
        if data[0] == 0xA1:
            s, e = _tlv(data, 0, len(data), 0xA1)
            if e != len(data):
                raise _fail("bytes after the NegTokenResp", e)
            return _resp(data, s, e)
    except MalformedMessage:
        if is_raw_ntlmssp(data):
            raise NotSpnego("raw NTLMSSP message, not SPNEGO", raw_mech="1.3.6.1.4.1.311.2.2.10") from None
        raise
    if is_raw_ntlmssp(data):
        raise NotSpnego("raw NTLMSSP message, not SPNEGO", raw_mech="1.3.6.1.4.1.311.2.2.10")
    # RFC 2743 3.1 / Samba spnego_read_data: a first token is framed, a later one is a NegTokenResp.
    raise NotSpnego(f"not a framed SPNEGO token (first byte 0x{data[0]:02x})", raw_mech=None)


def _outer_size(data: bytes) -> int | None:
    """Samba asn1_peek_full_tag: the size a token says it has (its header and content), for a framed
    NegTokenInit or a NegTokenResp whose length takes at most four octets; None for anything else."""
    if len(data) < 2 or data[0] not in (0x60, 0xA1):
        return None
    first = data[1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    # Samba reads one length octet for 0x80 (the indefinite form) too, as if it were 0x81.
    octets = max(count, 1)
    if count > 4 or len(data) < 2 + octets:
        return None
    return 2 + octets + int.from_bytes(data[2 : 2 + octets], "big")


class Reassembly:
    """Samba gensec_spnego_update_in: a security buffer shorter than the token it starts is a fragment,
    answered with an empty MORE_PROCESSING_REQUIRED; the next buffers complete it. A buffer longer than
    the token is refused."""

    def __init__(self) -> None:
        self._needed = 0
        self._fragment = b""

    @property
    def pending(self) -> bool:
        return self._needed > 0

    def add(self, data: bytes) -> bytes | None:
        """The whole token once `data` completes it, None while more is needed."""
        if not self._needed:
            size = _outer_size(data)
            self._needed = size if size is not None else len(data)
        needed = self._needed
        if needed > MAX_TOKEN_SIZE:
            self._needed = 0
            # Samba: tokens above 0xFFFF bytes are refused (DoS guard).
            status = NtStatus.STATUS_INVALID_BUFFER_SIZE
            raise MalformedMessage(f"SPNEGO token of {needed} bytes", status=status)
        if not data:
            raise MalformedMessage("SPNEGO: an empty buffer while a token is incomplete")
        if len(data) > needed - len(self._fragment):
            missing = needed - len(self._fragment)
            raise MalformedMessage(f"SPNEGO: {len(data)} bytes where {missing} complete the token")
        whole = self._fragment + data
        if len(whole) < needed:
            self._fragment = whole
            return None
        self._needed, self._fragment = 0, b""
        return whole
