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
from smb2auth.http.auth import ConnectionAuth, HttpAuthConfig, ServerMechanism
from smb2auth.http.client import request_with_ntlm
from smb2auth.http.headers import AuthScheme, TokenKind, find_challenge
from smb2auth.http.mechanisms import ntlm_http_config
from smb2auth.http.wsgi import running_http_server
from smb2auth.ntlm import NtlmClient, NtlmServer

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
        first = conn.handle("NTLM " + base64.b64encode(client.step(None) or b"").decode())
        challenge = find_challenge([v for _, v in first.headers], AuthScheme.NTLM)
        done = conn.handle("NTLM " + base64.b64encode(client.step(challenge) or b"").decode())
        assert done.allowed

    return handshake


class PyspnegoMech:
    """pyspnego's NTLM acceptor with the ServerMechanism interface (for the comparison only)."""

    def __init__(self) -> None:
        import spnego

        self._ctx: Any = spnego.server(protocol="ntlm")

    @property
    def complete(self) -> bool:
        return bool(self._ctx.complete)

    def step(self, token: bytes) -> bytes | None:
        out: bytes | None = self._ctx.step(token)
        return out

    async def astep(self, token: bytes) -> bytes | None:
        return self.step(token)


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

        def peer_factory(scheme: AuthScheme, kind: TokenKind) -> ServerMechanism:
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
