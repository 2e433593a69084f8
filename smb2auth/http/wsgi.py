"""WSGI: NTLM/Negotiate middleware, and a keep-alive (HTTP/1.1) server built on wsgiref/http.server.

Connection identity. NTLM over HTTP authenticates a TCP connection, so the middleware needs to know
which connection a request arrived on. It reads `environ["smb2auth.connection"]`: any weak-referenceable
object that is the same for every request of one connection and distinct across live connections
(`KeepAliveWSGIRequestHandler` puts itself there). Per-connection state lives in a WeakKeyDictionary
keyed by it, so it goes away with the connection. Any server exposing such an object can host the
middleware. Optionally `environ["smb2auth.close_connection"]`, a no-argument callable, lets the
middleware ask the server to close the connection after the response (WSGI forbids the application
from sending `Connection: close` itself).

wsgiref's own `WSGIRequestHandler` answers HTTP/1.0 and closes after every request, which breaks the
handshake; `KeepAliveWSGIServer` keeps connections open across requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import socket
import socketserver
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Any, cast
from wsgiref.handlers import SimpleHandler
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from smb2auth.authority.consult import consult, consult_sync
from smb2auth.http.auth import ConnectionAuth, Decision, HttpAuthConfig
from smb2auth.http.events import emit
from smb2auth.ntlm.authority import AnyAuthority, AsyncAuthority, ValidationRequest, ValidationResult
from smb2auth.ntlm.events import ValidationNeeded

log = logging.getLogger("smb2auth.http")

CONNECTION_KEY = "smb2auth.connection"
CLOSE_KEY = "smb2auth.close_connection"
IDENTITY_KEY = "smb2auth.identity"
CONTEXT_KEY = "smb2auth.context"

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
_ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None] | None

_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            407: "Proxy Authentication Required", 500: "Internal Server Error"}


class _AuthorityLoop:
    """One private event loop, in a daemon thread, for every AsyncAuthority call of one middleware: a
    request thread hands it the authority's coroutine and waits for the answer."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, authority: AnyAuthority, request: ValidationRequest) -> ValidationResult:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, name="smb2auth-http-authority",
                                                daemon=True)
                self._thread.start()
                self._loop = loop
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(consult(authority, request), loop).result()

    def close(self) -> None:
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


