"""WorkerPool (smb2auth.server.workers) in this process: the events of every worker reach the parent in
order, a dead worker is replaced, one that cannot start stops the pool, each worker reloads a file-backed
authority, and what is per worker (PreviousSessionId, session binding, handshake timeouts) is what the
module's docstring promises. The `serve --workers` command is tests/commands/test_serve_workers.py."""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from smb2auth.authority.local import LocalAuthority
from smb2auth.authority.smbpasswd import load_smbpasswd, write_smbpasswd_entry
from smb2auth.client import Smb2ClientError, connect
from smb2auth.events import EventLog, LoginEvent
from smb2auth.ntlm.authority import AsyncAuthority, ValidationRequest, ValidationResult
from smb2auth.ntlm.server import TargetInfo
from smb2auth.server.config import ServerConfig
from smb2auth.server.workers import WorkerError, WorkerPool
from smb2auth.smb2.header import Command
from smb2auth.smb2.negotiate import Dialect
from smb2auth.smb2.session import SessionSetupFlags, SessionSetupRequest
from smb2auth.smb2.tree import TreeConnectRequest
from smb2auth.status import NtStatus
from smb2auth.testing import RunningServer, running_server
from tests.hardening.raw import SocketDriver
from tests.server.driver import DOMAIN, PASSWORD, USER

# 16 connections all hashed to one of two SO_REUSEPORT listeners: 2 * 2**-16, never seen.
SPREAD = 16


@pytest.fixture
def two_workers() -> Iterator[RunningServer]:
    with running_server(username=USER, password=PASSWORD, domain=DOMAIN, workers=2) as server:
        yield server


def gone(pid: int) -> bool:
    """The process has exited: no such pid, or a zombie (its parent is not ours to make reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def address_of(driver: SocketDriver) -> str:
    host, port = driver.sock.getsockname()[:2]
    return f"{host}:{port}"


def event_of(server: RunningServer, driver: SocketDriver, seen: int) -> LoginEvent:
    """The login event of `driver`'s connection among the events after the first `seen`."""
    address = address_of(driver)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [e for e in server.wait_for_events(seen + 1)[seen:] if e.client_address == address]
        if found:
            return found[-1]
        time.sleep(0.01)
    raise AssertionError(f"no login event from {address}")


def login_status(host: str, port: int, user: str = USER, password: str = PASSWORD) -> int:
    try:
        with connect(host, port, username=user, password=password, domain=DOMAIN, timeout=30):
            return NtStatus.STATUS_SUCCESS
    except Smb2ClientError as exc:
        return exc.status


