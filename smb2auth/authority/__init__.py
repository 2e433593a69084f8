"""The authority adapters (local accounts, smbpasswd files) and the port they implement, which the NTLM
server owns (smb2auth.ntlm.authority) and re-exported here."""

from smb2auth.authority.consult import consult, consult_sync
from smb2auth.authority.local import LocalAuthority
from smb2auth.ntlm.authority import (
    Account,
    AnyAuthority,
    AsyncAuthority,
    Authority,
    ResponseKind,
    ValidationRequest,
    ValidationResult,
    validate_sync,
)

__all__ = [
    "Account",
    "AnyAuthority",
    "AsyncAuthority",
    "LocalAuthority",
    "Authority",
    "ResponseKind",
    "ValidationRequest",
    "ValidationResult",
    "consult",
    "consult_sync",
    "validate_sync",
]
