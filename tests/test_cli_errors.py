"""Every `smb2auth` error path: one clear line on stderr, a non-zero exit, never a traceback.

Some run the entry point as a real process (what a user sees), the rest call `main()` in-process.
"""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from smb2auth.commands.main import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
BAD_SMBPASSWD = (
    "alice:1000:" + "X" * 32 + ":8846F7EAEE8FB117AD06BDD830B7586C:[U          ]:LCT-00000000:\n"
    "bob\n"
)


def run_cli(*args: str, stdin: bytes | None = None, stdin_file: str | None = None) -> tuple[int, str, str]:
    """`python -m smb2auth.commands.main ARGS` in a child process: (exit code, stdout, stderr)."""
    source = open(stdin_file, "rb") if stdin_file else None  # noqa: SIM115 - closed below
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "smb2auth.commands.main", *args], cwd=ROOT, input=stdin,
            stdin=source if source else (None if stdin is not None else subprocess.DEVNULL),
            capture_output=True, timeout=60,
        )
    finally:
        if source:
            source.close()
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def error_line(stderr: str) -> str:
    """The message of a failed run: no traceback, and the last line names the program."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert lines, "nothing on stderr"
    assert lines[-1].startswith("smb2auth"), stderr
    return lines[-1]


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`main(args)` in-process; argparse's exits count as exit codes."""
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    out, err = capsys.readouterr()
    return code, out, err


# --- --listen is parsed by argparse, for every server command ----------------------------------------


def test_http_serve_bad_listen_port_process() -> None:
    code, _, err = run_cli("http-serve", "--user", "a:b", "--listen", "127.0.0.1:abc")
    assert code == 2
    assert "bad port in '127.0.0.1:abc'" in error_line(err)


@pytest.mark.parametrize("command", ["http-serve", "proxy", "serve"])
def test_listen_port_out_of_range(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, command, "--user", "a:b", "--listen", "127.0.0.1:70000")
    assert code == 2
    assert "port out of range in '127.0.0.1:70000'" in error_line(err)


# --- smbpasswd files and useradd -----------------------------------------------------------------------


def test_serve_malformed_smbpasswd_process(tmp_path: Path) -> None:
    users = tmp_path / "smbpasswd"
    users.write_text(BAD_SMBPASSWD)
    code, out, err = run_cli("serve", "--users", str(users), "--listen", "127.0.0.1:0")
    assert code == 2
    assert f"{users}:2: " in error_line(err) and "1 field" in error_line(err)
    assert "password" not in out


@pytest.mark.parametrize("command", ["http-serve", "proxy"])
def test_http_malformed_smbpasswd(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    users = tmp_path / "smbpasswd"
    users.write_text(BAD_SMBPASSWD)
    code, _, err = run_main(capsys, command, "--users", str(users), "--listen", "127.0.0.1:0")
    assert code == 2
    assert f"{users}:2: " in error_line(err)


def test_useradd_into_malformed_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    users = tmp_path / "smbpasswd"
    users.write_text(BAD_SMBPASSWD)
    monkeypatch.setattr("sys.stdin", io.StringIO("pw\n"))
    code, _, err = run_main(capsys, "useradd", str(users), "carol", "--stdin")
    assert code == 2
    assert f"{users}:2: " in error_line(err)
    assert users.read_text() == BAD_SMBPASSWD


def test_useradd_name_with_colon_process(tmp_path: Path) -> None:
    users = tmp_path / "smbpasswd"
    code, _, err = run_cli("useradd", str(users), "bo:b", "--stdin", stdin=b"pw\n")
    assert code == 2
    assert "':'" in error_line(err)
    assert not users.exists()


def test_useradd_empty_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    users = tmp_path / "smbpasswd"
    monkeypatch.setattr("sys.stdin", io.StringIO("pw\n"))
    code, _, err = run_main(capsys, "useradd", str(users), "", "--stdin")
    assert code == 2
    assert "empty" in error_line(err)
    assert not users.exists()


def test_missing_users_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "http-serve", "--users", str(tmp_path / "nope"), "--listen", ":0")
    assert code == 2  # a file named on the command line that is not there is bad input (README)
    assert "No such file" in error_line(err)