def test_events_of_every_worker_reach_the_parent_in_order(
    two_workers: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = two_workers
    pool = server.pool
    assert pool is not None and len(pool.pids) == 2 and os.getpid() not in pool.pids
    with caplog.at_level(logging.INFO, logger="smb2auth.login"):
        with ThreadPoolExecutor(8) as executor:
            statuses = list(executor.map(lambda _: login_status(server.host, server.port), range(SPREAD)))
        assert statuses == [NtStatus.STATUS_SUCCESS] * SPREAD
        # One connection, two logins: a wrong password, then the right one, in that order on one worker.
        driver = SocketDriver(server.host, server.port)
        driver.negotiate()
        assert driver.login(password="wrong").final.status == "STATUS_LOGON_FAILURE"
        assert driver.login().final.status == "STATUS_SUCCESS"
        address = address_of(driver)
        driver.close()
        events = server.wait_for_events(SPREAD + 2)
    assert len(events) == SPREAD + 2
    assert {e.worker for e in events} == set(pool.pids)
    ours = [e for e in events if e.client_address == address]
    assert [e.status for e in ours] == ["STATUS_LOGON_FAILURE", "STATUS_SUCCESS"]
    assert ours[0].worker == ours[1].worker
    for pid in pool.pids:
        times = [e.time for e in events if e.worker == pid]
        assert times == sorted(times)
    # The parent logged each of them on smb2auth.login, naming the worker.
    lines = [r.getMessage() for r in caplog.records if r.name == "smb2auth.login"]
    assert len(lines) == SPREAD + 2 and lines[-1].endswith(f"worker={ours[1].worker}")
    assert all(r.process == os.getpid() for r in caplog.records if r.name == "smb2auth.login")


def test_a_killed_worker_is_replaced(two_workers: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    server = two_workers
    pool = server.pool
    assert pool is not None
    victim, survivor = pool.pids
    with caplog.at_level(logging.INFO, logger="smb2auth.server.workers"):
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while (len(pool.pids) < 2 or victim in pool.pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = pool.pids
        assert len(pids) == 2 and victim not in pids and survivor in pids and gone(victim)
        successor = pids[0]  # it serves the victim's slot, and its sockets
        with ThreadPoolExecutor(8) as executor:
            statuses = list(executor.map(lambda _: login_status(server.host, server.port), range(SPREAD)))
        assert statuses == [NtStatus.STATUS_SUCCESS] * SPREAD
        events = server.wait_for_events(SPREAD)
    assert {e.worker for e in events} == {successor, survivor}
    messages = [r.getMessage() for r in caplog.records if r.name == "smb2auth.server.workers"]
    assert f"worker {victim} exited (signal SIGKILL); starting another on its sockets" in messages
    assert f"worker {successor} serving" in messages


def test_stop_leaves_no_worker_behind() -> None:
    with running_server(workers=2) as server:
        assert server.pool is not None
        pids = server.pool.pids
        status = login_status(server.host, server.port, server.username, server.password)
        assert status == NtStatus.STATUS_SUCCESS
    assert len(pids) == 2 and all(gone(pid) for pid in pids)
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)  # reaped, not left as zombies


def test_a_worker_that_cannot_start_stops_the_pool(caplog: pytest.LogCaptureFixture) -> None:
    def no_authority() -> LocalAuthority:
        raise RuntimeError("the directory is down")

    pool = WorkerPool(ServerConfig(authority=LocalAuthority()), 2, authority=no_authority)
    pool.listen("127.0.0.1", 0)
    with caplog.at_level(logging.ERROR), pytest.raises(WorkerError, match=r"exited \(exit status 1\) before"):
        pool.start()
    assert pool.pids == []
    failures = [r for r in caplog.records if "RuntimeError('the directory is down')" in r.getMessage()]
    assert failures and all(r.process != os.getpid() for r in failures)  # logged in the worker, shown here


def test_each_worker_loads_a_file_backed_authority(tmp_path: Path) -> None:
    users = tmp_path / "smbpasswd"
    write_smbpasswd_entry(users, USER, PASSWORD)
    events: queue.Queue[LoginEvent] = queue.Queue()
    config = ServerConfig(authority=load_smbpasswd(users, DOMAIN), target=TargetInfo(nb_domain=DOMAIN))
    pool = WorkerPool(
        config, 2, authority=lambda: load_smbpasswd(users, DOMAIN), events=EventLog([events.put])
    )
    host, port = pool.listen("127.0.0.1", 0)
    pool.start()
    thread = threading.Thread(target=pool.serve_forever)
    thread.start()
    try:
        write_smbpasswd_entry(users, "bob", "B0b-pass")  # after both workers loaded the file
        old, replaced = pool.pids
        os.kill(replaced, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while (len(pool.pids) < 2 or replaced in pool.pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        new = pool.pids[1]
        assert new not in (old, replaced)
        seen: set[int | None] = set()
        for _ in range(60):
            try:
                with connect(host, port, username="bob", password="B0b-pass", domain=DOMAIN, timeout=30):
                    status = NtStatus.STATUS_SUCCESS
            except Smb2ClientError as exc:
                status = exc.status
            event = events.get(timeout=10)
            # The new worker read the file as it is now; the old one serves it as it was when it started.
            expected = NtStatus.STATUS_SUCCESS if event.worker == new else NtStatus.STATUS_LOGON_FAILURE
            assert status == expected
            seen.add(event.worker)
            if seen == {old, new}:
                break
        assert seen == {old, new}
    finally:
        pool.stop()
        thread.join(60)


class Directory(AsyncAuthority):
    """Stands in for a remote authority: the connection it opens on its first logon (here, the loop it
    binds to) only works in the process that made it."""

    def __init__(self, made: Path) -> None:
        self.pid = os.getpid()
        (made / str(self.pid)).touch()
        self.accounts = LocalAuthority(DOMAIN)
        self.accounts.add_user(USER, PASSWORD)
        self.loop: asyncio.AbstractEventLoop | None = None

    async def validate(self, request: ValidationRequest) -> ValidationResult:
        self.loop = self.loop or asyncio.get_running_loop()
        if os.getpid() != self.pid or asyncio.get_running_loop() is not self.loop:
            return ValidationResult.failure(NtStatus.STATUS_NO_LOGON_SERVERS, "another process's connection")
        await asyncio.sleep(0)
        return self.accounts.validate(request)


def test_a_remote_authority_is_made_in_each_worker(tmp_path: Path) -> None:
    events: queue.Queue[LoginEvent] = queue.Queue()
    config = ServerConfig(authority=LocalAuthority(), target=TargetInfo(nb_domain=DOMAIN))
    pool = WorkerPool(config, 2, authority=lambda: Directory(tmp_path), events=EventLog([events.put]))
    host, port = pool.listen("127.0.0.1", 0)
    pool.start()
    thread = threading.Thread(target=pool.serve_forever)
    thread.start()
    try:
        assert sorted(int(p.name) for p in tmp_path.iterdir()) == sorted(pool.pids)
        with ThreadPoolExecutor(8) as executor:
            statuses = list(executor.map(lambda _: login_status(host, port), range(SPREAD)))
        assert statuses == [NtStatus.STATUS_SUCCESS] * SPREAD
        workers = {events.get(timeout=10).worker for _ in range(SPREAD)}
        assert workers == set(pool.pids)
    finally:
        pool.stop()
        thread.join(60)


def test_previous_session_id_and_binding_reach_only_their_worker(two_workers: RunningServer) -> None:
    server = two_workers
    outcomes: set[bool] = set()
    for _ in range(60):
        seen = len(server.events)
        a = SocketDriver(server.host, server.port)
        b = SocketDriver(server.host, server.port)
        try:
            a.negotiate((Dialect.SMB3_0_2,))
            b.negotiate((Dialect.SMB3_0_2,))
            old = a.login()
            # MS-SMB2 3.3.5.5.2: a binding request for the old session, from the other connection.
            binding = b.request(Command.SESSION_SETUP, SessionSetupRequest(b"", SessionSetupFlags.BINDING),
                                session_id=old.session_id)
            new = b.login(previous_session_id=old.session_id)
            assert new.final.status == "STATUS_SUCCESS"
            same = event_of(server, a, seen).worker == event_of(server, b, seen).worker
            tree = a.request(Command.TREE_CONNECT, TreeConnectRequest(f"\\\\{server.host}\\IPC$"),
                             session_id=old.session_id, key=old.signing_key)
        finally:
            a.close()
            b.close()
        if same:
            # MS-SMB2 3.3.5.5.3: the old session of the same user is logged off.
            assert tree.status == "STATUS_USER_SESSION_DELETED"
            assert binding.status == "STATUS_REQUEST_NOT_ACCEPTED"
        else:
            # The other worker's session table does not hold it: the old session lives on.
            assert tree.status == "STATUS_SUCCESS"
            assert binding.status == "STATUS_USER_SESSION_DELETED"
        outcomes.add(same)
        if outcomes == {True, False}:
            break
    assert outcomes == {True, False}


def test_every_worker_times_out_its_own_handshakes() -> None:
    with running_server(username=USER, password=PASSWORD, domain=DOMAIN, workers=2,
                        handshake_timeout=1.0) as server:
        assert server.pool is not None
        drivers = [SocketDriver(server.host, server.port, timeout=30) for _ in range(SPREAD)]
        for driver in drivers:
            driver.negotiate()
            first = driver.request(Command.SESSION_SETUP, SessionSetupRequest(_negotiate_token()))
            assert first.status == "STATUS_MORE_PROCESSING_REQUIRED"
        events = server.wait_for_events(SPREAD, timeout=30)
        assert [e.status for e in events] == ["STATUS_IO_TIMEOUT"] * SPREAD
        assert {e.worker for e in events} == set(server.pool.pids)
        for driver in drivers:
            assert driver.read_answers() == [] and driver.eof  # closed by its worker
            driver.close()


def _negotiate_token() -> bytes:
    from smb2auth.ntlm.client import NtlmClient
    from smb2auth.spnego.context import SpnegoClient

    return SpnegoClient(NtlmClient(USER, PASSWORD, domain=DOMAIN)).step(None) or b""
