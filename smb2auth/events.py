"""Login events: one per authentication attempt, from the SMB2 server and the HTTP binding alike.

Each event is logged with stdlib logging (logger "smb2auth.login") and handed to the callbacks a server
was given, so tests can assert on who logged in and why one failed. Events carry names, never secrets.
"""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

LOGIN_LOG = logging.getLogger("smb2auth.login")


@functools.lru_cache(maxsize=32)
def _single_bits(flags_type: type[enum.IntFlag]) -> tuple[tuple[int, str], ...]:
    seen: dict[int, str] = {}
    for name, member in flags_type.__members__.items():
        bit = int(member)
        if bit and bit & (bit - 1) == 0:
            seen.setdefault(bit, name)  # the first name of a bit is its canonical one
    return tuple(seen.items())


@functools.lru_cache(maxsize=256)
def flag_names(flags_type: type[enum.IntFlag], value: int) -> tuple[str, ...]:
    """The names of the single-bit members of `flags_type` set in `value` (3.10 and 3.11 alike); remembered,
    as one kind of client sends the same flags on every login."""
    return tuple(name for bit, name in _single_bits(flags_type) if value & bit)


@dataclass(frozen=True)
class LoginEvent:
    """One authentication attempt and its outcome. `signed`: the session it made requires every later request
    signed (MS-SMB2 3.3.5.5.3 Session.SigningRequired, with a signing key), or encrypted. `sid` and
    `groups`: the account's, as the authority gave them."""

    transport: str
    client_address: str
    user: str
    domain: str
    workstation: str
    status: str
    reason: str = ""
    dialect: str | None = None
    response_kind: str | None = None
    ntlm_flags: tuple[str, ...] = ()
    session_flags: tuple[str, ...] = ()
    session_id: int | None = None
    guest: bool = False
    anonymous: bool = False
    signed: bool = False
    sid: str | None = None  # the authority's account: a Netlogon DC names the user's SID and group SIDs
    groups: tuple[str, ...] = ()  # the account's groups, as the authority answered them
    worker: int | None = None  # the pid of the worker process that served it (server.workers), else None
    # A hostile harness's verdict (server/hostile.py): the scenario, whether the client refused it (None: the
    # scenario did not apply), and what the client did.
    hostile: str | None = None
    refused: bool | None = None
    observed: str = ""
    time: float = field(kw_only=True)  # when it happened: the transport's clock, never read here

    @property
    def success(self) -> bool:
        return self.status == "STATUS_SUCCESS"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["success"] = self.success
        return data

    def describe(self) -> str:
        who = f"{self.domain}\\{self.user}" if self.domain else (self.user or "<anonymous>")
        parts = [f"{self.transport} login {'ok' if self.success else 'FAILED'}", f"user={who}",
                 f"from={self.client_address}", f"status={self.status}"]
        if self.workstation:
            parts.append(f"workstation={self.workstation}")
        if self.dialect:
            parts.append(f"dialect={self.dialect}")
        if self.response_kind:
            parts.append(f"ntlm={self.response_kind}")
        if self.session_flags:
            parts.append(f"session_flags={'|'.join(self.session_flags)}")
        if self.signed:
            parts.append("signed")
        if self.groups:
            parts.append(f"groups={','.join(self.groups)}")
        if self.worker is not None:
            parts.append(f"worker={self.worker}")
        if self.reason:
            parts.append(f"reason={self.reason!r}")
        if self.hostile:
            verdict = {True: "refused", False: "carried-on", None: "not-applied"}[self.refused]
            parts += [f"hostile={self.hostile}", verdict, f"observed={self.observed!r}"]
        return " ".join(parts)


EventCallback = Callable[[LoginEvent], None]


class EventLog:
    """Collects events and fans them out to callbacks; the server's one place for login events."""

    def __init__(self, callbacks: list[EventCallback] | None = None, *, keep: int = 10_000) -> None:
        self.callbacks: list[EventCallback] = list(callbacks or [])
        self.events: list[LoginEvent] = []
        self._keep = keep

    def emit(self, event: LoginEvent) -> None:
        LOGIN_LOG.log(logging.INFO if event.success else logging.WARNING, "%s", event.describe())
        self.events.append(event)
        if len(self.events) > self._keep:
            del self.events[: len(self.events) - self._keep]
        for callback in self.callbacks:
            try:
                callback(event)
            except Exception:  # a broken observer must not break a login
                LOGIN_LOG.exception("login event callback failed")

    def successes(self) -> list[LoginEvent]:
        return [e for e in self.events if e.success]

    def failures(self) -> list[LoginEvent]:
        return [e for e in self.events if not e.success]
