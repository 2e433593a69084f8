"""Authenticated proxy throughput: `smb2auth proxy` vs Squid (Debian's, with Samba's ntlm_auth checking
NTLMv2), measured in the same run, rounds alternating, with the same client against the same origin.

Each client connection authenticates to the proxy with NTLM (smb2auth's NtlmClient: NEGOTIATE, 407 with the
CHALLENGE, AUTHENTICATE), then sends its remaining requests on the same connection (HTTP/1.1 keep-alive);
every request is a GET of an absolute URL on a small loopback origin (its own process). Rows: 1 and 8
concurrent client connections, 1 and 50 requests per connection; the figure is authenticated requests per
second, the median of the rounds. Our proxy runs as `python -m smb2auth proxy` in its own process, as
Squid runs in its own.

    python benchmarks/bench_proxy.py [--seconds 3] [--rounds 3]    (from the repository root)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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
def _process(args: list[str], port: int) -> Iterator[None]:
    quiet = subprocess.DEVNULL
    proc = subprocess.Popen(args, stdin=quiet, stdout=quiet, stderr=quiet, start_new_session=True)
    try:
        wait_for_port(port, proc, 30.0, None)
        yield
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


async def _run(proxy: int, origin: int, clients: int, requests: int, seconds: float) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            served = await _one_connection(proxy, origin, requests)  # `done += await` would lose updates
            done += served

    await _one_connection(proxy, origin, 2)  # warm: helpers started, imports done
    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per round (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each, alternating (default 3)")
    parser.add_argument("--rows", default=",".join(f"{c}x{r}" for c, r in ROWS),
                        help="CLIENTSxREQUESTS rows, comma-separated (default: all four)")
    parser.add_argument("--origin", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.origin:
        asyncio.run(_serve_origin(args.origin))
        return
    origin, ours = free_port(), free_port()
    # the proxy process imports this checkout, as this process does
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    with _process([sys.executable, __file__, "--origin", str(origin)], origin), \
            _process([sys.executable, "-m", "smb2auth", "proxy", "--listen", f"127.0.0.1:{ours}",
                      "--user", f"{USER}:{PASSWORD}"], ours), \
            running_squid(PASSWORD, children=8) as squid:
        print(f"{'clients':>7} {'req/conn':>8} {'smb2auth req/s':>15} {'squid req/s':>12} {'ratio':>6}")
        rows = [tuple(int(n) for n in row.split("x", 1)) for row in args.rows.split(",")]
        for clients, requests in rows:
            mine: list[float] = []
            theirs: list[float] = []
            for _ in range(args.rounds):
                mine.append(asyncio.run(_run(ours, origin, clients, requests, args.seconds)))
                theirs.append(asyncio.run(_run(squid.port, origin, clients, requests, args.seconds)))
            a, b = statistics.median(mine), statistics.median(theirs)
            print(f"{clients:>7} {requests:>8} {a:>15.0f} {b:>12.0f} {a / b:>5.2f}x", flush=True)


if __name__ == "__main__":
    main()
