"""SPNEGO token codec: frozen dataclasses, DER out, BER in.

`encode()` writes DER by hand (checked against pyasn1's DER encoder by the tests). `decode()` first
tries a strict walk over the well-formed DER shapes peers send (minimal definite lengths, known
mechanism OIDs); anything else goes to pyasn1, which is the reference and the only source of errors.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

from pyasn1 import error as pyasn1_error  # type: ignore[import-untyped]
from pyasn1.codec.ber import decoder as ber_decoder  # type: ignore[import-untyped]
from pyasn1.codec.der import encoder as der_encoder  # type: ignore[import-untyped]

from smb2auth._frozen import quick_init
from smb2auth.errors import MalformedMessage
from smb2auth.spnego import asn1
from smb2auth.spnego.asn1 import KRB5, KRB5_USER2USER, MS_KRB5, NEGOEX, NTLMSSP, SPNEGO

__all__ = [
    "MAX_TOKEN_SIZE",
    "ContextFlags",
    "GssFraming",
    "NegHints",
    "NegState",
    "NegTokenInit",
    "NegTokenResp",
    "NotSpnego",
    "Span",
    "decode",
    "decode_reference",
    "encode_reference",
    "gss_framing",
    "is_raw_ntlmssp",
    "layout",
    "mech_types_der",
]

# Samba gensec_spnego_update_in: tokens above 0xFFFF bytes are refused (DoS guard).
MAX_TOKEN_SIZE = 0xFFFF
NTLMSSP_SIGNATURE = b"NTLMSSP\x00"


class NegState(enum.IntEnum):
    """RFC 4178 4.2.2."""

    ACCEPT_COMPLETED = 0
    ACCEPT_INCOMPLETE = 1
    REJECT = 2
    REQUEST_MIC = 3


class ContextFlags(enum.IntFlag):
    """RFC 4178 4.2.1 ContextFlags; bit n of the BIT STRING is `1 << n` here."""

    DELEG = 1 << 0
    MUTUAL = 1 << 1
    REPLAY = 1 << 2
    SEQUENCE = 1 << 3
    ANON = 1 << 4
    CONF = 1 << 5
    INTEG = 1 << 6


@quick_init
@dataclass(frozen=True)
class NegHints:
    """MS-SPNG 2.2.1 negHints. `hint_name` is a GeneralString, carried as Latin-1."""

    hint_name: str | None = None
    hint_address: bytes | None = None


@quick_init
@dataclass(frozen=True)
class NegTokenInit:
    """RFC 4178 4.2.1 NegTokenInit, or MS-SPNG 2.2.1 NegTokenInit2 when `neg_hints` is set."""

    mech_types: tuple[str, ...]
    req_flags: ContextFlags | None = None
    mech_token: bytes | None = None
    neg_hints: NegHints | None = None
    mech_list_mic: bytes | None = None

    def encode(self) -> bytes:
        """DER, inside the RFC 2743 3.1 InitialContextToken framing (it is always a first token)."""
        body = b"".join([tlv for _, tlv in self._fields()])
        return _tlv(0x60, _SPNEGO_OID_TLV + _tlv(0xA0, _tlv(0x30, body)))

    def _fields(self) -> list[tuple[str, bytes]]:
        """The fields present, in order: (ASN.1 name, DER of the explicitly tagged field)."""
        fields: list[tuple[str, bytes]] = []
        # RFC 4178 4.2.1: mechTypes is mandatory; MS-SPNG 2.2.1 NegTokenInit2 makes it optional.
        if self.mech_types or self.neg_hints is None:
            fields.append(("mechTypes", _TLV_MECH_TYPES(self.mech_types)))
        if self.req_flags is not None:
            fields.append(("reqFlags", _tlv(0xA1, _bit_string(int(self.req_flags)))))
        if self.mech_token is not None:
            fields.append(("mechToken", _explicit_octets(0xA2, self.mech_token)))
        if self.neg_hints is not None:
            fields.append(("negHints", _tlv(0xA3, _tlv(0x30, b"".join(t for _, t in self._hints())))))
            if self.mech_list_mic is not None:
                fields.append(("mechListMIC", _tlv(0xA4, _tlv(0x04, self.mech_list_mic))))
        elif self.mech_list_mic is not None:
            fields.append(("mechListMIC", _tlv(0xA3, _tlv(0x04, self.mech_list_mic))))
        return fields

    def _hints(self) -> list[tuple[str, bytes]]:
        """MS-SPNG 2.2.1: the negHints fields present, in order."""
        fields: list[tuple[str, bytes]] = []
        if self.neg_hints is not None and self.neg_hints.hint_name is not None:
            fields.append(("hintName", _tlv(0xA0, _tlv(0x1B, self.neg_hints.hint_name.encode("latin-1")))))
        if self.neg_hints is not None and self.neg_hints.hint_address is not None:
            fields.append(("hintAddress", _tlv(0xA1, _tlv(0x04, self.neg_hints.hint_address))))
        return fields


@quick_init
@dataclass(frozen=True)
class NegTokenResp:
    """RFC 4178 4.2.2 NegTokenResp (negTokenTarg in older texts)."""

    neg_state: NegState | None = None
    supported_mech: str | None = None
    response_token: bytes | None = None
    mech_list_mic: bytes | None = None

    def encode(self) -> bytes:
        """DER; RFC 4178 4.2: only the initial token carries the GSS framing."""
        return _tlv(0xA1, _tlv(0x30, b"".join([tlv for _, tlv in self._fields()])))

    def _fields(self) -> list[tuple[str, bytes]]:
        """The fields present, in order: (ASN.1 name, DER of the explicitly tagged field)."""
        fields: list[tuple[str, bytes]] = []
        if self.neg_state is not None:
            fields.append(("negState", _NEG_STATE_TLV[self.neg_state]))
        if self.supported_mech is not None:
            fields.append(("supportedMech", _supported_mech_tlv(self.supported_mech)))
        if self.response_token is not None:
            fields.append(("responseToken", _explicit_octets(0xA2, self.response_token)))
        if self.mech_list_mic is not None:
            fields.append(("mechListMIC", _explicit_octets(0xA3, self.mech_list_mic)))
        return fields


Token = NegTokenInit | NegTokenResp


class NotSpnego(MalformedMessage):
    """The input is not SPNEGO. `raw_mech` is NTLMSSP when it is a bare NTLM message (what some HTTP
    clients send after `Negotiate`), else None."""

    def __init__(self, message: str, *, raw_mech: str | None) -> None:
        super().__init__(message, offset=0)
        self.raw_mech = raw_mech


def is_raw_ntlmssp(data: bytes) -> bool:
    """MS-NLMP 2.2.1: every NTLM message starts with the signature "NTLMSSP\\0"."""
    return data[:8] == NTLMSSP_SIGNATURE


# --- DER writing -------------------------------------------------------------------------------


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _tlv(tag: int, content: bytes) -> bytes:
    """X.690 8.1.3: short form below 128, else the long form in as few bytes as the length needs."""
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    if n < 0x100:
        return bytes((tag, 0x81, n)) + content
    if n < 0x10000:
        return bytes((tag, 0x82, n >> 8, n & 0xFF)) + content
    return bytes((tag,)) + _der_len(n) + content


def _header(tag: int, n: int) -> bytes:
    """The tag and length octets of a TLV with `n` content octets (X.690 8.1.3, as `_tlv` writes them)."""
    if n < 0x80:
        return bytes((tag, n))
    if n < 0x100:
        return bytes((tag, 0x81, n))
    if n < 0x10000:
        return bytes((tag, 0x82, n >> 8, n & 0xFF))
    return bytes((tag,)) + _der_len(n)


def _explicit_octets(tag: int, content: bytes) -> bytes:
    """[tag] { OCTET STRING }: `_tlv(tag, _tlv(0x04, content))` with one copy of the content."""
    inner = _header(0x04, len(content))
    return _header(tag, len(inner) + len(content)) + inner + content


@functools.lru_cache(maxsize=64)
def _supported_mech_tlv(mech: str) -> bytes:
    return _tlv(0xA1, _oid_tlv(mech))


def _bit_string(flags: int) -> bytes:
    """X.690 11.2.2: DER drops trailing zero bits of a named-bit BIT STRING."""
    if flags < 0:
        raise ValueError("flags must be non-negative")
    nbits = flags.bit_length()
    if nbits == 0:
        return b"\x03\x01\x00"
    nbytes = (nbits + 7) // 8
    value = 0
    for i in range(nbits):
        if flags >> i & 1:
            value |= 1 << (nbytes * 8 - 1 - i)
    return _tlv(0x03, bytes((nbytes * 8 - nbits,)) + value.to_bytes(nbytes, "big"))


@functools.lru_cache(maxsize=256)
def _oid_tlv(dotted: str) -> bytes:
    """X.690 8.19: the OID's DER TLV (cached: peers use a handful of OIDs)."""
    try:
        arcs = [int(a) for a in dotted.split(".")]
    except ValueError:
        raise ValueError(f"not an OID: {dotted!r}") from None
    if len(arcs) < 2 or any(a < 0 for a in arcs) or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] > 39):
        raise ValueError(f"not an OID: {dotted!r}")
    body = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return _tlv(0x06, bytes(body))


