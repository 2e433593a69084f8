"""WinRM message encryption over HTTP (MS-WSMV 2.2.9.1.1, `HTTP-SPNEGO-session-encrypted`): after the
NTLM or Negotiate handshake, each request and response body is sealed with the connection's security context
and framed as `multipart/encrypted`:

    --Encrypted Boundary\\r\\n
    \\tContent-Type: application/HTTP-SPNEGO-session-encrypted\\r\\n
    \\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=<plaintext length>\\r\\n
    --Encrypted Boundary\\r\\n
    \\tContent-Type: application/octet-stream\\r\\n
    <signature length, 4 bytes little-endian><signature><sealed data>--Encrypted Boundary--\\r\\n

Both sides use the same codec: `seal_body(context, data)` and `open_body(context, body, content_type)`, with
any `SessionContext` (the server's from `environ["smb2auth.context"]`, or a completed NtlmClient);
`post_encrypted` is the client's request and answer. Every parse failure raises MalformedMessage; a
signature that does not verify, AuthenticationError. `winrm_echo_app` is a WSGI endpoint that opens each
request and answers it sealed.
"""

from __future__ import annotations

import http.client
import re
import struct
from collections.abc import Iterable
from typing import Any

from smb2auth.errors import AuthenticationError, MalformedMessage
from smb2auth.http.auth import SessionContext

PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
BOUNDARY = "Encrypted Boundary"
CONTENT_TYPE = f'multipart/encrypted;protocol="{PROTOCOL}";boundary="{BOUNDARY}"'
SOAP = "application/soap+xml;charset=UTF-8"
NTLM_SIGNATURE_SIZE = 16

_DELIMITER = b"--" + BOUNDARY.encode() + b"\r\n"
_CLOSE = b"--" + BOUNDARY.encode() + b"--\r\n"
_OCTETS = b"\tContent-Type: application/octet-stream\r\n"
_U32 = struct.Struct("<I")
_LENGTH = re.compile(rb";\s*Length=(\d+)\s*$", re.IGNORECASE)


def is_encrypted(content_type: str | None) -> bool:
    """Whether a Content-Type names the SPNEGO session encryption (MS-WSMV 2.2.9.1.1)."""
    value = (content_type or "").lower()
    return value.startswith("multipart/encrypted") and f'protocol="{PROTOCOL.lower()}"' in value


def seal_body(context: SessionContext, data: bytes, original_type: str = SOAP) -> bytes:
    """`data` sealed with `context` and framed as one encrypted part."""
    token = context.wrap(data)
    # MS-NLMP 3.4.3: GSS_Wrap's token is the 16-byte signature, then the sealed data
    signature, sealed = token[:NTLM_SIGNATURE_SIZE], token[NTLM_SIGNATURE_SIZE:]
    header = f"\tContent-Type: {PROTOCOL}\r\n\tOriginalContent: type={original_type};Length={len(data)}\r\n"
    return (
        _DELIMITER
        + header.encode()
        + _DELIMITER
        + _OCTETS
        + _U32.pack(len(signature))
        + signature
        + sealed
        + _CLOSE
    )


def open_body(context: SessionContext, body: bytes, content_type: str | None = CONTENT_TYPE) -> bytes:
    """The plaintext of an encrypted body (its parts in order), each part's signature verified and its
    length checked against OriginalContent."""
    if not is_encrypted(content_type):
        raise MalformedMessage(f"not {PROTOCOL}: Content-Type {str(content_type)[:64]!r}")
    if not body.endswith(_CLOSE):
        raise MalformedMessage("encrypted body without its closing boundary", offset=len(body))
    chunks = body[: len(body) - len(_CLOSE)].split(_DELIMITER)
    if chunks[0] != b"" or len(chunks) < 3 or len(chunks) % 2 == 0:
        raise MalformedMessage("encrypted body is not header and data parts in pairs", offset=0)
    plain = b""
    offset = 0
    for header, payload in zip(chunks[1::2], chunks[2::2], strict=True):
        offset += len(_DELIMITER)
        plain += _open_part(context, header, payload, offset)
        offset += len(header) + len(_DELIMITER) + len(payload)
    return plain


def _open_part(context: SessionContext, header: bytes, payload: bytes, offset: int) -> bytes:
    lines = [line.strip() for line in header.split(b"\r\n") if line.strip()]
    kind = next((line for line in lines if line.lower().startswith(b"content-type:")), b"")
    if kind.split(b":", 1)[-1].strip().lower() != PROTOCOL.lower().encode():
        raise MalformedMessage("encrypted part without its protocol Content-Type", offset=offset)
    original = next((line for line in lines if line.lower().startswith(b"originalcontent:")), b"")
    found = _LENGTH.search(original)
    if found is None:
        raise MalformedMessage("encrypted part without OriginalContent Length", offset=offset)
    length = int(found.group(1))
    if not payload.startswith(_OCTETS):
        raise MalformedMessage("encrypted data part is not application/octet-stream", offset=offset)
    data = payload[len(_OCTETS):]
    if len(data) < _U32.size:
        raise MalformedMessage("encrypted data part shorter than its signature length", offset=offset)
    (size,) = _U32.unpack_from(data)
    # MS-WSMV 2.2.9.1.1: the signature length, then the signature, then the sealed message
    if size != NTLM_SIGNATURE_SIZE or len(data) < _U32.size + size:
        raise MalformedMessage(f"signature of {size} bytes in {len(data)}", offset=offset)
    plain = context.unwrap(data[_U32.size:])
    if len(plain) != length:
        raise MalformedMessage(f"OriginalContent says {length} bytes, the part holds {len(plain)}",
                               offset=offset)
    return plain


def post_encrypted(conn: http.client.HTTPConnection, url: str, context: SessionContext, message: bytes
                   ) -> tuple[int, bytes]:
    """A client's request sealed with its completed `context` (an NtlmClient, or a SpnegoClient's `mech`)
    on the connection it authenticated; the status and the opened answer (the body as is when the server
    did not seal it, as for an error)."""
    conn.request("POST", url, body=seal_body(context, message), headers={"Content-Type": CONTENT_TYPE})
    resp = conn.getresponse()
    body = resp.read()
    kind = resp.getheader("Content-Type")
    return resp.status, open_body(context, body, kind) if is_encrypted(kind) else body


StartResponse = Any


def winrm_echo_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """An endpoint behind NtlmAuthMiddleware that requires WinRM encryption: each encrypted request is
    opened and its plaintext answered back sealed; an empty POST (how pywinrm sets the context up) gets an
    empty 200; plaintext is refused (415), and a part that does not verify ends the connection (400)."""
    context: SessionContext | None = environ.get("smb2auth.context")
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    content_type = environ.get("CONTENT_TYPE")

    def answer(status: str, payload: bytes = b"", kind: str = "text/plain") -> list[bytes]:
        start_response(status, [("Content-Type", kind), ("Content-Length", str(len(payload)))])
        return [payload]

    if context is None:
        return answer("403 Forbidden", b"message encryption needs an NTLM or Negotiate login\n")
    if not body:
        return answer("200 OK")
    if not is_encrypted(content_type):
        return answer("415 Unsupported Media Type", b"this endpoint requires message encryption\n")
    try:
        plain = open_body(context, body, content_type)
    except (MalformedMessage, AuthenticationError) as exc:
        # the sealing state is one stream per direction: after a bad part it cannot go on
        closer = environ.get("smb2auth.close_connection")
        if callable(closer):
            closer()
        return answer("400 Bad Request", f"{exc}\n".encode())
    return answer("200 OK", seal_body(context, plain), CONTENT_TYPE)
