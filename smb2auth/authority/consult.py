"""Calling an authority from a transport: the one place its answer is awaited and its failures turned
into a `ValidationResult`, so a broken authority is a failed logon (STATUS_NO_LOGON_SERVERS, as smbd answers
when no domain controller can be reached), never a traceback in the server."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable

from smb2auth.ntlm.authority import AnyAuthority, AsyncAuthority, ValidationRequest, ValidationResult
from smb2auth.status import NtStatus

log = logging.getLogger("smb2auth.authority")


def authority_failed(exc: BaseException) -> ValidationResult:
    """The result a transport hands back when the authority raised (the reason names the exception)."""
    log.error("authority failed: %r", exc)
    return ValidationResult.failure(NtStatus.STATUS_NO_LOGON_SERVERS, f"authority error: {exc!r}")


async def consult(authority: AnyAuthority, request: ValidationRequest) -> ValidationResult:
    """Await either kind of authority; an exception becomes STATUS_NO_LOGON_SERVERS."""
    try:
        answer: ValidationResult | Awaitable[ValidationResult] = authority.validate(request)
        if inspect.isawaitable(answer):
            return await answer
        return answer
    except Exception as exc:
        return authority_failed(exc)


def consult_sync(authority: AnyAuthority, request: ValidationRequest) -> ValidationResult:
    """Run a synchronous authority; an exception becomes STATUS_NO_LOGON_SERVERS. An AsyncAuthority is a
    TypeError: it needs a transport that awaits (`consult`)."""
    if isinstance(authority, AsyncAuthority):
        raise TypeError("an AsyncAuthority must be awaited: use smb2auth.authority.consult")
    try:
        return authority.validate(request)
    except Exception as exc:
        return authority_failed(exc)
