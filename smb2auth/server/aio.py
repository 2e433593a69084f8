"""The asyncio shell around `Connection`: sockets, limits, timeouts. Protocol decisions are in protocol.py.

A synchronous authority is called inline from `data_received` (no task per connection); an asynchronous one
gets a worker task per busy connection, so a slow authority never stalls another connection.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any, cast

from smb2auth.authority.consult import consult
from smb2auth.events import EventLog
from smb2auth.ntlm.authority import AsyncAuthority
from smb2auth.server.config import ServerConfig
from smb2auth.server.connection import Connection
from smb2auth.server.context import ServerContext
from smb2auth.server.inline import answer_frame, carry_out
from smb2auth.server.nbss import Incoming
from smb2auth.status import NtStatus

__all__ = ["Smb2Server", "format_address"]

log = logging.getLogger(__name__)

_MAX_QUEUED_FRAMES = 32


def format_address(address: Any) -> str:
    """"host:port", with IPv6 hosts in brackets."""
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = str(address[0]), int(address[1])
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(address)


def _internal_error(conn: Connection, exc: Exception) -> None:
    """A bug, not the peer's doing: one line (the traceback only at DEBUG), and this connection is dropped."""
    log.error("%s: internal error: %r", conn.peer, exc, exc_info=log.isEnabledFor(logging.DEBUG))
    _close(conn, "internal error")


def _close(conn: Connection, reason: str, abandoned: NtStatus | None = None) -> None:
    """Close the connection; the login events of handshakes it abandons go to the server's EventLog."""
    for event in conn.close(reason, abandoned=abandoned):
        conn.ctx.events.emit(event)


def _closed(conn: Connection) -> None:
    if conn.close_reason:
        log.debug("%s: disconnecting: %s", conn.peer, conn.close_reason)


