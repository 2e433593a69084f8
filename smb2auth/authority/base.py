"""The authority port: what the NTLM server asks of Netlogon (MS-APDS 3.1.5.1).

The NTLM server never sees a password or a hash. It hands a `ValidationRequest` (who, the server
challenge, the responses exactly as received) to an `Authority` and gets back a `ValidationResult`:
the account and the user session key (SessionBaseKey, MS-NLMP 3.3), or an NTSTATUS.

An authority is either synchronous (`validate` returns the result) or asynchronous (`validate` is a
coroutine function). `resolve()` runs either kind from async code; the sans-IO NTLM server exposes
its last step in two halves so that an await can sit between them.
"""

from __future__ import annotations

import abc
import enum
import inspect
from collections.abc import Awaitable
from dataclasses import dataclass, field

from smb2auth.status import NtStatus


class ResponseKind(enum.Enum):
    """Which response the client sent (MS-NLMP 3.3.1 / 3.3.2), decided by the NTLM server."""

    ANONYMOUS = "anonymous"
    LM = "LM"
    NTLMV1 = "NTLMv1"
    NTLMV1_ESS = "NTLMv1 with client challenge"
    NTLMV2 = "NTLMv2"


@dataclass(frozen=True)
class ValidationRequest:
    """The Netlogon network-logon inputs (MS-APDS 3.1.5.1.1). Responses are the bytes as received."""

    username: str
    domain: str
    workstation: str
    server_challenge: bytes
    lm_response: bytes = field(repr=False)
    nt_response: bytes = field(repr=False)
    flags: int
    kind: ResponseKind


@dataclass(frozen=True)
class Account:
    """The account a logon resolved to."""

    username: str
    domain: str
    sid: str | None = None
    groups: tuple[str, ...] = ()
    guest: bool = False


@dataclass(frozen=True)
class ValidationResult:
    """The authority's answer: `account` and `session_base_key` on success, otherwise `status`."""

    status: NtStatus
    account: Account | None = None
    session_base_key: bytes | None = field(default=None, repr=False)
    reason: str = ""

    @classmethod
    def success(cls, account: Account, session_base_key: bytes) -> ValidationResult:
        return cls(NtStatus.STATUS_SUCCESS, account, session_base_key)

    @classmethod
    def failure(cls, status: NtStatus, reason: str) -> ValidationResult:
        return cls(status, None, None, reason)

    @property
    def ok(self) -> bool:
        return self.status == NtStatus.STATUS_SUCCESS


class Authority(abc.ABC):
    """A synchronous authority. Subclass and implement `validate`."""

    @abc.abstractmethod
    def validate(self, request: ValidationRequest) -> ValidationResult: ...


class AsyncAuthority(abc.ABC):
    """An authority that does I/O (a remote Netlogon, a database). `validate` is awaited."""

    @abc.abstractmethod
    async def validate(self, request: ValidationRequest) -> ValidationResult: ...


AnyAuthority = Authority | AsyncAuthority


async def resolve(authority: AnyAuthority, request: ValidationRequest) -> ValidationResult:
    """Run either kind of authority from async code."""
    answer: ValidationResult | Awaitable[ValidationResult] = authority.validate(request)
    if inspect.isawaitable(answer):
        return await answer
    return answer


def validate_sync(authority: AnyAuthority, request: ValidationRequest) -> ValidationResult:
    """Run a synchronous authority; an asynchronous one needs `resolve` from a running loop."""
    if isinstance(authority, AsyncAuthority):
        raise TypeError("an AsyncAuthority must be awaited: use the two-step NTLM server API")
    return authority.validate(request)
