"""Groups (issue 12): the account's groups reach the login event and the JSON, `allowed_groups` answers 403 to
an authenticated user outside them, and the proxy passes the identity upstream in its own header."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

from smb2auth.authority.local import LocalAuthority
from smb2auth.authority.smbpasswd import load_groups, load_smbpasswd, write_smbpasswd_entry
from smb2auth.http.auth import Role
from smb2auth.http.client import request_with_auth
from smb2auth.http.events import LoginEvent
from smb2auth.http.proxy import running_proxy
from smb2auth.http.wsgi import running_http_server
from smb2auth.ntlm import NtlmClient
from tests.http.pair import PASSWORD, clients, config


def staff() -> LocalAuthority:
    local = LocalAuthority("TESTGRP")
    local.add_user("alice", PASSWORD, groups=("Web Users", "Staff"))
    local.add_user("bob", PASSWORD)
    return local


def login(address: tuple[str, int], user: str) -> tuple[int, dict[str, object] | None]:
    conn = http.client.HTTPConnection(*address, timeout=10)
    ctx = lambda: NtlmClient(user, PASSWORD, domain="TESTGRP")  # noqa: E731
    resp = request_with_auth(conn, "GET", "/", context_factory=ctx)
    body = resp.read()
    conn.close()
    return resp.status, json.loads(body) if resp.status == 200 else None


def test_allowed_groups_let_members_through_and_refuse_others_403() -> None:
    events: list[LoginEvent] = []
    cfg = config(authority=staff(), allowed_groups=("web users",), on_login=events.append)
    with running_http_server(cfg) as server:
        status, body = login(server.address, "alice")
        assert status == 200 and body is not None and body["groups"] == ["Web Users", "Staff"]
        assert login(server.address, "bob") == (403, None)
    # both authenticated: the refusal is the policy's, after a successful login
    assert [(e.user, e.status, e.groups) for e in events] == [
        ("alice", "STATUS_SUCCESS", ("Web Users", "Staff")), ("bob", "STATUS_SUCCESS", ())]


def test_proxy_passes_the_identity_upstream_never_the_clients_copy(origin: tuple[str, int]) -> None:
    cfg = config(role=Role.PROXY)
    with running_proxy(cfg, identity_header="X-Authenticated-User") as proxy:
        conn = http.client.HTTPConnection(*proxy.address, timeout=10)
        resp = request_with_auth(conn, "GET", f"http://{origin[0]}:{origin[1]}/who",
                                 headers={"X-Authenticated-User": "TESTGRP\\admin"},
                                 context_factory=clients(), proxy=True)
        seen = json.loads(resp.read())
        conn.close()
    assert seen["headers"]["x-authenticated-user"] == "TESTGRP\\alice"


def test_smbpasswd_accounts_get_groups_from_a_group_file(tmp_path: Path) -> None:
    users, groups = tmp_path / "smbpasswd", tmp_path / "group"
    write_smbpasswd_entry(users, "alice", PASSWORD)
    write_smbpasswd_entry(users, "bob", PASSWORD)
    groups.write_text("# /etc/group format\nwebusers:x:1001:alice,carol\nstaff:x:1002:ALICE\nempty:x:1003:\n")
    member_of = load_groups(groups)
    assert member_of == {"alice": ("webusers", "staff"), "carol": ("webusers",)}
    authority = load_smbpasswd(users, domain="TESTGRP", groups=member_of)
    events: list[LoginEvent] = []
    with running_http_server(config(authority=authority, on_login=events.append)) as server:
        status, body = login(server.address, "alice")
        assert status == 200 and body is not None and body["groups"] == ["webusers", "staff"]
        status, body = login(server.address, "bob")
        assert status == 200 and body is not None and body["groups"] == []
    assert [e.groups for e in events] == [("webusers", "staff"), ()]


def test_proxy_refuses_an_authenticated_user_outside_the_groups_403(origin: tuple[str, int]) -> None:
    cfg = config(role=Role.PROXY, authority=staff(), allowed_groups=("Staff",))
    url = f"http://{origin[0]}:{origin[1]}/"
    with running_proxy(cfg) as proxy:
        for user, status in (("alice", 200), ("bob", 403)):
            conn = http.client.HTTPConnection(*proxy.address, timeout=10)
            ctx = lambda user=user: NtlmClient(user, PASSWORD, domain="TESTGRP")  # noqa: E731
            resp = request_with_auth(conn, "GET", url, context_factory=ctx, proxy=True)
            resp.read()
            assert resp.status == status and resp.getheader("Proxy-Authenticate") is None
            conn.close()
