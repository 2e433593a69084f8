"""Login events over HTTP: the package's `LoginEvent` (smb2auth.events) with transport "http".

One event per authentication attempt (success, refused login, malformed token or header, continuation
token without a handshake), never for a bare request that merely gets the challenge offer. The HTTP
scheme (NTLM, Negotiate, Basic) goes in `dialect`. Events carry names, never passwords, tokens or keys.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from smb2auth.events import LOGIN_LOG, EventCallback, EventLog, LoginEvent

TRANSPORT = "http"

LoginCallback = Callable[[LoginEvent], None]


@functools.lru_cache(maxsize=256)
def flag_names(flags: int) -> tuple[str, ...]:
    """NTLM negotiate flags by their MS-NLMP 2.2.2.5 names (a handful of distinct values: cached)."""
    from smb2auth.ntlm.messages import NegotiateFlags

    return tuple(f.name for f in NegotiateFlags if f.name and flags & int(f))


def emit(event: LoginEvent, sink: EventLog | LoginCallback | None) -> None:
    """Hand `event` to an EventLog (which logs it and fans it out), or log it and call a plain callback."""
    if isinstance(sink, EventLog):
        sink.emit(event)
        return
    EventLog([sink] if sink is not None else []).emit(event)


__all__ = ["LOGIN_LOG", "TRANSPORT", "EventCallback", "EventLog", "LoginCallback", "LoginEvent", "emit",
           "flag_names"]
