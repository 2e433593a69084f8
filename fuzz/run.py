"""Run one fuzz harness: with atheris (coverage-guided libFuzzer) when installed, else a plain mutator.

    python fuzz/run.py --target spnego --runs 1000000            # atheris, seeds from fixtures/fuzz/spnego
    python fuzz/run.py --target server --runs 20000 --engine mutate --seed 7
    python fuzz/run.py --list

atheris: `pip install -e '.[fuzz]'`. A finding (any exception out of the harness) stops the run and writes
the input to --artifacts (default fuzz/artifacts/); hangs (> --timeout s per input) and memory above
--rss-limit-mb are findings too. New coverage-increasing inputs go to a scratch corpus (--work), never into
fixtures/fuzz/, which holds only the checked-in seeds (`python -m fuzz.corpus`).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import resource
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))


class _FormatOnly(logging.Handler):
    """Formats every record (so formatting bugs surface) and writes nothing."""

    def emit(self, record: logging.LogRecord) -> None:
        self.format(record)


def quiet_logging() -> None:
    root = logging.getLogger()
    root.handlers[:] = [_FormatOnly()]
    root.setLevel(logging.INFO)


def mutate(data: bytes, rnd: random.Random, pool: list[bytes], max_len: int) -> bytes:
    """A few byte-level mutations (flip, set interesting value, insert, delete, duplicate, splice)."""
    buf = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randrange(8)
        n = len(buf)
        if op == 0 and n:
            buf[rnd.randrange(n)] ^= 1 << rnd.randrange(8)
        elif op == 1 and n:
            buf[rnd.randrange(n)] = rnd.choice((0, 1, 0x7F, 0x80, 0xFF, rnd.randrange(256)))
        elif op == 2 and n >= 2:
            at = rnd.randrange(n - 1)
            value = rnd.choice((0, 0xFFFF, 0x8000, 0x7FFF, rnd.randrange(0x10000), n, n + 1))
            buf[at : at + 2] = value.to_bytes(2, "little")
        elif op == 3 and n >= 4:
            at = rnd.randrange(n - 3)
            value = rnd.choice((0, 0xFFFFFFFF, 0x80000000, rnd.randrange(1 << 32), n))
            buf[at : at + 4] = value.to_bytes(4, "little")
        elif op == 4:
            at = rnd.randrange(n + 1)
            buf[at:at] = rnd.randbytes(rnd.randint(1, 16))
        elif op == 5 and n:
            at = rnd.randrange(n)
            del buf[at : at + rnd.randint(1, 32)]
        elif op == 6 and n:
            at = rnd.randrange(n)
            chunk = buf[at : at + rnd.randint(1, 64)]
            buf[rnd.randrange(n + 1) : 0] = chunk
        elif op == 7 and pool:
            other = rnd.choice(pool)
            cut = rnd.randrange(len(buf) + 1)
            buf = buf[:cut] + other[rnd.randrange(len(other) + 1) :]
    return bytes(buf[:max_len])


def run_mutator(
    fn: Callable[[bytes], None], seeds: list[bytes], runs: int, seed: int, max_len: int, timeout: float,
    artifacts: Path, name: str,
) -> int:
    """Deterministic mutation fuzzing (no coverage feedback); returns the number of inputs run."""
    rnd = random.Random(seed)
    pool = list(seeds) or [b""]
    started = last = time.monotonic()
    for i in range(runs):
        choice = rnd.random()
        if choice < 0.05:
            data = rnd.randbytes(rnd.randrange(max_len))
        else:
            data = mutate(rnd.choice(pool), rnd, pool, max_len)
        t0 = time.monotonic()
        try:
            fn(data)
        except Exception:
            _save(artifacts, name, data, traceback.format_exc())
            raise
        if time.monotonic() - t0 > timeout:
            _save(artifacts, name, data, f"slow input: {time.monotonic() - t0:.2f}s")
            raise RuntimeError(f"input {i} took more than {timeout}s")
        now = time.monotonic()
        if now - last > 30:
            rate = (i + 1) / (now - started)
            print(f"#{i + 1} {rate:.0f} exec/s rss={_rss_mb():.0f}MB", flush=True)
            last = now
    elapsed = time.monotonic() - started
    print(f"done: {runs} inputs in {elapsed:.1f}s ({runs / max(elapsed, 1e-9):.0f} exec/s), "
          f"peak rss {_rss_mb():.0f}MB", flush=True)
    return runs


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _save(artifacts: Path, name: str, data: bytes, why: str) -> None:
    artifacts.mkdir(parents=True, exist_ok=True)
    path = artifacts / f"{name}-{int(time.time())}"
    path.write_bytes(data)
    path.with_suffix(".txt").write_text(why)
    print(f"finding saved to {path}:\n{why}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--target")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--engine", choices=("auto", "atheris", "mutate"), default="auto")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-len", type=int, default=4096)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per input before it is a hang")
    parser.add_argument("--rss-limit-mb", type=int, default=2048)
    parser.add_argument("--corpus", type=Path, default=HERE.parent / "fixtures" / "fuzz")
    parser.add_argument("--work", type=Path, default=HERE / "work", help="atheris' growing corpus")
    parser.add_argument("--artifacts", type=Path, default=HERE / "artifacts")
    parser.add_argument("--list", action="store_true")
    args, extra = parser.parse_known_args(argv)

    engine = args.engine
    atheris: Any = None
    if engine in ("auto", "atheris"):
        try:
            import atheris  # type: ignore[import-untyped, import-not-found, no-redef, unused-ignore]
        except ImportError:
            if engine == "atheris":
                parser.error("atheris is not installed (pip install -e '.[fuzz]')")
            engine = "mutate"
        else:
            engine = "atheris"

    if atheris is not None:
        with atheris.instrument_imports(include=["smb2auth", "fuzz"]):
            from fuzz import harnesses
    else:
        from fuzz import harnesses
    from fuzz.corpus import load

    if args.list or not args.target:
        print("\n".join(harnesses.TARGETS))
        return 0
    if args.target not in harnesses.TARGETS:
        parser.error(f"unknown target {args.target!r}; one of {', '.join(harnesses.TARGETS)}")
    fn = harnesses.TARGETS[args.target]
    quiet_logging()
    if args.target == "server":
        harnesses.server_script()  # record the replayed login once, outside the timed inputs
    print(f"target={args.target} engine={engine} runs={args.runs} pid={os.getpid()}", flush=True)

    if engine == "mutate":
        seeds = load(args.target, args.corpus)
        run_mutator(fn, seeds, args.runs, args.seed, args.max_len, args.timeout, args.artifacts, args.target)
        return 0

    work = args.work / args.target
    work.mkdir(parents=True, exist_ok=True)
    args.artifacts.mkdir(parents=True, exist_ok=True)
    lib_args = [
        sys.argv[0],
        f"-runs={args.runs}",
        f"-seed={args.seed}",
        f"-max_len={args.max_len}",
        f"-timeout={int(max(1, args.timeout))}",
        f"-rss_limit_mb={args.rss_limit_mb}",
        f"-artifact_prefix={args.artifacts}/{args.target}-",
        "-print_final_stats=1",
        *extra,
        str(work),
        str(args.corpus / args.target),
    ]

    def one_input(data: bytes) -> None:
        fn(data)

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    atheris.Setup(lib_args, one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
