"""Interop with wget (Debian's, built with NTLM): its NEGOTIATE offers OEM only, its AUTHENTICATE then claims
UNICODE yet carries OEM strings, and its responses are NTLMv1 (LM + NT, no ESS)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from smb2auth.http.events import LoginEvent
from smb2auth.http.wsgi import RunningServer, running_http_server
from smb2auth.ntlm import NtlmPolicy
from tests.http.pair import PASSWORD, config
from tests.peers import program_with

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def wget() -> str:
    return program_with("wget", "+ntlm", "wget")


def run_wget(wget: str, url: str, user: str = "alice") -> tuple[int, str]:
    """wget without proxies from the environment; (exit status, body). Exit 6 is "authentication failed"."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    args = [wget, "-q", "-O", "-", "--tries=1", "--timeout=20", f"--user={user}", f"--password={PASSWORD}",
            url]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=30, env=env)
    return proc.returncode, proc.stdout


@pytest.fixture
def events() -> list[LoginEvent]:
    return []


@pytest.fixture
def ntlmv2_only(events: list[LoginEvent]) -> Iterator[RunningServer]:
    with running_http_server(config(on_login=events.append)) as running:
        yield running


@pytest.fixture
def ntlmv1_permitted(events: list[LoginEvent]) -> Iterator[RunningServer]:
    policy = NtlmPolicy(allow_ntlmv1=True)
    with running_http_server(config(on_login=events.append, policy=policy)) as running:
        yield running


def test_wget_refused_as_ntlmv1_by_default(wget: str, ntlmv2_only: RunningServer,
                                           events: list[LoginEvent]) -> None:
    code, _ = run_wget(wget, ntlmv2_only.url)
    assert code == 6
    # the names decoded as the CHALLENGE negotiated (OEM), and the refusal says why
    (event,) = events
    assert (event.user, event.status, event.response_kind) == ("alice", "STATUS_LOGON_FAILURE", "NTLMv1")
    assert event.reason == "NTLMv1 not permitted by policy"
    assert "NTLMSSP_NEGOTIATE_UNICODE" not in event.ntlm_flags


def test_wget_logs_in_when_ntlmv1_is_permitted(wget: str, ntlmv1_permitted: RunningServer,
                                               events: list[LoginEvent]) -> None:
    code, body = run_wget(wget, ntlmv1_permitted.url)
    assert code == 0, body
    assert json.loads(body)["user"] == "alice" and json.loads(body)["response_kind"] == "NTLMv1"
    assert [(e.user, e.status, e.response_kind) for e in events] == [("alice", "STATUS_SUCCESS", "NTLMv1")]


@pytest.mark.parametrize(("ntlm_auth", "code"), [(None, 6), ("ntlmv1-permitted", 0)])
def test_wget_against_the_http_serve_command(wget: str, tmp_path: Path, ntlm_auth: str | None,
                                             code: int) -> None:
    """`smb2auth http-serve` as a process: NTLMv1 refused by default, with its reason; logged in with
    `--ntlm-auth ntlmv1-permitted` (smb.conf's spelling, as `serve` takes it)."""
    from tests.http.test_commands import spawn
    from tests.peers import free_port

    port = free_port()
    extra = ("--ntlm-auth", ntlm_auth) if ntlm_auth else ()
    with spawn("http-serve", port, tmp_path, "--user", f"alice:{PASSWORD}", *extra):
        got, body = run_wget(wget, f"http://127.0.0.1:{port}/")
    assert got == code
    log = (tmp_path / "http-serve.log").read_text()
    if code:
        assert "ntlm=NTLMv1 reason='NTLMv1 not permitted by policy'" in log
    else:
        assert json.loads(body)["response_kind"] == "NTLMv1" and "http login ok user=alice" in log
