"""Shared by the in-process benchmarks: alternate every contender's rounds, print medians, ratios, the floor.

Rounds alternate (ours, theirs, ..., the floor, then again) so that a change in machine load hits all
alike. Rates are per second of this process's CPU time; the figures printed are the medians of the
rounds, and each ratio is the median of the per-round ratios. The floor is the cost, measured in the
same rounds, of the cryptographic primitives a handshake cannot avoid, called directly on the libraries
that provide them (each benchmark lists them); our time is printed as a multiple of it.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import importlib.metadata
import os
import platform
import pstats
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

Handshake = Callable[[], object]
BENCH_HOST = "bench.example"
BENCH_SPN = f"cifs/{BENCH_HOST}"


def versions(*packages: str) -> str:
    """Each package's installed version; smb2auth's with its build (pure Python, or its cores compiled)."""
    from smb2auth._compiled import build

    found = []
    for name in packages:
        try:
            version = importlib.metadata.version(name)
            found.append(f"{name} {version} ({build()})" if name == "smb2auth" else f"{name} {version}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def pyspnego_credentials(
    user: str, domain: str, password: str, nt_hash: bytes, *, given_password: bool
) -> tuple[object, str | None]:
    """pyspnego's initiator credentials: the password, or the NT hash (spnego.NTLMHash: no MD4 each time)."""
    import spnego

    if given_password:
        return f"{domain}\\{user}", password
    return spnego.NTLMHash(f"{domain}\\{user}", nt_hash=nt_hash.hex()), None


def machine() -> str:
    return f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores"


@contextlib.contextmanager
def smbpasswd_users(domain: str, user: str, lm_hash: bytes, nt_hash: bytes) -> Iterator[str]:
    """pyspnego's NTLM acceptor reads its accounts from $NTLM_USER_FILE; this writes the smbpasswd form
    (`DOMAIN\\user:UID:LM:NT:[U]:LCT-...`), so the acceptor holds the hashes as LocalAuthority does,
    instead of hashing a Heimdal-form password (`DOMAIN:user:password`) on every handshake."""
    line = f"{domain}\\{user}:1000:{lm_hash.hex().upper()}:{nt_hash.hex().upper()}:[U]:LCT-00000000\n"
    with tempfile.NamedTemporaryFile("w", suffix=".smbpasswd", delete=False) as users:
        users.write(line)
    old = os.environ.get("NTLM_USER_FILE")
    os.environ["NTLM_USER_FILE"] = users.name
    try:
        yield users.name
    finally:
        os.unlink(users.name)
        if old is None:
            del os.environ["NTLM_USER_FILE"]
        else:
            os.environ["NTLM_USER_FILE"] = old


@dataclass(frozen=True)
class Primitive:
    """One call a handshake cannot avoid; `name` groups the calls in the floor's breakdown."""

    name: str
    call: Callable[[], object]


@dataclass(frozen=True)
class Contender:
    """One configuration of one implementation. `config` pairs ours with the peer's same configuration."""

    name: str
    config: str
    make: Callable[[], Handshake]
    ours: bool = False
    floor: tuple[Primitive, ...] = field(default=())

    @property
    def label(self) -> str:
        return f"{self.name}, {self.config}"


def run_all(calls: Sequence[Callable[[], object]]) -> Handshake:
    def run() -> None:
        for call in calls:
            call()

    return run


def rate(fn: Handshake, seconds: float) -> float:
    """Calls per second of this process's CPU time (every contender runs in this one thread, so CPU time
    is what each costs; on a shared machine wall time would also count the other processes' turns)."""
    fn()
    clock = time.process_time
    count, start = 0, clock()
    while (elapsed := clock() - start) < seconds:
        for _ in range(20):
            fn()
        count += 20
    return count / elapsed


def spread(values: list[float], digits: int = 1) -> str:
    """The median ratio of the rounds and their range: `4.7x (per round 4.6x .. 4.8x)`."""
    ordered = sorted(values)
    low, mid, high = ordered[0], statistics.median(ordered), ordered[-1]
    return f"{mid:.{digits}f}x (per round {low:.{digits}f}x .. {high:.{digits}f}x)"


