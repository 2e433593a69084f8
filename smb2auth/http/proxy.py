"""An asyncio forward proxy that demands NTLM/Negotiate (407) before forwarding or tunnelling.

Plain HTTP requests in absolute-URI form (RFC 9112 3.2.2) are forwarded to the origin over HTTP/1.1
upstream connections kept alive per client connection (idle ones shared once it closes), and pinned to
it once the origin authenticates with NTLM or Negotiate or the client sends its own NTLM, Negotiate or
Kerberos Authorization (upstream.py; the proxy then says `Proxy-Support: Session-Based-Authentication`).
CONNECT (RFC 9110 9.3.6) opens a tunnel after authentication and pumps bytes both ways. The authenticated
identity stays bound to the client connection (as WSA/FortiGate do), so later requests on it need no new
handshake until `auth_timeout` passes.

An explicit proxy answers 407 with Proxy-Authenticate; configured with Role.ORIGIN it behaves as a
transparent (intercepting) proxy, which must answer 401 with WWW-Authenticate since the client does
not know it is there. Malformed credentials follow the binding's one rule (smb2auth.http.auth): a failed
login, 407 with a fresh offer, the connection kept; a malformed request head is 400 and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from smb2auth.authority.consult import consult
from smb2auth.http.auth import ConnectionAuth, Decision, HttpAuthConfig, Role
from smb2auth.http.events import emit
from smb2auth.http.exchange import Exchange, response
from smb2auth.http.forward import Forwarder
from smb2auth.http.upstream import IdleUpstreams, UpstreamPool
from smb2auth.http.wire import (
    CHUNK,
    MAX_HEAD,
    Activity,
    BadRequest,
    Head,
    IdleTimer,
    content_length,
    parse_head,
    pump,
    read_head,
)
from smb2auth.http.wsgi import RunningServer
from smb2auth.ntlm.events import ValidationNeeded

__all__ = ["BadRequest", "Head", "NtlmProxy", "parse_head", "read_head", "running_proxy", "serve_proxy"]

log = logging.getLogger("smb2auth.http.proxy")

MAX_BODY = 64 * 1024 * 1024
MAX_UNAUTHENTICATED_BODY = 64 * 1024


class NtlmProxy:
    """The proxy's connection handler; `serve()` or `running_proxy()` put it on a socket.
    `upstream_idle` and `max_idle_upstreams` bound each client connection's pool of kept-alive upstream
    connections; with `share_idle_upstreams` (the default, as Squid's server_persistent_connections) those
    left idle when a client connection closes (never one that was pinned) wait in `idle_upstreams` for the
    next client connection to the same origin (upstream.py).
    `opened_upstreams` counts the upstream connections opened so far. `identity_header`
    (as WSA's X-Authenticated-User) names a request field the proxy sets to DOMAIN\\user for the origin;
    a client's own copy of it is never forwarded."""

    def __init__(
        self,
        config: HttpAuthConfig,
        *,
        allow_target: Callable[[str, int], bool] | None = None,
        connect_timeout: float = 10.0,
        idle_timeout: float = 60.0,
        upstream_idle: float = 30.0,
        max_idle_upstreams: int = 4,
        identity_header: str | None = None,
        share_idle_upstreams: bool = True,
    ) -> None:
        self.config = config
        self.allow_target = allow_target
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.upstream_idle = upstream_idle
        self.max_idle_upstreams = max_idle_upstreams
        self.identity_header = identity_header
        self.opened_upstreams = 0
        self.idle_upstreams = (IdleUpstreams(max_idle=max(8, max_idle_upstreams), idle_timeout=upstream_idle)
                               if share_idle_upstreams else None)
        self.forwarder = Forwarder(transparent=config.role is Role.ORIGIN, idle_timeout=idle_timeout,
                                   identity_header=identity_header, permitted=self._permitted)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def active_connections(self) -> int:
        """Client connections being served (each one's upstreams closed or parked once it leaves)."""
        return len(self._tasks)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        peer = writer.get_extra_info("peername") or ("?", 0)
        auth = ConnectionAuth(self.config, f"{peer[0]}:{peer[1]}")
        pool = UpstreamPool(self._open, max_idle=self.max_idle_upstreams, idle_timeout=self.upstream_idle,
                            parked=self.idle_upstreams)
        ex = Exchange(timer=IdleTimer(self.idle_timeout))
        try:
            while await self._one_request(reader, writer, auth, pool, ex):
                pass
        except BadRequest as exc:
            with contextlib.suppress(ConnectionError):
                writer.write(response(ex, exc.status, close=True))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except asyncio.CancelledError:
            # shutdown: this task is the connection's own, awaited by nobody who needs the cancellation
            log.debug("proxy: connection from %s closed at shutdown", auth.client)
        except Exception:
            log.exception("proxy: connection from %s failed", auth.client)
        finally:
            # a shutdown may cancel this while it closes: the connection ends all the same, and the task
            # ends without an exception (asyncio's streams on 3.11 log a cancelled handler as an error)
            with contextlib.suppress(asyncio.CancelledError):
                await pool.close()
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()
            if ex.timer is not None:
                ex.timer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _decide(self, auth: ConnectionAuth, header: str | None) -> Decision:
        """The request's Decision, awaiting the authority in between; its login event emitted."""
        decision = auth.receive(header)
        if isinstance(decision, ValidationNeeded):
            result = await consult(auth.authority, decision.request)
            decision = auth.validation_done(decision.ticket, result)
        if decision.login is not None:
            emit(decision.login, self.config.on_login)
        return decision

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, auth: ConnectionAuth,
        pool: UpstreamPool, ex: Exchange,
    ) -> bool:
        ex.reset()
        raw = await ex.read(read_head(reader), self.idle_timeout)
        if raw is None:
            return False
        head = parse_head(raw)
        method, target, version = head.start
        ex.start(head)
        if not version.startswith("HTTP/1."):
            raise BadRequest(400, "unsupported HTTP version")
        if "chunked" in head.tokens("Transfer-Encoding"):
            raise BadRequest(411, "chunked request bodies are not supported")
        length = content_length(head)
        expects = "100-continue" in head.tokens("Expect")
        client_close = ex.close
        decision = await self._decide(auth, head.get(self.config.role.credentials_header))
        if not decision.allowed:
            # answered from the head alone: a small body is then skipped, otherwise the connection ends
            # (RFC 9110 10.1.1: a client expecting 100-continue may never send it)
            status = decision.status or 500
            close = decision.close or client_close or (
                length > 0 and (expects or length > MAX_UNAUTHENTICATED_BODY))
            writer.write(response(ex, status, headers=decision.headers, close=close))
            await writer.drain()
            if not close and length:
                await self._read_body(ex, reader, length)
            return not close
        if length > MAX_BODY:
            raise BadRequest(413, "request body too large")
        if expects and length and not ex.http10:
            # RFC 9110 10.1.1: the client waits for this before sending the body
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        body = await self._read_body(ex, reader, length) if length else b""
        if method == "CONNECT":
            if pool.pinned is not None:
                raise BadRequest(400, "CONNECT on a connection pinned to an origin")
            await self._tunnel(ex, target, reader, writer, auth, decision)
            return False
        return await self.forwarder.forward(ex, head, body, writer, pool, decision) and not client_close

    async def _read_body(self, ex: Exchange, reader: asyncio.StreamReader, length: int) -> bytes:
        """`length` bytes of request body, each piece within the idle timeout."""
        parts: list[bytes] = []
        while length > 0:
            part = await ex.read(reader.readexactly(min(length, CHUNK)), self.idle_timeout)
            parts.append(part)
            length -= len(part)
        return b"".join(parts)

    def _permitted(self, host: str, port: int) -> bool:
        return self.allow_target is None or self.allow_target(host, port)

    async def _open(self, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        opened = await asyncio.wait_for(asyncio.open_connection(host, port, limit=MAX_HEAD),
                                        self.connect_timeout)
        self.opened_upstreams += 1
        return opened

    async def _tunnel(
        self, ex: Exchange, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
        auth: ConnectionAuth, decision: Decision,
    ) -> None:
        # RFC 9110 9.3.6: CONNECT's target is authority-form host:port
        parsed = urllib.parse.urlsplit("//" + target)
        try:
            host, port = parsed.hostname, parsed.port
        except ValueError:
            host, port = None, None
        if not host or port is None:
            raise BadRequest(400, "CONNECT target is not host:port")
        if not self._permitted(host, port):
            writer.write(response(ex, 403, close=True))
            await writer.drain()
            return
        try:
            up_reader, up_writer = await self._open(host, port)
        except (OSError, TimeoutError) as exc:
            status = 504 if isinstance(exc, TimeoutError) else 502
            writer.write(response(ex, status, close=True))
            await writer.drain()
            return
        ident = decision.identity
        log.info("proxy: CONNECT %s:%d for %s from %s", host, port, ident.qualified_name if ident else "?",
                 auth.client)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        activity = Activity()
        pumps = [asyncio.ensure_future(pump(reader, up_writer, self.idle_timeout, activity=activity)),
                 asyncio.ensure_future(pump(up_reader, writer, self.idle_timeout, activity=activity))]
        try:
            await asyncio.gather(*pumps)
        finally:
            for task in pumps:
                task.cancel()
            up_writer.close()
            with contextlib.suppress(Exception):
                await up_writer.wait_closed()

    async def close_connections(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.idle_upstreams is not None:
            await self.idle_upstreams.close()


async def serve_proxy(
    proxy: NtlmProxy, host: str = "127.0.0.1", port: int = 3128,
    *, started: Callable[[str, int], None] | None = None,
) -> None:
    """Run the proxy until cancelled."""
    server = await asyncio.start_server(proxy.handle, host, port, limit=MAX_HEAD)
    sockname = server.sockets[0].getsockname()
    log.info("proxy listening on %s:%d", sockname[0], sockname[1])
    if started is not None:
        started(sockname[0], int(sockname[1]))
    try:
        async with server:
            await server.serve_forever()
    finally:
        await proxy.close_connections()


@dataclass
class RunningProxy(RunningServer):
    """A proxy started by `running_proxy`: where it listens, and the proxy itself (read it from the
    test's thread only for counters such as `active_connections`)."""

    proxy: NtlmProxy = field(repr=False, compare=False, kw_only=True)


@contextlib.contextmanager
def running_proxy(
    config: HttpAuthConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    allow_target: Callable[[str, int], bool] | None = None,
    idle_timeout: float = 30.0,
    identity_header: str | None = None,
    share_idle_upstreams: bool = True,
) -> Iterator[RunningProxy]:
    """The proxy on its own event loop in a background thread; stopped when the block exits.
    `config.role` is Role.PROXY for an explicit proxy (407); Role.ORIGIN makes it a transparent
    (intercepting) one: 401 with WWW-Authenticate, origin-form requests forwarded to their Host."""
    proxy = NtlmProxy(config, allow_target=allow_target, idle_timeout=idle_timeout,
                      identity_header=identity_header, share_idle_upstreams=share_idle_upstreams)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    where: list[tuple[str, int]] = []
    failure: list[BaseException] = []
    tasks: list[asyncio.Task[None]] = []

    def started(h: str, p: int) -> None:
        where.append((h, p))
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        main = loop.create_task(serve_proxy(proxy, host, port, started=started))
        tasks.append(main)
        try:
            loop.run_until_complete(main)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:
            failure.append(exc)
        finally:
            ready.set()
            loop.close()

    thread = threading.Thread(target=run, name="smb2auth-http-proxy", daemon=True)
    thread.start()
    ready.wait(timeout=10)
    if not where:
        thread.join(timeout=10)
        raise RuntimeError(f"proxy did not start: {failure[0] if failure else 'timeout'}")
    try:
        yield RunningProxy(*where[0], proxy=proxy)
    finally:
        loop.call_soon_threadsafe(tasks[0].cancel)
        thread.join(timeout=10)
