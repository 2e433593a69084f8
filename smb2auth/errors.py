"""The package's exception types. Every parser raises only `MalformedMessage`."""

from __future__ import annotations

from smb2auth.status import NtStatus


class Smb2AuthError(Exception):
    """Base of every error smb2auth raises on purpose."""


class MalformedMessage(Smb2AuthError, ValueError):
    """Bytes from a peer that do not parse.

    `status` is the NTSTATUS a server answers with (usually STATUS_INVALID_PARAMETER);
    `offset` is where in the input the problem was found, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        offset: int | None = None,
        status: NtStatus = NtStatus.STATUS_INVALID_PARAMETER,
    ) -> None:
        self.reason = message
        self.offset = offset
        self.status = status
        where = f" at offset {offset}" if offset is not None else ""
        super().__init__(f"{message}{where}")


class ProtocolStateError(Smb2AuthError):
    """A message that is valid but arrived in a state that does not accept it."""

    def __init__(self, message: str, *, status: NtStatus = NtStatus.STATUS_INVALID_PARAMETER) -> None:
        self.status = status
        self.reason = message
        super().__init__(message)


class AuthenticationError(Smb2AuthError):
    """An authentication that failed; `status` is what goes on the wire, `reason` what the log says, and
    `cause` the authority's own status when the wire hides it (STATUS_WRONG_PASSWORD behind
    STATUS_LOGON_FAILURE, as smbd squashes it)."""

    def __init__(self, status: NtStatus, reason: str, *, cause: NtStatus | None = None) -> None:
        self.status = status
        self.reason = reason
        self.cause = cause
        super().__init__(f"{status.name}: {reason}")
