"""GSS-API and SPNEGO tokens (RFC 2743 3.1, RFC 4178 4.2, MS-SPNG 2.2) as trees, rendered from the codec's
NegTokenInit and NegTokenResp; where each part lies is the codec's layout of the token's DER. A token inside
another message (an SMB2 security buffer, a mechToken) that does not parse becomes raw hex with a note."""

from __future__ import annotations

from smb2auth.decode.ntlm import decode_ntlm
from smb2auth.decode.tree import DecodeError, Node, flag_list, hexed, without_offsets
from smb2auth.errors import MalformedMessage
from smb2auth.spnego import tokens
from smb2auth.spnego.asn1 import IGNORE_PRINCIPAL, KRB5, MS_KRB5, NTLMSSP, SPNEGO, mech_name
from smb2auth.spnego.tokens import ContextFlags, NegTokenInit, NegTokenResp, NotSpnego, Span

_FRAMED = "GSS-API InitialContextToken"
# RFC 4121 4.1: the 2-byte TOK_ID that precedes a Kerberos message inside the framing.
_KRB5_TOK_IDS = {b"\x01\x00": "KRB_AP_REQ", b"\x02\x00": "KRB_AP_REP", b"\x03\x00": "KRB_ERROR"}


def decode_gss(data: bytes, base: int = 0) -> Node:
    """A GSS-API token: an InitialContextToken (RFC 2743 3.1) or a bare SPNEGO NegotiationToken."""
    data = bytes(data)
    if not data:
        raise DecodeError("SPNEGO token", "empty token", base)
    try:
        token = tokens.decode(data)
    except NotSpnego as exc:
        if data[0] == 0x60 and exc.raw_mech is not None:
            return _other_mechanism(data, base)
        raise DecodeError.from_codec("SPNEGO token", exc, base) from None
    except MalformedMessage as exc:
        raise DecodeError.from_codec("SPNEGO token", exc, base) from None
    spans = _spans(token, data)
    view = _View(spans, base)
    node = _init(token, view) if isinstance(token, NegTokenInit) else _resp(token, view)
    if spans is None:
        node.note = f"{node.note}; not the DER smb2auth writes, so the offsets inside are not shown"
    if data[0] != 0x60:
        return node
    root = Node(_FRAMED, note="RFC 2743 3.1 [APPLICATION 0]", offset=base)
    root.add("thisMech", _mech(SPNEGO), offset=view.start("thisMech"))
    root.children.append(node)
    return root


def decode_token(data: bytes, base: int) -> Node:
    """A token inside another message: decoded when it parses, raw hex with a note when not."""
    if not data:
        return Node("(empty)", offset=base)
    try:
        if tokens.is_raw_ntlmssp(data):
            return decode_ntlm(data, base)
        if data[0] in (0x60, 0xA0, 0xA1):
            return decode_gss(data, base)
    except DecodeError as exc:
        return Node("(undecoded)", hexed(data), f"does not parse: {exc}", base)
    if data[:8] == b"NEGOEXTS":
        return Node("NegoEx message", hexed(data), "MS-NEGOEX, not decoded", base)
    return Node("(unknown token)", hexed(data), "not NTLMSSP or SPNEGO", base)


def _spans(token: NegTokenInit | NegTokenResp, data: bytes) -> dict[str, Span] | None:
    """The codec's layout of `token` when `data` is exactly its DER (a NegTokenInit with or without the
    GSS framing), else None: BER has no one layout."""
    encoded = token.encode()
    if encoded == data:
        return tokens.layout(token)
    skip = len(encoded) - len(data)
    if isinstance(token, NegTokenInit) and skip > 0 and encoded[skip:] == data:
        spans = tokens.layout(token)
        del spans["thisMech"]
        return {name: Span(s.start - skip, s.value - skip) for name, s in spans.items()}
    return None


class _View:
    """Offsets in the whole input of the parts of a token that starts at `base` (None: unknown)."""

    def __init__(self, spans: dict[str, Span] | None, base: int) -> None:
        self.spans = spans
        self.base = base

    def start(self, name: str) -> int | None:
        return None if self.spans is None else self.base + self.spans[name].start

    def value(self, name: str) -> int | None:
        return None if self.spans is None else self.base + self.spans[name].value

    def nested(self, name: str, data: bytes) -> Node:
        at = self.value(name)
        return decode_token(data, at) if at is not None else without_offsets(decode_token(data, 0))


