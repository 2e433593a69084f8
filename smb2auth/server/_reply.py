"""One response message before packing, and the one way a handler drops the connection: what every
request handler of the server returns (MS-SMB2 3.3.4.1)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from smb2auth.smb2.simple import ErrorResponse
from smb2auth.status import NtStatus


class Signer(Protocol):
    """What signs a response: a session's signing key and algorithm (MS-SMB2 3.3.4.1.1)."""

    signing_key: bytes
    signing_algorithm: int


@dataclass(slots=True)
class Reply:
    """One response message of a (possibly compound) response, before packing."""

    command: int
    message_id: int
    session_id: int
    tree_id: int
    credit_request: int
    credit_charge: int
    related: bool
    credit: int = 0  # the CreditResponse, granted when the frame's responses are packed
    async_request: bool = False  # the request was flagged SMB2_FLAGS_ASYNC_COMMAND
    status: int = NtStatus.STATUS_SUCCESS
    body: bytes = b""
    signer: Signer | None = None
    after: Callable[[bytes], None] | None = None
    grant: int | None = None  # a CreditResponse forced by a hostile scenario (server/hostile.py)

    def fail(self, status: int) -> Reply:
        self.status = status
        self.body = ErrorResponse().pack()
        self.after = None
        return self


class Disconnect(Exception):
    """The connection must be dropped without an answer."""
