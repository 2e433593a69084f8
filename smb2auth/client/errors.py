"""What the SMB2 client raises: a request the server refused, or a response the client refuses."""

from __future__ import annotations

from smb2auth.errors import Smb2AuthError
from smb2auth.smb2.header import Command
from smb2auth.status import NtStatus

__all__ = ["NegotiateDowngradeError", "SigningError", "Smb2ClientError"]


class Smb2ClientError(Smb2AuthError):
    """A request the server refused, or a response we refuse; `status` is the NTSTATUS."""

    def __init__(self, status: int, reason: str, *, command: Command | None = None) -> None:
        self.status = NtStatus(status) if status in NtStatus._value2member_map_ else status
        self.command = command
        self.reason = reason
        super().__init__(f"{NtStatus.name_of(status)}: {reason}")


class SigningError(Smb2ClientError):
    """A response that is unsigned where a signature is required, or whose signature does not verify."""

    def __init__(self, reason: str, *, command: Command | None = None) -> None:
        super().__init__(NtStatus.STATUS_ACCESS_DENIED, reason, command=command)


class NegotiateDowngradeError(SigningError):
    """FSCTL_VALIDATE_NEGOTIATE_INFO failed (MS-SMB2 3.2.5.14.12): the NEGOTIATE may have been tampered with,
    so the connection is terminated."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"negotiate downgrade: {reason}", command=Command.IOCTL)
