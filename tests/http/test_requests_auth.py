"""The optional `requests` auth class against our server (requests is a test extra, not a dependency)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from smb2auth.authority.local import LocalAuthority
from smb2auth.http.events import LoginEvent
from smb2auth.http.mechanisms import ntlm_http_config
from smb2auth.http.wsgi import RunningServer, running_http_server

PASSWORD = "Passw0rd!"


@pytest.fixture
def events() -> list[LoginEvent]:
    return []


@pytest.fixture
def server(events: list[LoginEvent]) -> Iterator[RunningServer]:
    local = LocalAuthority("TESTGRP")
    local.add_user("alice", PASSWORD)
    with running_http_server(ntlm_http_config(local, on_login=events.append)) as running:
        yield running


@pytest.mark.parametrize("scheme", ["NTLM", "Negotiate"])
def test_requests_auth(server: RunningServer, events: list[LoginEvent], scheme: str) -> None:
    from smb2auth.http.requests_auth import HttpNtlmAuth

    with requests.Session() as session:
        session.trust_env = False
        auth = HttpNtlmAuth("alice", PASSWORD, domain="TESTGRP", scheme=scheme)
        resp = session.post(server.url, data=b"payload", auth=auth, timeout=10)
        assert resp.status_code == 200 and resp.json()["user"] == "alice"
        assert len(resp.history) == 1 and resp.history[0].status_code == 401
        assert PASSWORD not in repr(auth)
        bad = session.get(server.url, auth=HttpNtlmAuth("alice", "wrong", scheme=scheme), timeout=10)
        assert bad.status_code == 401
    assert [e.success for e in events] == [True, False]
