"""The harness on uvloop: a loop whose stream transports are not asyncio.Transport subclasses."""

from __future__ import annotations

import asyncio

import pytest

from smb2auth.client.sync import connect
from smb2auth.testing import running_server

uvloop = pytest.importorskip("uvloop")


def test_login_on_uvloop() -> None:
    previous = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        with running_server(username="alice", password="Passw0rd!") as server:
            with connect(server.host, server.port, username="alice", password="Passw0rd!") as session:
                session.tree_connect("IPC$")
            assert [e.status for e in server.events] == ["STATUS_SUCCESS"]
    finally:
        asyncio.set_event_loop_policy(previous)
