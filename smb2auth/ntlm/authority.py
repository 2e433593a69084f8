"""The authority port: what the NTLM server asks of Netlogon (MS-APDS 3.1.5.1).

The NTLM server never sees a password or a hash. It hands a `ValidationRequest` (who, the server
challenge, the responses exactly as received) to an `Authority` and gets back a `ValidationResult`:
the account and the user session key (SessionBaseKey, MS-NLMP 3.3), or an NTSTATUS.

An authority is either synchronous (`validate` returns the result) or asynchronous (`validate` is a
coroutine function). The sans-IO NTLM server never calls it: it returns a `ValidationNeeded` event and
takes the answer back (`validation_done`); the transport in between calls the authority
(`smb2auth.authority.consult` awaits either kind, `consult_sync` runs a synchronous one).
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field

from smb2auth._frozen import quick_init
from smb2auth.status import NtStatus


class ResponseKind(enum.Enum):
    """Which response the client sent (MS-NLMP 3.3.1 / 3.3.2), decided by the NTLM server."""

    ANONYMOUS = "anonymous"
    LM = "LM"
    NTLMV1 = "NTLMv1"
    NTLMV1_ESS = "NTLMv1 with client challenge"
    NTLMV2 = "NTLMv2"


@quick_init
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


@quick_init
@dataclass(frozen=True)
class Account:
    """The account a logon resolved to."""

    username: str
    domain: str
    sid: str | None = None
    groups: tuple[str, ...] = ()
    guest: bool = False


@quick_init
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


def validate_sync(authority: AnyAuthority, request: ValidationRequest) -> ValidationResult:
    """Run a synchronous authority; an asynchronous one must be awaited by the transport."""
    if isinstance(authority, AsyncAuthority):
        raise TypeError("an AsyncAuthority must be awaited: the transport uses smb2auth.authority.consult")
    return authority.validate(request)
