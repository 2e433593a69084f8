"""NTLM over HTTP, handshakes per second: the sans-IO binding's overhead, and a full loopback handshake
(new keep-alive connection, three legs) with smb2auth's engine vs pyspnego's NTLM acceptor behind the
same HTTP server, measured in the same run.

    python benchmarks/bench_http.py [--seconds N]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

from smb2auth.authority.local import LocalAuthority
from smb2auth.errors import AuthenticationError, ProtocolStateError
from smb2auth.http.auth import ConnectionAuth, HandshakeIdentity, HttpAuthConfig, ServerHandshake, decide_sync
from smb2auth.http.client import request_with_ntlm
from smb2auth.http.headers import AuthScheme, TokenKind, find_challenge
from smb2auth.http.mechanisms import ntlm_http_config
from smb2auth.http.wsgi import running_http_server
from smb2auth.ntlm import NtlmClient, NtlmServer
from smb2auth.ntlm.authority import AnyAuthority, ValidationResult
from smb2auth.ntlm.events import Complete, Failed, HandshakeEvent, Send
from smb2auth.status import NtStatus

USER, PASSWORD, DOMAIN = "alice", "Secret1", "DOM"


def authority() -> LocalAuthority:
    local = LocalAuthority()
    local.add_user(USER, PASSWORD)
    return local


def raw_engine() -> Callable[[], None]:
    local = authority()

    def handshake() -> None:
        client, server = NtlmClient(USER, PASSWORD, domain=DOMAIN), NtlmServer(local)
        server.step(client.step(server.step(client.step(None) or b"")) or b"")
        assert server.complete

    return handshake


def binding(config: HttpAuthConfig) -> Callable[[], None]:
    def handshake() -> None:
        client, conn = NtlmClient(USER, PASSWORD, domain=DOMAIN), ConnectionAuth(config, "bench")
        first = decide_sync(conn, "NTLM " + base64.b64encode(client.step(None) or b"").decode())
        challenge = find_challenge([v for _, v in first.headers], AuthScheme.NTLM)
        done = decide_sync(conn, "NTLM " + base64.b64encode(client.step(challenge) or b"").decode())
        assert done.allowed

    return handshake


class PyspnegoMech:
    """pyspnego's NTLM acceptor as a ServerHandshake (for the comparison only): it checks the password
    itself (NTLM_USER_FILE), so it never asks for a validation."""

    def __init__(self) -> None:
        import spnego

        self._ctx: Any = spnego.server(protocol="ntlm")

    @property
    def authority(self) -> AnyAuthority:
        raise ProtocolStateError("pyspnego's acceptor has no authority port")

    def receive(self, token: bytes) -> HandshakeEvent:
        try:
            out: bytes | None = self._ctx.step(token)
        except Exception as exc:  # pyspnego's own errors: a refused login
            return Failed(AuthenticationError(NtStatus.STATUS_LOGON_FAILURE, str(exc)))
        return Complete(out) if self._ctx.complete else Send(out or b"")

    def validation_done(self, ticket: int, result: ValidationResult) -> HandshakeEvent:
        return Failed(ProtocolStateError("pyspnego's acceptor never asks for a validation"))

    def wrap(self, data: bytes) -> bytes:
        return bytes(self._ctx.wrap(data).data)

    def unwrap(self, token: bytes) -> bytes:
        return bytes(self._ctx.unwrap(token).data)

    def identity(self) -> HandshakeIdentity:
        return HandshakeIdentity(user=USER, domain=DOMAIN)


def over_http(config: HttpAuthConfig, seconds: float) -> float:
    with running_http_server(config) as server:

        def handshake() -> None:
            conn = http.client.HTTPConnection(*server.address, timeout=10)
            resp = request_with_ntlm(conn, "GET", "/", username=USER, password=PASSWORD, domain=DOMAIN)
            resp.read()
            conn.close()
            assert resp.status == 200

        return rate(handshake, seconds)


def rate(fn: Callable[[], None], seconds: float) -> float:
    fn()
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(10):
            fn()
        count += 10
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    ours = ntlm_http_config(authority())
    raw = rate(raw_engine(), args.seconds)
    bound = rate(binding(ours), args.seconds)
    print(f"engine alone (NtlmClient+NtlmServer)      handshakes/s: {raw:8.0f}")
    print(f"through ConnectionAuth (headers, base64)  handshakes/s: {bound:8.0f}  "
          f"({bound / raw:.2f}x of engine)")
    http_ours = over_http(ours, args.seconds)
    print(f"HTTP loopback, smb2auth engine            handshakes/s: {http_ours:8.0f}")
    with tempfile.NamedTemporaryFile("w", suffix=".ntlm", delete=False) as users:
        users.write(f"{DOMAIN}:{USER}:{PASSWORD}\n")
    os.environ["NTLM_USER_FILE"] = users.name
    try:
        PyspnegoMech()

        def peer_factory(scheme: AuthScheme, kind: TokenKind) -> ServerHandshake:
            return PyspnegoMech()

        http_peer = over_http(HttpAuthConfig(peer_factory), args.seconds)
    except ImportError:
        print("pyspnego not installed (pip install -e '.[bench]')")
        return
    finally:
        os.unlink(users.name)
    print(f"HTTP loopback, pyspnego acceptor          handshakes/s: {http_peer:8.0f}")
    print(f"ratio smb2auth/pyspnego over HTTP: {http_ours / http_peer:.2f}x")


if __name__ == "__main__":
    main()
