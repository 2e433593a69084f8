"""`smb2auth serve`: smb.conf-like policy switches, the names it announces, --listen, binding before the
password is printed, the loopback warning and its exit codes (issue 11, items 2 and 4)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from smb2auth.authority import ResponseKind
from smb2auth.authority.local import LocalAuthority
from smb2auth.client import Smb2ClientError, connect
from smb2auth.commands.main import build_parser
from smb2auth.commands.serve import server_config
from smb2auth.ntlm.server import NtlmPolicy
from smb2auth.server.config import ServerConfig
from smb2auth.smb2.negotiate import Dialect
from smb2auth.status import NtStatus
from tests.test_cli_errors import error_line, run_cli, run_main

PASSWORD = "Passw0rd!"


def config_of(*argv: str) -> ServerConfig:
    return server_config(build_parser().parse_args(["serve", *argv]), LocalAuthority())


@pytest.mark.parametrize(
    ("argv", "ntlmv1", "lm"),
    [((), False, False), (("--ntlm-auth", "ntlmv2-only"), False, False),
     (("--ntlm-auth", "ntlmv1-permitted"), True, False), (("--ntlm-auth", "yes"), True, False),
     (("--ntlm-auth", "yes", "--lanman-auth"), True, True),
     (("--ntlm-auth", "ntlmv1-permitted", "--lanman-auth"), True, True)],
)
def test_ntlm_auth_is_the_policy(argv: tuple[str, ...], ntlmv1: bool, lm: bool) -> None:
    policy = config_of(*argv, "--allow-guest").ntlm_policy
    assert (policy.allow_ntlmv1, policy.allow_lm, policy.allow_guest) == (ntlmv1, lm, True)
    assert replace(policy, allow_ntlmv1=False, allow_lm=False, allow_guest=False) == NtlmPolicy()


def test_lanman_auth_needs_ntlmv1(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "serve", "--lanman-auth")
    assert code != 0 and "--lanman-auth needs --ntlm-auth" in err and "Traceback" not in err


def test_require_128bit() -> None:
    assert config_of().policy.require_128bit is False
    assert config_of("--require-128bit").policy.require_128bit is True


def test_unknown_ntlm_auth_is_usage(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "serve", "--ntlm-auth", "lanman")
    assert code == 2 and "--ntlm-auth" in err


def test_names_default_to_the_library_s_and_the_options_override_them() -> None:
    library = ServerConfig(authority=LocalAuthority()).target
    assert config_of().target == replace(library, nb_domain="WORKGROUP")
    target = config_of("--domain", "testgrp", "--computer", "harness", "--dns-domain", "test.example").target
    assert (target.nb_domain, target.nb_computer) == ("TESTGRP", "HARNESS")
    assert (target.dns_domain, target.dns_computer) == ("test.example", "harness.test.example")


@pytest.mark.parametrize("spelling", ["3.0.2", "SMB3_02", "0x0302", "3.02"])
def test_dialect_spellings(spelling: str) -> None:
    config = config_of("--min-dialect", spelling, "--max-dialect", spelling)
    assert config.dialects == (Dialect.SMB3_0_2,)


def test_bare_port_is_loopback() -> None:
    args = build_parser().parse_args(["serve", "--listen", "4447", "--listen", "[::1]:4448"])
    assert args.listen == [("127.0.0.1", 4447), ("::1", 4448)]


# --- the command as a process ------------------------------------------------------------------------------


@contextmanager
def serving(*argv: str) -> Iterator[tuple[int, list[str]]]:
    """`smb2auth serve --listen 127.0.0.1:0 ARGV` until the block ends; yields the port bound and a list
    that gets the process's stderr once it has stopped."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "smb2auth.commands.main", "serve", "--listen", "127.0.0.1:0", *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        listening = proc.stdout.readline().strip()
        assert listening.startswith("listening on 127.0.0.1:"), listening
        stderr: list[str] = []
        yield int(listening.rsplit(":", 1)[1]), stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            stderr.append(proc.communicate(timeout=20)[1])
        finally:
            if proc.poll() is None:
                proc.kill()


def login(port: int, kind: ResponseKind) -> int:
    try:
        with connect("127.0.0.1", port, username="alice", password=PASSWORD, ntlm_version=kind, timeout=20):
            return NtStatus.STATUS_SUCCESS
    except Smb2ClientError as exc:
        return exc.status


@pytest.mark.parametrize(
    ("value", "ntlmv1", "lm"),
    [("ntlmv2-only", NtStatus.STATUS_LOGON_FAILURE, NtStatus.STATUS_LOGON_FAILURE),
     ("ntlmv1-permitted", NtStatus.STATUS_SUCCESS, NtStatus.STATUS_LOGON_FAILURE),
     ("yes", NtStatus.STATUS_SUCCESS, NtStatus.STATUS_LOGON_FAILURE),
     ("yes --lanman-auth", NtStatus.STATUS_SUCCESS, NtStatus.STATUS_SUCCESS)],
)
def test_ntlm_auth_process(value: str, ntlmv1: int, lm: int) -> None:
    with serving("--user", f"alice:{PASSWORD}", "--ntlm-auth", *value.split()) as (port, stderr):
        assert login(port, ResponseKind.NTLMV2) == NtStatus.STATUS_SUCCESS
        assert login(port, ResponseKind.NTLMV1) == ntlmv1
        assert login(port, ResponseKind.LM) == lm
    assert "smb2 login ok user=alice" in stderr[0]
    for kind, status in (("NTLMv1", ntlmv1), ("LM", lm)):
        logged_in = re.search(rf"login ok user=alice .* ntlm={kind}( |$)", stderr[0], re.M) is not None
        assert logged_in is (status == NtStatus.STATUS_SUCCESS)
    assert "warning" not in stderr[0] and "Traceback" not in stderr[0]  # loopback: no warning


def test_binds_before_printing_the_password() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = run_cli("serve", "--listen", f"127.0.0.1:{port}")
    assert code == 1
    assert out == ""  # no password for a server that never ran
    assert "address already in use" in error_line(err).lower() and err.count("\n") == 1


def test_non_loopback_listen_warns_once() -> None:
    # Documentation addresses (RFC 5737): not loopback, and not bound here, so nothing is ever exposed.
    code, out, err = run_cli("serve", "--listen", "192.0.2.1:0", "--listen", "198.51.100.7:0")
    lines = err.strip().splitlines()
    assert lines[0] == (
        "smb2auth serve: warning: 192.0.2.1:0, 198.51.100.7:0 is not loopback; whoever reaches it can log in"
        " with these accounts"
    )
    assert sum("warning" in line for line in lines) == 1
    assert code == 1 and out == ""


@pytest.mark.parametrize("command", ["serve", "http-serve", "proxy"])
def test_missing_users_file_is_bad_input(command: str, tmp_path: Path) -> None:
    code, out, err = run_cli(command, "--users", str(tmp_path / "nope"), "--listen", "127.0.0.1:0")
    assert code == 2 and out == ""
    assert error_line(err) == f"smb2auth {command}: --users {tmp_path / 'nope'}: No such file or directory"


@pytest.mark.parametrize("command", ["http-serve", "proxy"])
def test_http_commands_without_accounts_are_bad_input(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(capsys, command, "--listen", "127.0.0.1:0")
    assert code == 2
    assert error_line(err) == f"smb2auth {command}: no accounts: give --users FILE or --user NAME:PASSWORD"
