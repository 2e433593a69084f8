"""Load on the asyncio harness over loopback: many concurrent logins, many half-open handshakes, slow clients.

Each test prints its figures (run with -s to see them): setups/s, peak RSS, time to drain, memory held.
Counts are fixed and bounded; assertions are on outcomes (every login succeeded, every half-open handshake
was closed and released), never on how fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import resource
import sys
import time
import tracemalloc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from smb2auth.authority.local import LocalAuthority
from smb2auth.client import aconnect
from smb2auth.events import EventLog
from smb2auth.ntlm.server import TargetInfo
from smb2auth.server.aio import Smb2Server
from smb2auth.server.config import ServerConfig
from smb2auth.server.connection import Connection
from smb2auth.server.context import ServerContext
from smb2auth.server.inline import answer_frame
from smb2auth.status import NtStatus
from tests.hardening.halfopen import one, opening

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = str(ROOT / "smb2auth")
USER, PASSWORD, DOMAIN = "loaduser", "L0ad-Passw0rd!", "TESTGRP"
CONCURRENT_LOGINS = 1000
HALF_OPEN = 10_000
FD_MARGIN = 200  # descriptors left for the event loop, pytest, logs and the child's pipes


@pytest.fixture(autouse=True)
def _fd_limit_and_quiet_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # Thousands of login events: keep pytest's log capture from holding (and counting) them all, whatever
    # level an earlier test left on a child logger (`smb2auth serve` raises smb2auth.login to INFO).
    for name in ["smb2auth", *(n for n in logging.root.manager.loggerDict if n.startswith("smb2auth."))]:
        caplog.set_level(logging.CRITICAL, logger=name)
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _fds_available() -> int:
    """Descriptors this process may still open: its soft limit (raised to the hard one) minus those open."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    for fd_dir in ("/proc/self/fd", "/dev/fd"):
        with contextlib.suppress(OSError):
            return soft - len(os.listdir(fd_dir))
    return soft - 64