@functools.lru_cache(maxsize=64)
def mech_types_der(mech_types: tuple[str, ...]) -> bytes:
    """RFC 4178 5: the DER of the MechTypeList, the input to the mechListMIC."""
    return _tlv(0x30, b"".join(_oid_tlv(m) for m in mech_types))


@functools.lru_cache(maxsize=64)
def _TLV_MECH_TYPES(mech_types: tuple[str, ...]) -> bytes:  # noqa: N802
    return _tlv(0xA0, mech_types_der(mech_types))


_SPNEGO_OID_TLV = _oid_tlv(SPNEGO)
_NEG_STATE_TLV = {s: bytes((0xA0, 0x03, 0x0A, 0x01, s.value)) for s in NegState}
_NEG_STATES = tuple(NegState)  # by value: 0 .. 3


class Span(NamedTuple):
    """Where one part of an encoded token lies: its tag, and the contents of its innermost element (the
    OID, the OCTET STRING, the first element of a SEQUENCE)."""

    start: int
    value: int


def _header_size(tlv: bytes) -> int:
    """The tag and length octets of a TLV this module wrote (X.690 8.1.3: short or long definite form)."""
    return 2 if tlv[1] < 0x80 else 2 + (tlv[1] & 0x7F)


def _field_span(start: int, tlv: bytes) -> Span:
    """An explicitly tagged field: [n] { element }; the value is the element's contents."""
    outer = _header_size(tlv)
    return Span(start, start + outer + _header_size(tlv[outer:]))


