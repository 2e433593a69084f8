"""One SMB2 message's body, chosen by command, SERVER_TO_REDIR and status (MS-SMB2 2.2); whole messages."""

from __future__ import annotations

from smb2auth.smb2._body import bad
from smb2auth.smb2.header import (
    SMB1_PROTOCOL_ID,
    SMB2_PROTOCOL_ID,
    TRANSFORM_PROTOCOL_ID,
    Command,
    Smb1Header,
    Smb2Header,
    split_compound,
)
from smb2auth.smb2.ioctl import IoctlRequest, IoctlResponse
from smb2auth.smb2.negotiate import NegotiateRequest, NegotiateResponse, Smb1NegotiateRequest
from smb2auth.smb2.session import LogoffRequest, LogoffResponse, SessionSetupRequest, SessionSetupResponse
from smb2auth.smb2.simple import EchoRequest, EchoResponse, ErrorResponse, RawBody
from smb2auth.smb2.tree import (
    TreeConnectRequest,
    TreeConnectResponse,
    TreeDisconnectRequest,
    TreeDisconnectResponse,
)
from smb2auth.status import NtStatus

Message = (
    NegotiateRequest
    | NegotiateResponse
    | Smb1NegotiateRequest
    | SessionSetupRequest
    | SessionSetupResponse
    | LogoffRequest
    | LogoffResponse
    | TreeConnectRequest
    | TreeConnectResponse
    | TreeDisconnectRequest
    | TreeDisconnectResponse
    | EchoRequest
    | EchoResponse
    | IoctlRequest
    | IoctlResponse
    | ErrorResponse
    | RawBody
)

_REQUESTS: dict[Command, type[Message]] = {
    Command.NEGOTIATE: NegotiateRequest,
    Command.SESSION_SETUP: SessionSetupRequest,
    Command.LOGOFF: LogoffRequest,
    Command.TREE_CONNECT: TreeConnectRequest,
    Command.TREE_DISCONNECT: TreeDisconnectRequest,
    Command.ECHO: EchoRequest,
    Command.IOCTL: IoctlRequest,
}
_RESPONSES: dict[Command, type[Message]] = {
    Command.NEGOTIATE: NegotiateResponse,
    Command.SESSION_SETUP: SessionSetupResponse,
    Command.LOGOFF: LogoffResponse,
    Command.TREE_CONNECT: TreeConnectResponse,
    Command.TREE_DISCONNECT: TreeDisconnectResponse,
    Command.ECHO: EchoResponse,
    Command.IOCTL: IoctlResponse,
}


def _is_error(header: Smb2Header) -> bool:
    """MS-SMB2 3.2.5.1.x: a response whose status has error severity carries an ERROR body, except
    STATUS_MORE_PROCESSING_REQUIRED on SESSION_SETUP (MS-SMB2 3.3.4.4)."""
    if header.command == Command.SESSION_SETUP and header.status == NtStatus.STATUS_MORE_PROCESSING_REQUIRED:
        return False
    return header.status >> 30 == 3


def parse_body(header: Smb2Header, body: bytes) -> Message:
    """The body of one SMB2 message, chosen by command, SERVER_TO_REDIR and status."""
    if header.is_response:
        if _is_error(header):
            return ErrorResponse.unpack(body)
        cls = _RESPONSES.get(header.command, RawBody)
    else:
        cls = _REQUESTS.get(header.command, RawBody)
    return cls.unpack(body)


def parse_message(data: bytes) -> tuple[Smb2Header | Smb1Header, Message]:
    """Parse one SMB message (the first of a compound): its header and its body dataclass.

    An SMB1 NEGOTIATE gives (Smb1Header, Smb1NegotiateRequest). An encrypted message (transform header) must
    be decrypted first.
    """
    if data[:4] == SMB1_PROTOCOL_ID:
        request = Smb1NegotiateRequest.unpack(data)
        return request.header, request
    if data[:4] == TRANSFORM_PROTOCOL_ID:
        raise bad("encrypted message (SMB2 TRANSFORM_HEADER): decrypt it first", 0)
    if data[:4] != SMB2_PROTOCOL_ID:
        raise bad("not an SMB message (unknown ProtocolId)", 0)
    part = split_compound(data)[0]
    return part.header, parse_body(part.header, part.body)


def pack_message(header: Smb2Header | Smb1Header, body: Message) -> bytes:
    """Header and body as one message, as parse_message gives them."""
    if isinstance(body, Smb1NegotiateRequest):
        return body.pack()
    return header.pack() + body.pack()
