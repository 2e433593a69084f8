"""Server throughput and memory: the smb2auth harness vs a private smbd, measured in the same run.

1. Session setups per second: one session = TCP connect, NEGOTIATE 3.1.1, SESSION_SETUP (SPNEGO/NTLMv2,
   signed), LOGOFF, close, by smb2auth.client.aconnect with 1, 8 and 32 concurrent connections (each a loop
   of sessions) spread over client processes; the same client program against `smb2auth serve --workers N`
   (its own processes), for each N
   of --workers, and smbd (a process forked per connection). Rounds alternate between the servers, so load
   on this (shared) machine hits each alike; the figures are the medians of the rounds, the ratios the
   medians of each round's ratio to smbd's, and p50/p99 the latency of one whole session. Beside them:
   concurrency / rate, the mean latency Little's law gives this closed loop; the share of each round the
   client processes and our server spent runnable but waiting for a CPU (schedstat; smbd's per-connection
   processes exit before they can be read); and the kernel's CPU pressure (PSI) after the last round.
2. Memory per pending handshake: N connections that stop after the CHALLENGE (SESSION_SETUP leg 1); the
   harness process's RSS delta / N, and tracemalloc's delta / N for the sans-IO Connection alone.

    python benchmarks/bench_server.py [--seconds 5] [--rounds 5] [--workers 1,2] [--concurrency 1,8,32]
                                      [--pending 2000]   (from the repository root)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# The repository after the installed packages (for tests.peers): an installed smb2auth, a compiled build
# say, is the one measured; the harness processes start outside the tree for the same reason.
sys.path.append(str(Path(__file__).resolve().parents[1]))
NEUTRAL_CWD = tempfile.gettempdir()

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


# --- throughput -----------------------------------------------------------------------------------------


async def _loops(port: int, deadline: float, loops: int) -> list[float]:
    """`loops` connections in a row each until `deadline`; the seconds each whole session took."""

    async def loop() -> list[float]:
        took: list[float] = []
        while time.monotonic() < deadline:
            began = time.perf_counter()
            session = await aconnect(
                "127.0.0.1", port, username=USER, password=PASSWORD, dialects=(Dialect.SMB3_1_1,)
            )
            async with session:
                assert session.signed
            took.append(time.perf_counter() - began)
        return took

    return [t for took in await asyncio.gather(*(loop() for _ in range(loops))) for t in took]


def run_queue_wait(pids: Iterable[int | str]) -> float | None:
    """Seconds the threads of `pids` spent runnable but waiting for a CPU (schedstat(5)'s second field,
    Linux only: None where it cannot be read)."""
    total = 0
    try:
        for pid in pids:
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(FileNotFoundError):  # a thread that just ended
                    total += int((task / "schedstat").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9


def cpu_pressure() -> str:
    """The kernel's CPU pressure (PSI): the share of the last 10 s some runnable task waited for a CPU."""
    try:
        some = Path("/proc/pressure/cpu").read_text().split()[1]
    except (OSError, IndexError):
        return "CPU pressure n/a"
    return f"CPU pressure (PSI, some) {some.removeprefix('avg10=')}% of the last 10 s"


ClientResult = tuple[list[float], float, float | None]


def _client(
    port: int, start: float, seconds: float, loops: int, out: multiprocessing.Queue[ClientResult]
) -> None:
    time.sleep(max(0.0, start - time.time()))
    began, waited = time.process_time(), run_queue_wait(["self"])
    took = asyncio.run(_loops(port, time.monotonic() + seconds, loops))
    after = run_queue_wait(["self"])
    out.put((took, time.process_time() - began, None if after is None or waited is None else after - waited))


@dataclass(frozen=True)
class Round:
    rate: float  # sessions per second
    p50: float  # seconds per session
    p99: float
    server_cpu: float  # CPU seconds per session, the server's processes
    client_cpu: float  # CPU seconds per session, the client processes
    # Share of the round's wall time spent runnable but waiting for a CPU, per client process (mean) and
    # for the server's processes (summed; None for smbd, whose per-connection processes exit unread).
    client_wait: float | None
    server_wait: float | None