def layout(token: Token) -> dict[str, Span]:
    """Where each part of `token.encode()` lies, by ASN.1 name: "thisMech" (NegTokenInit only),
    "negTokenInit" or "negTokenResp", each field present, "mechTypes[i]", "hintName", "hintAddress".
    A decoder shows these offsets for a token that arrived as exactly this DER."""
    spans: dict[str, Span] = {}
    fields = token._fields()
    seq = _tlv(0x30, b"".join(tlv for _, tlv in fields))
    if isinstance(token, NegTokenInit):
        choice = _tlv(0xA0, seq)
        # RFC 2743 3.1: [APPLICATION 0] { thisMech, innerContextToken }
        pos = _header_size(_tlv(0x60, _SPNEGO_OID_TLV + choice))
        spans["thisMech"] = Span(pos, pos + _header_size(_SPNEGO_OID_TLV))
        pos += len(_SPNEGO_OID_TLV)
        name = "negTokenInit"
    else:
        choice = _tlv(0xA1, seq)
        pos = 0
        name = "negTokenResp"
    spans[name] = _field_span(pos, choice)
    pos = spans[name].value
    for field_name, tlv in fields:
        span = spans[field_name] = _field_span(pos, tlv)
        if field_name == "mechTypes":
            at = span.value
            for i, mech in enumerate(token.mech_types if isinstance(token, NegTokenInit) else ()):
                oid = _oid_tlv(mech)
                spans[f"mechTypes[{i}]"] = Span(at, at + _header_size(oid))
                at += len(oid)
        elif field_name == "negHints" and isinstance(token, NegTokenInit):
            at = span.value
            for hint_name, hint in token._hints():
                spans[hint_name] = _field_span(at, hint)
                at += len(hint)
        pos += len(tlv)
    return spans

