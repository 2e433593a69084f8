"""Authenticated proxy throughput: `smb2auth proxy` vs Squid (Debian's, with Samba's ntlm_auth checking
NTLMv2), measured in the same run, rounds alternating, with the same client against the same origin.

Each client connection authenticates to the proxy with NTLM (smb2auth's NtlmClient: NEGOTIATE, 407 with the
CHALLENGE, AUTHENTICATE), then sends its remaining requests on the same connection (HTTP/1.1 keep-alive);
every request is a GET of an absolute URL on a small loopback origin (its own process). Rows: 1 and 8
concurrent client connections, 1 and 50 requests per connection. Our proxy runs as `python -m smb2auth
proxy` (with `--workers N`: N processes), Squid as `squid -N` (with `--squid-workers N`: SMP, N kids and
its coordinator), each with its own processes; Squid's ntlm_auth helpers do its NTLM, in their own.

Two figures per row, medians of the rounds: authenticated requests per CPU-second of the proxy's whole
process tree (ours: every worker and the parent; Squid: squid, its kids, and every ntlm_auth helper), read
from /proc, which the machine's other load does not change; and requests per wall-clock second, which it
does (both sides get the same cores: the whole machine). The ratio is ours/Squid per CPU-second, the
median of the per-round ratios; the wall-clock ratio is printed beside it.

    python benchmarks/bench_proxy.py [--seconds 3] [--rounds 3] [--workers N] [--squid-workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import machine  # noqa: E402
from smb2auth.http.headers import AuthScheme, find_challenge  # noqa: E402
from smb2auth.ntlm import NtlmClient  # noqa: E402
from tests.peers import free_port, wait_for_port  # noqa: E402
from tests.squid import running_squid  # noqa: E402

USER, PASSWORD = "alice", "Passw0rd!"
ROWS = [(1, 1), (1, 50), (8, 1), (8, 50)]


# -- the origin: a tiny keep-alive HTTP/1.1 server in its own process ----------------------------------

async def _origin_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(answer)
            await writer.drain()
    writer.close()


async def _serve_origin(port: int) -> None:
    server = await asyncio.start_server(_origin_connection, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


@contextlib.contextmanager
def _process(args: list[str], port: int) -> Iterator[int]:
    quiet = subprocess.DEVNULL
    proc = subprocess.Popen(args, stdin=quiet, stdout=quiet, stderr=quiet, start_new_session=True)
    try:
        wait_for_port(port, proc, 30.0, None)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# -- the client -------------------------------------------------------------------------------------------

async def _response(reader: asyncio.StreamReader) -> tuple[int, list[str]]:
    """One response: its status and Proxy-Authenticate values (the body, by Content-Length, skipped)."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    length, offers = 0, []
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "proxy-authenticate":
            offers.append(value.strip())
    if length:
        await reader.readexactly(length)
    return status, offers


