"""Client CPU per full SMB2 session setup against a private smbd: smb2auth vs smbprotocol.

One session = TCP connect, NEGOTIATE 3.1.1, SESSION_SETUP (NTLMv2, signed final response verified),
LOGOFF, close. Both clients require signing and not encryption, and are given the password or the NT hash
(smbprotocol as pyspnego's "LM:NT" password form). smbprotocol speaks raw NTLMSSP (auth_protocol="ntlm",
its cheapest), we SPNEGO with a mechListMIC. CPU is getrusage() of this process around the sessions of
a round, user and system apart (smbd runs in its own processes, so its CPU is not counted; smbprotocol's
receiver thread is, as it is part of that client). Rounds alternate; figures are medians. Each client runs
twice a round: with the scheduler free to put it and smbd on either core, and pinned (this process on one
core, smbd and the processes it forks on the other, as `taskset` would), where neither finds its caches
filled by the other after each round trip; the best/best ratio takes each peer's cheaper placement.

Then the sans-IO core alone against our real server in memory (tests/helpers.py ConnectionPair), back
to back and sleeping before each answer as long as a round trip to smbd took (callgrind counts the same
instructions per session for the core alone and for the client over TCP: what the client spends beyond
the core is mostly the core run cold, after other processes had the CPU), beside the floor: the
primitives such a session cannot avoid (NTLM's, the client's half of the mechListMIC, SHA-512 over the
preauth messages, the signing key's KDF, one AES-GMAC per signed message), with the share
pycryptodome's AES-GMAC object set-up would take; then both with smb2auth's AES primitives from
pycryptodome and from cryptography (smb2/crypto.py use_aes_backend; the default when it is installed),
alternating rounds: what the optional backend saves.

    python benchmarks/bench_client.py [-n 150] [--rounds 3] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import resource
import statistics
import struct
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

# The repository after the installed packages (for tests.peers and tests.helpers): an installed smb2auth, a
# compiled build say, is the one measured.
sys.path.append(str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _floor  # noqa: E402
from _harness import breakdown, machine, rate, run_all, spread, versions  # noqa: E402
from Crypto.Cipher import AES  # noqa: E402

from smb2auth.client import Dialect, SigningAlgorithm, connect  # noqa: E402
from smb2auth.ntlm import crypto  # noqa: E402
from smb2auth.smb2.crypto import aes_backend  # noqa: E402
from tests.peers import Smbd, running_smbd  # noqa: E402

Session = Callable[[], None]


def ours(server: Smbd, password: bool) -> Session:
    secret = server.password if password else None
    nt_hash = None if password else crypto.ntowfv1(server.password)

    def one() -> None:
        session = connect(
            "127.0.0.1",
            server.port,
            username=server.user,
            password=secret,
            nt_hash=nt_hash,
            dialects=(Dialect.SMB3_1_1,),
            require_signing=True,
            require_encryption=False,
        )
        assert session.signed
        session.logoff()
        session.close()

    return one


def smbprotocol_session(server: Smbd, password: bool) -> Session:
    from smbprotocol.connection import Connection, Dialects
    from smbprotocol.session import Session as SmbSession

    lm, nt = crypto.lmowfv1(server.password).hex(), crypto.ntowfv1(server.password).hex()
    secret = server.password if password else f"{lm}:{nt}"

    def one() -> None:
        conn = Connection(uuid.uuid4(), "127.0.0.1", server.port, require_signing=True)
        conn.connect(Dialects.SMB_3_1_1)
        session = SmbSession(
            conn, server.user, secret, require_encryption=False, auth_protocol="ntlm"
        )
        session.connect()
        session.disconnect()
        conn.disconnect()

    return one


def configuration(server: Smbd) -> list[str]:
    from smbprotocol.connection import Connection, Dialects
    from smbprotocol.session import Session as SmbSession

    session = connect(
        "127.0.0.1", server.port, username=server.user, password=server.password, dialects=(Dialect.SMB3_1_1,)
    )
    mine = f"dialect {session.dialect_name}, signing {session.signing_algorithm!r}"
    session.logoff()
    session.close()
    conn = Connection(uuid.uuid4(), "127.0.0.1", server.port, require_signing=True)
    conn.connect(Dialects.SMB_3_1_1)
    smb = SmbSession(conn, server.user, server.password, require_encryption=False, auth_protocol="ntlm")
    smb.connect()
    algorithm = conn.signing_algorithm_id
    theirs = (
        f"dialect 0x{conn.dialect:04x}, signing {SigningAlgorithm(algorithm)!r}, "
        f"encrypted {smb.encrypt_data}"
    )
    smb.disconnect()
    conn.disconnect()
    return [
        f"peer server: smbd {server_version()} on 127.0.0.1:{server.port}, NTLMv2, signing required",
        f"ours: {versions('smb2auth', 'pycryptodome', 'cryptography')} (AES from {aes_backend()}): "
        "client.connect(dialects=(3.1.1,), "
        f"require_signing=True, require_encryption=False), SPNEGO + mechListMIC; negotiated {mine}",
        f"peer: {versions('smbprotocol', 'pyspnego', 'cryptography')}: Connection(require_signing=True)"
        f".connect(SMB_3_1_1), Session(require_encryption=False, auth_protocol='ntlm'); negotiated {theirs}",
    ]


def server_version() -> str:
    import subprocess

    proc = subprocess.run(["smbd", "--version"], capture_output=True, text=True, check=False)
    return proc.stdout.strip().removeprefix("Version ")


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


def _process_tree(pid: int) -> list[int]:
    """`pid` and its descendants, from /proc (Linux)."""
    tree = [pid]
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for child in children:
            tree += _process_tree(int(child))
    return tree


@contextlib.contextmanager
def placement(server: Smbd, pinned: bool) -> Iterator[None]:
    """Pinned: this thread (and so the threads it starts, smbprotocol's receivers among them) on the first
    allowed core, smbd's processes (and so the ones it forks) on the second; else both free on every
    allowed core. Restores this thread's cores afterwards."""
    cores = sorted(os.sched_getaffinity(0))
    mine, theirs = ({cores[0]}, {cores[1]}) if pinned else (set(cores), set(cores))
    assert server.proc is not None
    for pid in _process_tree(server.proc.pid):
        with contextlib.suppress(OSError):  # a connection's process that exited meanwhile
            os.sched_setaffinity(pid, theirs)
    os.sched_setaffinity(0, mine)
    try:
        yield
    finally:
        os.sched_setaffinity(0, cores)


def measure(one: Session, n: int) -> Cost:
    before, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(n):
        one()
    after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - wall0
    return Cost((after.ru_utime - before.ru_utime) / n, (after.ru_stime - before.ru_stime) / n, n / wall)


def median_cost(costs: list[Cost]) -> Cost:
    return Cost(
        statistics.median(c.user for c in costs),
        statistics.median(c.system for c in costs),
        statistics.median(c.rate for c in costs),
    )


# --- the core alone, and its floor -----------------------------------------------------------------


def _core_session(ctx: object, capture: list[bytes] | None = None, pause: float = 0.0) -> float:
    """One session of the sans-IO core against our real server in memory (tests/helpers.py ConnectionPair,
    no sockets); the core's CPU seconds (the server's excluded). `capture` gets every message; `pause`
    seconds of sleep before each answer reaches the client, as a client waits for a real server."""
    from tests.helpers import ConnectionPair

    clock = time.process_time
    t = clock()
    pair = ConnectionPair(
        ctx, server_name="127.0.0.1", dialects=(Dialect.SMB3_1_1,), rng=os.urandom, clock=time.time
    )
    core = pair.client
    out = core.negotiate()
    spent = clock() - t
    while out:
        if capture is not None:
            capture.append(out[4:])
        replies = pair.answers(out)
        if pause:
            time.sleep(pause)
        t = clock()
        for reply in replies:
            if capture is not None:
                capture.append(reply)
            core.receive(reply)
        if core.established:
            out = core.logoff()
        elif core.state.value == "CLOSED":
            out = b""
        else:
            out = core.data_to_send()
        spent += clock() - t
    return spent


def core_cpu(n: int, pause: float = 0.0) -> float:
    """CPU per session of the core alone (the in-memory server's share excluded); `pause` as _core_session."""
    from tests.helpers import server_context

    ctx = server_context()
    return sum(_core_session(ctx, pause=pause) for _ in range(n)) / n


_ROUND_TRIPS = 4  # NEGOTIATE, two SESSION_SETUP legs, LOGOFF


_NEGOTIATE, _SESSION_SETUP = 0, 1
_SIGNED, _RESPONSE = 0x8, 0x1


def core_floor() -> tuple[list[_floor.Primitive], int]:
    """The floor of one core session, sized from a real one; and how many messages were signed."""
    from smb2auth.ntlm.messages import AuthenticateMessage
    from smb2auth.spnego.tokens import decode, mech_types_der
    from tests.helpers import DOMAIN, PASSWORD, USER, server_context

    messages: list[bytes] = []
    _core_session(server_context(), messages)
    preauth = []
    signed: list[int] = []
    ntlm: list[bytes] = []
    mech_types = 0
    for message in messages:
        (command,) = struct.unpack_from("<H", message, 12)
        (flags,) = struct.unpack_from("<I", message, 16)
        if flags & _SIGNED:
            signed.append(len(message))
        if command == _SESSION_SETUP:
            # MS-SMB2 2.2.5 / 2.2.6: SecurityBufferOffset and Length, request and response.
            offset, length = struct.unpack_from("<HH", message, 68 if flags & _RESPONSE else 76)
            token = decode(message[offset : offset + length])
            inner = getattr(token, "mech_token", None) or getattr(token, "response_token", None)
            if inner:
                ntlm.append(inner)
            if getattr(token, "mech_types", None):
                mech_types = len(mech_types_der(token.mech_types))  # type: ignore[union-attr]
        (status,) = struct.unpack_from("<I", message, 8)
        final = command == _SESSION_SETUP and flags & _RESPONSE and status == 0
        # MS-SMB2 3.2.5.3.1: the preauth hash covers NEGOTIATE and SESSION_SETUP but the final response.
        if command in (_NEGOTIATE, _SESSION_SETUP) and not final:
            preauth.append(message)
    negotiate, challenge, authenticate = ntlm[-3:]
    blob = len(AuthenticateMessage.unpack(authenticate).nt_response) - 16
    mic_input = len(negotiate) + len(challenge) + len(authenticate)
    prims = [
        _floor.urandom(16),  # ClientGuid
        _floor.urandom(32),  # the preauth Salt
        *_floor.ntlm_client(PASSWORD, USER, DOMAIN, blob, mic_input),
        *_floor.mech_list_mic(mech_types),
        *(_floor.sha512(64 + len(m)) for m in preauth),
        _floor.hmac_sha256(4 + len(b"SMBSigningKey\x00") + 64 + 4),
        *(_floor.aes_gmac(size) for size in signed),
    ]
    return prims, len(signed)


def gmac_setup() -> None:
    AES.new(_floor.KEY, AES.MODE_GCM, nonce=_floor.NONCE)


@contextlib.contextmanager
def aes_from(name: str) -> Iterator[bool]:
    """smb2auth's AES primitives from `name` for the duration (smb2auth/smb2/crypto.py use_aes_backend);
    False, nothing changed, when that library is not installed."""
    from smb2auth.smb2 import crypto as smb2_crypto

    if name not in smb2_crypto.AES_BACKENDS:
        yield False
        return
    previous = smb2_crypto.aes_backend()
    smb2_crypto.use_aes_backend(name)
    try:
        yield True
    finally:
        smb2_crypto.use_aes_backend(previous)


def gmac_share(server: Smbd, rounds: int, n: int, seconds: float) -> list[str]:
    """Client CPU per session over TCP and of the core alone with the AES primitives (AES-GMAC signing) from
    pycryptodome and from cryptography, alternating rounds: what the optional backend saves."""
    one = ours(server, True)
    over_tcp: dict[str, list[float]] = {"pycryptodome": [], "cryptography": []}
    core: dict[str, list[float]] = {"pycryptodome": [], "cryptography": []}
    for _ in range(rounds):
        for name in over_tcp:
            with aes_from(name) as available:
                if not available:
                    return [f"AES backends: {name} not installed, nothing to compare"]
                over_tcp[name].append(measure(one, n).total)
                core[name].append(core_cpu(max(20, int(seconds * 500))))
    lines = []
    for what, values in (("client CPU per session over TCP", over_tcp), ("the core alone", core)):
        slow, fast = statistics.median(values["pycryptodome"]), statistics.median(values["cryptography"])
        lines.append(
            f"AES from pycryptodome vs from cryptography (smb2auth's default when installed), {what}: "
            f"{slow * 1e6:.0f} vs {fast * 1e6:.0f} µs; saved: {100 * (slow - fast) / slow:.0f}%"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=150, help="our sessions per round (smbprotocol: n // 3)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, alternating (default 3)")
    parser.add_argument("--seconds", type=float, default=0.5, help="seconds per in-process round")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile our client (CPU time) and print the top"
    )
    args = parser.parse_args()
    with running_smbd() as server:
        for line in configuration(server):
            print(line)
        print(machine())
        runs = {
            "smb2auth, password": (ours(server, True), args.n),
            "smb2auth, NT hash": (ours(server, False), args.n),
            "smbprotocol, password": (smbprotocol_session(server, True), max(10, args.n // 3)),
            "smbprotocol, NT hash": (smbprotocol_session(server, False), max(10, args.n // 3)),
        }
        for one, n in runs.values():
            for _ in range(max(3, n // 20)):
                one()
        placements = ["shared"] + (["pinned"] if len(os.sched_getaffinity(0)) >= 2 else [])
        costs: dict[tuple[str, str], list[Cost]] = {
            (label, where): [] for where in placements for label in runs
        }
        for i in range(args.rounds):
            # Each placement goes first in every other round, so an order effect falls on both.
            for where in placements if i % 2 == 0 else placements[::-1]:
                with placement(server, where == "pinned"):
                    for label, (one, n) in runs.items():
                        costs[(label, where)].append(measure(one, n))
        print(f"rounds: {args.rounds}, {args.n} of our sessions and {max(10, args.n // 3)} of "
              "smbprotocol's per round, alternating; medians. shared: client and smbd on any core; "
              "pinned: client on one core, smbd on the other")
        for (label, where), values in costs.items():
            cost = median_cost(values)
            print(
                f"{label:22} {where:6} client CPU {cost.total * 1e3:7.3f} ms/session (user "
                f"{cost.user * 1e3:6.3f}, system {cost.system * 1e3:6.3f})   wall {cost.rate:7.1f} sessions/s"
            )
        for where in placements:
            for config in ("password", "NT hash"):
                mine, theirs = costs[(f"smb2auth, {config}", where)], costs[(f"smbprotocol, {config}", where)]
                cpu = [t.total / m.total for m, t in zip(mine, theirs, strict=True)]
                user = [t.user / m.user for m, t in zip(mine, theirs, strict=True)]
                print(
                    f"ratio smbprotocol/smb2auth CPU, {config}, {where}: {spread(cpu)}; "
                    f"user CPU {spread(user)}"
                )

        def best(peer: str, i: int) -> float:
            return min(
                costs[(f"{peer}, {config}", where)][i].total
                for config in ("password", "NT hash")
                for where in placements
            )

        ratios = [best("smbprotocol", i) / best("smb2auth", i) for i in range(args.rounds)]
        print(f"ratio smbprotocol-best/smb2auth-best CPU (each its cheaper secret and placement): "
              f"{spread(ratios)} (target >= 5x)")
        shared = costs[("smb2auth, password", "shared")]
        client_cpu = statistics.median(c.total for c in shared)

        prims, signed = core_floor()
        floor_fn = run_all([p.call for p in prims])
        core: list[float] = []
        floors: list[float] = []
        idle: list[float] = []
        # The wall time a round trip to smbd took (per session, over the round trips): how long the client
        # waited for each answer, and so how long other processes had the CPU (and its caches) meanwhile.
        wait = 1 / median_cost(shared).rate / _ROUND_TRIPS
        for _ in range(args.rounds):
            core.append(core_cpu(max(20, int(args.seconds * 500))))
            floors.append(1 / rate(floor_fn, args.seconds))
            idle.append(core_cpu(max(10, int(args.seconds * 50)), pause=wait))
        core_us, floor_us = statistics.median(core) * 1e6, statistics.median(floors) * 1e6
        setup_us = 1e6 / rate(gmac_setup, args.seconds) * signed
        print(f"smb2auth core alone (our server in memory, no sockets): CPU {core_us:7.1f} µs/session")
        idle_us = statistics.median(idle) * 1e6
        print(
            f"smb2auth core alone, sleeping {wait * 1e3:.1f} ms before each answer (a round trip to smbd "
            f"above): CPU {idle_us:7.1f} µs/session = {idle_us / core_us:.1f}x back to back; the client over "
            f"TCP took {client_cpu * 1e6:.0f} µs (the same instructions, run with caches others filled)"
        )
        print(f"floor for the core: {floor_us:.1f} µs/session; the core takes "
              f"{spread([c / f for c, f in zip(core, floors, strict=True)])} the floor")
        print(f"floor for the core: {breakdown(prims, args.seconds / 4)}")
        print(
            f"pycryptodome's AES-GMAC object set-up (AES.new MODE_GCM; not used with cryptography) x {signed}"
            " signed messages: "
            f"{setup_us:.1f} µs/session = {100 * setup_us / core_us:.0f}% of the core's CPU, "
            f"{100 * setup_us / (client_cpu * 1e6):.0f}% of the client's CPU per session over TCP"
        )
        for line in gmac_share(server, args.rounds, args.n, args.seconds):
            print(line)
        if args.profile:
            one = ours(server, True)
            profiler = cProfile.Profile(time.process_time)  # CPU time: waiting in recv is not the client's
            profiler.enable()
            for _ in range(args.n):
                one()
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
