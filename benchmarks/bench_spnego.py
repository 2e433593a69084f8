"""SPNEGO + NTLMv2 handshakes per second (client + server + LocalAuthority, NTLM MIC and mechListMIC):
smb2auth vs pyspnego 0.12 `protocol="negotiate"`, measured in the same run.

    python benchmarks/bench_spnego.py [--seconds N] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import time
from collections.abc import Callable

from smb2auth.authority.local import LocalAuthority
from smb2auth.ntlm import NtlmClient, NtlmServer, TargetInfo
from smb2auth.spnego import SpnegoClient, SpnegoServer

USER, PASSWORD, DOMAIN = "alice", "Secret1", "DOM"


def ours() -> Callable[[], None]:
    authority = LocalAuthority()
    authority.add_user(USER, PASSWORD)
    target = TargetInfo()

    def handshake() -> None:
        server = SpnegoServer(NtlmServer(authority, target=target))
        client = SpnegoClient(NtlmClient(USER, PASSWORD, domain=DOMAIN))
        token = client.step(server.initial_token())
        while token is not None:
            token = client.step(server.step(token))
        assert server.complete and client.complete and server.mic_exchanged

    return handshake


def pyspnego() -> Callable[[], None]:
    import spnego

    def handshake() -> None:
        client = spnego.client(f"{DOMAIN}\\{USER}", PASSWORD, protocol="negotiate")
        server = spnego.server(protocol="negotiate")
        token = client.step()
        while not client.complete:
            token = client.step(server.step(token))
        assert server.complete

    return handshake


def rate(fn: Callable[[], None], seconds: float) -> float:
    fn()
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(20):
            fn()
        count += 20
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--profile", action="store_true", help="cProfile our handshake instead")
    args = parser.parse_args()
    fn = ours()
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(lambda: [fn() for _ in range(2000)])
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return
    with tempfile.NamedTemporaryFile("w", suffix=".ntlm", delete=False) as users:
        users.write(f"{DOMAIN}:{USER}:{PASSWORD}\n")
    os.environ["NTLM_USER_FILE"] = users.name
    try:
        ours_rate = rate(fn, args.seconds)
        try:
            theirs_rate: float | None = rate(pyspnego(), args.seconds)
        except ImportError:
            theirs_rate = None
    finally:
        os.unlink(users.name)
    print(f"smb2auth  SPNEGO+NTLMv2 handshakes/s: {ours_rate:10.0f}")
    if theirs_rate is None:
        print("pyspnego not installed (pip install -e '.[bench]')")
        return
    print(f"pyspnego  SPNEGO+NTLMv2 handshakes/s: {theirs_rate:10.0f}")
    print(f"ratio smb2auth/pyspnego: {ours_rate / theirs_rate:.1f}x")


if __name__ == "__main__":
    main()
