"""Interop with curl (Debian's libcurl NTLM: OEM/8-bit, NTLMv2, no MIC, no key exchange).

`curl --negotiate` is Kerberos-only (GSS-API) in curl, so only --ntlm / --proxy-ntlm are driven.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import pytest

from smb2auth.authority.local import LocalAuthority
from smb2auth.http.auth import Role
from smb2auth.http.events import LoginEvent
from smb2auth.http.headers import AuthScheme
from smb2auth.http.mechanisms import ntlm_http_config
from smb2auth.http.proxy import running_proxy
from smb2auth.http.wsgi import RunningServer, running_http_server
from smb2auth.ntlm import TargetInfo

pytestmark = pytest.mark.interop

PASSWORD = "Passw0rd!"
TARGET = TargetInfo(nb_domain="TESTGRP", nb_computer="HARNESS")


def run_curl(curl: str, *args: str) -> tuple[int, str, str]:
    """curl with no proxy settings from the environment; returns (HTTP code, body, stderr)."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    proc = subprocess.run(
        [curl, "-sS", "-m", "20", "-o", "-", "-w", "\n%{http_code}", *args],
        capture_output=True, text=True, timeout=30, env=env,
    )
    body, _, code = proc.stdout.rpartition("\n")
    return int(code or 0), body, proc.stderr


def authority() -> LocalAuthority:
    local = LocalAuthority("TESTGRP")
    local.add_user("alice", PASSWORD)
    return local


@pytest.fixture
def server(events: list[LoginEvent]) -> Iterator[RunningServer]:
    with running_http_server(ntlm_http_config(authority(), target=TARGET, on_login=events.append)) as running:
        yield running


def connections(err: str) -> int:
    """How many TCP connections `curl -v` opened (MS-NTHT 2: the handshake must stay on one)."""
    return err.count("* Connected to ")


def test_curl_ntlm_login(curl: str, server: RunningServer, events: list[LoginEvent]) -> None:
    code, body, err = run_curl(curl, "-v", "--ntlm", "-u", f"alice:{PASSWORD}", server.url)
    assert code == 200, err
    assert json.loads(body)["user"] == "alice"
    assert connections(err) == 1 and "Re-using existing connection" in err, err
    (event,) = events
    assert event.success and event.response_kind == "NTLMv2"
    # curl's NTLM is 8-bit (OEM) and does not exchange keys
    assert "NTLMSSP_NEGOTIATE_KEY_EXCH" not in event.ntlm_flags


def test_curl_ntlm_with_domain_and_post(curl: str, server: RunningServer) -> None:
    code, body, err = run_curl(curl, "--ntlm", "-u", f"TESTGRP\\alice:{PASSWORD}", "-d", "a=1", server.url)
    assert code == 200, err
    assert (json.loads(body)["user"], json.loads(body)["domain"]) == ("alice", "TESTGRP")


def test_curl_ntlm_wrong_password(curl: str, server: RunningServer, events: list[LoginEvent]) -> None:
    code, _, _ = run_curl(curl, "--ntlm", "-u", "alice:wrong", server.url)
    assert code == 401
    assert events and events[-1].status == "STATUS_LOGON_FAILURE" and events[-1].user == "alice"


def test_curl_proxy_ntlm(
    curl: str, proxy: RunningServer, origin: tuple[str, int], events: list[LoginEvent]
) -> None:
    url = f"http://{origin[0]}:{origin[1]}/through"
    code, body, err = run_curl(curl, "-v", "--proxy-ntlm", "-U", f"alice:{PASSWORD}", "-x", proxy.url, url)
    assert code == 200, err
    assert json.loads(body)["path"] == "/through"
    assert connections(err) == 1 and "Re-using existing connection" in err, err
    assert [(e.user, e.status, e.success) for e in events] == [("alice", "STATUS_SUCCESS", True)]


