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

__all__ = ["RunningServer", "running_server", "smb2_server"]

DEFAULT_USER = "smb2auth"
DEFAULT_DOMAIN = "TESTGRP"


@dataclass
class RunningServer:
    """A harness running in a background thread: where it listens, the account it accepts, what it saw."""

    host: str
    port: int
    username: str
    password: str = field(repr=False)
    domain: str
    events: list[LoginEvent]
    config: ServerConfig
    server: Smb2Server = field(repr=False)
    loop: asyncio.AbstractEventLoop = field(repr=False)

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def call(self, fn: Any, *args: Any) -> Any:
        """Run `fn(*args)` on the server's loop and return its result (for inspecting server state)."""

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=10)


@contextlib.contextmanager
def running_server(
    *,
    username: str = DEFAULT_USER,
    password: str | None = None,
    domain: str = DEFAULT_DOMAIN,
    host: str = "127.0.0.1",
    port: int = 0,
    authority: Any = None,
    **config: Any,
) -> Iterator[RunningServer]:
    """Start the harness on `host`:`port` (0: a free port) with one user (random password unless given),
    or with `authority` instead; other keywords go to ServerConfig (shares=, allow_guest=, ...)."""
    from smb2auth.authority.local import LocalAuthority
    from smb2auth.events import EventLog
    from smb2auth.ntlm.server import TargetInfo
    from smb2auth.server.aio import Smb2Server
    from smb2auth.server.config import ServerConfig

    password = password if password is not None else secrets.token_urlsafe(12)
    if authority is None:
        authority = LocalAuthority(domain)
        authority.add_user(username, password)
    config.setdefault("target", TargetInfo(nb_domain=domain, nb_computer="SMB2AUTH"))
    cfg = ServerConfig(authority=authority, **config)
    events: list[LoginEvent] = []
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        try:
            server = Smb2Server(cfg, events=EventLog([events.append]))
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
    bound_host, bound_port = holder["address"]
    try:
        yield RunningServer(bound_host, bound_port, username, password, domain, events, cfg, server, loop)
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(timeout=30)
        thread.join(30)
        loop.close()


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
