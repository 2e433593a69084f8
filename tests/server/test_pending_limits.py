"""Pending handshakes: one connection may hold only a few (max_pending_handshakes_per_connection), so it
cannot spend the server-wide budget (max_pending_handshakes) and lock every other client out."""

from __future__ import annotations

from smb2auth.ntlm.client import NtlmClient
from smb2auth.smb2.header import Command
from smb2auth.smb2.session import SessionSetupRequest
from smb2auth.spnego.context import SpnegoClient
from tests.server.driver import Driver, make_context


def _first_leg(driver: Driver) -> str:
    token = SpnegoClient(NtlmClient("alice", "x")).step(None) or b""
    return driver.request(Command.SESSION_SETUP, SessionSetupRequest(token)).status


def test_one_connection_cannot_hold_the_servers_handshake_budget() -> None:
    ctx = make_context(max_pending_handshakes=8, max_pending_handshakes_per_connection=3)
    greedy = Driver(ctx, peer="127.0.0.1:40001")
    greedy.negotiate()
    statuses = [_first_leg(greedy) for _ in range(5)]
    assert statuses == ["STATUS_MORE_PROCESSING_REQUIRED"] * 3 + ["STATUS_INSUFFICIENT_RESOURCES"] * 2
    assert ctx.pending_handshakes == 3
    other = Driver(ctx, peer="127.0.0.1:40002")
    other.negotiate()
    assert other.login().final.status == "STATUS_SUCCESS"
    assert ctx.pending_handshakes == 3


def test_a_refused_handshake_leaves_no_session_behind() -> None:
    ctx = make_context(max_pending_handshakes_per_connection=1)
    driver = Driver(ctx)
    driver.negotiate()
    assert [_first_leg(driver) for _ in range(3)] == [
        "STATUS_MORE_PROCESSING_REQUIRED", "STATUS_INSUFFICIENT_RESOURCES", "STATUS_INSUFFICIENT_RESOURCES"
    ]
    assert len(driver.conn.sessions) == 1 and len(ctx.sessions) == 1