def _proc_table() -> dict[int, list[str]]:
    table: dict[int, list[str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            table[int(stat.parent.name)] = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError):
            continue
    return table


def _tree(table: dict[int, list[str]], root: int) -> set[int]:
    """`root` and its descendants (proc(5): the field after the state is the ppid)."""
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, fields in table.items():
            if int(fields[1]) == parent and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    return tree


def tree_cpu(root: int) -> float:
    """CPU seconds of `root` and its descendants, with the children it has reaped (smbd's per connection)."""
    table = _proc_table()
    tree = _tree(table, root)
    # proc(5), after the command: state ppid ... utime(11) stime(12) cutime(13) cstime(14)
    ticks = sum(int(table[pid][11]) + int(table[pid][12]) for pid in tree if pid in table)
    if root in table:
        ticks += int(table[root][13]) + int(table[root][14])
    return ticks / os.sysconf("SC_CLK_TCK")


def measure(
    port: int, server_pid: int, seconds: float, processes: int, concurrency: int, server_wait: bool
) -> Round:
    """`concurrency` connections at a time from `processes` client processes for `seconds`; `server_wait`:
    read the server processes' run-queue waiting (they live through the round)."""
    queue: multiprocessing.Queue[ClientResult] = multiprocessing.Queue()
    start = time.time() + 0.5
    shares = [concurrency // processes + (i < concurrency % processes) for i in range(processes)]
    procs = [
        multiprocessing.Process(target=_client, args=(port, start, seconds, share, queue))
        for share in shares
    ]
    for p in procs:
        p.start()
    before = tree_cpu(server_pid)
    server_pids = _tree(_proc_table(), server_pid) if server_wait else set()
    waited = run_queue_wait(server_pids) if server_wait else None
    answers = [queue.get(timeout=seconds + 120) for _ in procs]
    server_cpu = tree_cpu(server_pid) - before
    after = run_queue_wait(server_pids) if server_wait else None
    client_waits = [w for _, _, w in answers if w is not None]
    for p in procs:
        p.join()
    took = sorted(t for latencies, _, _ in answers for t in latencies)
    count = len(took)
    return Round(
        count / seconds,
        took[count // 2],
        took[min(count - 1, count * 99 // 100)],
        server_cpu / count,
        sum(cpu for _, cpu, _ in answers) / count,
        sum(client_waits) / len(client_waits) / seconds if client_waits else None,
        None if after is None or waited is None else (after - waited) / seconds,
    )


def smbd_version() -> str:
    smbd = shutil.which("smbd") or "/usr/sbin/smbd"
    try:
        return subprocess.run([smbd, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        return "smbd (version unknown)"


def throughput(
    seconds: float, rounds: int, workers: list[int], processes: int, concurrencies: list[int]
) -> None:
    """Every server up at once (idle ones cost nothing), then for each concurrency `rounds` rounds: smbd,
    then ours for each N."""
    harnesses = [start_harness("--workers", str(n)) for n in workers]
    by_concurrency: dict[int, list[list[Round]]] = {}
    pressure: dict[int, str] = {}
    try:
        with running_smbd() as smbd:
            assert smbd.proc is not None
            servers = [(smbd.port, smbd.proc.pid)] + [(port, proc.pid) for proc, port in harnesses]
            for port, _ in servers:
                asyncio.run(_loops(port, time.monotonic() + 0.5, 2))  # warm-up
            for concurrency in concurrencies:
                results: list[list[Round]] = [[] for _ in servers]
                for _ in range(rounds):
                    for index, (port, pid) in enumerate(servers):
                        clients = min(processes, concurrency)
                        results[index].append(
                            measure(port, pid, seconds, clients, concurrency, server_wait=index > 0)
                        )
                by_concurrency[concurrency] = results
                pressure[concurrency] = cpu_pressure()
    finally:
        for proc, _ in harnesses:
            stop(proc)
    names = [f"smbd {smbd_version().removeprefix('Version ')} (fork per connection)"]
    names += [f"smb2auth serve --workers {n}" for n in workers]
    for concurrency, results in by_concurrency.items():
        clients = min(processes, concurrency)
        report(concurrency, clients, seconds, rounds, names, results, pressure[concurrency])


def report(
    concurrency: int,
    processes: int,
    seconds: float,
    rounds: int,
    names: list[str],
    results: list[list[Round]],
    pressure: str,
) -> None:
    theirs = results[0]
    print(f"session setups/s, {concurrency} concurrent connections from {processes} client processes,"
          f" NEGOTIATE 3.1.1 + SESSION_SETUP (SPNEGO/NTLMv2, signed) + LOGOFF; {rounds} alternating rounds"
          f" of {seconds:g} s, medians; machine: {os.cpu_count()} cores")
    target = "; target >= 3x" if concurrency >= 8 else ""
    width = max(len(name) for name in names)
    for index, (name, rows) in enumerate(zip(names, results, strict=True)):
        rate = statistics.median(r.rate for r in rows)
        p50 = statistics.median(r.p50 for r in rows) * 1000
        p99 = statistics.median(r.p99 for r in rows) * 1000
        line = f"  {name:<{width}} : {rate:7.1f}/s  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms"
        if index:
            ratios = sorted(r.rate / t.rate for r, t in zip(rows, theirs, strict=True))
            line += (f"  ratio {statistics.median(ratios):.2f}x (per round {ratios[0]:.2f}x .."
                     f" {ratios[-1]:.2f}x{target})")
            if concurrency >= 32:
                line += " (p99 target < 50 ms)"
        print(line)
        server_cpu = statistics.median(r.server_cpu for r in rows) * 1000
        client_cpu = statistics.median(r.client_cpu for r in rows) * 1000
        print(f"  {'':<{width}}   CPU per session: server {server_cpu:.1f} ms, client {client_cpu:.1f} ms;"
              f" rounds: {', '.join(f'{r.rate:.0f}' for r in rows)}/s")
        # Little's law: in this closed loop the mean latency is the concurrency over the rate, whoever's CPU
        # (or the machine's other load) sets the rate.
        print(f"  {'':<{width}}   concurrency / rate = {1000 * concurrency / rate:.1f} ms (the mean latency"
              " this rate implies); waiting for a CPU (schedstat):"
              f" client processes {_share(rows, 'client')}, server {_share(rows, 'server')} of the round")
    print(f"  {pressure}, after the last round")


def _share(rows: list[Round], who: str) -> str:
    values = [getattr(r, f"{who}_wait") for r in rows]
    if any(v is None for v in values):
        return "n/a"
    return f"{100 * statistics.median(values):.0f}%"


# --- the harness in its own process -----------------------------------------------------------------------


def harness_version() -> str:
    """`smb2auth --version` as the harness processes start it: the version and the build they run."""
    proc = subprocess.run([sys.executable, "-m", "smb2auth.commands.main", "--version"], capture_output=True,
                          text=True, check=True, timeout=60, cwd=NEUTRAL_CWD)
    return proc.stdout.strip()


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
        cwd=NEUTRAL_CWD,
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
        "--workers", "1", "--max-connections", str(count + 10), "--max-pending-handshakes", str(count + 10)
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


def worker_counts(text: str) -> list[int]:
    counts = [int(part) for part in text.split(",") if part]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"not a list of positive counts: {text!r}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="measurement time per server and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, alternating between the servers")
    parser.add_argument("--workers", type=worker_counts, default=[1, 2], metavar="N[,N...]",
                        help="`smb2auth serve --workers` values to measure, each against smbd (default 1,2)")
    parser.add_argument("--concurrency", type=worker_counts, default=[1, 8, 32], metavar="N[,N...]",
                        help="concurrent connections, each measured in its own rounds (default 1,8,32)")
    parser.add_argument("--client-processes", type=int, default=2,
                        help="client processes the connections are spread over (at most one each)")
    parser.add_argument(
        "--pending", type=int, default=2000, help="pending handshakes held for the memory test (0: none)"
    )
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.pending + 100)), hard))

    print(f"ours: {harness_version()} (`smb2auth serve`, its own processes); Python {sys.version.split()[0]}")
    throughput(args.seconds, args.rounds, args.workers, args.client_processes, args.concurrency)
    if args.pending:
        rss = pending_rss_per_handshake(args.pending)
        traced = pending_tracemalloc_per_handshake(args.pending)
        print(f"memory per pending handshake (N={args.pending}, after the CHALLENGE, one worker):")
        print(f"  harness RSS delta / N        : {rss / 1024:6.2f} KiB (target <= 8 KiB)")
        print(f"  sans-IO tracemalloc delta / N: {traced / 1024:6.2f} KiB")


if __name__ == "__main__":
    main()
