"""Load on the asyncio harness over loopback: many concurrent logins, many half-open handshakes, slow clients.

Each test prints its figures (run with -s to see them): setups/s, peak RSS, time to drain, memory held.
Counts are fixed and bounded; assertions are on outcomes (every login succeeded, every half-open handshake
was closed and released), never on how fast.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from smb2auth.authority.local import LocalAuthority
from smb2auth.client import aconnect
from smb2auth.events import EventLog
from smb2auth.ntlm.server import TargetInfo
from smb2auth.server.aio import Smb2Server
from smb2auth.server.config import ServerConfig
from smb2auth.server.protocol import Connection, ServerContext, drive
from smb2auth.status import NtStatus
from tests.hardening.halfopen import opening

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD, DOMAIN = "loaduser", "L0ad-Passw0rd!", "TESTGRP"
CONCURRENT_LOGINS = 1000
HALF_OPEN = 10_000


@pytest.fixture(autouse=True)
def _fd_limit_and_quiet_logs(caplog: pytest.LogCaptureFixture) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # Thousands of login events: keep pytest's log capture from holding (and counting) them all.
    caplog.set_level(logging.CRITICAL, logger="smb2auth")


def _config(**limits: object) -> ServerConfig:
    authority = LocalAuthority(DOMAIN)
    authority.add_user(USER, PASSWORD)
    return ServerConfig(authority=authority, target=TargetInfo(nb_domain=DOMAIN), **limits)  # type: ignore[arg-type]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _login(port: int, results: list[str]) -> None:
    try:
        session = await aconnect(
            "127.0.0.1", port, username=USER, password=PASSWORD, domain=DOMAIN, timeout=60
        )
        await session.echo()
        await session.logoff()
        await session.close()
        results.append("ok")
    except Exception as exc:  # counted, not raised: the test reports how many failed and why
        results.append(f"{type(exc).__name__}: {exc}")


def test_1000_concurrent_logins() -> None:
    async def main() -> tuple[list[str], float, Smb2Server]:
        limit = CONCURRENT_LOGINS + 64
        server = Smb2Server(
            _config(max_connections=limit, max_pending_handshakes=limit), events=EventLog(keep=limit)
        )
        _, port = await server.start("127.0.0.1", 0)
        results: list[str] = []
        t0 = time.perf_counter()
        await asyncio.gather(*(_login(port, results) for _ in range(CONCURRENT_LOGINS)))
        elapsed = time.perf_counter() - t0
        while server.connection_count:
            await asyncio.sleep(0.01)
        await server.close()
        return results, elapsed, server

    results, elapsed, server = asyncio.run(main())
    failures = [r for r in results if r != "ok"]
    print(f"\n{CONCURRENT_LOGINS} concurrent logins in {elapsed:.2f}s "
          f"({CONCURRENT_LOGINS / elapsed:.0f} setups/s, clients and server in one process), "
          f"peak RSS {_rss_mb():.0f} MB")
    assert failures == [], failures[:5]
    assert len(server.events.successes()) == CONCURRENT_LOGINS and not server.events.failures()
    assert server.ctx.pending_handshakes == 0 and not server.ctx.sessions


def test_10000_half_open_handshakes_time_out_and_free_memory() -> None:
    """10,000 real connections from a child process (its own file descriptors), each stopped after the
    CHALLENGE. Once all are pending, the server's clock (injected) jumps past handshake_timeout: the sweeper
    closes them all; the pending count returns to 0 and traced memory to its baseline."""

    async def main() -> dict[str, float]:
        limit = HALF_OPEN + 100
        config = _config(max_connections=limit, max_pending_handshakes=limit, handshake_timeout=600.0)
        server = Smb2Server(config, events=EventLog(keep=16))
        skew = [0.0]
        server.ctx.monotonic = lambda: time.monotonic() + skew[0]
        _, port = await server.start("127.0.0.1", 0)
        gc.collect()
        baseline = tracemalloc.get_traced_memory()[0]
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.hardening.halfopen", "127.0.0.1", str(port), str(HALF_OPEN),
            cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        )
        assert child.stdout is not None
        t0 = time.monotonic()
        line = (await child.stdout.readline()).decode()
        assert line.split() == ["challenged", str(HALF_OPEN)], line
        setup = time.monotonic() - t0
        pending = server.ctx.pending_handshakes
        held = tracemalloc.get_traced_memory()[0] - baseline
        t1 = time.monotonic()
        skew[0] = config.handshake_timeout + 1  # every handshake is now older than the timeout
        closed = (await child.stdout.readline()).decode()
        assert await child.wait() == 0
        while server.connection_count:
            await asyncio.sleep(0.05)
        drain = time.monotonic() - t1
        gc.collect()
        after = tracemalloc.get_traced_memory()[0] - baseline
        timeouts = sum(1 for e in server.events.events if e.status == "STATUS_IO_TIMEOUT")
        figures = {"pending": pending, "pending_after": server.ctx.pending_handshakes, "held": held,
                   "after": after, "setup": setup, "drain": drain, "closed": float(closed.split()[1]),
                   "timeouts": timeouts}
        await server.close()
        return figures

    tracemalloc.start()
    try:
        f = asyncio.run(main())
    finally:
        tracemalloc.stop()
    print(f"\n{HALF_OPEN} half-open handshakes set up in {f['setup']:.1f}s; "
          f"{f['pending']:.0f} pending at once holding {f['held'] / 2**20:.1f} MiB "
          f"({f['held'] / max(f['pending'], 1) / 1024:.1f} KiB each, "
          f"traced); after the timeout all were closed in {f['drain']:.1f}s; "
          f"{f['after'] / 2**10:.0f} KiB still traced after; peak RSS {_rss_mb():.0f} MB")
    assert f["closed"] == HALF_OPEN and f["pending_after"] == 0 and f["pending"] == HALF_OPEN
    assert f["timeouts"] == 16  # the last events kept (EventLog keep=16) are the timed-out handshakes
    assert f["after"] < 0.05 * f["held"]  # what the handshakes held came back


def test_half_open_memory_sans_io() -> None:
    """The same at the protocol layer without sockets: 1,000 Connections stopped after the CHALLENGE, then
    expired as the sweeper does; the context's pending count and traced memory return to where they were."""
    count = 1000
    config = _config(max_pending_handshakes=count + 1)
    ctx = ServerContext(config, EventLog(keep=16))
    negotiate_and_setup = opening()
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        conns = []
        for i in range(count):
            conn = Connection(ctx, f"127.0.0.1:{i}")
            for payload in conn.feed(negotiate_and_setup):
                assert drive(conn.handle_frame(payload))
            conns.append(conn)
        held = tracemalloc.get_traced_memory()[0] - baseline
        assert ctx.pending_handshakes == count
        for conn in conns:
            assert conn.timed_out(conn.opened + config.handshake_timeout + 1) is not None
            conn.close("handshake timeout", abandoned=NtStatus.STATUS_IO_TIMEOUT)
        del conns, conn
        gc.collect()
        after = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    print(f"\nsans-IO: {count} pending handshakes held {held / 2**20:.1f} MiB "
          f"({held / count / 1024:.1f} KiB each); {after / 1024:.0f} KiB left after expiry")
    assert ctx.pending_handshakes == 0 and not ctx.sessions
    assert after < 0.05 * held
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
