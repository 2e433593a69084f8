"""An asyncio forward proxy that demands NTLM/Negotiate (407) before forwarding or tunnelling.

Plain HTTP requests in absolute-URI form (RFC 9112 3.2.2) are forwarded to the origin over HTTP/1.1
upstream connections kept alive per client connection, and pinned to it once the origin authenticates
with NTLM or Negotiate (upstream.py; the proxy then says `Proxy-Support: Session-Based-Authentication`).
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
from dataclasses import dataclass

from smb2auth.authority.consult import consult
from smb2auth.http.auth import ConnectionAuth, Decision, HttpAuthConfig, Role
from smb2auth.http.events import emit
from smb2auth.http.upstream import Upstream, UpstreamPool
from smb2auth.http.wire import (
    CHUNK,
    MAX_HEAD,
    Activity,
    BadRequest,
    Head,
    content_length,
    parse_head,
    pump,
    read_head,
    relay_chunked,
    relay_exactly,
    within,
)
from smb2auth.http.wsgi import RunningServer
from smb2auth.ntlm.events import ValidationNeeded

__all__ = ["BadRequest", "Head", "NtlmProxy", "parse_head", "read_head", "running_proxy", "serve_proxy"]

log = logging.getLogger("smb2auth.http.proxy")

MAX_BODY = 64 * 1024 * 1024
MAX_UNAUTHENTICATED_BODY = 64 * 1024
# RFC 9110 7.6.1: hop-by-hop fields are not forwarded
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
    "trailer", "transfer-encoding", "upgrade",
})
_CONNECTION_AUTH = ("ntlm", "negotiate")
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


@dataclass
class _Exchange:
    """What the proxy knows of the request it is answering on one client connection."""

    method: str = ""
    target: str = ""
    close: bool = False
    http10: bool = False
    proxy_connection: bool = False

    def start(self, head: Head) -> None:
        method, _, version = head.start
        tokens = head.tokens("Connection") | head.tokens("Proxy-Connection")
        self.method, self.target = method, head.start[1]
        self.http10 = version == "HTTP/1.0"
        self.proxy_connection = head.get("Proxy-Connection") is not None
        # RFC 9112 9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive"
        self.close = "close" in tokens or (self.http10 and "keep-alive" not in tokens)

    def connection_lines(self, close: bool) -> list[str]:
        """Say whether the connection stays: "close" when it ends, "keep-alive" to an HTTP/1.0 client."""
        if close or self.close:
            value = "close"
        elif self.http10:
            value = "keep-alive"
        else:
            return []
        return [f"Connection: {value}"] + ([f"Proxy-Connection: {value}"] if self.proxy_connection else [])


def _response(ex: _Exchange, status: int, reason: str, headers: tuple[tuple[str, str], ...] = (), *,
              close: bool = False, body: bytes | None = None, exchange: _Exchange | None = None) -> bytes:
    payload = f"{status} {reason}\n".encode() if body is None else body
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers),
             "Content-Type: text/plain; charset=utf-8", f"Content-Length: {len(payload)}",
             *ex.connection_lines(close)]
    # RFC 9110 9.3.2: a response to HEAD carries no content (Content-Length still says GET's)
    if ex.method == "HEAD":
        payload = b""
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


_REASONS = {400: "Bad Request", 407: "Proxy Authentication Required", 401: "Unauthorized",
            403: "Forbidden", 411: "Length Required", 413: "Content Too Large", 431:
            "Request Header Fields Too Large", 501: "Not Implemented", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}


class NtlmProxy:
    """The proxy's connection handler; `serve()` or `running_proxy()` put it on a socket.
    `upstream_idle` and `max_idle_upstreams` bound each client connection's pool of kept-alive upstream
    connections; `opened_upstreams` counts the upstream connections opened so far. `identity_header`
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
    ) -> None:
        self.config = config
        self.allow_target = allow_target
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.upstream_idle = upstream_idle
        self.max_idle_upstreams = max_idle_upstreams
        self.identity_header = identity_header
        self.opened_upstreams = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        peer = writer.get_extra_info("peername") or ("?", 0)
        auth = ConnectionAuth(self.config, f"{peer[0]}:{peer[1]}")
        pool = UpstreamPool(self._open, max_idle=self.max_idle_upstreams, idle_timeout=self.upstream_idle)
        ex = _Exchange()
        try:
            while await self._one_request(reader, writer, auth, pool, ex):
                pass
        except BadRequest as exc:
            with contextlib.suppress(ConnectionError):
                writer.write(_response(ex, exc.status, _REASONS.get(exc.status, "Error"), close=True))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except asyncio.CancelledError:
            # shutdown: this task is the connection's own, awaited by nobody who needs the cancellation
            log.debug("proxy: connection from %s closed at shutdown", auth.client)
        except Exception:
            log.exception("proxy: connection from %s failed", auth.client)
        finally:
            await pool.close()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
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
        pool: UpstreamPool, ex: _Exchange,
    ) -> bool:
        ex.method, ex.close, ex.http10, ex.proxy_connection = "", False, False, False
        raw = await within(self.idle_timeout, read_head(reader))
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
            writer.write(_response(ex, status, _REASONS.get(status, "Error"), decision.headers, close=close))
            await writer.drain()
            if not close and length:
                await self._read_body(reader, length)
            return not close
        if length > MAX_BODY:
            raise BadRequest(413, "request body too large")
        if expects and length and not ex.http10:
            # RFC 9110 10.1.1: the client waits for this before sending the body
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        body = await self._read_body(reader, length)
        if method == "CONNECT":
            if pool.pinned is not None:
                raise BadRequest(400, "CONNECT on a connection pinned to an origin")
            await self._tunnel(ex, target, reader, writer, auth, decision)
            return False
        return await self._forward(ex, head, body, writer, pool, decision) and not client_close

    async def _read_body(self, reader: asyncio.StreamReader, length: int) -> bytes:
        """`length` bytes of request body, each piece within the idle timeout."""
        parts: list[bytes] = []
        while length > 0:
            part = await within(self.idle_timeout, reader.readexactly(min(length, CHUNK)))
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
        self, ex: _Exchange, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
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
            writer.write(_response(ex, 403, "Forbidden", close=True))
            await writer.drain()
            return
        try:
            up_reader, up_writer = await self._open(host, port)
        except (OSError, TimeoutError) as exc:
            status = 504 if isinstance(exc, TimeoutError) else 502
            writer.write(_response(ex, status, _REASONS[status], close=True))
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

    async def _forward(
        self, ex: _Exchange, head: Head, body: bytes, writer: asyncio.StreamWriter, pool: UpstreamPool,
        decision: Decision,
    ) -> bool:
        method, target, _ = head.start
        transparent = self.config.role is Role.ORIGIN
        if transparent and target.startswith("/"):
            # an intercepting proxy sees origin-form requests: the target is in Host (RFC 9112 3.2.1)
            target = f"http://{head.get('Host') or ''}{target}"
        url = urllib.parse.urlsplit(target)
        if url.scheme.lower() != "http" or not url.hostname:
            writer.write(_response(ex, 501, "Not Implemented", close=True,
                                   body=b"only absolute http:// URIs and CONNECT are proxied\n"))
            await writer.drain()
            return False
        try:
            port = url.port or 80
        except ValueError:
            raise BadRequest(400, "bad port in request target") from None
        if not self._permitted(url.hostname, port):
            writer.write(_response(ex, 403, "Forbidden"))
            await writer.drain()
            return True
        origin = (url.hostname, port)
        pinned = pool.pinned
        if pinned is not None and pinned.origin != origin:
            # RFC 4559 6: a client connection pinned to one origin's connection is never handed another
            writer.write(_response(ex, 503, "Service Unavailable", close=True,
                                   body=b"this connection is pinned to another origin\n"))
            await writer.drain()
            return False
        path = urllib.parse.urlunsplit(("", "", url.path or "/", url.query, ""))
        dropped = _HOP_BY_HOP | head.tokens("Connection") | {"expect", "content-length"}
        if transparent:
            dropped |= {"authorization"}
        if self.identity_header:
            dropped |= {self.identity_header.lower()}
        lines = [f"{method} {path} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in head.fields if k.lower() not in dropped]
        if self.identity_header and decision.identity is not None:
            lines.append(f"{self.identity_header}: {decision.identity.qualified_name}")
        if head.get("Host") is None:
            lines.append(f"Host: {url.netloc.rpartition('@')[2]}")
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        if pinned is not None:
            if not pinned.usable:
                # the pinned upstream closed: so does the client connection (upstream.py)
                pool.give_back(pinned, False)
                return False
            return await self._exchange(ex, pinned, request, writer, pool, decision)
        # RFC 9110 9.2.2: only an idempotent request may be retried when a kept-alive connection turns out
        # closed; any other goes on a new connection (RFC 9112 9.3.1)
        idempotent = method in _IDEMPOTENT
        for attempt in range(2 if idempotent else 1):
            try:
                up = await pool.take(origin, fresh=attempt > 0 or not idempotent)
            except (OSError, TimeoutError) as exc:
                status = 504 if isinstance(exc, TimeoutError) else 502
                writer.write(_response(ex, status, _REASONS[status]))
                await writer.drain()
                return True
            with contextlib.suppress(_StaleUpstream):
                return await self._exchange(ex, up, request, writer, pool, decision)
        raise BadRequest(502, "upstream closed without a response")

    async def _exchange(
        self, ex: _Exchange, up: Upstream, request: bytes, writer: asyncio.StreamWriter, pool: UpstreamPool,
        decision: Decision,
    ) -> bool:
        """Send `request` on `up` and relay the response; `up` goes back to the pool, stays pinned, or is
        closed. A reused, unpinned `up` that turns out closed raises _StaleUpstream."""
        retryable = up.reused and up is not pool.pinned
        reusable = False
        try:
            try:
                up.writer.write(request)
                await up.writer.drain()
            except (ConnectionError, OSError):
                if retryable:
                    raise _StaleUpstream from None
                raise
            keep, reusable = await self._relay_response(ex, up, writer, pool, decision, retryable)
            return keep
        finally:
            pool.give_back(up, reusable)

    async def _upstream_head(self, up: Upstream, retryable: bool) -> tuple[Head, int]:
        """The upstream's final response head (1xx skipped); BadRequest when it is not one."""
        first = True
        while True:
            try:
                raw = await within(self.idle_timeout, read_head(up.reader))
            except ConnectionError:
                if first and retryable:
                    raise _StaleUpstream from None
                raise
            if raw is None:
                if first and retryable:
                    raise _StaleUpstream
                raise BadRequest(502, "upstream closed without a response")
            first = False
            head = parse_head(raw)
            try:
                status = int(head.start[1])
            except ValueError:
                raise BadRequest(502, "bad upstream status line") from None
            if status >= 200 or status == 101:
                return head, status

    async def _relay_response(
        self, ex: _Exchange, up: Upstream, writer: asyncio.StreamWriter, pool: UpstreamPool,
        decision: Decision, retryable: bool,
    ) -> tuple[bool, bool]:
        """Relay one response; (the client connection goes on, the upstream one can carry another)."""
        try:
            head, status = await self._upstream_head(up, retryable)
            length_value = content_length(head)
        except (BadRequest, TimeoutError) as exc:
            # RFC 9110 15.6.3/15.6.5: a bad or missing upstream answer is the gateway's 502/504
            code = 504 if isinstance(exc, TimeoutError) else 502
            log.info("proxy: upstream for %s %s failed: %s", ex.method, ex.target, exc or "timeout")
            writer.write(_response(ex, code, _REASONS[code], close=True))
            await writer.drain()
            return False, False
        up.served += 1
        chunked = "chunked" in head.tokens("Transfer-Encoding")
        bodyless = ex.method == "HEAD" or status in (204, 304) or 100 <= status < 200
        length = None if chunked or bodyless else head.get("Content-Length")
        # RFC 9112 9.3: the upstream persists unless it says close (HTTP/1.0: unless it says keep-alive)
        up_tokens = head.tokens("Connection")
        upstream_close = (not chunked and length is None and not bodyless) or status == 101 or (
            "close" in up_tokens or (head.start[0] == "HTTP/1.0" and "keep-alive" not in up_tokens))
        if status == 401 and _connection_auth(head):
            pool.pin(up)
        pinned = up is pool.pinned
        # RFC 9112 7.1: no chunked coding to an HTTP/1.0 client: the bare body, ended by close
        dechunk = chunked and not bodyless and ex.http10
        until_close = not bodyless and ((not chunked and length is None) or dechunk)
        client_close = until_close or (pinned and upstream_close)
        dropped = _HOP_BY_HOP | up_tokens
        lines = [f"HTTP/1.1 {head.start[1]} {head.start[2]}"]
        lines += [f"{k}: {v}" for k, v in head.fields if k.lower() not in dropped]
        lines += [f"{k}: {v}" for k, v in decision.headers]
        if pinned:
            # RFC 4559 6: the client may rely on this connection staying bound to the one upstream
            lines.append("Proxy-Support: Session-Based-Authentication")
        if chunked and not bodyless and not dechunk:
            lines.append("Transfer-Encoding: chunked")
        lines += ex.connection_lines(client_close)
        out = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        timeout = self.idle_timeout
        if length is not None and length_value <= CHUNK:
            # a small body goes out with the head, in one segment; a stall or a break mid-body still sends
            # what arrived and ends both connections, as below
            try:
                body = await within(timeout, up.reader.readexactly(length_value))
            except asyncio.IncompleteReadError as exc:
                writer.write(out + exc.partial)
                raise ConnectionError("upstream closed mid-body") from None
            except TimeoutError:
                writer.write(out)
                raise
            writer.write(out + body)
            await writer.drain()
            return not client_close, not upstream_close
        writer.write(out)
        # once the head is sent, an upstream that stalls or breaks only ends both connections
        if bodyless:
            pass
        elif chunked:
            await relay_chunked(up.reader, writer, timeout, dechunk=dechunk)
        elif length is not None:
            await relay_exactly(up.reader, writer, length_value, timeout)
        else:
            await pump(up.reader, writer, timeout, eof=False)
        await writer.drain()
        return not client_close, not upstream_close

    async def close_connections(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class _StaleUpstream(Exception):
    """A reused upstream connection closed before answering: the request may go on a new one."""


def _connection_auth(head: Head) -> bool:
    """An origin's 401 that asks for NTLM or Negotiate, which authenticate the connection (RFC 4559)."""
    offers = [v.strip().split(" ", 1)[0].lower() for k, v in head.fields if k.lower() == "www-authenticate"]
    return any(scheme in _CONNECTION_AUTH for value in offers for scheme in value.split(","))


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


@contextlib.contextmanager
def running_proxy(
    config: HttpAuthConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    allow_target: Callable[[str, int], bool] | None = None,
    idle_timeout: float = 30.0,
    identity_header: str | None = None,
) -> Iterator[RunningServer]:
    """The proxy on its own event loop in a background thread; stopped when the block exits.
    `config.role` is Role.PROXY for an explicit proxy (407); Role.ORIGIN makes it a transparent
    (intercepting) one: 401 with WWW-Authenticate, origin-form requests forwarded to their Host."""
    proxy = NtlmProxy(config, allow_target=allow_target, idle_timeout=idle_timeout,
                      identity_header=identity_header)
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
        yield RunningServer(*where[0])
    finally:
        loop.call_soon_threadsafe(tasks[0].cancel)
        thread.join(timeout=10)
