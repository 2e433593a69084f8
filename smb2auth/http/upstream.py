"""The proxy's upstream connections for one client connection: kept alive and reused per origin, and pinned
once an origin authenticates the connection itself.

HTTP/1.1 keep-alive (RFC 9112 9.3): after a complete response that did not say "close", the upstream
connection goes back to this client connection's pool, keyed by origin (host, port), at most `max_idle` of
them and each for at most `idle_timeout` seconds. While a client connection lives its pool is its own: no
other client connection rides on its upstream connections. When it closes, its idle connections (never a
pinned one, nor one that was ever pinned) are parked in the proxy's IdleUpstreams, from which a later client
connection's pool takes one before it opens a new connection to that origin, as Squid reuses idle server
connections by default (RFC 9112 9.3: persistence is per connection); `proxy --no-share-idle-upstreams`
closes them instead.

Pinning (RFC 4559 6, as Squid pins): NTLM and Negotiate authenticate a TCP connection, so once an origin
answers 401 with one of them, or a request carries the client's own NTLM, Negotiate or Kerberos
Authorization (forward.py), that upstream connection belongs to this client connection until either side
closes: every later request of the client goes on it, it is never pooled, and the client connection is
never handed another upstream. When the pinned upstream closes, the client connection closes too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Origin = tuple[str, int]
Opener = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


@dataclass(eq=False)
class Upstream:
    """One connection to an origin; `served` counts the responses read from it."""

    origin: Origin
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0
    served: int = 0
    reused: bool = False

    @property
    def usable(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


class IdleUpstreams:
    """Idle upstream connections left by client connections that closed: at most `max_idle` per origin and
    `max_total` in all (the oldest closed first, so clients naming many origins cannot hold many
    connections open), each for at most `idle_timeout` seconds."""

    def __init__(self, *, max_idle: int = 8, max_total: int = 64, idle_timeout: float = 30.0) -> None:
        self.max_idle = max_idle
        self.max_total = max_total
        self.idle_timeout = idle_timeout
        self._by_origin: dict[Origin, list[Upstream]] = {}
        self._total = 0

    def __len__(self) -> int:
        return self._total

    def park(self, up: Upstream) -> None:
        if not up.usable:
            up.close()
            return
        up.idle_since = asyncio.get_running_loop().time()
        parked = self._by_origin.setdefault(up.origin, [])
        parked.append(up)
        self._total += 1
        if len(parked) > self.max_idle:
            self._drop(up.origin)
        while self._total > self.max_total:
            self._drop(min(self._by_origin, key=lambda origin: self._by_origin[origin][0].idle_since))

    def _drop(self, origin: Origin) -> None:
        """Close the oldest parked connection to `origin`."""
        parked = self._by_origin[origin]
        parked.pop(0).close()
        self._total -= 1
        if not parked:
            del self._by_origin[origin]

    def take(self, origin: Origin) -> Upstream | None:
        """The most recently parked usable connection to `origin`, or None; stale ones are closed."""
        parked = self._by_origin.get(origin)
        now = asyncio.get_running_loop().time()
        found = None
        while parked and found is None:
            up = parked.pop()
            self._total -= 1
            if up.usable and now - up.idle_since < self.idle_timeout:
                found = up
            else:
                up.close()
        if parked is not None and not parked:
            del self._by_origin[origin]
        return found

    async def close(self) -> None:
        ups = [up for parked in self._by_origin.values() for up in parked]
        self._by_origin.clear()
        self._total = 0
        for up in ups:
            up.close()
        for up in ups:
            with contextlib.suppress(Exception):
                await up.writer.wait_closed()


class UpstreamPool:
    """The upstream connections of one client connection (made on the event loop that serves it): idle ones
    by origin, and the pinned one; with `parked`, idle ones come from and go back to the proxy's
    IdleUpstreams when none of its own fits and when the client connection closes."""

    def __init__(self, opener: Opener, *, max_idle: int = 4, idle_timeout: float = 30.0,
                 parked: IdleUpstreams | None = None) -> None:
        self._open = opener
        self._loop = asyncio.get_running_loop()
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self._idle: list[Upstream] = []
        self._parked = parked
        self._ever_pinned: set[Upstream] = set()
        self.pinned: Upstream | None = None

    def _now(self) -> float:
        return self._loop.time()

    def _prune(self) -> None:
        if not self._idle:
            return
        now = self._now()
        keep: list[Upstream] = []
        for up in self._idle:
            if up.usable and now - up.idle_since < self.idle_timeout:
                keep.append(up)
            else:
                up.close()
        self._idle = keep

    async def take(self, origin: Origin, *, fresh: bool = False) -> Upstream:
        """An idle connection to `origin` (the most recently used), or a new one; `fresh` forces a new one.
        Not for a pinned client connection: the caller uses `pinned` then."""
        self._prune()
        if not fresh:
            for up in reversed(self._idle):
                if up.origin == origin:
                    self._idle.remove(up)
                    up.reused = True
                    return up
            parked = self._parked.take(origin) if self._parked is not None else None
            if parked is not None:
                parked.reused = True
                return parked
        reader, writer = await self._open(*origin)
        return Upstream(origin, reader, writer)

    def give_back(self, up: Upstream, reusable: bool) -> None:
        """After a response: pool `up` if it may carry another request, else close it (a pinned one stays
        pinned while it lives)."""
        if up is self.pinned:
            if not reusable:
                self.pinned = None
                up.close()
            return
        if not reusable or not up.usable:
            up.close()
            return
        up.idle_since = self._now()
        self._idle.append(up)
        while len(self._idle) > self.max_idle:
            self._idle.pop(0).close()
        self._prune()

    def pin(self, up: Upstream) -> None:
        self.pinned = up
        self._ever_pinned.add(up)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        ups = [*([self.pinned] if self.pinned is not None else [])]
        self.pinned = None
        for up in idle:
            if self._parked is not None and up not in self._ever_pinned:
                self._parked.park(up)
            else:
                ups.append(up)
        for up in ups:
            up.close()
        for up in ups:
            with contextlib.suppress(Exception):
                await up.writer.wait_closed()
