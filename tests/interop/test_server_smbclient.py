"""Debian's smbclient logs into our harness: every dialect, signing on, the SMB1 upgrade paths, a wrong
password and an anonymous session; the harness's login events say what happened."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import pytest

from smb2auth.testing import RunningServer, running_server
from tests.peers import Smbd, require_program

pytestmark = pytest.mark.interop

USER, PASSWORD = "alice", "Passw0rd!"
DIALECTS = {"SMB2_02": "2.0.2", "SMB2_10": "2.1", "SMB3_00": "3.0", "SMB3_02": "3.0.2", "SMB3_11": "3.1.1"}


@pytest.fixture(scope="module")
def harness() -> Iterator[RunningServer]:
    with running_server(
        username=USER, password=PASSWORD, domain="TESTGRP", shares=("data",), allow_anonymous=True
    ) as server:
        yield server


def smbclient(
    server: RunningServer,
    *args: str,
    user: str | None = f"{USER}%{PASSWORD}",
    share: str = "IPC$",
    command: str = "exit",
    port: int | None = None,
) -> subprocess.CompletedProcess[str]:
    program = require_program("smbclient", "/usr/bin/smbclient")
    return subprocess.run(
        [
            program,
            f"//127.0.0.1/{share}",
            "-p",
            str(port or server.port),
            *(["-U", user] if user is not None else []),
            "--use-kerberos=off",
            "-s",
            "/dev/null",
            "-c",
            command,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("protocol", list(DIALECTS))
def test_smbclient_logs_in_signed(harness: RunningServer, protocol: str) -> None:
    before = len(harness.events)
    proc = smbclient(harness, "-m", protocol, "--client-protection=sign")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (event,) = harness.events[before:]
    assert event.success and event.status == "STATUS_SUCCESS"
    assert event.dialect == DIALECTS[protocol]
    assert event.user == USER and event.response_kind == "NTLMv2"
    assert "NTLMSSP_NEGOTIATE_SIGN" in event.ntlm_flags and event.session_flags == ()


@pytest.mark.parametrize(
    ("protocol", "dialect"), [("SMB3_11", "3.1.1"), ("SMB2_10", "2.1"), ("SMB2_02", "2.0.2")]
)
def test_smbclient_smb1_multi_protocol_negotiate(harness: RunningServer, protocol: str, dialect: str) -> None:
    # With NT1 allowed smbclient opens with an SMB1 NEGOTIATE (MS-SMB2 3.3.5.3.1: 0x02FF or 0x0202).
    before = len(harness.events)
    proc = smbclient(harness, "-m", protocol, "--option=client min protocol=NT1", "--client-protection=sign")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (event,) = harness.events[before:]
    assert event.success and event.dialect == dialect


def test_smbclient_disk_share(harness: RunningServer) -> None:
    proc = smbclient(harness, "-m", "SMB3_11", share="data")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = smbclient(harness, "-m", "SMB3_11", share="missing")
    assert "NT_STATUS_BAD_NETWORK_NAME" in proc.stdout + proc.stderr


def test_smbclient_wrong_password(harness: RunningServer) -> None:
    before = len(harness.events)
    proc = smbclient(harness, "-m", "SMB3_11", user=f"{USER}%wrong")
    assert proc.returncode != 0
    assert "NT_STATUS_LOGON_FAILURE" in proc.stdout + proc.stderr
    (event,) = harness.events[before:]
    assert event.status == "STATUS_LOGON_FAILURE" and event.user == USER and event.dialect == "3.1.1"
    assert event.response_kind == "NTLMv2" and event.reason.startswith("wrong password")


def test_smbclient_anonymous(harness: RunningServer) -> None:
    before = len(harness.events)
    proc = smbclient(harness, "-N", "-m", "SMB3_11", user="")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (event,) = harness.events[before:]
    assert event.success and event.anonymous and event.session_flags == ("IS_NULL",)
    assert event.response_kind == "anonymous"


def test_smbclient_anonymous_refused_by_default() -> None:
    with running_server(username=USER, password=PASSWORD) as server:
        proc = smbclient(server, "-N", "-m", "SMB3_11", user="")
        assert proc.returncode != 0
        assert "NT_STATUS_LOGON_FAILURE" in proc.stdout + proc.stderr
        assert server.events[-1].status == "STATUS_LOGON_FAILURE" and not server.events[-1].anonymous


def test_smbclient_no_password_signing_required_as_smbd(
    harness: RunningServer, smbd_factory: Callable[[str], Smbd]
) -> None:
    # smbclient -N (no -U) with signing required sends an AUTHENTICATE for its Unix user with empty LM and
    # NT responses (a null session cannot sign): smbd requiring signing, as we do, answers LOGON_FAILURE.
    smbd = smbd_factory("  server signing = mandatory\n")
    args = ("-N", "-m", "SMB3_11", "--client-protection=sign")
    theirs = smbclient(harness, *args, user=None, port=smbd.port)
    assert theirs.returncode != 0 and "NT_STATUS_LOGON_FAILURE" in theirs.stdout + theirs.stderr
    before = len(harness.events)
    ours = smbclient(harness, *args, user=None)
    assert ours.returncode != 0 and "NT_STATUS_LOGON_FAILURE" in ours.stdout + ours.stderr
    (event,) = harness.events[before:]
    assert event.status == "STATUS_LOGON_FAILURE" and event.user and not event.anonymous
    assert event.reason == "no usable response: NT 0 bytes, LM 0 bytes"


@pytest.mark.parametrize("protocol", ["SMB3_00", "SMB3_02", "SMB3_11"])
def test_smbclient_encrypts_when_it_chooses(harness: RunningServer, protocol: str) -> None:
    # smbclient insists on encrypted responses with --client-protection=encrypt (MS-SMB2 3.3.4.1.4).
    proc = smbclient(harness, "-m", protocol, "--client-protection=encrypt", share="data")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert harness.events[-1].success and harness.events[-1].dialect == DIALECTS[protocol]


@pytest.mark.parametrize("protocol", ["SMB3_00", "SMB3_02", "SMB3_11", "SMB2_10"])
def test_smbclient_against_encryption_required(protocol: str) -> None:
    with running_server(username=USER, password=PASSWORD, encrypt=True) as server:
        proc = smbclient(server, "-m", protocol, "--client-protection=sign")
        event = server.events[-1]
        if protocol == "SMB2_10":
            # Samba "smb encrypt = required": a 2.x session cannot encrypt and is refused.
            assert proc.returncode != 0 and "NT_STATUS_ACCESS_DENIED" in proc.stdout + proc.stderr
            assert event.status == "STATUS_ACCESS_DENIED" and "encryption" in event.reason
        else:
            # SMB2_SESSION_FLAG_ENCRYPT_DATA: smbclient encrypts the TREE_CONNECT, else it would be refused.
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert event.success and event.session_flags == ("ENCRYPT_DATA",)
