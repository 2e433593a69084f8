"""cntlm (Debian's, 0.92) in front of our proxy and in front of Squid: the setup of users whose browser has no
NTLM, who run cntlm on their own machine and point it at the company's NTLM proxy. cntlm answers the client
itself and logs in to its parent proxy with NTLMv2 (or NTLMv1 with `-a NTLM`); both parents must treat it
alike, in the same test. A peer issue 12 did not name."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from smb2auth.http.auth import Role
from smb2auth.http.events import LoginEvent
from smb2auth.http.proxy import running_proxy
from smb2auth.http.wsgi import RunningServer
from smb2auth.ntlm.server import NtlmPolicy
from tests.http.pair import PASSWORD, config
from tests.http.test_curl_interop import run_curl
from tests.peers import free_port, missing_peer, wait_for_port
from tests.squid import Squid

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def cntlm() -> str:
    path = shutil.which("cntlm") or ("/usr/sbin/cntlm" if os.access("/usr/sbin/cntlm", os.X_OK) else None)
    if path is None:
        missing_peer("cntlm (apt-get install cntlm)")
        raise AssertionError("unreachable")
    return path


@contextlib.contextmanager
def running_cntlm(cntlm: str, parent: tuple[str, int], password: str, auth: str) -> Iterator[str]:
    """cntlm in the foreground on a loopback port, no config file but its arguments, stopped by PID."""
    base = Path(tempfile.mkdtemp(prefix="smb2auth-cntlm-"))
    port = free_port()
    log = base / "cntlm.log"
    args = [cntlm, "-f", "-c", "/dev/null", "-l", f"127.0.0.1:{port}", "-u", "alice", "-d", "TESTGRP",
            "-p", password, "-a", auth, f"{parent[0]}:{parent[1]}"]
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_for_port(port, proc, 15.0, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        shutil.rmtree(base, ignore_errors=True)


def _through(cntlm: str, curl: str, parent: tuple[str, int], password: str, auth: str,
             url: str, *extra: str) -> tuple[int, str]:
    with running_cntlm(cntlm, parent, password, auth) as via:
        code, body, _ = run_curl(curl, *extra, "-x", via, url)
    return code, body


@pytest.mark.parametrize("mode", ["forwarded", "CONNECT"])
def test_cntlm_ntlmv2_logs_in_through_both(
    cntlm: str, curl: str, squid: Squid, proxy: RunningServer, origin: tuple[str, int],
    events: list[LoginEvent], mode: str,
) -> None:
    url = f"http://{origin[0]}:{origin[1]}/via-cntlm"
    extra = ["-p"] if mode == "CONNECT" else []
    for parent in (squid.address, (proxy.host, proxy.port)):
        code, body = _through(cntlm, curl, parent, PASSWORD, "NTLMv2", url, *extra)
        assert code == 200, parent
        assert json.loads(body)["path"] == "/via-cntlm"
    assert [(e.user, e.status, e.response_kind) for e in events] == [("alice", "STATUS_SUCCESS", "NTLMv2")]


def test_cntlm_wrong_password_refused_by_both(
    cntlm: str, curl: str, squid: Squid, proxy: RunningServer, origin: tuple[str, int],
    events: list[LoginEvent],
) -> None:
    url = f"http://{origin[0]}:{origin[1]}/"
    codes = [_through(cntlm, curl, parent, "wrong", "NTLMv2", url)[0]
             for parent in (squid.address, (proxy.host, proxy.port))]
    assert codes == [407, 407]
    assert [(e.status, e.reason) for e in events] == [
        ("STATUS_LOGON_FAILURE", "wrong password: NTLMv2 response does not match for 'alice'")]


def test_cntlm_ntlmv1_as_policy_says(
    cntlm: str, curl: str, squid: Squid, origin: tuple[str, int], events: list[LoginEvent],
) -> None:
    """`-a NTLM` answers with NTLMv1. Squid's `ntlm_auth --password` helper lets it in whatever its smb.conf's
    "ntlm auth" says (seen here), so Squid is the reference for a proxy that permits NTLMv1: ours with
    `ntlm auth = ntlmv1-permitted` lets it in too, and by default (ntlmv2-only) refuses it, saying why."""
    url = f"http://{origin[0]}:{origin[1]}/"
    assert _through(cntlm, curl, squid.address, PASSWORD, "NTLM", url)[0] == 200
    for allow, code in ((True, 200), (False, 407)):
        policy = NtlmPolicy(allow_ntlmv1=allow)
        with running_proxy(config(role=Role.PROXY, policy=policy, on_login=events.append)) as ours:
            assert _through(cntlm, curl, (ours.host, ours.port), PASSWORD, "NTLM", url)[0] == code
    assert [(e.status, e.response_kind, e.reason) for e in events] == [
        ("STATUS_SUCCESS", "NTLMv1", ""),
        ("STATUS_LOGON_FAILURE", "NTLMv1", "NTLMv1 not permitted by policy"),
    ]