def parse_args(what: str, peer: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=f"{what}: smb2auth vs {peer}")
    parser.add_argument("--seconds", type=float, default=1.0, help="seconds per round (default 1)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each, alternating (default 5)")
    parser.add_argument("--profile", action="store_true", help="cProfile our first configuration instead")
    return parser.parse_args()


def profile(fn: Handshake, count: int = 2000) -> None:
    profiler = cProfile.Profile()
    profiler.runcall(run_all([fn] * count))
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def compare(
    what: str,
    peer: str,
    contenders: Sequence[Contender],
    about: Sequence[str],
    extra: Sequence[tuple[str, Handshake]] = (),
) -> None:
    """The benchmark's command line (--seconds per round, --rounds, --profile) and its report.

    `about` is printed first (versions and configurations); `extra` are costs printed beside the floor
    (a codec of our own, say), measured in the same rounds but not part of the floor.
    """
    args = parse_args(what, peer)
    ours = [c for c in contenders if c.ours]
    if args.profile:
        profile(ours[0].make())
        return
    for line in about:
        print(line)
    print(machine())
    print(f"rounds: {args.rounds} x {args.seconds:g} s of CPU per contender, alternating; medians")
    runs: list[tuple[str, Handshake]] = []
    missing: list[str] = []
    for c in contenders:
        try:
            runs.append((c.label, c.make()))
        except ImportError as exc:
            missing.append(f"{c.label}: {exc}")
    floors = {c.label: c.floor for c in ours if c.floor}
    runs += [(f"floor for {label}", run_all([p.call for p in prims])) for label, prims in floors.items()]
    runs += list(extra)
    rates: dict[str, list[float]] = {label: [] for label, _ in runs}
    for _ in range(args.rounds):
        for label, fn in runs:
            rates[label].append(rate(fn, args.seconds))

    width = max(len(label) for label, _ in runs)
    print(f"{'':{width}}  {what + '/CPU-s':>14}  {'µs each':>9}   rounds (/CPU-s)")
    for label, _ in runs:
        values = rates[label]
        median = statistics.median(values)
        rounds = ", ".join(f"{v:.0f}" for v in values)
        print(f"{label:{width}}  {median:14.0f}  {1e6 / median:9.1f}   {rounds}")
    for line in missing:
        print(f"not measured: {line} (pip install -e '.[bench]')")

    theirs = [c for c in contenders if not c.ours and c.label in rates]
    for mine in ours:
        for other in theirs:
            if other.config == mine.config:
                per_round = [m / o for m, o in zip(rates[mine.label], rates[other.label], strict=True)]
                print(f"ratio {mine.label} / {other.label}: {spread(per_round)}")
    if theirs:
        best_ours = [max(rates[c.label][i] for c in ours) for i in range(args.rounds)]
        best_theirs = [max(rates[c.label][i] for c in theirs) for i in range(args.rounds)]
        per_round = [m / o for m, o in zip(best_ours, best_theirs, strict=True)]
        print(f"ratio smb2auth-best / {peer}-best: {spread(per_round)}")
    for mine in ours:
        if mine.label in floors:
            floor_rates = rates[f"floor for {mine.label}"]
            per_round = [f / m for m, f in zip(rates[mine.label], floor_rates, strict=True)]
            print(f"floor: {mine.label} takes {spread(per_round)} the floor")
    for label, prims in floors.items():
        print(f"floor for {label}: {breakdown(prims, args.seconds / 4)}")


def breakdown(primitives: Sequence[Primitive], seconds: float) -> str:
    """µs per handshake of each group of primitives, measured alone."""
    counts = Counter(p.name for p in primitives)
    parts = []
    total = 0.0
    for name, count in counts.items():
        calls = [p.call for p in primitives if p.name == name]
        us = 1e6 / rate(run_all(calls), seconds)
        total += us
        parts.append(f"{count} x {name} {us:.1f}")
    return f"{total:.1f} µs = " + " + ".join(parts)
