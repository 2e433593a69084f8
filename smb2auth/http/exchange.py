"""What the proxy knows of the request it answers on one client connection, and the responses it makes
itself (407, 403, 502, ...): RFC 9112 9.3's persistence rules, said back in Connection (and
Proxy-Connection to a client that sent it)."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from smb2auth.http.wire import Head, IdleTimer, within

T = TypeVar("T")

REASONS = {400: "Bad Request", 407: "Proxy Authentication Required", 401: "Unauthorized",
           403: "Forbidden", 411: "Length Required", 413: "Content Too Large", 431:
           "Request Header Fields Too Large", 501: "Not Implemented", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout"}


@dataclass
class Exchange:
    """The request being answered: its method and target, and whether its connection persists; `timer`
    bounds every read the connection's task makes (client and upstream) by the idle timeout."""

    method: str = ""
    target: str = ""
    close: bool = False
    http10: bool = False
    proxy_connection: bool = False
    timer: IdleTimer | None = None

    async def read(self, step: Awaitable[T], timeout: float) -> T:
        """`await step` within the idle timeout: the connection's timer, or `timeout` without one."""
        if self.timer is None:
            return await within(timeout, step)
        return await self.timer.run(step)

    def reset(self) -> None:
        self.method, self.target, self.close, self.http10, self.proxy_connection = "", "", False, False, False

    def start(self, head: Head) -> None:
        method, target, version = head.start
        tokens = head.tokens("Connection")
        proxy_connection = head.get("Proxy-Connection")
        if proxy_connection is not None:
            tokens |= head.tokens("Proxy-Connection")
        self.method, self.target = method, target
        self.http10 = version == "HTTP/1.0"
        self.proxy_connection = proxy_connection is not None
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


def response(ex: Exchange, status: int, reason: str | None = None,
             headers: tuple[tuple[str, str], ...] = (), *, close: bool = False,
             body: bytes | None = None) -> bytes:
    """A response of the proxy's own, with a text body (its status line unless `body` is given)."""
    reason = reason or REASONS.get(status, "Error")
    payload = f"{status} {reason}\n".encode() if body is None else body
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers),
             "Content-Type: text/plain; charset=utf-8", f"Content-Length: {len(payload)}",
             *ex.connection_lines(close)]
    # RFC 9110 9.3.2: a response to HEAD carries no content (Content-Length still says GET's)
    if ex.method == "HEAD":
        payload = b""
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload
