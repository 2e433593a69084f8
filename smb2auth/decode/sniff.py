"""What a person gives the decoder, to bytes: hex (spaces, colons, 0x, hex dumps), base64, HTTP
authentication header lines; and which message the bytes are (NTLMSSP, GSS-API/SPNEGO, SMB)."""

from __future__ import annotations

import base64
import binascii
import re

from smb2auth.decode.ntlm import decode_ntlm
from smb2auth.decode.smb2 import PROTOCOL_IDS, decode_smb
from smb2auth.decode.spnego import decode_gss
from smb2auth.decode.tree import DecodeError, Node
from smb2auth.ntlm.messages import SIGNATURE


def decode_bytes(data: bytes) -> Node:
    """The annotated tree of one NTLMSSP message, GSS-API/SPNEGO token or SMB packet."""
    data = bytes(data)
    if not data:
        raise DecodeError("input", "no bytes to decode", 0)
    if data[:8] == SIGNATURE:
        return decode_ntlm(data)
    # MS-SMB2 2.1: a Direct TCP frame is a zero byte and a 24-bit length, then the SMB message.
    if data[:4] in PROTOCOL_IDS or (data[:1] == b"\x00" and data[4:8] in PROTOCOL_IDS):
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
    if raw[:8] == SIGNATURE or raw[:4] in PROTOCOL_IDS:
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