# --- fast DER reading --------------------------------------------------------------------------

_KNOWN_OIDS = {_oid_tlv(o)[2:]: o for o in (NTLMSSP, KRB5, MS_KRB5, NEGOEX, KRB5_USER2USER, SPNEGO)}
_SPNEGO_OID_LEN = len(_SPNEGO_OID_TLV)


def _fast_tlv(data: bytes, pos: int, end: int, tag: int) -> tuple[int, int]:
    """The content span (start, stop) of a TLV with `tag` at `pos` that fits before `end`, or (-1, 0)
    when it is not there or its length is not a minimal definite one (X.690 10.1)."""
    if pos + 1 >= end or data[pos] != tag:
        return -1, 0
    n = data[pos + 1]
    start = pos + 2
    if n >= 0x80:
        if n == 0x81 and start < end and data[start] >= 0x80:
            n = data[start]
            start += 1
        elif n == 0x82 and start + 1 < end and (data[start] << 8 | data[start + 1]) >= 0x100:
            n = data[start] << 8 | data[start + 1]
            start += 2
        else:
            return -1, 0
    stop = start + n
    if stop > end:
        return -1, 0
    return start, stop


def _fast_octets(data: bytes, pos: int, end: int) -> bytes | None:
    """An explicit-tagged OCTET STRING whose content is exactly data[pos:end]."""
    s, e = _fast_tlv(data, pos, end, 0x04)
    if s < 0 or e != end:
        return None
    return data[s:e]


def _fast_init(data: bytes, pos: int, end: int) -> NegTokenInit | None:
    s, e = _fast_tlv(data, pos, end, 0x30)
    if s < 0 or e != end:
        return None
    pos = s
    mech_types: tuple[str, ...] = ()
    mech_token = None
    hints = None
    mic = None
    last = -1
    rfc_mic = False
    seen_types = False
    while pos < end:
        t = data[pos]
        fs, fe = _fast_tlv(data, pos, end, t)
        if fs < 0 or t <= last or rfc_mic:
            return None
        last = t
        if t == 0xA0:
            ls, le = _fast_tlv(data, fs, fe, 0x30)
            if ls < 0 or le != fe:
                return None
            oids = []
            while ls < le:
                os_, oe = _fast_tlv(data, ls, le, 0x06)
                if os_ < 0:
                    return None
                oid = _KNOWN_OIDS.get(data[os_:oe])
                if oid is None:
                    return None
                oids.append(oid)
                ls = oe
            mech_types = tuple(oids)
            seen_types = True
        elif t == 0xA2:
            mech_token = _fast_octets(data, fs, fe)
            if mech_token is None:
                return None
        elif t == 0xA3 and fs < fe and data[fs] == 0x04:
            mic = _fast_octets(data, fs, fe)
            if mic is None:
                return None
            rfc_mic = True
        elif t == 0xA3:
            hints = _fast_hints(data, fs, fe)
            if hints is None:
                return None
        elif t == 0xA4:
            mic = _fast_octets(data, fs, fe)
            if mic is None:
                return None
        else:
            return None
        pos = fe
    if rfc_mic and not seen_types:
        return None  # RFC 4178 4.2.1: mechTypes is mandatory in the RFC form
    return NegTokenInit(mech_types, None, mech_token, hints, mic)


