"""One plain-HTTP request forwarded by the proxy: the target parsed (RFC 9112 3.2.2), the request rewritten
for the origin (hop-by-hop fields dropped, RFC 9110 7.6.1), sent on the client connection's upstream
(kept alive or pinned, upstream.py), and the origin's response relayed back.

Parsed targets are remembered (a client's keep-alive requests usually repeat one), and the response head
and a small body go out to the client in one write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.parse
from collections.abc import Callable

from smb2auth.http.auth import Decision
from smb2auth.http.exchange import Exchange, response
from smb2auth.http.upstream import Origin, Upstream, UpstreamPool
from smb2auth.http.wire import (
    CHUNK,
    BadRequest,
    Head,
    content_length,
    parse_head,
    pump,
    read_head,
    relay_chunked,
    relay_exactly,
)

log = logging.getLogger("smb2auth.http.proxy")

# RFC 9110 7.6.1: hop-by-hop fields are not forwarded
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
    "trailer", "transfer-encoding", "upgrade",
})
_CONNECTION_AUTH = ("ntlm", "negotiate")
_CONNECTION_AUTH_CREDENTIALS = frozenset({"ntlm", "negotiate", "kerberos"})
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_KNOWN_TARGETS = 256


class StaleUpstream(Exception):
    """A reused upstream connection closed before answering: the request may go on a new one."""


def connection_auth(head: Head) -> bool:
    """An origin's 401 that asks for NTLM or Negotiate, which authenticate the connection (RFC 4559)."""
    offers = [v.strip().split(" ", 1)[0].lower() for k, v in head.fields if k.lower() == "www-authenticate"]
    return any(scheme in _CONNECTION_AUTH for value in offers for scheme in value.split(","))


def authenticates_connection(head: Head) -> bool:
    """A request whose Authorization authenticates the connection it goes on (NTLM, Negotiate, Kerberos:
    RFC 4559; an origin may take a one-leg Kerberos login without a 401 first), as Squid's
    clientCheckPinning marks such a request for pinning."""
    values = (v for k, v in head.fields if k.lower() == "authorization")
    return any(v.strip().split(" ", 1)[0].lower() in _CONNECTION_AUTH_CREDENTIALS for v in values)