class NtlmAuthMiddleware:
    """Demands NTLM/Negotiate (and, when enabled, Basic) before passing a request to `app`.

    On success the request reaches `app` with `REMOTE_USER` (DOMAIN\\user), `AUTH_TYPE` (the scheme),
    `environ["smb2auth.identity"]` (an `Identity`) and `environ["smb2auth.context"]`, the connection's
    security context (`wrap`/`unwrap`, for WinRM's message encryption; None after Basic). A synchronous
    authority is called inline in the request's thread; an `AsyncAuthority` on the middleware's one private
    event loop (`close()` ends it). Login events go to the config's `on_login`, logged there.
    """

    def __init__(self, app: WSGIApp, config: HttpAuthConfig) -> None:
        self.app = app
        self.config = config
        self._states: weakref.WeakKeyDictionary[Any, ConnectionAuth] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._authority_loop = _AuthorityLoop()

    def connection_state(self, connection: Any, client: str = "") -> ConnectionAuth:
        with self._lock:
            state = self._states.get(connection)
            if state is None:
                state = ConnectionAuth(self.config, client)
                self._states[connection] = state
            return state

    def close(self) -> None:
        """Stop the private event loop of an AsyncAuthority, if one was started."""
        self._authority_loop.close()

    def decide(self, state: ConnectionAuth, header: str | None) -> Decision:
        """The request's Decision, the authority consulted in between; its login event emitted."""
        decision = state.receive(header)
        if isinstance(decision, ValidationNeeded):
            authority = state.authority
            if isinstance(authority, AsyncAuthority):
                result = self._authority_loop.run(authority, decision.request)
            else:
                result = consult_sync(authority, decision.request)
            decision = state.validation_done(decision.ticket, result)
        if decision.login is not None:
            emit(decision.login, self.config.on_login)
        return decision

    def _respond(
        self, decision: Decision, environ: dict[str, Any], start_response: StartResponse
    ) -> list[bytes]:
        status = decision.status or 500
        body = f"{status} {_REASONS.get(status, 'Error')}\n".encode()
        headers = [*decision.headers, ("Content-Type", "text/plain; charset=utf-8"),
                   ("Content-Length", str(len(body)))]
        if decision.close:
            closer = environ.get(CLOSE_KEY)
            if callable(closer):
                closer()
        start_response(f"{status} {_REASONS.get(status, 'Error')}", headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        connection = environ.get(CONNECTION_KEY)
        if connection is None:
            log.error("HTTP auth: the server puts no %r in the WSGI environ", CONNECTION_KEY)
            return self._respond(Decision(500, reason="no connection identity"), environ, start_response)
        client = f"{environ.get('REMOTE_ADDR', '')}:{environ.get('REMOTE_PORT', '')}".rstrip(":")
        state = self.connection_state(connection, client)
        decision = self.decide(state, environ.get(self.config.role.environ_key))
        if not decision.allowed:
            return self._respond(decision, environ, start_response)
        identity = decision.identity
        assert identity is not None
        environ["REMOTE_USER"] = identity.qualified_name
        environ["AUTH_TYPE"] = identity.scheme.value
        environ[IDENTITY_KEY] = identity
        environ[CONTEXT_KEY] = state.context
        if not decision.headers:
            return self.app(environ, start_response)
        extra = list(decision.headers)

        def start_with_token(status: str, headers: list[tuple[str, str]], exc_info: _ExcInfo = None) -> Any:
            return start_response(status, [*headers, *extra], exc_info)

        return self.app(environ, start_with_token)


def whoami_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """A test endpoint: answers JSON naming who logged in on this connection."""
    identity = environ.get(IDENTITY_KEY)
    answer: dict[str, Any] = {"user": None, "domain": None}
    if identity is not None:
        answer = {
            "user": identity.user, "domain": identity.domain, "workstation": identity.workstation,
            "scheme": identity.scheme.value, "response_kind": identity.response_kind,
            "guest": identity.guest, "anonymous": identity.anonymous,
            # the authority's account: a Netlogon DC names the user's SID and group SIDs
            "sid": identity.account.sid if identity.account is not None else None,
            "groups": list(identity.groups),
        }
    body = (json.dumps(answer) + "\n").encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


class _BodyReader(io.RawIOBase):
    """wsgi.input limited to the request's Content-Length, so an app cannot read into the next request."""

    def __init__(self, stream: Any, length: int, before_first_read: Callable[[], None] | None = None) -> None:
        self._stream = stream
        self.remaining = length
        self._before_first_read = before_first_read

    @property
    def awaiting_continue(self) -> bool:
        """The client waits for 100 Continue before sending a body nobody has asked for yet."""
        return self._before_first_read is not None and self.remaining > 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self.remaining)
        if want <= 0:
            return 0
        if self._before_first_read is not None:
            self._before_first_read()
            self._before_first_read = None
        data = self._stream.read(want)
        buffer[: len(data)] = data
        self.remaining -= len(data)
        return len(data)


class _SocketReader(io.RawIOBase):
    """The connection's rfile: each recv waits at most the idle timeout, and while a request head is
    being read, no longer than the head's deadline (set when its first byte arrives)."""

    def __init__(self, handler: KeepAliveWSGIRequestHandler) -> None:
        self._handler = handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        handler = self._handler
        timeout = handler.server.idle_timeout
        if handler.head_deadline is not None:
            left = handler.head_deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("request head not complete within head_timeout")
            timeout = min(timeout, left)
        handler.connection.settimeout(timeout)
        received: int = handler.connection.recv_into(buffer)
        if received and handler.reading_head and handler.head_deadline is None:
            handler.head_deadline = time.monotonic() + handler.server.head_timeout
        return received


