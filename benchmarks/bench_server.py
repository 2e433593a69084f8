"""Server throughput and memory: the smb2auth harness vs a private smbd, measured in the same run.

1. Session setups per second: one session = TCP connect, NEGOTIATE 3.1.1, SESSION_SETUP (SPNEGO/NTLMv2,
   signed), LOGOFF, close, by smb2auth.client.aconnect with 8 concurrent connections spread over worker
   processes; the same client program against `smb2auth serve` (its own process) and smbd.
2. Memory per pending handshake: N connections that stop after the CHALLENGE (SESSION_SETUP leg 1); the
   harness process's RSS delta / N, and tracemalloc's delta / N for the sans-IO Connection alone.

    python benchmarks/bench_server.py [--seconds 5] [--pending 2000]    (from the repository root)
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smb2auth.client import Dialect, aconnect  # noqa: E402
from smb2auth.ntlm.client import NtlmClient  # noqa: E402
from smb2auth.smb2.framing import frame  # noqa: E402
from smb2auth.smb2.header import Command, Smb2Header  # noqa: E402
from smb2auth.smb2.negotiate import NegotiateRequest  # noqa: E402
from smb2auth.smb2.negotiate_contexts import (  # noqa: E402
    HashAlgorithm,
    PreauthIntegrityCapabilities,
    SigningAlgorithm,
    SigningCapabilities,
)
from smb2auth.smb2.session import SessionSetupRequest  # noqa: E402
from smb2auth.spnego.context import SpnegoClient  # noqa: E402
from tests.peers import running_smbd  # noqa: E402

USER, PASSWORD = "alice", "Passw0rd!"
CONCURRENCY = 8


# --- throughput -----------------------------------------------------------------------------------------


async def _loops(port: int, deadline: float, loops: int) -> int:
    async def loop() -> int:
        done = 0
        while time.monotonic() < deadline:
            session = await aconnect(
                "127.0.0.1", port, username=USER, password=PASSWORD, dialects=(Dialect.SMB3_1_1,)
            )
            async with session:
                assert session.signed
            done += 1
        return done

    return sum(await asyncio.gather(*(loop() for _ in range(loops))))


def _worker(port: int, start: float, seconds: float, loops: int, out: multiprocessing.Queue[int]) -> None:
    time.sleep(max(0.0, start - time.time()))
    out.put(asyncio.run(_loops(port, time.monotonic() + seconds, loops)))


def setups_per_second(port: int, seconds: float, workers: int) -> float:
    queue: multiprocessing.Queue[int] = multiprocessing.Queue()
    start = time.time() + 0.5
    procs = [
        multiprocessing.Process(target=_worker, args=(port, start, seconds, CONCURRENCY // workers, queue))
        for _ in range(workers)
    ]
    for p in procs:
        p.start()
    total = sum(queue.get(timeout=seconds + 120) for _ in procs)
    for p in procs:
        p.join()
    return total / seconds


# --- the harness in its own process -----------------------------------------------------------------------


def start_harness(*extra: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smb2auth.commands.main",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--user",
            f"{USER}:{PASSWORD}",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"harness did not start: {line!r}")
    return proc, int(line.rsplit(":", 1)[1])


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# --- pending handshakes -----------------------------------------------------------------------------------


def _leg1_messages() -> tuple[bytes, bytes]:
    contexts = (
        PreauthIntegrityCapabilities((HashAlgorithm.SHA_512,), os.urandom(32)),
        SigningCapabilities((SigningAlgorithm.AES_CMAC,)),
    )
    negotiate = (
        Smb2Header(Command.NEGOTIATE, credit=1).pack()
        + NegotiateRequest(
            (Dialect.SMB3_1_1,), client_guid=os.urandom(16), negotiate_contexts=contexts
        ).pack()
    )
    token = SpnegoClient(NtlmClient(USER, PASSWORD)).step(None) or b""
    setup = Smb2Header(Command.SESSION_SETUP, message_id=1, credit=1, credit_charge=1).pack() + (
        SessionSetupRequest(token).pack()
    )
    return negotiate, setup


async def _hold_pending(port: int, count: int, measured: asyncio.Event, release: asyncio.Event) -> None:
    negotiate, setup = _leg1_messages()
    writers = []

    async def one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writers.append(writer)
        for message in (negotiate, setup):
            writer.write(frame(message))
            size = int.from_bytes(await reader.readexactly(4), "big")
            await reader.readexactly(size)

    semaphore = asyncio.Semaphore(200)

    async def limited() -> None:
        async with semaphore:
            await one()

    await asyncio.gather(*(limited() for _ in range(count)))
    measured.set()
    await release.wait()
    for writer in writers:
        writer.close()


def pending_rss_per_handshake(count: int) -> float:
    proc, port = start_harness(
        "--max-connections", str(count + 10), "--max-pending-handshakes", str(count + 10)
    )
    try:
        # Warm up the allocator and the code paths with a few full handshakes first.
        asyncio.run(_loops(port, time.monotonic() + 0.5, 2))
        before = rss_kib(proc.pid)

        async def run() -> int:
            measured, release = asyncio.Event(), asyncio.Event()
            task = asyncio.ensure_future(_hold_pending(port, count, measured, release))
            await measured.wait()
            await asyncio.sleep(0.5)
            after = rss_kib(proc.pid)
            release.set()
            await task
            return after

        after = asyncio.run(run())
        return (after - before) * 1024 / count
    finally:
        stop(proc)


def pending_tracemalloc_per_handshake(count: int) -> float:
    """The sans-IO Connection's own state: Connection + Session + NTLM/SPNEGO contexts after leg 1."""
    from smb2auth.authority.local import LocalAuthority
    from smb2auth.server.config import ServerConfig
    from smb2auth.server.connection import Connection
    from smb2auth.server.context import ServerContext
    from smb2auth.server.inline import answer_frame

    authority = LocalAuthority()
    authority.add_user(USER, PASSWORD)
    ctx = ServerContext(ServerConfig(authority=authority, max_pending_handshakes=count + 1))
    messages = [_leg1_messages() for _ in range(count)]
    warm = Connection(ctx, "127.0.0.1:1")
    for message in messages[0]:
        answer_frame(warm, message)
    warm.close()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    held = []
    for i, (negotiate, setup) in enumerate(messages):
        conn = Connection(ctx, f"127.0.0.1:{10000 + i}")
        answer_frame(conn, negotiate)
        answer_frame(conn, setup)
        held.append(conn)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert ctx.pending_handshakes == count
    return (after - before) / count


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="measurement time per server")
    parser.add_argument("--workers", type=int, default=2, help="client processes (8 connections in all)")
    parser.add_argument(
        "--pending", type=int, default=2000, help="pending handshakes held for the memory test"
    )
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.pending + 100)), hard))

    proc, port = start_harness()
    try:
        asyncio.run(_loops(port, time.monotonic() + 0.5, 2))  # warm-up
        ours = setups_per_second(port, args.seconds, args.workers)
    finally:
        stop(proc)
    with running_smbd() as smbd:
        asyncio.run(_loops(smbd.port, time.monotonic() + 0.5, 2))
        theirs = setups_per_second(smbd.port, args.seconds, args.workers)
    print(
        f"session setups/s, {CONCURRENCY} concurrent connections, NEGOTIATE 3.1.1 + SESSION_SETUP + LOGOFF:"
    )
    print(f"  smb2auth harness : {ours:8.1f}/s")
    print(f"  smbd             : {theirs:8.1f}/s")
    print(f"  ratio            : {ours / theirs:8.2f}x (target >= 3x)")

    rss = pending_rss_per_handshake(args.pending)
    traced = pending_tracemalloc_per_handshake(args.pending)
    print(f"memory per pending handshake (N={args.pending}, after the CHALLENGE):")
    print(f"  harness RSS delta / N        : {rss / 1024:6.2f} KiB (target <= 8 KiB)")
    print(f"  sans-IO tracemalloc delta / N: {traced / 1024:6.2f} KiB")


if __name__ == "__main__":
    main()