class Forwarder:
    """Forwards a client connection's plain-HTTP requests; `transparent` takes origin-form targets (the
    origin in Host) and keeps the client's Authorization to itself; `identity_header` names the field
    that carries DOMAIN\\user to the origin (a client's own copy of it is dropped)."""

    def __init__(self, *, transparent: bool, idle_timeout: float, identity_header: str | None,
                 permitted: Callable[[str, int], bool]) -> None:
        self.transparent = transparent
        self.idle_timeout = idle_timeout
        self.identity_header = identity_header
        self._permitted = permitted
        dropped = set(HOP_BY_HOP) | {"expect", "content-length"}
        if transparent:
            dropped.add("authorization")
        if identity_header:
            dropped.add(identity_header.lower())
        self._dropped_request = frozenset(dropped)
        self._targets: dict[str, tuple[Origin, str, str]] = {}

    def _target(self, target: str) -> tuple[Origin, str, str] | None:
        """(origin, origin-form path, Host value) of an absolute http:// target; None for any other
        scheme; BadRequest for a bad port."""
        known = self._targets.get(target)
        if known is not None:
            return known
        url = urllib.parse.urlsplit(target)
        if url.scheme.lower() != "http" or not url.hostname:
            return None
        try:
            port = url.port or 80
        except ValueError:
            raise BadRequest(400, "bad port in request target") from None
        path = urllib.parse.urlunsplit(("", "", url.path or "/", url.query, ""))
        parsed = ((url.hostname, port), path, url.netloc.rpartition("@")[2])
        if len(self._targets) >= _KNOWN_TARGETS:
            self._targets.clear()
        self._targets[target] = parsed
        return parsed

    async def forward(
        self, ex: Exchange, head: Head, body: bytes, writer: asyncio.StreamWriter, pool: UpstreamPool,
        decision: Decision,
    ) -> bool:
        """Forward one request and relay its response; whether the client connection goes on."""
        method, target, _ = head.start
        if self.transparent and target.startswith("/"):
            # an intercepting proxy sees origin-form requests: the target is in Host (RFC 9112 3.2.1)
            target = f"http://{head.get('Host') or ''}{target}"
        parsed = self._target(target)
        if parsed is None:
            writer.write(response(ex, 501, close=True,
                                  body=b"only absolute http:// URIs and CONNECT are proxied\n"))
            await writer.drain()
            return False
        origin, path, netloc = parsed
        if not self._permitted(*origin):
            writer.write(response(ex, 403))
            await writer.drain()
            return True
        pinned = pool.pinned
        if pinned is not None and pinned.origin != origin:
            # RFC 4559 6: a client connection pinned to one origin's connection is never handed another
            writer.write(response(ex, 503, close=True, body=b"this connection is pinned to another origin\n"))
            await writer.drain()
            return False
        connection = head.tokens("Connection")
        dropped = self._dropped_request | connection if connection else self._dropped_request
        lines = [f"{method} {path} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in head.fields if k.lower() not in dropped]
        if self.identity_header and decision.identity is not None:
            lines.append(f"{self.identity_header}: {decision.identity.qualified_name}")
        if head.get("Host") is None:
            lines.append(f"Host: {netloc}")
        if body or method in _WITH_BODY:
            lines.append(f"Content-Length: {len(body)}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        if pinned is not None:
            if not pinned.usable:
                # the pinned upstream closed: so does the client connection (upstream.py)
                pool.give_back(pinned, False)
                return False
            return await self._exchange(ex, pinned, request, writer, pool, decision, False)
        # RFC 9110 9.2.2: only an idempotent request may be retried when a kept-alive connection turns out
        # closed; any other goes on a new connection (RFC 9112 9.3.1)
        idempotent = method in _IDEMPOTENT
        # an upstream that carried the client's own connection login is the client's alone from then on
        pin = not self.transparent and authenticates_connection(head)
        for attempt in range(2 if idempotent else 1):
            try:
                up = await pool.take(origin, fresh=attempt > 0 or not idempotent)
            except (OSError, TimeoutError) as exc:
                status = 504 if isinstance(exc, TimeoutError) else 502
                writer.write(response(ex, status))
                await writer.drain()
                return True
            with contextlib.suppress(StaleUpstream):
                return await self._exchange(ex, up, request, writer, pool, decision, pin)
        raise BadRequest(502, "upstream closed without a response")

    async def _exchange(
        self, ex: Exchange, up: Upstream, request: bytes, writer: asyncio.StreamWriter, pool: UpstreamPool,
        decision: Decision, pin: bool,
    ) -> bool:
        """Send `request` on `up` and relay the response; `up` goes back to the pool, stays pinned (`pin`:
        whatever the origin answers), or is closed. A reused, unpinned `up` that turns out closed raises
        StaleUpstream."""
        retryable = up.reused and up is not pool.pinned
        reusable = False
        try:
            try:
                up.writer.write(request)
                await up.writer.drain()
            except (ConnectionError, OSError):
                if retryable:
                    raise StaleUpstream from None
                raise
            keep, reusable = await self._relay_response(ex, up, writer, pool, decision, retryable, pin)
            return keep
        finally:
            pool.give_back(up, reusable)

    async def _upstream_head(self, ex: Exchange, up: Upstream, retryable: bool) -> tuple[Head, int]:
        """The upstream's final response head (1xx skipped); BadRequest when it is not one."""
        first = True
        while True:
            try:
                raw = await ex.read(read_head(up.reader), self.idle_timeout)
            except ConnectionError:
                if first and retryable:
                    raise StaleUpstream from None
                raise
            if raw is None:
                if first and retryable:
                    raise StaleUpstream
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
        self, ex: Exchange, up: Upstream, writer: asyncio.StreamWriter, pool: UpstreamPool,
        decision: Decision, retryable: bool, pin: bool,
    ) -> tuple[bool, bool]:
        """Relay one response; (the client connection goes on, the upstream one can carry another)."""
        try:
            head, status = await self._upstream_head(ex, up, retryable)
            length_value = content_length(head)
        except (BadRequest, TimeoutError) as exc:
            # RFC 9110 15.6.3/15.6.5: a bad or missing upstream answer is the gateway's 502/504
            code = 504 if isinstance(exc, TimeoutError) else 502
            log.info("proxy: upstream for %s %s failed: %s", ex.method, ex.target, exc or "timeout")
            writer.write(response(ex, code, close=True))
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
        if pin or (status == 401 and connection_auth(head)):
            pool.pin(up)
        pinned = up is pool.pinned
        # RFC 9112 7.1: no chunked coding to an HTTP/1.0 client: the bare body, ended by close
        dechunk = chunked and not bodyless and ex.http10
        until_close = not bodyless and ((not chunked and length is None) or dechunk)
        client_close = until_close or (pinned and upstream_close)
        dropped = HOP_BY_HOP | up_tokens if up_tokens else HOP_BY_HOP
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
                body = await ex.read(up.reader.readexactly(length_value), timeout)
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
