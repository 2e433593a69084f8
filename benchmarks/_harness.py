"""Shared by the in-process benchmarks: alternate ours and the peer's rounds, print rates and the ratio.

Rounds alternate (ours, theirs, ours, theirs, ...) so that a change in machine load hits both alike; the
figures printed are the medians of the rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator

Handshake = Callable[[], None]


@contextlib.contextmanager
def pyspnego_users(domain: str, user: str, password: str) -> Iterator[None]:
    """pyspnego's NTLM acceptor reads its accounts from the file named by $NTLM_USER_FILE."""
    with tempfile.NamedTemporaryFile("w", suffix=".ntlm", delete=False) as users:
        users.write(f"{domain}:{user}:{password}\n")
    old = os.environ.get("NTLM_USER_FILE")
    os.environ["NTLM_USER_FILE"] = users.name
    try:
        yield
    finally:
        os.unlink(users.name)
        if old is None:
            del os.environ["NTLM_USER_FILE"]
        else:
            os.environ["NTLM_USER_FILE"] = old


def rate(fn: Handshake, seconds: float) -> float:
    fn()
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(20):
            fn()
        count += 20
    return count / elapsed


def compare(what: str, ours: Handshake, theirs: Callable[[], Handshake], peer: str) -> None:
    """The benchmark's command line: --seconds per round, --rounds, --profile (ours under cProfile)."""
    parser = argparse.ArgumentParser(description=f"{what}: smb2auth vs {peer}")
    parser.add_argument("--seconds", type=float, default=1.0, help="seconds per round (default 1)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each, alternating (default 5)")
    parser.add_argument("--profile", action="store_true", help="cProfile our handshake instead")
    args = parser.parse_args()
    if args.profile:
        profiler = cProfile.Profile()
        def many() -> None:
            for _ in range(2000):
                ours()

        profiler.runcall(many)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return
    try:
        peer_fn = theirs()
    except ImportError:
        print(f"smb2auth  {what}/s: {rate(ours, args.seconds):10.0f}")
        print(f"{peer} not installed (pip install -e '.[bench]')")
        return
    mine: list[float] = []
    other: list[float] = []
    for _ in range(args.rounds):
        mine.append(rate(ours, args.seconds))
        other.append(rate(peer_fn, args.seconds))
    ratios = sorted(m / o for m, o in zip(mine, other, strict=True))

    def rounds(values: list[float]) -> str:
        return ", ".join(f"{v:.0f}" for v in values)

    print(f"smb2auth  {what}/s: {statistics.median(mine):10.0f}   (rounds: {rounds(mine)})")
    print(f"{peer:9} {what}/s: {statistics.median(other):10.0f}   (rounds: {rounds(other)})")
    print(f"ratio smb2auth/{peer}: {statistics.median(ratios):.1f}x "
          f"(per round {ratios[0]:.1f}x .. {ratios[-1]:.1f}x)")
