"""smb2auth.client: SMB2 session setup as a client, synchronous (`connect`) and asyncio (`aconnect`), over
the sans-IO core in `smb2auth.client.protocol`."""

from smb2auth.client.aio import AsyncSession, aconnect
from smb2auth.client.protocol import (
    ALL_DIALECTS,
    DIALECT_NAMES,
    ClientConnection,
    NegotiateDowngradeError,
    Response,
    SigningError,
    Smb2ClientError,
    TreeConnect,
    parse_dialect,
)
from smb2auth.client.sync import Session, connect
from smb2auth.smb2.negotiate import Dialect
from smb2auth.smb2.negotiate_contexts import Cipher, SigningAlgorithm
from smb2auth.smb2.session import SessionFlags

__all__ = [
    "ALL_DIALECTS",
    "DIALECT_NAMES",
    "AsyncSession",
    "Cipher",
    "ClientConnection",
    "Dialect",
    "NegotiateDowngradeError",
    "Response",
    "Session",
    "SessionFlags",
    "SigningAlgorithm",
    "SigningError",
    "Smb2ClientError",
    "TreeConnect",
    "aconnect",
    "connect",
    "parse_dialect",
]
