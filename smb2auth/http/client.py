"""NTLM / Negotiate for stdlib `http.client`: the handshake kept on one connection, 401 and 407 alike.

`request_with_ntlm(conn, "GET", "/", username=..., password=...)` runs the three legs on `conn` (an
`http.client.HTTPConnection`, kept open by HTTP/1.1) and returns the final response unread.
`proxy=True` authenticates to an explicit proxy (407, Proxy-Authorization) instead of the origin.
`open_tunnel` / `TunnelHTTPConnection` do the same for a CONNECT through a proxy that demands NTLM.

A proxy that closes the connection after its first 407 (ISA/TMG do, when the request carried no
credentials) is handled: the handshake restarts on a new connection. A connection closed *after* a
challenge token cannot continue (the handshake belongs to that connection): that raises HttpAuthError.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from smb2auth.errors import Smb2AuthError
from smb2auth.http.auth import Role
from smb2auth.http.headers import AuthScheme, authorization_value, find_challenge


class HttpAuthError(Smb2AuthError):
    """The HTTP authentication could not proceed (not the same as a refused login, which is a 401/407)."""


class ClientContext(Protocol):
    """What an NtlmClient or SpnegoClient offers."""

    def step(self, token: bytes | None) -> bytes | None: ...


ContextFactory = Callable[[], ClientContext]

_RETRYABLE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


def ntlm_context_factory(
    username: str,
    password: str = "",
    *,
    domain: str = "",
    workstation: str = "",
    nt_hash: bytes | None = None,
    scheme: AuthScheme | str = AuthScheme.NTLM,
    **ntlm_options: Any,
) -> ContextFactory:
    """Fresh NtlmClient contexts (wrapped in SpnegoClient for the Negotiate scheme)."""
    from smb2auth.ntlm import NtlmClient
    from smb2auth.spnego.context import SpnegoClient

    wrap = AuthScheme(scheme) is AuthScheme.NEGOTIATE

    def make() -> ClientContext:
        ntlm = NtlmClient(username, password, nt_hash=nt_hash, domain=domain, workstation=workstation,
                          **ntlm_options)
        return SpnegoClient(mech=ntlm) if wrap else ntlm

    return make


def _body_ok(body: object) -> None:
    if body is not None and not isinstance(body, (bytes, bytearray, str)):
        raise TypeError("the body is sent once per handshake leg: pass bytes or str")


def request_with_auth(
    conn: http.client.HTTPConnection,
    method: str,
    url: str,
    body: bytes | str | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    context_factory: ContextFactory,
    scheme: AuthScheme | str = AuthScheme.NTLM,
    proxy: bool = False,
    preemptive: bool = True,
    max_legs: int = 4,
) -> http.client.HTTPResponse:
    """Send `method url` on `conn`, authenticating with contexts from `context_factory`.

    `preemptive` starts with the first token; otherwise the request goes out bare first and the
    handshake starts only if the server answers 401/407 offering `scheme`.
    Returns the final response with its body unread (a 401/407 when the login was refused).
    """
    _body_ok(body)
    scheme = AuthScheme(scheme)
    role = Role.PROXY if proxy else Role.ORIGIN
    base = dict(headers or {})

    def send(token: bytes | None) -> http.client.HTTPResponse:
        hdrs = dict(base)
        if token is not None:
            hdrs[role.credentials_header] = authorization_value(scheme, token)
        conn.request(method, url, body=body, headers=hdrs)
        return conn.getresponse()

    if not preemptive:
        first = send(None)
        if first.status != role.status or find_challenge(_challenges(first, role), scheme) is None:
            return first
        first.read()
        if first.will_close:
            conn.close()

    for attempt in range(2):
        ctx = context_factory()
        token = ctx.step(None)
        try:
            resp = send(token)
        except _RETRYABLE:
            # ISA/TMG close after a 407 without saying so: start again on a fresh connection
            conn.close()
            if attempt:
                raise
            continue
        for _ in range(max_legs):
            challenge = find_challenge(_challenges(resp, role), scheme)
            if resp.status != role.status:
                if challenge:
                    # RFC 4559 5: verify the server's final token (SPNEGO mechListMIC)
                    ctx.step(challenge)
                return resp
            if not challenge:
                if resp.will_close and attempt == 0 and token is not None and _is_first(token):
                    resp.read()
                    conn.close()
                    break
                return resp
            resp.read()
            if resp.will_close:
                raise HttpAuthError(f"{role.status} challenge on a connection the server closes: "
                                    "the handshake cannot continue")
            token = ctx.step(challenge)
            if token is None:
                raise HttpAuthError("the client context produced no token for the challenge")
            resp = send(token)
        else:
            raise HttpAuthError(f"no result after {max_legs} legs")
    raise HttpAuthError("the server closed the connection after every first leg")


def _is_first(token: bytes) -> bool:
    return token.startswith(b"NTLMSSP\x00\x01") or token[:1] == b"\x60"


def _challenges(resp: http.client.HTTPResponse, role: Role) -> list[str]:
    return resp.headers.get_all(role.challenge_header) or []


def request_with_ntlm(
    conn: http.client.HTTPConnection,
    method: str,
    url: str,
    body: bytes | str | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    username: str,
    password: str = "",
    domain: str = "",
    workstation: str = "",
    nt_hash: bytes | None = None,
    scheme: AuthScheme | str = AuthScheme.NTLM,
    proxy: bool = False,
    preemptive: bool = True,
) -> http.client.HTTPResponse:
    """`request_with_auth` with smb2auth's NtlmClient (SpnegoClient around it for Negotiate)."""
    factory = ntlm_context_factory(username, password, domain=domain, workstation=workstation,
                                   nt_hash=nt_hash, scheme=scheme)
    return request_with_auth(conn, method, url, body, headers, context_factory=factory, scheme=scheme,
                             proxy=proxy, preemptive=preemptive)