def test_curl_proxy_without_credentials_is_407(
    curl: str, proxy: RunningServer, origin: tuple[str, int], events: list[LoginEvent]
) -> None:
    code, _, err = run_curl(curl, "-v", "-x", proxy.url, f"http://{origin[0]}:{origin[1]}/")
    assert code == 407
    assert "Proxy-Authenticate: NTLM" in err and connections(err) == 1
    # no credentials offered: no login attempted
    assert events == []


def test_curl_proxy_wrong_password(
    curl: str, proxy: RunningServer, origin: tuple[str, int], events: list[LoginEvent]
) -> None:
    code, _, err = run_curl(curl, "--proxy-ntlm", "-U", "alice:wrong", "-x", proxy.url,
                            f"http://{origin[0]}:{origin[1]}/")
    assert code == 407, err
    assert [(e.user, e.status, e.success) for e in events] == [("alice", "STATUS_LOGON_FAILURE", False)]


def test_curl_http10_ntlm(curl: str, server: RunningServer, events: list[LoginEvent]) -> None:
    """HTTP/1.0 needs keep-alive for NTLM: asked for, the handshake runs on one connection; not asked
    for, the server says close and curl gives up at once instead of retrying a dead connection."""
    code, body, err = run_curl(curl, "-v", "-0", "-H", "Connection: keep-alive", "--ntlm",
                               "-u", f"alice:{PASSWORD}", server.url)
    assert code == 200, err
    assert json.loads(body)["user"] == "alice" and connections(err) == 1
    code, _, err = run_curl(curl, "-v", "-0", "--ntlm", "-u", f"alice:{PASSWORD}", server.url)
    assert code == 401 and "Connection died" not in err and connections(err) == 1, err
    assert [e.success for e in events] == [True]


def test_curl_head_through_proxy_gets_no_excess(
    curl: str, proxy: RunningServer, origin: tuple[str, int]
) -> None:
    base = f"http://{origin[0]}:{origin[1]}"
    code, _, err = run_curl(curl, "-v", "-I", "-x", proxy.url, f"{base}/a", f"{base}/b")
    assert code == 407 and "Excess found" not in err and connections(err) == 1, err


def test_curl_proxytunnel_to_plain_origin(curl: str, proxy: RunningServer, origin: tuple[str, int]) -> None:
    url = f"http://{origin[0]}:{origin[1]}/tunnelled"
    code, body, err = run_curl(curl, "-v", "-p", "--proxy-ntlm", "-U", f"alice:{PASSWORD}", "-x", proxy.url,
                               url)
    assert code == 200, err
    assert "200 Connection established" in err
    seen = json.loads(body)
    # through a tunnel the origin sees an origin-form request, not the proxy's absolute URI
    assert seen["path"] == "/tunnelled" and "proxy-authorization" not in seen["headers"]


def test_curl_proxytunnel_with_ntlm_inside(
    curl: str, proxy: RunningServer, server: RunningServer, events: list[LoginEvent]
) -> None:
    code, body, err = run_curl(curl, "-p", "--proxy-ntlm", "-U", f"alice:{PASSWORD}", "-x", proxy.url,
                               "--ntlm", "-u", f"alice:{PASSWORD}", server.url)
    assert code == 200, err
    assert json.loads(body)["user"] == "alice"
    assert [e.success for e in events] == [True, True]


def test_curl_anyauth_against_isa_style_proxy(curl: str, origin: tuple[str, int]) -> None:
    """ISA/TMG close the connection after the first 407; curl must reconnect and run NTLM on the new one.
    NTLM only is offered: given Negotiate, curl's anyauth picks it and Negotiate is Kerberos-only in curl."""
    config = ntlm_http_config(authority(), role=Role.PROXY, target=TARGET, close_after_first_challenge=True,
                              schemes=(AuthScheme.NTLM,))
    with running_proxy(config) as proxy:
        code, body, err = run_curl(curl, "--proxy-anyauth", "-U", f"alice:{PASSWORD}", "-x", proxy.url,
                                   f"http://{origin[0]}:{origin[1]}/isa")
    assert code == 200, err
    assert json.loads(body)["path"] == "/isa"
