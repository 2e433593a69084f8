"""smb2auth: SMB2 session authentication (NTLM, SPNEGO, SMB2) as Windows and Samba do it."""

from smb2auth.errors import AuthenticationError, MalformedMessage, ProtocolStateError, Smb2AuthError
from smb2auth.status import NtStatus

__version__ = "0.1.0"
__all__ = [
    "AuthenticationError",
    "MalformedMessage",
    "NtStatus",
    "ProtocolStateError",
    "Smb2AuthError",
    "__version__",
]