def _fast_hints(data: bytes, pos: int, end: int) -> NegHints | None:
    s, e = _fast_tlv(data, pos, end, 0x30)
    if s < 0 or e != end:
        return None
    name = None
    address = None
    pos = s
    if pos < e and data[pos] == 0xA0:
        fs, fe = _fast_tlv(data, pos, e, 0xA0)
        if fs < 0:
            return None
        gs, ge = _fast_tlv(data, fs, fe, 0x1B)
        if gs < 0 or ge != fe:
            return None
        name = data[gs:ge].decode("latin-1")
        pos = fe
    if pos < e and data[pos] == 0xA1:
        fs, fe = _fast_tlv(data, pos, e, 0xA1)
        if fs < 0:
            return None
        address = _fast_octets(data, fs, fe)
        if address is None:
            return None
        pos = fe
    if pos != e:
        return None
    return NegHints(name, address)


def _fast_resp(data: bytes, pos: int, end: int) -> NegTokenResp | None:
    s, e = _fast_tlv(data, pos, end, 0x30)
    if s < 0 or e != end:
        return None
    pos = s
    state = None
    mech = None
    token = None
    mic = None
    last = -1
    while pos < end:
        t = data[pos]
        fs, fe = _fast_tlv(data, pos, end, t)
        if fs < 0 or t <= last:
            return None
        last = t
        if t == 0xA0:
            if fe - fs != 3 or data[fs] != 0x0A or data[fs + 1] != 1 or data[fs + 2] > 3:
                return None
            state = _NEG_STATES[data[fs + 2]]
        elif t == 0xA1:
            os_, oe = _fast_tlv(data, fs, fe, 0x06)
            if os_ < 0 or oe != fe:
                return None
            mech = _KNOWN_OIDS.get(data[os_:oe])
            if mech is None:
                return None
        elif t == 0xA2:
            token = _fast_octets(data, fs, fe)
            if token is None:
                return None
        elif t == 0xA3:
            mic = _fast_octets(data, fs, fe)
            if mic is None:
                return None
        else:
            return None
        pos = fe
    return NegTokenResp(state, mech, token, mic)


def _fast_decode(data: bytes) -> Token | None:
    """The common DER shapes, or None to let pyasn1 decide. Never raises."""
    n = len(data)
    if n < 2:
        return None
    t = data[0]
    if t == 0xA1:
        s, e = _fast_tlv(data, 0, n, 0xA1)
        if s < 0 or e != n:
            return None
        return _fast_resp(data, s, e)
    if t == 0x60:
        s, e = _fast_tlv(data, 0, n, 0x60)
        if s < 0 or e != n or data[s : s + _SPNEGO_OID_LEN] != _SPNEGO_OID_TLV:
            return None
        pos = s + _SPNEGO_OID_LEN
    elif t == 0xA0:
        pos = 0
    else:
        return None
    s, e = _fast_tlv(data, pos, n, 0xA0)
    if s < 0 or e != n:
        return None
    return _fast_init(data, s, e)


# --- pyasn1 reference --------------------------------------------------------------------------


def _field(value: Any, name: str) -> Any:
    """A component of a decoded SEQUENCE, or None when it was absent."""
    return value.getComponentByName(name, default=None, instantiate=False)


def _octets(value: Any) -> bytes | None:
    return None if value is None else bytes(value.asOctets())


def _from_init(value: Any, *, rfc: bool) -> NegTokenInit:
    types = _field(value, "mechTypes")
    mech_types = tuple(str(o) for o in types) if types is not None else ()
    flags_value = _field(value, "reqFlags")
    req_flags = None
    if flags_value is not None:
        bits = 0
        for i, bit in enumerate(flags_value):
            if bit:
                bits |= 1 << i
        req_flags = ContextFlags(bits)
    hints = None
    h = None if rfc else _field(value, "negHints")
    if h is not None:
        name = _octets(_field(h, "hintName"))
        hint_name = name.decode("latin-1") if name is not None else None
        hints = NegHints(hint_name, _octets(_field(h, "hintAddress")))
    token = _octets(_field(value, "mechToken"))
    return NegTokenInit(mech_types, req_flags, token, hints, _octets(_field(value, "mechListMIC")))


