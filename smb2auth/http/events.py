"""Login events over HTTP: the package's `LoginEvent` (smb2auth.events) with transport "http".

One event per authentication attempt (success, refused login, malformed token or header, continuation
token without a handshake), never for a bare request that merely gets the challenge offer. The HTTP
scheme (NTLM, Negotiate, Basic) goes in `dialect`. Events carry names, never passwords, tokens or keys.
"""

from __future__ import annotations

from collections.abc import Callable

from smb2auth.events import LOGIN_LOG, EventCallback, EventLog, LoginEvent

TRANSPORT = "http"

LoginCallback = Callable[[LoginEvent], None]


def emit(event: LoginEvent, sink: EventLog | LoginCallback | None) -> None:
    """Hand `event` to an EventLog (which logs it and fans it out), or log it and call a plain callback."""
    if isinstance(sink, EventLog):
        sink.emit(event)
        return
    EventLog([sink] if sink is not None else []).emit(event)


__all__ = ["LOGIN_LOG", "TRANSPORT", "EventCallback", "EventLog", "LoginCallback", "LoginEvent", "emit",
           ]
