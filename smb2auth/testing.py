"""pytest plugin and helpers: an in-process SMB2 harness on a free loopback port.

    def test_login(smb2_server):
        run_my_client(smb2_server.host, smb2_server.port, smb2_server.username, smb2_server.password)
        assert smb2_server.events[-1].status == "STATUS_SUCCESS"

`running_server(**config)` is the same thing as a context manager, usable without pytest. The server runs in
a background thread with its own event loop. This module imports only the standard library at load time
(pytest loads it at startup through the `pytest11` entry point).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smb2auth.events import LoginEvent
    from smb2auth.server.aio import Smb2Server
    from smb2auth.server.config import ServerConfig
    from smb2auth.server.workers import WorkerPool

__all__ = ["RunningServer", "running_server", "smb2_hostile_server", "smb2_server"]

DEFAULT_USER = "smb2auth"
DEFAULT_DOMAIN = "TESTGRP"


@dataclass
class RunningServer:
    """A harness running in a background thread: where it listens, the account it accepts, what it saw.

    With `workers` > 1 the server runs in worker processes (smb2auth.server.workers) and `pool` is their
    WorkerPool; the events still arrive in `events`, from the pool's thread, a moment after the client was
    answered: `wait_for_events(n)`."""

    host: str
    port: int
    username: str
    password: str = field(repr=False)
    domain: str
    events: list[LoginEvent]
    config: ServerConfig
    _server: Smb2Server | None = field(repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(repr=False)
    pool: WorkerPool | None = field(default=None, repr=False)
    _arrived: threading.Condition = field(default_factory=threading.Condition, repr=False)

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def server(self) -> Smb2Server:
        """The in-process server (one worker only)."""
        if self._server is None:
            raise RuntimeError("with workers > 1 the server runs in the worker processes (see .pool)")
        return self._server

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The in-process server's event loop (one worker only)."""
        if self._loop is None:
            raise RuntimeError("with workers > 1 the server runs in the worker processes (see .pool)")
        return self._loop

    def call(self, fn: Any, *args: Any) -> Any:
        """Run `fn(*args)` on the server's loop and return its result (for inspecting server state)."""

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=10)

    def wait_for_events(self, count: int, timeout: float = 10.0) -> list[LoginEvent]:
        """The events once there are at least `count`; TimeoutError if they do not arrive in time."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.events) >= count, timeout):
                raise TimeoutError(f"{len(self.events)} login events after {timeout:g} s, not {count}")
            return list(self.events)

    def verdicts(self) -> list[LoginEvent]:
        """With `hostile=SCENARIO`: the login events that carry a verdict (server/hostile.py)."""
        with self._arrived:
            return [e for e in self.events if e.hostile is not None]

    def wait_for_verdict(self, timeout: float = 10.0) -> LoginEvent:
        """With `hostile=SCENARIO`: the first connection's verdict, once it is in (TimeoutError if not)."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: any(e.hostile for e in self.events), timeout):
                raise TimeoutError(f"no hostile verdict after {timeout:g} s")
            return next(e for e in self.events if e.hostile is not None)

    def _record(self, event: LoginEvent) -> None:
        with self._arrived:
            self.events.append(event)
            self._arrived.notify_all()


@contextlib.contextmanager
def running_server(
    *,
    username: str = DEFAULT_USER,
    password: str | None = None,
    domain: str = DEFAULT_DOMAIN,
    host: str = "127.0.0.1",
    port: int = 0,
    authority: Any = None,
    workers: int = 1,
    **config: Any,
) -> Iterator[RunningServer]:
    """Start the harness on `host`:`port` (0: a free port) with one user (random password unless given),
    or with `authority` instead; other keywords go to ServerConfig (shares=, allow_guest=, ...).
    `workers` > 1 forks that many server processes (smb2auth.server.workers), which inherit the authority."""
    from smb2auth.authority.local import LocalAuthority
    from smb2auth.ntlm.server import TargetInfo
    from smb2auth.server.config import ServerConfig

    password = password if password is not None else secrets.token_urlsafe(12)
    if authority is None:
        authority = LocalAuthority(domain)
        authority.add_user(username, password)
    config.setdefault("target", TargetInfo(nb_domain=domain, nb_computer="SMB2AUTH"))
    cfg = ServerConfig(authority=authority, **config)
    running = RunningServer(host, port, username, password, domain, [], cfg, None, None)
    if workers > 1:
        with _in_workers(running, workers, host, port):
            yield running
    else:
        with _in_thread(running, host, port):
            yield running


@contextlib.contextmanager
def _in_thread(running: RunningServer, host: str, port: int) -> Iterator[None]:
    """The server on its own event loop in a background thread of this process."""
    from smb2auth.events import EventLog
    from smb2auth.server.aio import Smb2Server

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        try:
            server = Smb2Server(running.config, events=EventLog([running._record]))
            holder["server"] = server
            holder["address"] = await server.start(host, port)
        except BaseException as exc:
            holder["error"] = exc
            ready.set()
            return
        ready.set()
        await server.serve_forever()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), name="smb2auth-server",
                              daemon=True)
    thread.start()
    ready.wait(30)
    if "error" in holder or "address" not in holder:
        thread.join(5)
        loop.close()
        raise RuntimeError(f"the SMB2 harness did not start: {holder.get('error')!r}")
    server: Smb2Server = holder["server"]
    running.host, running.port = holder["address"]
    running._server, running._loop = server, loop
    try:
        yield
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(timeout=30)
        thread.join(30)
        loop.close()


@contextlib.contextmanager
def _in_workers(running: RunningServer, workers: int, host: str, port: int) -> Iterator[None]:
    """`workers` forked server processes; the pool's parent loop in a background thread of this process."""
    from smb2auth.events import EventLog
    from smb2auth.server.workers import WorkerPool

    pool = WorkerPool(running.config, workers, events=EventLog([running._record]))
    try:
        running.host, running.port = pool.listen(host, port)
        pool.start()  # forks from this thread, before the pool's own exists
    except BaseException as exc:
        pool.close()
        raise RuntimeError(f"the SMB2 harness did not start: {exc!r}") from exc
    running.pool = pool
    thread = threading.Thread(target=pool.serve_forever, name="smb2auth-workers", daemon=True)
    thread.start()
    try:
        yield
    finally:
        pool.stop()
        thread.join(60)


try:
    import pytest
except ImportError:  # pragma: no cover - the helpers work without pytest
    pass
else:

    @pytest.fixture
    def smb2_server() -> Iterator[RunningServer]:
        """The SMB2 harness on a free loopback port, one user with a random password, default config."""
        with running_server() as server:
            yield server

    @pytest.fixture
    def smb2_hostile_server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
        """The harness misbehaving as the scenario the test is parametrized with (indirect=True) says, with a
        share named "share"; `wait_for_verdict()` says whether the client refused.

            @pytest.mark.parametrize("smb2_hostile_server", ["setup-wrong-key"], indirect=True)
        """
        with running_server(hostile=request.param, shares=("share",)) as server:
            yield server