def _from_resp(value: Any) -> NegTokenResp:
    state = None
    raw_state = _field(value, "negState")
    if raw_state is not None:
        raw = int(raw_state)
        if raw not in NegState._value2member_map_:
            raise MalformedMessage(f"SPNEGO negState {raw} is not defined (RFC 4178 4.2.2)")
        state = NegState(raw)
    mech = _field(value, "supportedMech")
    return NegTokenResp(
        state,
        str(mech) if mech is not None else None,
        _octets(_field(value, "responseToken")),
        _octets(_field(value, "mechListMIC")),
    )


def _pyasn1_token(data: bytes, *, framed: bool) -> Token:
    """Decode with the MS-SPNG schema, then the RFC 4178 one (they differ only in tag [3])."""
    specs: tuple[tuple[Any, bool], ...]
    if framed:
        specs = ((asn1.SpnegoInitialContextToken(), False), (asn1.SpnegoInitialContextTokenRfc(), True))
    else:
        specs = ((asn1.NegotiationToken(), False), (asn1.NegotiationTokenRfc(), True))
    errors = []
    for spec, rfc in specs:
        try:
            value, rest = ber_decoder.decode(data, asn1Spec=spec)
        except Exception as exc:  # pyasn1 raises PyAsn1Error and, on hostile input, others
            errors.append(exc)
            continue
        if rest:
            raise MalformedMessage(f"{len(rest)} bytes after the SPNEGO token", offset=len(data) - len(rest))
        try:
            if framed:
                mech = str(value["thisMech"])
                if mech != SPNEGO:
                    # RFC 2743 3.1: the framing names the mechanism; we only speak SPNEGO inside it.
                    raise NotSpnego(f"GSS-API token for {asn1.mech_name(mech)}, not SPNEGO", raw_mech=mech)
                value = value["innerContextToken"]
            name = value.getName()
            if name == "negTokenResp" and not framed:
                return _from_resp(value["negTokenResp"])
            if name == "negTokenInit":
                return _from_init(value["negTokenInit"], rfc=rfc)
        except MalformedMessage:
            raise
        except Exception as exc:  # pyasn1 may hand back values it cannot read (an unchosen CHOICE)
            reason = f"{type(exc).__name__}: {exc}"
            raise MalformedMessage(f"unreadable SPNEGO token: {reason}", offset=0) from None
        # RFC 4178 4.2: only negTokenInit is framed as an InitialContextToken.
        raise MalformedMessage(f"SPNEGO {name or 'token'} not valid here", offset=0)
    other = _framed_mech(data) if framed else None
    if other is not None and other != SPNEGO:
        raise NotSpnego(f"GSS-API token for {asn1.mech_name(other)}, not SPNEGO", raw_mech=other)
    raise MalformedMessage(f"not a SPNEGO token: {_pyasn1_reason(errors[0])}", offset=0)


def _pyasn1_reason(exc: Exception) -> str:
    """pyasn1's complaint in words: its messages are empty on truncation and print schema objects on a
    wrong tag."""
    if isinstance(exc, pyasn1_error.SubstrateUnderrunError):
        return f"truncated: an ASN.1 length runs past the end ({type(exc).__name__})"
    text = str(exc)
    if "not in asn1Spec" in text:
        return f"an ASN.1 tag the SPNEGO schema does not allow there ({type(exc).__name__})"
    return f"{type(exc).__name__}: {text}"


class GssFraming(NamedTuple):
    """RFC 2743 3.1: what an InitialContextToken's framing says: thisMech, where it and the
    innerContextToken start, and where the [APPLICATION 0] element ends (None: indefinite length)."""

    mech: str
    mech_offset: int
    inner_offset: int
    end: int | None


