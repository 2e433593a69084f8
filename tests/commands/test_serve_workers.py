"""`smb2auth serve --workers N` as a process: Debian's smbclient and our client log in concurrently, the
parent's log has the logins of both workers with their pids, SIGINT/SIGTERM leave no process behind, a
killed worker is replaced and no worker outlives a killed parent (issue 15, item 4)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from smb2auth.client import Smb2ClientError, connect
from smb2auth.commands.main import build_parser
from smb2auth.server.workers import usable_cores
from smb2auth.status import NtStatus
from tests.peers import require_program

ALICE, BOB = ("alice", "Passw0rd!"), ("bob", "B0b-pass")
EACH = 8  # logins of each client, all at once; 16 connections on two listeners all on one: 2 * 2**-16


@dataclass
class Serving:
    proc: subprocess.Popen[str]
    port: int
    stderr: list[str] = field(default_factory=list)

    def workers(self) -> list[int]:
        """The pids whose parent is the server's, from /proc."""
        return children(self.proc.pid)


def children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return sorted(found)


def gone(pid: int) -> bool:
    """The process has exited: no such pid, or a zombie of a parent that is not ours."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_until(condition: object, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@contextmanager
def serving(*argv: str, stop: signal.Signals = signal.SIGTERM) -> Iterator[Serving]:
    """`smb2auth serve --listen 127.0.0.1:0 --workers 2 ARGV`; `stop` at the end of the block, then its
    stderr in `.stderr`."""
    command = ["serve", "--listen", "127.0.0.1:0", "--workers", "2", *argv]
    proc = subprocess.Popen(
        [sys.executable, "-m", "smb2auth.commands.main", *command], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    server = Serving(proc, 0)
    try:
        assert proc.stdout is not None
        listening = proc.stdout.readline().strip()
        assert listening.startswith("listening on 127.0.0.1:"), listening
        server.port = int(listening.rsplit(":", 1)[1])
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(stop)
        try:
            server.stderr.append(proc.communicate(timeout=30)[1])
        finally:
            if proc.poll() is None:
                proc.kill()


def our_login(port: int, user: tuple[str, str]) -> int:
    try:
        with connect("127.0.0.1", port, username=user[0], password=user[1], timeout=60) as session:
            session.tree_connect("IPC$")
            return NtStatus.STATUS_SUCCESS
    except Smb2ClientError as exc:
        return exc.status


def smbclient_login(port: int, user: tuple[str, str]) -> int:
    program = require_program("smbclient", "/usr/bin/smbclient")
    proc = subprocess.run(
        [program, "//127.0.0.1/IPC$", "-p", str(port), "-U", f"{user[0]}%{user[1]}", "--use-kerberos=off",
         "-s", "/dev/null", "-m", "SMB3_11", "--client-protection=sign", "-c", "exit"],
        capture_output=True, text=True, timeout=120,
    )
    return proc.returncode


def test_workers_default_to_the_usable_cores() -> None:
    assert build_parser().parse_args(["serve"]).workers == usable_cores() == len(os.sched_getaffinity(0))
    assert build_parser().parse_args(["serve", "--workers", "3"]).workers == 3


@pytest.mark.interop
def test_smbclient_and_our_client_at_once_reach_both_workers() -> None:
    require_program("smbclient", "/usr/bin/smbclient")
    user_args = ("--user", f"{ALICE[0]}:{ALICE[1]}", "--user", f"{BOB[0]}:{BOB[1]}")
    with serving(*user_args) as server:
        workers = server.workers()
        assert len(workers) == 2
        with ThreadPoolExecutor(2 * EACH) as executor:
            theirs = [executor.submit(smbclient_login, server.port, ALICE) for _ in range(EACH)]
            ours = [executor.submit(our_login, server.port, BOB) for _ in range(EACH)]
            assert [f.result() for f in theirs] == [0] * EACH
            assert [f.result() for f in ours] == [NtStatus.STATUS_SUCCESS] * EACH
    assert server.proc.returncode == 0
    log = server.stderr[0]
    logins = re.findall(r"smb2auth\.login: smb2 login ok user=(\S+) .* worker=(\d+)$", log, re.M)
    assert sorted(user for user, _ in logins) == ["WORKGROUP\\alice"] * EACH + ["bob"] * EACH
    assert {int(pid) for _, pid in logins} == set(workers)
    assert "Traceback" not in log and "ERROR" not in log
    assert all(gone(pid) for pid in workers)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)  # reaped by the parent


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_stops_every_worker(stop: signal.Signals) -> None:
    with serving("--user", f"{ALICE[0]}:{ALICE[1]}", stop=stop) as server:
        workers = server.workers()
        assert len(workers) == 2
        assert our_login(server.port, ALICE) == NtStatus.STATUS_SUCCESS
    assert server.proc.returncode == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    assert "smb2 login ok user=alice" in server.stderr[0] and "Traceback" not in server.stderr[0]


def test_workers_stop_when_their_parent_is_killed() -> None:
    with serving("--user", f"{ALICE[0]}:{ALICE[1]}") as server:
        workers = server.workers()
        assert len(workers) == 2
        server.proc.kill()
        server.proc.wait(timeout=20)
        try:
            # Orphans of a parent killed outright: their socketpair to it closed, each stops on its own.
            assert wait_until(lambda: all(gone(pid) for pid in workers))
        finally:
            for pid in workers:
                if not gone(pid):
                    os.kill(pid, signal.SIGKILL)


def test_a_killed_worker_is_logged_and_replaced() -> None:
    with serving("--user", f"{ALICE[0]}:{ALICE[1]}") as server:
        victim, survivor = server.workers()
        os.kill(victim, signal.SIGKILL)
        assert wait_until(lambda: len(server.workers()) == 2 and victim not in server.workers())
        successor = next(pid for pid in server.workers() if pid != survivor)
        with ThreadPoolExecutor(EACH) as executor:
            statuses = list(executor.map(lambda _: our_login(server.port, ALICE), range(2 * EACH)))
        assert statuses == [NtStatus.STATUS_SUCCESS] * (2 * EACH)
    assert server.proc.returncode == 0
    log = server.stderr[0]
    assert f"ERROR smb2auth.server.workers: worker {victim} exited (signal SIGKILL); starting another" in log
    assert {int(pid) for pid in re.findall(r"login ok .* worker=(\d+)$", log, re.M)} == {survivor, successor}
    assert not any(Path(f"/proc/{pid}").exists() for pid in (survivor, successor))

