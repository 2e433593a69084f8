"""Authorization / Proxy-Authorization parsing and WWW-Authenticate / Proxy-Authenticate building.

RFC 9110 11.6: a credential is `auth-scheme [ 1*SP ( token68 / #auth-param ) ]`. NTLM and Negotiate
(RFC 4559 4.1) carry one base64 token68; Basic (RFC 7617) carries base64 of `user:password`.
Every parse failure raises `MalformedMessage`.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
import struct
from dataclasses import dataclass, field

from smb2auth.errors import MalformedMessage

MAX_HEADER_LENGTH = 64 * 1024
NTLMSSP_SIGNATURE = b"NTLMSSP\x00"
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_SCHEME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_MESSAGE_TYPE = struct.Struct("<I")


class UnsupportedScheme(MalformedMessage):
    """A well-formed credential in a scheme we do not take: answered with a fresh challenge, not 400."""


class AuthScheme(enum.Enum):
    NEGOTIATE = "Negotiate"
    NTLM = "NTLM"
    BASIC = "Basic"


class TokenKind(enum.Enum):
    """What a Negotiate/NTLM token carries: raw NTLM messages or a SPNEGO token."""

    NTLM_NEGOTIATE = "NTLM NEGOTIATE"
    NTLM_OTHER = "NTLM"
    SPNEGO_INIT = "SPNEGO init"
    SPNEGO_RESPONSE = "SPNEGO response"

    @property
    def is_initial(self) -> bool:
        return self in (TokenKind.NTLM_NEGOTIATE, TokenKind.SPNEGO_INIT)

    @property
    def is_spnego(self) -> bool:
        return self in (TokenKind.SPNEGO_INIT, TokenKind.SPNEGO_RESPONSE)


# RFC 9110 11.1: auth-scheme is case-insensitive
_SCHEMES = {s.value.lower(): s for s in AuthScheme}


@dataclass(frozen=True)
class Credentials:
    """One parsed Authorization value. `token` for NTLM/Negotiate; `username`/`password` for Basic."""

    scheme: AuthScheme
    token: bytes = field(default=b"", repr=False)
    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def kind(self) -> TokenKind:
        return classify_token(self.token)


def classify_token(token: bytes) -> TokenKind:
    """Raw NTLM is recognised by its signature (MS-NLMP 2.2.1); anything else must be SPNEGO."""
    if token.startswith(NTLMSSP_SIGNATURE):
        if len(token) < 12:
            raise MalformedMessage("NTLM message shorter than its header", offset=len(token))
        # MS-NLMP 2.2.1.1: MessageType 1 is NEGOTIATE_MESSAGE, the start of a handshake
        (message_type,) = _MESSAGE_TYPE.unpack_from(token, 8)
        return TokenKind.NTLM_NEGOTIATE if message_type == 1 else TokenKind.NTLM_OTHER
    # RFC 4178 4.2 / RFC 2743 3.1: the initial token is [APPLICATION 0]; later ones are NegotiationToken [1]
    if token[:1] == b"\x60":
        return TokenKind.SPNEGO_INIT
    if token[:1] in (b"\xa1", b"\xa0"):
        return TokenKind.SPNEGO_RESPONSE
    raise MalformedMessage("token is neither NTLMSSP nor SPNEGO", offset=0)


def _b64decode(text: str) -> bytes:
    if not _TOKEN68.fullmatch(text):
        raise MalformedMessage("credential is not a token68")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedMessage(f"bad base64: {exc}") from None


def parse_authorization(value: str) -> Credentials:
    """Parse an Authorization or Proxy-Authorization value into `Credentials`."""
    if len(value) > MAX_HEADER_LENGTH:
        raise MalformedMessage("authorization header too long", offset=MAX_HEADER_LENGTH)
    text = value.strip(" \t")
    scheme_text, _, rest = text.partition(" ")
    rest = rest.strip(" \t")
    scheme = _SCHEMES.get(scheme_text.lower())
    if scheme is None:
        if not _SCHEME.fullmatch(scheme_text):
            raise MalformedMessage("bad auth-scheme")
        raise UnsupportedScheme(f"unsupported auth-scheme {scheme_text[:32]!r}")
    if not rest:
        raise MalformedMessage(f"{scheme.value} credential without a token")
    data = _b64decode(rest)
    if scheme is AuthScheme.BASIC:
        # RFC 7617 2: user-id and password separated by the first colon, UTF-8 (2.1) with Latin-1 fallback
        try:
            decoded = data.decode("utf-8")
        except UnicodeDecodeError:
            decoded = data.decode("latin-1")
        user, sep, password = decoded.partition(":")
        if not sep:
            raise MalformedMessage("Basic credential without a colon")
        return Credentials(scheme, username=user, password=password)
    if not data:
        raise MalformedMessage(f"{scheme.value} credential with an empty token")
    classify_token(data)
    return Credentials(scheme, token=data)


def challenge_value(scheme: AuthScheme, token: bytes | None = None, *, realm: str = "smb2auth") -> str:
    """One WWW-Authenticate / Proxy-Authenticate value: a bare offer, a token, or a Basic realm."""
    if scheme is AuthScheme.BASIC:
        escaped = realm.replace("\\", "\\\\").replace('"', '\\"')
        return f'Basic realm="{escaped}", charset="UTF-8"'
    if token:
        return f"{scheme.value} {base64.b64encode(token).decode('ascii')}"
    return str(scheme.value)


def authorization_value(scheme: AuthScheme, token: bytes) -> str:
    return f"{scheme.value} {base64.b64encode(token).decode('ascii')}"


def find_challenge(values: list[str], scheme: AuthScheme) -> bytes | None:
    """The token the peer sent for `scheme` among (WWW|Proxy)-Authenticate values; b"" for a bare offer,
    None when `scheme` is not offered at all. Each value may list several comma-separated challenges."""
    found: bytes | None = None
    for value in values:
        for part in value.split(","):
            part = part.strip()
            name, _, rest = part.partition(" ")
            if name.lower() != scheme.value.lower():
                continue
            rest = rest.strip()
            if not rest:
                found = b"" if found is None else found
                continue
            return _b64decode(rest)
    return found