def _mech(oid: str) -> str:
    name = mech_name(oid)
    return f"{name} ({oid})" if name != oid else oid


def _resp(token: NegTokenResp, view: _View) -> Node:
    root = Node("SPNEGO NegTokenResp", note="RFC 4178 4.2.2", offset=view.start("negTokenResp"))
    if token.neg_state is not None:
        state = token.neg_state
        text = f"{int(state)} ({state.name.lower().replace('_', '-')})"
        root.add("negState", text, offset=view.start("negState"))
    if token.supported_mech is not None:
        root.add("supportedMech", _mech(token.supported_mech), offset=view.start("supportedMech"))
    if token.response_token is not None:
        size = f"{len(token.response_token)} bytes"
        node = root.add("responseToken", note=size, offset=view.value("responseToken"))
        node.children.append(view.nested("responseToken", token.response_token))
    if token.mech_list_mic is not None:
        root.add("mechListMIC", hexed(token.mech_list_mic), offset=view.value("mechListMIC"))
    return root


def _init(token: NegTokenInit, view: _View) -> Node:
    if token.neg_hints is not None:
        root = Node("SPNEGO NegTokenInit2", note="MS-SPNG 2.2.1", offset=view.start("negTokenInit"))
    else:
        root = Node("SPNEGO NegTokenInit", note="RFC 4178 4.2.1", offset=view.start("negTokenInit"))
    if token.mech_types or token.neg_hints is None:
        node = root.add("mechTypes", offset=view.start("mechTypes"))
        for i, mech in enumerate(token.mech_types):
            # RFC 4178 4.2.1: the first mechanism is the initiator's preferred one.
            note = "preferred" if i == 0 else None
            node.add(f"mechType[{i}]", _mech(mech), note, view.start(f"mechTypes[{i}]"))
    if token.req_flags is not None:
        flags = int(token.req_flags)
        node = root.add("reqFlags", f"0x{flags:02x}", None if flags else "none set", view.start("reqFlags"))
        for name in flag_list(ContextFlags, flags):
            node.add(name)
    if token.mech_token is not None:
        size = f"{len(token.mech_token)} bytes"
        node = root.add("mechToken", note=size, offset=view.value("mechToken"))
        node.children.append(view.nested("mechToken", token.mech_token))
    hints = token.neg_hints
    if hints is not None:
        node = root.add("negHints", offset=view.start("negHints"))
        if hints.hint_name is not None:
            note = "MS-SPNG 3.2.5.2 placeholder" if hints.hint_name == IGNORE_PRINCIPAL else None
            node.add("hintName", repr(hints.hint_name), note, view.value("hintName"))
        if hints.hint_address is not None:
            node.add("hintAddress", hexed(hints.hint_address), offset=view.value("hintAddress"))
    if token.mech_list_mic is not None:
        root.add("mechListMIC", hexed(token.mech_list_mic), offset=view.value("mechListMIC"))
    return root


def _other_mechanism(data: bytes, base: int) -> Node:
    """An InitialContextToken of another mechanism: its framing, and NTLMSSP decoded inside it."""
    try:
        framing = tokens.gss_framing(data)
    except MalformedMessage as exc:
        raise DecodeError.from_codec(_FRAMED, exc, base) from None
    if framing.end != len(data):
        raise DecodeError(_FRAMED, "its [APPLICATION 0] length does not end where the token does", base + 1)
    root = Node(_FRAMED, note="RFC 2743 3.1 [APPLICATION 0]", offset=base)
    root.add("thisMech", _mech(framing.mech), offset=base + framing.mech_offset)
    inner = data[framing.inner_offset :]
    at = base + framing.inner_offset
    if framing.mech == NTLMSSP:
        root.children.append(decode_token(inner, at))
        return root
    node = root.add("innerContextToken", hexed(inner), offset=at)
    if len(inner) >= 2 and framing.mech in (KRB5, MS_KRB5):
        tok_id = inner[:2]
        node.note = f"TOK_ID {tok_id.hex()} ({_KRB5_TOK_IDS.get(tok_id, 'unknown')}), Kerberos not decoded"
    else:
        node.note = "not decoded"
    return root
