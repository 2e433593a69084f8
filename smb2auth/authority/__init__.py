"""The authority port (MS-APDS's role) and its adapters."""

from smb2auth.authority.base import (
    Account,
    AnyAuthority,
    AsyncAuthority,
    Authority,
    ResponseKind,
    ValidationRequest,
    ValidationResult,
    resolve,
    validate_sync,
)
from smb2auth.authority.local import LocalAuthority

__all__ = [
    "Account",
    "AnyAuthority",
    "AsyncAuthority",
    "LocalAuthority",
    "Authority",
    "ResponseKind",
    "ValidationRequest",
    "ValidationResult",
    "resolve",
    "validate_sync",
]