def _sized(wanted: int, per_item: int, what: str) -> int:
    """`wanted`, or as many as the descriptor limit allows (`per_item` descriptors each, in this process).

    A machine's limit is not a defect of the code under test: the count shrinks (and is printed); only a
    limit too low to test anything meaningful skips."""
    count = min(wanted, (_fds_available() - FD_MARGIN) // per_item)
    if count < 100:
        pytest.skip(f"RLIMIT_NOFILE too low for {what}: room for {count} (wanted {wanted})")
    return count


def _traced_in_smb2auth() -> int:
    """Bytes traced now that were allocated by a line of smb2auth: what the server holds, not what pytest, the
    event loop or earlier tests left behind."""
    keep = tracemalloc.Filter(True, f"{PACKAGE}/*")
    return sum(stat.size for stat in tracemalloc.take_snapshot().filter_traces([keep]).statistics("filename"))


def _config(**limits: object) -> ServerConfig:
    authority = LocalAuthority(DOMAIN)
    authority.add_user(USER, PASSWORD)
    return ServerConfig(authority=authority, target=TargetInfo(nb_domain=DOMAIN), **limits)  # type: ignore[arg-type]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _login(port: int, results: list[str], took: list[float] | None = None) -> None:
    began = time.perf_counter()
    try:
        session = await aconnect(
            "127.0.0.1", port, username=USER, password=PASSWORD, domain=DOMAIN, timeout=60
        )
        await session.echo()
        await session.logoff()
        await session.close()
        results.append("ok")
        if took is not None:
            took.append(time.perf_counter() - began)
    except Exception as exc:  # counted, not raised: the test reports how many failed and why
        results.append(f"{type(exc).__name__}: {exc}")


def test_1000_concurrent_logins() -> None:
    logins = _sized(CONCURRENT_LOGINS, 2, "concurrent logins")  # client and server ends in this process

    took: list[float] = []

    async def main() -> tuple[list[str], float, Smb2Server]:
        limit = logins + 64
        server = Smb2Server(
            _config(max_connections=limit, max_pending_handshakes=limit), events=EventLog(keep=limit)
        )
        _, port = await server.start("127.0.0.1", 0)
        results: list[str] = []
        t0 = time.perf_counter()
        await asyncio.gather(*(_login(port, results, took) for _ in range(logins)))
        elapsed = time.perf_counter() - t0
        while server.connection_count:
            await asyncio.sleep(0.01)
        await server.close()
        return results, elapsed, server

    results, elapsed, server = asyncio.run(main())
    failures = [r for r in results if r != "ok"]
    used = f"{logins} of {CONCURRENT_LOGINS} logins (RLIMIT_NOFILE allows {_fds_available()} more fds)"
    print(f"\n{logins} concurrent logins in {elapsed:.2f}s "
          f"({logins / elapsed:.0f} setups/s, clients and server in one process), "
          f"peak RSS {_rss_mb():.0f} MB; {used}")
    took.sort()
    if took:  # each login's own time, all started at once: connect, NEGOTIATE, SESSION_SETUP, ECHO, LOGOFF
        print(f"login latency p50 {took[len(took) // 2] * 1000:.0f} ms, "
              f"p99 {took[min(len(took) - 1, len(took) * 99 // 100)] * 1000:.0f} ms")
    assert failures == [], (used, failures[:5])
    assert len(server.events.successes()) == logins and not server.events.failures(), used
    assert server.ctx.pending_handshakes == 0 and not server.ctx.sessions


def test_10000_half_open_handshakes_time_out_and_free_memory() -> None:
    """10,000 real connections (fewer if RLIMIT_NOFILE says so) from a child process (its own file
    descriptors), each stopped after the CHALLENGE. Once all are pending, the server's clock (injected) jumps
    past handshake_timeout: the sweeper closes them all; the pending count returns to 0, every per-connection
    object is freed, and what the server's code had allocated comes back."""
    half_open = _sized(HALF_OPEN, 1, "half-open handshakes")  # the server's ends; the child has its own
    used = f"{half_open} of {HALF_OPEN} half-open handshakes (RLIMIT_NOFILE)"

    async def main() -> dict[str, float]:
        limit = half_open + 100
        config = _config(max_connections=limit, max_pending_handshakes=limit, handshake_timeout=600.0)
        server = Smb2Server(config, events=EventLog(keep=16))
        skew = [0.0]
        server.ctx.monotonic = lambda: time.monotonic() + skew[0]
        _, port = await server.start("127.0.0.1", 0)

        async def expire_all() -> float:
            t = time.monotonic()
            skew[0] += config.handshake_timeout + 1  # every handshake is now older than the timeout
            while server.connection_count:
                await asyncio.sleep(0.05)
            return time.monotonic() - t

        # Warm-up: the same path once (lazy imports, caches), so the baseline below is the steady state.
        warm = [await one("127.0.0.1", port, opening()) for _ in range(2)]
        await expire_all()
        for _, writer in warm:
            writer.close()
        del warm
        gc.collect()
        baseline = _traced_in_smb2auth()
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.hardening.halfopen", "127.0.0.1", str(port), str(half_open),
            cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        )
        assert child.stdout is not None
        t0 = time.monotonic()
        line = (await child.stdout.readline()).decode()
        assert line.split() == ["challenged", str(half_open)], (used, line)
        setup = time.monotonic() - t0
        pending = server.ctx.pending_handshakes
        held = _traced_in_smb2auth() - baseline
        alive = [weakref.ref(p) for p in server._connections] + [
            weakref.ref(p.conn) for p in server._connections if p.conn is not None
        ]
        drain = await expire_all()
        closed = (await child.stdout.readline()).decode()
        assert await child.wait() == 0
        gc.collect()
        after = _traced_in_smb2auth() - baseline
        timeouts = sum(1 for e in server.events.events if e.status == "STATUS_IO_TIMEOUT")
        figures = {"pending": pending, "pending_after": server.ctx.pending_handshakes, "held": held,
                   "after": after, "setup": setup, "drain": drain, "closed": float(closed.split()[1]),
                   "timeouts": timeouts, "tracked": len(alive), "sessions": len(server.ctx.sessions)}
        await server.close()
        gc.collect()
        figures["alive"] = sum(r() is not None for r in alive)
        return figures

    tracemalloc.start()
    try:
        f = asyncio.run(main())
    finally:
        tracemalloc.stop()
    print(f"\n{half_open} half-open handshakes set up in {f['setup']:.1f}s; "
          f"{f['pending']:.0f} pending at once holding {f['held'] / 2**20:.1f} MiB "
          f"({f['held'] / max(f['pending'], 1) / 1024:.1f} KiB each, "
          f"traced in smb2auth); after the timeout all were closed in {f['drain']:.1f}s; "
          f"{f['after'] / 2**10:.0f} KiB still traced after; peak RSS {_rss_mb():.0f} MB; {used}")
    assert f["closed"] == half_open and f["pending"] == half_open, (used, f)
    assert f["pending_after"] == 0 and f["sessions"] == 0, f
    # Every protocol and Connection was freed.
    assert f["tracked"] == 2 * half_open and f["alive"] == 0, f
    assert f["timeouts"] == 16  # the last events kept (EventLog keep=16) are the timed-out handshakes
    assert f["after"] < 0.05 * f["held"], f  # what the handshakes held came back


