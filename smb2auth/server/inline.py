"""The connection's events carried out inline, for a synchronous authority: the asyncio server's fast path
(no task per connection), and what tests, fuzzers and benchmarks use to drive a `Connection` without a
socket. Login events go to the server's EventLog, which logs them."""

from __future__ import annotations

from smb2auth.authority.consult import consult_sync
from smb2auth.events import LoginEvent
from smb2auth.ntlm.events import ValidationNeeded
from smb2auth.server.connection import Connection, ConnectionEvent
from smb2auth.server.nbss import Incoming

__all__ = ["answer_frame", "carry_out"]


def carry_out(conn: Connection, events: list[ConnectionEvent]) -> tuple[list[bytes], ValidationNeeded | None]:
    """Emit the login events; returns the frames to write and the validation asked for, if any."""
    frames: list[bytes] = []
    pending: ValidationNeeded | None = None
    emit = conn.ctx.events.emit
    for event in events:
        if isinstance(event, bytes):
            frames.append(event)
        elif isinstance(event, LoginEvent):
            emit(event)
        else:
            pending = event
    return frames, pending


def answer_frame(conn: Connection, payload: Incoming) -> list[bytes]:
    """Answer one frame to its end, validating with the synchronous authority; the frames to write."""
    frames, pending = carry_out(conn, conn.receive_frame(payload))
    authority = conn.ctx.config.authority
    while pending is not None:
        result = consult_sync(authority, pending.request)
        more, pending = carry_out(conn, conn.validation_done(pending.ticket, result))
        frames += more
    return frames