class _RawSocketFile:
    """Lets http.client.HTTPResponse parse from a socket without buffering past the response."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def makefile(self, mode: str, *args: Any, **kwargs: Any) -> Any:
        return self._sock.makefile("rb", buffering=0)


def _connect_once(
    proxy: tuple[str, int], target: str, token: bytes | None, scheme: AuthScheme, timeout: float | None,
    sock: socket.socket | None, headers: Mapping[str, str],
) -> tuple[socket.socket, http.client.HTTPResponse]:
    if sock is None:
        sock = socket.create_connection(proxy, timeout=timeout)
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if token is not None:
        lines.append(f"Proxy-Authorization: {authorization_value(scheme, token)}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    resp = http.client.HTTPResponse(_RawSocketFile(sock), method="CONNECT")  # type: ignore[arg-type]
    resp.begin()
    if resp.status != 200:
        resp.read()
    return sock, resp


def open_tunnel(
    proxy: tuple[str, int],
    host: str,
    port: int,
    *,
    context_factory: ContextFactory | None = None,
    scheme: AuthScheme | str = AuthScheme.NTLM,
    timeout: float | None = None,
    headers: Mapping[str, str] | None = None,
    max_legs: int = 4,
) -> socket.socket:
    """CONNECT host:port through `proxy`, answering its 407 with NTLM/Negotiate on the same connection.
    Returns the connected socket (the tunnel); raises HttpAuthError when the proxy refuses."""
    scheme = AuthScheme(scheme)
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    extra = dict(headers or {})
    sock: socket.socket | None = None
    ctx = context_factory() if context_factory is not None else None
    token = ctx.step(None) if ctx is not None else None
    try:
        for attempt in range(max_legs + 1):
            try:
                sock, resp = _connect_once(proxy, target, token, scheme, timeout, sock, extra)
            except _RETRYABLE:
                if sock is not None:
                    sock.close()
                sock = None
                if attempt or ctx is None:
                    raise
                ctx = context_factory() if context_factory is not None else None
                token = ctx.step(None) if ctx is not None else None
                continue
            if resp.status == 200:
                return sock
            challenge = find_challenge(resp.headers.get_all("Proxy-Authenticate") or [], scheme)
            if resp.status != 407 or ctx is None or challenge is None:
                raise HttpAuthError(f"proxy answered CONNECT with {resp.status} {resp.reason}")
            if resp.will_close:
                sock.close()
                sock = None
            if not challenge:
                if attempt == 0 and sock is None:
                    ctx = context_factory() if context_factory is not None else None
                    token = ctx.step(None) if ctx is not None else None
                    continue
                raise HttpAuthError("proxy refused the credentials (407)")
            if sock is None:
                raise HttpAuthError("407 challenge on a connection the proxy closes")
            token = ctx.step(challenge)
        raise HttpAuthError(f"no tunnel after {max_legs} legs")
    except BaseException:
        if sock is not None:
            sock.close()
        raise


class TunnelHTTPConnection(http.client.HTTPConnection):
    """An HTTPConnection to host:port through a CONNECT tunnel that `open_tunnel` authenticates."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        proxy: tuple[str, int],
        context_factory: ContextFactory | None = None,
        scheme: AuthScheme | str = AuthScheme.NTLM,
        timeout: float | None = None,
    ) -> None:
        super().__init__(host, port, timeout=timeout) if timeout is not None else super().__init__(host, port)
        self._proxy_address = proxy
        self._context_factory = context_factory
        self._scheme = AuthScheme(scheme)
        self._tunnel_timeout = timeout

    def connect(self) -> None:
        self.sock = open_tunnel(self._proxy_address, self.host, self.port or 80,
                                context_factory=self._context_factory, scheme=self._scheme,
                                timeout=self._tunnel_timeout)