# --- decode ----------------------------------------------------------------------------------------------


def test_decode_endless_file_process() -> None:
    code, _, err = run_cli("decode", "@/dev/zero")
    assert code == 2
    assert "input larger than 16777216 bytes" in error_line(err)


def test_decode_endless_stdin_process() -> None:
    code, _, err = run_cli("decode", "-", stdin_file="/dev/zero")
    assert code == 2
    assert "input larger than 16777216 bytes" in error_line(err)


@pytest.mark.parametrize("text", ["zz", "hello world!", "ab=c"])
def test_decode_text_neither_hex_nor_base64(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "decode", text)
    assert code == 2
    assert "neither valid hex nor valid base64" in error_line(err)


def test_decode_base64_of_something_else_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "decode", "zzzz")  # valid base64 of cf 3c f3
    assert code == 2
    line = error_line(err)
    assert "base64" in line and "cf3cf3" in line


# --- connect ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "soon"])
def test_connect_timeout_must_be_positive_finite(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "connect", "//127.0.0.1:1", "-U", "a%b", "--timeout", value)
    assert code == 2
    assert "--timeout" in error_line(err)


def test_connect_timeout_process() -> None:
    code, _, err = run_cli("connect", "//127.0.0.1:1", "-U", "a%b", "--timeout", "-1")
    assert code == 2
    assert "positive" in error_line(err)


@pytest.mark.parametrize("target", ["//127.0.0.1:abc", "//127.0.0.1:0", "//127.0.0.1:70000", "//[::1]:x"])
def test_connect_bad_port(target: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "connect", target, "-U", "a%b")
    assert code == 2
    assert "bad port" in error_line(err)


@pytest.mark.parametrize("port", ["0", "70000", "x"])
def test_connect_bad_port_option(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "connect", "//127.0.0.1", "-U", "a%b", "-p", port)
    assert code == 2
    assert "--port" in error_line(err)


# --- serve validates its configuration before printing a password ----------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-connections", "-1"], "max_connections must be at least 1"),
        (["--encrypt", "--max-dialect", "2.1"], "encrypt"),
        (["--handshake-timeout", "nan"], "handshake-timeout"),
        (["--idle-timeout", "-5"], "idle-timeout"),
        (["--min-dialect", "9.9"], "dialect"),
    ],
)
def test_serve_rejects_config_before_printing_password(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(capsys, "serve", "--listen", "127.0.0.1:0", *args)
    assert code == 2
    assert message in error_line(err)
    assert "password" not in out


# --- -v at both levels -----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["http-serve", "proxy"])
def test_top_level_verbose_survives_subcommand(command: str) -> None:
    args = build_parser().parse_args(["-vv", command, "--user", "a:b"])
    assert args.verbose == 2 and not args.log_requests
    args = build_parser().parse_args([command, "-v", "--user", "a:b"])
    assert args.verbose == 0 and args.log_requests
    args = build_parser().parse_args(["-v", command, "--verbose", "--user", "a:b"])
    assert args.verbose == 1 and args.log_requests


def test_serve_refused_config_leaves_logging_alone(capsys: pytest.CaptureFixture[str]) -> None:
    login_log = logging.getLogger("smb2auth.login")
    before = login_log.level
    code, _, _ = run_main(capsys, "serve", "--listen", "127.0.0.1:0", "--max-connections", "0")
    assert code == 2 and login_log.level == before


def test_proxy_leaves_the_callers_event_loop_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`proxy --loop auto` picks uvloop for itself only: a caller in the same process (here, the rest of the
    test session's harnesses) keeps the event loop policy it had, even when the command fails."""
    import asyncio

    before = asyncio.get_event_loop_policy()
    users = tmp_path / "smbpasswd"
    users.write_text(BAD_SMBPASSWD)
    code, _, _ = run_main(capsys, "proxy", "--loop", "auto", "--users", str(users), "--listen", "127.0.0.1:0")
    assert code == 2
    assert asyncio.get_event_loop_policy() is before