def gss_framing(data: bytes) -> GssFraming:
    """The framing of a token that starts with [APPLICATION 0]; the innerContextToken is not decoded
    (Kerberos puts a 2-byte TOK_ID before its ASN.1, RFC 4121 4.1)."""
    if len(data) < 2 or data[0] != 0x60:
        raise MalformedMessage("not a GSS-API InitialContextToken ([APPLICATION 0])", offset=0)
    n = data[1]
    start = 2 + (n & 0x7F if n & 0x80 else 0)
    if start > len(data):
        raise MalformedMessage("GSS-API InitialContextToken length runs past the end", offset=1)
    end = None if n == 0x80 else start + (n if n < 0x80 else int.from_bytes(data[2:start], "big"))
    try:
        oid, rest = ber_decoder.decode(data[start:], asn1Spec=asn1.MechType())
        mech = str(oid)
    except Exception:  # pyasn1 on hostile input (an OID it cannot print, too)
        raise MalformedMessage("GSS-API thisMech is not an OBJECT IDENTIFIER", offset=start) from None
    return GssFraming(mech, start, len(data) - len(rest), end)


def _framed_mech(data: bytes) -> str | None:
    """RFC 2743 3.1: thisMech of a framed token whose innerContextToken is not SPNEGO, or None."""
    try:
        return gss_framing(data).mech
    except MalformedMessage:
        return None


def decode_reference(data: bytes) -> Token:
    """Decode with pyasn1 only (the reference the fast path is tested against)."""
    if len(data) > MAX_TOKEN_SIZE:
        raise MalformedMessage(f"SPNEGO token of {len(data)} bytes exceeds {MAX_TOKEN_SIZE}")
    if not data:
        raise NotSpnego("empty token", raw_mech=None)
    if data[0] == 0x60:
        return _pyasn1_token(data, framed=True)
    if data[0] in (0xA0, 0xA1):
        return _pyasn1_token(data, framed=False)
    if is_raw_ntlmssp(data):
        raise NotSpnego("raw NTLMSSP message, not SPNEGO", raw_mech=NTLMSSP)
    raise NotSpnego(f"not a SPNEGO token (first byte 0x{data[0]:02x})", raw_mech=None)


def decode(data: bytes) -> Token:
    """Decode a SPNEGO token as peers send it: the init token with or without GSS framing, a
    NegTokenResp bare. BER is accepted. A bare NTLM message raises `NotSpnego(raw_mech=NTLMSSP)`;
    everything else malformed raises `MalformedMessage`."""
    token = _fast_decode(data) if len(data) <= MAX_TOKEN_SIZE else None
    if token is not None:
        return token
    return decode_reference(data)


def encode_reference(token: Token) -> bytes:
    """DER via pyasn1 (the reference the hand encoder is tested against)."""
    if isinstance(token, NegTokenResp):
        resp = asn1.NegotiationToken()
        body = resp.getComponentByName("negTokenResp")
        if token.neg_state is not None:
            body["negState"] = int(token.neg_state)
        if token.supported_mech is not None:
            body["supportedMech"] = token.supported_mech
        if token.response_token is not None:
            body["responseToken"] = token.response_token
        if token.mech_list_mic is not None:
            body["mechListMIC"] = token.mech_list_mic
        return bytes(der_encoder.encode(resp))
    rfc = token.neg_hints is None
    choice = asn1.NegotiationTokenRfc() if rfc else asn1.NegotiationToken()
    init = choice.getComponentByName("negTokenInit")
    types = init.getComponentByName("mechTypes")
    for i, oid in enumerate(token.mech_types):
        types[i] = oid
    if token.req_flags is not None:
        flags = int(token.req_flags)
        bits = tuple(flags >> i & 1 for i in range(flags.bit_length()))
        init["reqFlags"] = init.getComponentByName("reqFlags").clone(bits)
    if token.mech_token is not None:
        init["mechToken"] = token.mech_token
    if token.neg_hints is not None:
        hints = init.getComponentByName("negHints")
        if token.neg_hints.hint_name is not None:
            hints["hintName"] = token.neg_hints.hint_name.encode("latin-1")
        if token.neg_hints.hint_address is not None:
            hints["hintAddress"] = token.neg_hints.hint_address
    if token.mech_list_mic is not None:
        init["mechListMIC"] = token.mech_list_mic
    framed = asn1.InitialContextToken()
    framed["thisMech"] = SPNEGO
    framed["innerContextToken"] = der_encoder.encode(choice)
    return bytes(der_encoder.encode(framed))