class _KeepAliveHandler(SimpleHandler):
    http_version = "1.1"
    server_software = "smb2auth-http"
    request_handler: KeepAliveWSGIRequestHandler
    headers_sent: bool  # wsgiref's, absent from its stubs

    def cleanup_headers(self) -> None:
        super().cleanup_headers()
        # RFC 9112 9.6: a server that will close after this response says so in it
        headers = getattr(self, "headers", None)
        status = getattr(self, "status", None) or "500"
        if headers is not None and self.request_handler.decide_close(status, headers):
            headers["Connection"] = "close"
        elif headers is not None and self.request_handler.request_version == "HTTP/1.0":
            # RFC 9112 9.3: an HTTP/1.0 client keeps the connection only if the response says keep-alive
            headers["Connection"] = "keep-alive"

    def write(self, data: bytes) -> None:
        if self.request_handler.command != "HEAD":
            super().write(data)
            return
        # RFC 9110 9.3.2: HEAD gets the head GET would, without content (its length still counted)
        if not self.headers_sent:
            self.bytes_sent = len(data)
            self.send_headers()
        else:
            self.bytes_sent += len(data)

    def close(self) -> None:
        try:
            status = (getattr(self, "status", None) or "500").split(" ", 1)[0]
            self.request_handler.finished_response(
                status, getattr(self, "headers", None), int(getattr(self, "bytes_sent", 0))
            )
        finally:
            SimpleHandler.close(self)


MAX_DRAIN = 1 << 20
# http.server's log escaping: C0 and C1 control characters written as \xHH
_CONTROL_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 24\r\n"
         b"Connection: close\r\nRetry-After: 1\r\n\r\n503 Service Unavailable\n")


class KeepAliveWSGIRequestHandler(WSGIRequestHandler):
    """HTTP/1.1 with persistent connections; puts itself in the environ as the connection identity."""

    protocol_version = "HTTP/1.1"
    # errors in unparsable request lines still get a status line (the stdlib assumes HTTP/0.9)
    default_request_version = "HTTP/1.0"
    # wsgiref writes the status line and each header separately: buffer them, and no Nagle delay on
    # the handshake's small responses
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    server: KeepAliveWSGIServer
    body: _BodyReader | None = None
    reading_head = False
    expect_continue = False
    head_deadline: float | None = None

    def setup(self) -> None:
        super().setup()
        self.rfile.close()
        self.rfile = io.BufferedReader(_SocketReader(self))
        self.connection.settimeout(self.server.idle_timeout)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            # a peer that reset the connection leaves unflushable output: nothing to report
            with contextlib.suppress(OSError):
                super().finish()
        finally:
            self.server.track(self.connection, False)

    def handle(self) -> None:
        self.close_connection = True
        with contextlib.suppress(ConnectionError, TimeoutError, socket.timeout):
            self.handle_one_request()
            self.wfile.flush()
            while not self.close_connection:
                self.handle_one_request()
                self.wfile.flush()

    def handle_expect_100(self) -> bool:
        # RFC 9110 10.1.1: 100 Continue only when the app reads the body, i.e. after authentication
        self.expect_continue = True
        return True

    def _send_continue(self) -> None:
        self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        # as http.server escapes them (CPython gh-100001): no raw control bytes from a request line in a log
        log.debug("%s %s", self.address_string(), (format % args).translate(_CONTROL_ESCAPES))

    def request_close(self) -> None:
        self.close_connection = True

    def decide_close(self, status: str, headers: Any) -> bool:
        """Whether the connection closes after this response; called as its head is sent."""
        code = status.split(" ", 1)[0]
        # RFC 9112 6.3: without Content-Length (and no chunking from wsgiref) the body ends at close
        bodyless = self.command == "HEAD" or code in ("204", "304") or code.startswith("1")
        if headers.get("Content-Length") is None and not bodyless:
            self.close_connection = True
        if (headers.get("Connection") or "").lower() == "close":
            self.close_connection = True
        # an unread body too large to drain is not skipped: the connection ends instead
        if self.body is not None and (self.body.remaining > MAX_DRAIN or self.body.awaiting_continue):
            self.close_connection = True
        return self.close_connection

    def finished_response(self, status: str, headers: Any, sent: int) -> None:
        self.log_request(status, sent)
        if headers is None:
            self.close_connection = True

    def handle_one_request(self) -> None:
        self.reading_head, self.head_deadline = True, None
        try:
            self._handle_one_request()
        finally:
            self.reading_head, self.head_deadline = False, None

    def _handle_one_request(self) -> None:
        self.expect_continue = False
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline:
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            self.close_connection = True
            return
        if not self.parse_request():
            return
        self.reading_head, self.head_deadline = False, None
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.send_error(411, "chunked request bodies are not supported")
            self.close_connection = True
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.send_error(400, "bad Content-Length")
            self.close_connection = True
            return
        body = self.body = _BodyReader(self.rfile, length,
                                       self._send_continue if self.expect_continue else None)
        environ = self.get_environ()
        environ["REMOTE_PORT"] = str(self.client_address[1])
        environ[CONNECTION_KEY] = self
        environ[CLOSE_KEY] = self.request_close
        handler = _KeepAliveHandler(
            io.BufferedReader(body), cast("IO[bytes]", self.wfile), self.get_stderr(), environ,
            multithread=True,
        )
        handler.request_handler = self
        app = self.server.get_app()
        assert app is not None
        handler.run(app)
        if body.remaining > MAX_DRAIN or body.awaiting_continue:
            self.close_connection = True
        elif body.remaining and not self.close_connection:
            while body.read(65536):
                pass
        self.wfile.flush()


class KeepAliveWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """A threaded WSGI server whose connections persist (one thread per connection)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    idle_timeout = 60.0
    head_timeout = 60.0

    def __init__(
        self, address: tuple[str, int], app: WSGIApp, *, idle_timeout: float = 60.0,
        head_timeout: float | None = None, max_connections: int = 256,
    ) -> None:
        self.idle_timeout = idle_timeout
        self._slots = threading.BoundedSemaphore(max_connections)
        self.head_timeout = idle_timeout if head_timeout is None else head_timeout
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, KeepAliveWSGIRequestHandler)
        self.set_app(app)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            # at the cap: refuse at once rather than queue a thread per connection without bound
            log.warning("HTTP: %d connections open, refusing %s", len(self._open), client_address)
            with contextlib.suppress(OSError):
                request.settimeout(1.0)
                request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.debug("HTTP: connection from %s ended: %r", client_address, exc)
            return
        super().handle_error(request, client_address)

    def track(self, sock: socket.socket, opened: bool) -> None:
        with self._open_lock:
            if opened:
                self._open.add(sock)
            else:
                self._open.discard(sock)

    def server_close(self) -> None:
        super().server_close()
        with self._open_lock:
            open_now = list(self._open)
        for sock in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@dataclass
class RunningServer:
    """A server started by `running_http_server` / `running_proxy`: where it listens."""

    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)


@contextlib.contextmanager
def running_http_server(
    config: HttpAuthConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    app: WSGIApp = whoami_app,
    idle_timeout: float = 30.0,
    head_timeout: float | None = None,
    max_connections: int = 256,
) -> Iterator[RunningServer]:
    """Serve `app` behind `NtlmAuthMiddleware` in a background thread; stopped when the block exits.
    `idle_timeout` bounds each wait for the client; `head_timeout` (default: `idle_timeout`) bounds
    reading a whole request head, from its first byte; past `max_connections` open connections a new
    one is answered 503 and closed."""
    middleware = NtlmAuthMiddleware(app, config)
    server = KeepAliveWSGIServer((host, port), middleware,
                                 idle_timeout=idle_timeout, head_timeout=head_timeout,
                                 max_connections=max_connections)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="smb2auth-http-serve", daemon=True)
    thread.start()
    try:
        yield RunningServer(host, int(server.server_address[1]))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        middleware.close()
