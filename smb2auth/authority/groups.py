"""Allow by group: an authority in front of another that lets through only accounts holding one of the
given SIDs (the user's own or a group's), as Windows refuses a user without the network logon right."""

from __future__ import annotations

from collections.abc import Iterable

from smb2auth.authority.consult import consult, consult_sync
from smb2auth.ntlm.authority import (
    AnyAuthority,
    AsyncAuthority,
    Authority,
    ValidationRequest,
    ValidationResult,
)
from smb2auth.status import NtStatus


def _admit(result: ValidationResult, allowed: frozenset[str]) -> ValidationResult:
    if not result.ok or result.account is None:
        return result
    held = {result.account.sid, *result.account.groups} - {None}
    if held & allowed:
        return result
    # MS-ERREF 2.3.1: the logon type (network) is not granted to this account: Windows' answer to a user
    # outside the groups allowed to log on over the network
    return ValidationResult.failure(
        NtStatus.STATUS_LOGON_TYPE_NOT_GRANTED,
        f"{result.account.domain}\\{result.account.username} is in none of the groups allowed",
    )


class RequireGroup(Authority):
    def __init__(self, inner: Authority, sids: Iterable[str]) -> None:
        self.inner = inner
        self.allowed = frozenset(sids)

    def validate(self, request: ValidationRequest) -> ValidationResult:
        return _admit(consult_sync(self.inner, request), self.allowed)


class RequireGroupAsync(AsyncAuthority):
    def __init__(self, inner: AnyAuthority, sids: Iterable[str]) -> None:
        self.inner = inner
        self.allowed = frozenset(sids)

    async def validate(self, request: ValidationRequest) -> ValidationResult:
        return _admit(await consult(self.inner, request), self.allowed)


def require_group(inner: AnyAuthority, sids: Iterable[str]) -> AnyAuthority:
    """`inner`, admitting only accounts that hold one of `sids`; of the same kind (sync or async)."""
    if isinstance(inner, AsyncAuthority):
        return RequireGroupAsync(inner, sids)
    return RequireGroup(inner, sids)