async def _one_connection(proxy: int, origin: int, requests: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy)
    request = f"GET http://127.0.0.1:{origin}/ HTTP/1.1\r\nHost: 127.0.0.1:{origin}\r\n"
    try:
        ntlm = NtlmClient(USER, PASSWORD, workstation="BENCH")
        token = ntlm.step(None) or b""
        for _ in range(2):
            value = "NTLM " + base64.b64encode(token).decode()
            writer.write(f"{request}Proxy-Authorization: {value}\r\n\r\n".encode())
            status, offers = await _response(reader)
            if status != 407:
                break
            challenge = find_challenge(offers, AuthScheme.NTLM)
            token = ntlm.step(challenge) or b""
        if status != 200:
            raise RuntimeError(f"login through the proxy answered {status}")
        for _ in range(requests - 1):
            writer.write(f"{request}\r\n".encode())
            status, _ = await _response(reader)
            if status != 200:
                raise RuntimeError(f"keep-alive request answered {status}")
        return requests
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def _tree_cpu(root: int) -> float:
    """CPU seconds (user + system) of `root` and every process descended from it, as /proc says now."""
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    spent: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # gone since listdir
            continue
        # proc(5): after the name, state ppid ... utime (14th field) stime (15th)
        parent[int(entry)] = int(fields[1])
        spent[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    tree, grown = {root}, True
    while grown:
        kids = {pid for pid, ppid in parent.items() if ppid in tree} - tree
        tree |= kids
        grown = bool(kids)
    return sum(spent.get(pid, 0.0) for pid in tree)


async def _run(proxy: int, pid: int, origin: int, clients: int, requests: int,
               seconds: float) -> tuple[float, float]:
    """(requests per CPU-second of the proxy's processes, requests per wall-clock second)."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            served = await _one_connection(proxy, origin, requests)  # `done += await` would lose updates
            done += served

    for _ in range(clients):  # warm: every worker and helper started, imports done
        await _one_connection(proxy, origin, 2)
    deadline = time.perf_counter() + seconds
    cpu, start = _tree_cpu(pid), time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall, cpu = time.perf_counter() - start, _tree_cpu(pid) - cpu
    return done / max(cpu, 1e-9), done / wall


def _squid_pid(base: Path) -> int:
    """The squid master of the instance under `base` (its pid file, or the process running its config)."""
    found = subprocess.run(["pgrep", "-o", "-f", f"squid .*-f {base}/squid.conf"], capture_output=True,
                           text=True, check=False).stdout.split()
    if not found:
        raise RuntimeError("squid's pid not found")
    return int(found[0])


def _versions() -> str:
    squid = subprocess.run(["squid", "-v"], capture_output=True, text=True, check=False).stdout
    samba = subprocess.run(["ntlm_auth", "--version"], capture_output=True, text=True, check=False).stdout
    return f"{squid.splitlines()[0] if squid else 'squid ?'}; ntlm_auth {samba.strip() or '?'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per round (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each, alternating (default 3)")
    parser.add_argument("--rows", default=",".join(f"{c}x{r}" for c, r in ROWS),
                        help="CLIENTSxREQUESTS rows, comma-separated (default: all four)")
    parser.add_argument("--workers", type=int, default=1, help="our proxy's processes (default 1)")
    parser.add_argument("--loop", default="auto", choices=("auto", "asyncio", "uvloop"),
                        help="our proxy's event loop (default auto: uvloop when installed)")
    parser.add_argument("--share-idle-upstreams", action=argparse.BooleanOptionalAction, default=True,
                        help="our proxy reuses a closed client connection's idle upstreams, as Squid does"
                        " (its default, and ours)")
    parser.add_argument("--squid-workers", type=int, default=1,
                        help="Squid's SMP workers (default 1: squid -N, its least CPU per request)")
    parser.add_argument("--helpers", type=int, default=8, help="Squid's ntlm_auth children (default 8)")
    parser.add_argument("--origin", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.origin:
        asyncio.run(_serve_origin(args.origin))
        return
    origin, ours = free_port(), free_port()
    # the proxy process imports this checkout, as this process does
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    command = [sys.executable, "-m", "smb2auth", "proxy", "--listen", f"127.0.0.1:{ours}",
               "--user", f"{USER}:{PASSWORD}", "--workers", str(args.workers), "--loop", args.loop,
               "--share-idle-upstreams" if args.share_idle_upstreams else "--no-share-idle-upstreams"]
    with _process([sys.executable, __file__, "--origin", str(origin)], origin), \
            _process(command, ours) as our_pid, \
            running_squid(PASSWORD, workers=args.squid_workers, children=args.helpers) as squid:
        squid_pid = _squid_pid(squid.base)
        loop = args.loop
        if loop == "auto":
            loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
        print(f"smb2auth: {' '.join(command[1:4])} --workers {args.workers} --loop {loop} {command[-1]},"
              " logging at INFO (one line per login)")
        print(f"squid: {_versions()}; workers {args.squid_workers}, ntlm_auth children {args.helpers}"
              " (keep_alive on), access_log none, cache deny all")
        print(f"{machine()}; load average {os.getloadavg()[0]:.1f} at the start (the machine is shared)")
        print(f"rounds: {args.rounds} x {args.seconds:g} s each, alternating; medians")
        print(f"{'clients':>7} {'req/conn':>8} {'ours req/CPU-s':>14} {'squid req/CPU-s':>15} {'ratio':>6}"
              f"   {'ours req/s':>10} {'squid req/s':>11} {'ratio':>6}")
        rows = [tuple(int(n) for n in row.split("x", 1)) for row in args.rows.split(",")]
        for clients, requests in rows:
            mine: list[tuple[float, float]] = []
            theirs: list[tuple[float, float]] = []
            for _ in range(args.rounds):
                mine.append(asyncio.run(_run(ours, our_pid, origin, clients, requests, args.seconds)))
                theirs.append(asyncio.run(_run(squid.port, squid_pid, origin, clients, requests,
                                               args.seconds)))
            cpu = statistics.median(m[0] / t[0] for m, t in zip(mine, theirs, strict=True))
            wall = statistics.median(m[1] / t[1] for m, t in zip(mine, theirs, strict=True))
            a, b = (statistics.median(r[0] for r in side) for side in (mine, theirs))
            c, d = (statistics.median(r[1] for r in side) for side in (mine, theirs))
            print(f"{clients:>7} {requests:>8} {a:>14.0f} {b:>15.0f} {cpu:>5.2f}x   {c:>10.0f} {d:>11.0f}"
                  f" {wall:>5.2f}x", flush=True)


if __name__ == "__main__":
    main()