def test_half_open_memory_sans_io() -> None:
    """The same at the protocol layer without sockets: 1,000 Connections stopped after the CHALLENGE, then
    expired as the sweeper does; the context's pending count returns to 0, every Connection is freed, and
    what smb2auth's code had allocated comes back."""
    count = 1000
    config = _config(max_pending_handshakes=count + 1)
    ctx = ServerContext(config, EventLog(keep=16))
    negotiate_and_setup = opening()

    def open_and_expire(n: int) -> tuple[int, list[weakref.ref[Connection]]]:
        conns = []
        for i in range(n):
            conn = Connection(ctx, f"127.0.0.1:{i}")
            for payload in conn.feed(negotiate_and_setup):
                assert answer_frame(conn, payload)
            conns.append(conn)
        held = _traced_in_smb2auth()
        assert ctx.pending_handshakes == n
        for conn in conns:
            assert conn.timed_out(conn.opened + config.handshake_timeout + 1) is not None
            for event in conn.close("handshake timeout", abandoned=NtStatus.STATUS_IO_TIMEOUT):
                ctx.events.emit(event)
        return held, [weakref.ref(c) for c in conns]

    tracemalloc.start()
    try:
        open_and_expire(2)  # warm-up: lazy imports and caches are filled before the baseline
        gc.collect()
        baseline = _traced_in_smb2auth()
        held, refs = open_and_expire(count)
        held -= baseline
        gc.collect()
        after = _traced_in_smb2auth() - baseline
    finally:
        tracemalloc.stop()
    alive = sum(r() is not None for r in refs)
    print(f"\nsans-IO: {count} pending handshakes held {held / 2**20:.1f} MiB "
          f"({held / count / 1024:.1f} KiB each); {after / 1024:.0f} KiB left after expiry; {alive} alive")
    assert ctx.pending_handshakes == 0 and not ctx.sessions
    assert alive == 0
    assert after < 0.05 * held, (after, held)
    assert ctx.events.events[-1].status == "STATUS_IO_TIMEOUT"


def test_silent_and_slow_clients_do_not_stall_others() -> None:
    """Clients that connect and say nothing, or dribble one byte at a time, while others log in: every login
    succeeds while they are still connected, and the server closes them at the handshake timeout."""
    silent_count, logins = 50, 50

    async def main() -> tuple[list[str], list[bool], list[bool], Smb2Server]:
        server = Smb2Server(_config(handshake_timeout=3.0, idle_timeout=6.0), events=EventLog(keep=1000))
        _, port = await server.start("127.0.0.1", 0)
        silent = [await asyncio.open_connection("127.0.0.1", port) for _ in range(silent_count)]
        dribble_reader, dribble_writer = await asyncio.open_connection("127.0.0.1", port)
        data = opening()
        stop = asyncio.Event()

        async def dribble() -> None:
            for byte in data:
                if stop.is_set() or dribble_reader.at_eof():
                    return
                try:
                    dribble_writer.write(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    return  # closed by the server
                await asyncio.sleep(0.25)

        dribbler = asyncio.create_task(dribble())
        results: list[str] = []
        await asyncio.gather(*(_login(port, results) for _ in range(logins)))
        # All logins are done: were the silent and slow clients still connected meanwhile?
        open_during = [not reader.at_eof() for reader, _ in silent] + [not dribble_reader.at_eof()]
        closed_after = [await asyncio.wait_for(reader.read(), 30) == b"" for reader, _ in silent]
        closed_after.append(await asyncio.wait_for(dribble_reader.read(), 30) == b"")
        stop.set()
        await dribbler
        for _, writer in [*silent, (dribble_reader, dribble_writer)]:
            writer.close()
        await server.close()
        return results, open_during, closed_after, server

    results, open_during, closed_after, server = asyncio.run(main())
    assert results == ["ok"] * logins
    assert all(open_during) and all(closed_after)
    assert len(server.events.successes()) == logins
    print(f"\n{logins} logins succeeded beside {silent_count} silent clients and one sending a byte every "
          f"0.25 s; all {silent_count + 1} closed by the server's handshake timeout")
