"""Ways to make the client core misbehave on purpose, for conformance tests (`smb2auth.conformance`).

`ClientConnection(hooks=Hooks(...))` sends what a hook says instead of what the spec says; without hooks (the
default) none of this is consulted. A request the core should not interpret at all goes through
`ClientConnection.raw_request`, built by `raw_message` and answered through `raw_answer`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from smb2auth.client._channel import Channel
from smb2auth.client.errors import SigningError
from smb2auth.errors import MalformedMessage
from smb2auth.smb2.body import Message, parse_body
from smb2auth.smb2.header import Smb2Header
from smb2auth.smb2.negotiate import NegotiateRequest
from smb2auth.smb2.session import SessionSetupRequest
from smb2auth.smb2.simple import RawBody
from smb2auth.spnego.context import SpnegoClient
from smb2auth.status import NtStatus

__all__ = ["Hooks", "raw_answer", "raw_message"]

# Samba's smb2cli_conn_dispatch_incoming: these may be answered before the server looks at the signature (the
# session is gone, or the request was refused first), so their SIGNED flag may carry no valid signature.
_ANSWERED_BEFORE_SIGNING = frozenset(
    {
        NtStatus.STATUS_USER_SESSION_DELETED,
        NtStatus.STATUS_NETWORK_NAME_DELETED,
        NtStatus.STATUS_INVALID_PARAMETER,
    }
)


@dataclass(frozen=True)
class Hooks:
    """What to send instead.

    `negotiate`: the NEGOTIATE body to send, given the one the offer makes (the 3.1.1 preauth chain
    covers what is sent). `session_setup`: each SESSION_SETUP request, given its leg (0 for the first) and
    the request the core built. `spnego`: the SPNEGO context to authenticate with (around its own
    mechanism) instead of the default one. `first_message_id`: the MessageId of the NEGOTIATE (1 after an
    SMB1 multi-protocol NEGOTIATE answered with the 0x02FF wildcard, MS-SMB2 3.2.5.2).
    """

    negotiate: Callable[[NegotiateRequest], bytes] | None = None
    session_setup: Callable[[int, SessionSetupRequest], SessionSetupRequest] | None = None
    spnego: SpnegoClient | None = None
    first_message_id: int = 0
    hold_session_setup: bool = False


def raw_message(
    channel: Channel,
    message: bytes,
    session_id: int,
    encrypt: bool,
    sign: bool,
    edit: Callable[[bytes], bytes] | None,
) -> bytes:
    """`message` (a header from Channel.header and a body) on `session_id`, sealed or signed with the
    session's keys as asked, then `edit`ed."""
    message = message[:40] + session_id.to_bytes(8, "little") + message[48:]
    if encrypt:
        message = channel.seal(message)
    elif sign:
        message = channel.sign(message)
    return edit(message) if edit is not None else message


def raw_answer(
    channel: Channel, header: Smb2Header, raw: bytes, body: bytes, encrypted: bool
) -> tuple[Message, bool]:
    """The parsed body of a response to a raw request, and whether it carried a signature that verified
    with the session's key (SigningError for one that does not; another session's is not checked)."""
    signed = False
    ours = header.session_id == channel.session_id and channel.keys is not None
    if header.is_signed and ours and not encrypted:
        if not channel.verify(raw):
            if header.status in _ANSWERED_BEFORE_SIGNING:
                return _parsed(header, body), False
            name = header.command.name
            raise SigningError(f"{name} response signature does not verify", command=header.command)
        signed = True
    return _parsed(header, body), signed


def _parsed(header: Smb2Header, body: bytes) -> Message:
    try:
        return parse_body(header, body)
    except MalformedMessage:
        return RawBody(0, body)
