"""Every `smb2auth` error path: one clear line on stderr, a non-zero exit, never a traceback.

Some run the entry point as a real process (what a user sees), the rest call `main()` in-process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from smb2auth.cli import main

ROOT = Path(__file__).resolve().parents[1]
BAD_SMBPASSWD = (
    "alice:1000:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:8846F7EAEE8FB117AD06BDD830B7586C:[U          ]:LCT-00000000:\n"
    "bob\n"
)


def run_cli(*args: str, stdin: bytes | None = None, stdin_file: str | None = None) -> tuple[int, str, str]:
    """`python -m smb2auth.cli ARGS` in a child process: (exit code, stdout, stderr)."""
    source = open(stdin_file, "rb") if stdin_file else None  # noqa: SIM115 - closed below
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "smb2auth.cli", *args], cwd=ROOT, input=stdin,
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

