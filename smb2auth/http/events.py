"""Login events: one per authentication attempt over HTTP, logged and handed to a callback.

Events carry who tried and how it ended, never a password, hash, token or key.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("smb2auth.http")


class Outcome(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    MALFORMED = "malformed"


@dataclass(frozen=True)
class LoginEvent:
    """One authentication attempt. `status` is the NTSTATUS name; `reason` explains a failure."""

    client: str
    user: str
    domain: str
    workstation: str
    scheme: str
    response_kind: str
    flags: int
    outcome: Outcome
    status: str
    reason: str = ""
    transport: str = "http"
    guest: bool = False
    anonymous: bool = False


LoginCallback = Callable[[LoginEvent], None]


def emit(event: LoginEvent, callback: LoginCallback | None) -> None:
    """Log `event` (INFO on success, WARNING otherwise) and hand it to `callback`; a failing callback is
    logged, never propagated into the protocol path."""
    level = logging.INFO if event.outcome is Outcome.SUCCESS else logging.WARNING
    log.log(
        level,
        "login %s: client=%s user=%r domain=%r workstation=%r transport=%s scheme=%s kind=%s "
        "flags=0x%08x status=%s%s",
        event.outcome.value, event.client, event.user, event.domain, event.workstation,
        event.transport, event.scheme, event.response_kind, event.flags, event.status,
        f" reason={event.reason}" if event.reason else "",
    )
    if callback is not None:
        try:
            callback(event)
        except Exception:
            log.exception("login event callback failed")
