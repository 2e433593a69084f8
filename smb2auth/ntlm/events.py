"""What a sans-IO acceptor returns for each token (h11's `next_event()` style): it never calls the
authority itself, it asks for the answer and is handed it back (`validation_done(ticket, result)`)."""

from __future__ import annotations

from dataclasses import dataclass

from smb2auth.errors import AuthenticationError, MalformedMessage, ProtocolStateError
from smb2auth.ntlm.authority import ValidationRequest
from smb2auth.status import NtStatus

HandshakeError = AuthenticationError | MalformedMessage | ProtocolStateError


@dataclass(frozen=True, slots=True)
class Send:
    """A token for the peer; the handshake goes on."""

    token: bytes


@dataclass(frozen=True, slots=True)
class ValidationNeeded:
    """The authority must answer `request`; hand its result back with `validation_done(ticket, result)`."""

    ticket: int
    request: ValidationRequest


@dataclass(frozen=True, slots=True)
class Complete:
    """The handshake succeeded; `token` is the last one for the peer (SPNEGO's accept-completed), if any."""

    token: bytes | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """The handshake failed. `error` is what `step()` raises; its status goes on the wire."""

    error: HandshakeError

    @property
    def status(self) -> NtStatus:
        return self.error.status

    @property
    def reason(self) -> str:
        return self.error.reason


HandshakeEvent = Send | ValidationNeeded | Complete | Failed