class _Smb2Protocol(asyncio.Protocol):
    """One accepted TCP connection."""

    def __init__(self, server: Smb2Server) -> None:
        self.server = server
        self.conn: Connection | None = None
        self.transport: asyncio.Transport | None = None
        self._queue: collections.deque[Incoming] = collections.deque()
        self._worker: asyncio.Task[None] | None = None
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport, though not always an asyncio.Transport subclass (uvloop's TCPTransport is not)
        self.transport = transport = cast(asyncio.Transport, transport)
        server = self.server
        peer = format_address(transport.get_extra_info("peername"))
        if len(server._connections) >= server.config.max_connections:
            log.warning("%s: refused, %d connections open (max_connections)", peer, len(server._connections))
            transport.abort()
            return
        self.conn = Connection(server.ctx, peer)
        server._connections.add(self)

    def data_received(self, data: bytes) -> None:
        conn, transport = self.conn, self.transport
        if conn is None or transport is None:
            return
        frames = conn.feed(data)
        if self.server._async_authority:
            self._queue.extend(frames)
            if len(self._queue) > _MAX_QUEUED_FRAMES:
                self._pause()
            if self._queue and self._worker is None:
                self._worker = asyncio.get_running_loop().create_task(self._work())
        else:
            for payload in frames:
                try:
                    out = answer_frame(conn, payload)
                except Exception as exc:  # a bug, not the peer's doing: drop this connection only
                    _internal_error(conn, exc)
                    break
                if out:
                    transport.write(b"".join(out))
                if conn.closed:
                    break
        if conn.closed and self._worker is None:
            _closed(conn)
            transport.close()

    async def _work(self) -> None:
        conn, transport = self.conn, self.transport
        assert conn is not None and transport is not None
        try:
            while self._queue and not conn.closed:
                payload = self._queue.popleft()
                try:
                    out = await self._answer(conn, payload)
                except Exception as exc:
                    _internal_error(conn, exc)
                    break
                if out and not transport.is_closing():
                    transport.write(b"".join(out))
                if len(self._queue) <= _MAX_QUEUED_FRAMES // 2:
                    self._resume()
        finally:
            self._worker = None
        if conn.closed:
            _closed(conn)
            transport.close()

    @staticmethod
    async def _answer(conn: Connection, payload: Incoming) -> list[bytes]:
        """As answer_frame, awaiting the (asynchronous) authority while other connections go on."""
        frames, pending = carry_out(conn, conn.receive_frame(payload))
        authority = conn.ctx.config.authority
        while pending is not None:
            result = await consult(authority, pending.request)
            more, pending = carry_out(conn, conn.validation_done(pending.ticket, result))
            frames += more
        return frames

    def _pause(self) -> None:
        if not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def _resume(self) -> None:
        if self._paused and self.transport is not None and not self.transport.is_closing():
            self._paused = False
            self.transport.resume_reading()

    def pause_writing(self) -> None:
        self._pause()  # the client does not read its responses: stop reading its requests

    def resume_writing(self) -> None:
        self._resume()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            _close(self.conn, "connection lost")
        self.server._connections.discard(self)
        if self._worker is not None:
            self._worker.cancel()
        self._queue.clear()

    def expire(self, now: float) -> None:
        if self.conn is None or self.transport is None:
            return
        reason = self.conn.timed_out(now)
        if reason is not None:
            log.info("%s: closing: %s", self.conn.peer, reason)
            _close(self.conn, reason, abandoned=NtStatus.STATUS_IO_TIMEOUT)
            self.transport.close()


class Smb2Server:
    """The SMB2 authentication harness. `await start(host, port)` (repeatable for more addresses), then
    `await serve_forever()` or use it as an async context manager; `await close()` stops it."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        events: EventLog | None = None,
        rng: Callable[[int], bytes] = os.urandom,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.ctx = ServerContext(config, events, rng=rng, clock=clock)
        self._async_authority = isinstance(config.authority, AsyncAuthority)
        self._servers: list[asyncio.AbstractServer] = []
        self._connections: set[_Smb2Protocol] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()

    @property
    def events(self) -> EventLog:
        return self.ctx.events

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Every (host, port) the server listens on."""
        found: list[tuple[str, int]] = []
        for server in self._servers:
            for sock in getattr(server, "sockets", ()):
                name = sock.getsockname()
                found.append((str(name[0]), int(name[1])))
        return found

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, sock: socket.socket | None = None
    ) -> tuple[str, int]:
        """Listen on `host`:`port` (0 picks a free port), or accept on `sock`, a bound TCP socket (as
        smb2auth.server.workers hands each worker); returns the address bound."""
        loop = asyncio.get_running_loop()
        if sock is not None:
            server = await loop.create_server(lambda: _Smb2Protocol(self), sock=sock, backlog=1024)
        else:
            server = await loop.create_server(
                lambda: _Smb2Protocol(self), host, port, reuse_address=True, backlog=1024
            )
        self._servers.append(server)
        if self._sweeper is None:
            self._sweeper = loop.create_task(self._sweep())
        name = server.sockets[0].getsockname()
        return str(name[0]), int(name[1])

    async def serve_forever(self) -> None:
        """Wait until `close()` (or cancellation)."""
        if not self._servers:
            raise RuntimeError("call start() first")
        await self._stopped.wait()

    async def _sweep(self) -> None:
        cfg = self.config
        limits = [cfg.handshake_timeout, cfg.idle_timeout]
        if cfg.hostile is not None:
            limits.append(cfg.hostile_wait)  # server/hostile.py: a silent client's verdict is due then
        interval = max(0.05, min(1.0, *(limit / 4 for limit in limits)))
        monotonic = self.ctx.monotonic
        while True:
            await asyncio.sleep(interval)
            self._expire_all(monotonic())

    def _expire_all(self, now: float) -> None:
        # In its own frame: a loop variable in _sweep would keep the last connection alive while it sleeps.
        for proto in list(self._connections):
            proto.expire(now)

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        for server in self._servers:
            server.close()
        for proto in list(self._connections):
            if proto.conn is not None:
                _close(proto.conn, "server shutting down")
            if proto.transport is not None:
                proto.transport.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        self._servers.clear()
        self._stopped.set()

    async def __aenter__(self) -> Smb2Server:
        if not self._servers:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
