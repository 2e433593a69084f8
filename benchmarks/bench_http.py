"""NTLM over HTTP, handshakes per second: the sans-IO binding's overhead, and a full loopback handshake
(new keep-alive connection, three legs) with smb2auth's engine vs pyspnego's NTLM acceptor behind the
same HTTP server and the same client, in alternating rounds (medians). pyspnego's acceptor reads its
account from an smbpasswd-form NTLM_USER_FILE (the NT hash precomputed, as LocalAuthority holds it). The
server runs in a thread of this process: the rates are per wall-clock second and per CPU-second of the
process (client and server together; the client is the same for both).

    python benchmarks/bench_http.py [--seconds N] [--rounds N]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import machine, smbpasswd_users, spread, versions  # noqa: E402

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


def over_http(config: HttpAuthConfig, seconds: float) -> tuple[float, float]:
    """Handshakes per wall-clock second and per CPU-second of this process, for `seconds`."""
    with running_http_server(config) as server:

        def handshake() -> None:
            conn = http.client.HTTPConnection(*server.address, timeout=10)
            resp = request_with_ntlm(conn, "GET", "/", username=USER, password=PASSWORD, domain=DOMAIN)
            resp.read()
            conn.close()
            assert resp.status == 200

        handshake()
        count, wall0, cpu0 = 0, time.perf_counter(), time.process_time()
        while (elapsed := time.perf_counter() - wall0) < seconds:
            for _ in range(10):
                handshake()
            count += 10
        return count / elapsed, count / (time.process_time() - cpu0)


def rate(fn: Callable[[], None], seconds: float) -> float:
    """Calls per CPU-second of this process."""
    fn()
    count, start = 0, time.process_time()
    while (elapsed := time.process_time() - start) < seconds:
        for _ in range(10):
            fn()
        count += 10
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per contender and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, alternating (default 3)")
    args = parser.parse_args()
    try:
        import spnego  # noqa: F401
    except ImportError:
        print("pyspnego not installed (pip install -e '.[bench]')")
        return
    print(f"ours: {versions('smb2auth', 'pycryptodome', 'cryptography')}: smb2auth.http binding, "
          "NtlmServer + LocalAuthority (NT hash precomputed) behind smb2auth.http.wsgi.running_http_server")
    print(f"peer: {versions('pyspnego')}: spnego.server(protocol='ntlm') behind the same server and binding, "
          "NTLM_USER_FILE in smbpasswd form (hash precomputed)")
    print(f"both: client smb2auth.http.client.request_with_ntlm (NTLMv2, password), a new connection per "
          f"handshake; {machine()}")
    ours = ntlm_http_config(authority())
    raw = rate(raw_engine(), args.seconds)
    bound = rate(binding(ours), args.seconds)
    print(f"engine alone (NtlmClient+NtlmServer)      handshakes/CPU-s: {raw:8.0f}")
    print(f"through ConnectionAuth (headers, base64)  handshakes/CPU-s: {bound:8.0f}  "
          f"({bound / raw:.2f}x of engine)")

    def peer_factory(scheme: AuthScheme, kind: TokenKind) -> ServerHandshake:
        return PyspnegoMech()

    peer = HttpAuthConfig(peer_factory)
    mine: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    user = authority().get_user(USER)
    assert user is not None and user.lm_hash is not None
    with smbpasswd_users(DOMAIN, USER, user.lm_hash, user.nt_hash):
        for _ in range(args.rounds):
            mine.append(over_http(ours, args.seconds))
            theirs.append(over_http(peer, args.seconds))
    print(f"rounds: {args.rounds} x {args.seconds:g} s per contender, alternating; medians")
    for label, runs in (("smb2auth engine", mine), ("pyspnego acceptor", theirs)):
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        print(f"HTTP loopback, {label:18} handshakes/s: {wall:8.0f}   per CPU-s: {cpu:8.0f}")
    pairs = list(zip(mine, theirs, strict=True))
    print(f"ratio smb2auth/pyspnego over HTTP, per CPU-s: {spread([m[1] / t[1] for m, t in pairs], 2)}; "
          f"per wall-clock s: {spread([m[0] / t[0] for m, t in pairs], 2)}")


if __name__ == "__main__":
    main()
