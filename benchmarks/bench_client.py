"""Client CPU per full SMB2 session setup against a private smbd: smb2auth vs smbprotocol 1.17.

One session = TCP connect, NEGOTIATE 3.1.1, SESSION_SETUP (SPNEGO/NTLMv2, signed final response verified),
LOGOFF, close. CPU is getrusage() of this process around N sessions, user and system apart (smbd runs in
its own processes, so its CPU is not counted; smbprotocol's receiver thread is, as it is part of that
client).

    python benchmarks/bench_client.py [-n 300] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smb2auth.client import Dialect, connect  # noqa: E402
from tests.peers import Smbd, running_smbd  # noqa: E402


def ours(server: Smbd) -> Callable[[], None]:
    def one() -> None:
        session = connect(
            "127.0.0.1",
            server.port,
            username=server.user,
            password=server.password,
            dialects=(Dialect.SMB3_1_1,),
        )
        assert session.signed
        session.logoff()
        session.close()

    return one


def smbprotocol_session(server: Smbd) -> Callable[[], None]:
    from smbprotocol.connection import Connection, Dialects
    from smbprotocol.session import Session

    def one() -> None:
        conn = Connection(uuid.uuid4(), "127.0.0.1", server.port, require_signing=True)
        conn.connect(Dialects.SMB_3_1_1)
        session = Session(conn, server.user, server.password, auth_protocol="ntlm")
        session.connect()
        session.disconnect()
        conn.disconnect()

    return one


def core_only(n: int) -> float:
    """CPU per session of the sans-IO core alone against our real server in memory (tests/helpers.py
    ConnectionPair; only the client's part is counted; no sockets, warm caches): the floor the socket loop
    adds to."""
    from tests.helpers import ConnectionPair, server_context

    ctx = server_context()
    spent = 0.0
    clock = time.process_time
    for _ in range(n):
        t = clock()
        pair = ConnectionPair(
            ctx, server_name="127.0.0.1", dialects=(Dialect.SMB3_1_1,), rng=os.urandom, clock=time.time
        )
        core = pair.client
        out = core.negotiate()
        spent += clock() - t
        while out:
            replies = pair.answers(out)
            t = clock()
            for reply in replies:
                core.receive(reply)
            if core.established:
                out = core.logoff()
            elif core.state.value == "CLOSED":
                out = b""
            else:
                out = core.data_to_send()
            spent += clock() - t
    return spent / n


@dataclass(frozen=True)
class Cost:
    """Per session: user CPU, system CPU (seconds) of this process, and sessions per wall-clock second.

    System CPU on loopback is mostly the kernel's TCP work, including the receive path of the packets
    this process sends to smbd (processed in the sender's context), so it is not all the client's own.
    """

    user: float
    system: float
    rate: float

    @property
    def total(self) -> float:
        return self.user + self.system


def measure(one: Callable[[], None], n: int) -> Cost:
    for _ in range(max(3, n // 20)):
        one()
    before, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(n):
        one()
    after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - wall0
    return Cost((after.ru_utime - before.ru_utime) / n, (after.ru_stime - before.ru_stime) / n, n / wall)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=300, help="sessions per client (smbprotocol: n // 3)")
    parser.add_argument("--profile", action="store_true", help="cProfile our client and print the top")
    args = parser.parse_args()
    with running_smbd() as server:
        mine = measure(ours(server), args.n)
        theirs = measure(smbprotocol_session(server), max(10, args.n // 3))
        print(f"peer: smbd {server.base} port {server.port}, dialect 3.1.1, NTLMv2, signing required")
        for name, cost in (("smb2auth", mine), ("smbprotocol", theirs)):
            print(
                f"{name:12} client CPU {cost.total * 1e3:7.3f} ms/session (user {cost.user * 1e3:6.3f}, "
                f"system {cost.system * 1e3:6.3f})   wall {cost.rate:7.1f} sessions/s"
            )
        floor = core_only(args.n)
        print(f"smb2auth core alone (our server in memory, no sockets) CPU {floor * 1e3:7.3f} ms/session")
        print(
            f"ratio        smbprotocol/smb2auth CPU {theirs.total / mine.total:5.1f}x "
            f"(user CPU {theirs.user / mine.user:5.1f}x)   wall {mine.rate / theirs.rate:5.1f}x"
        )
        if args.profile:
            one = ours(server)
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(args.n):
                one()
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
