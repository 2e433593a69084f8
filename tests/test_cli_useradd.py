"""`smb2auth useradd FILE NAME`: password from stdin or the environment, never argv; file mode 0600."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest

from smb2auth.authority.smbpasswd import load_smbpasswd
from smb2auth.commands._args import PASSWORD_ENV
from smb2auth.commands.main import main
from smb2auth.ntlm import crypto


def test_useradd_from_stdin_writes_nt_hash_0600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "smbpasswd"
    monkeypatch.setattr("sys.stdin", io.StringIO("S3cret!\n"))
    assert main(["useradd", str(path), "bob", "--stdin"]) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    line = path.read_text().strip()
    assert line.startswith("bob:") and crypto.ntowfv1("S3cret!").hex().upper() in line
    assert "S3cret!" not in line
    user = load_smbpasswd(path).get_user("bob")
    assert user is not None and user.nt_hash == crypto.ntowfv1("S3cret!")


def test_useradd_from_env_replaces_existing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "smbpasswd"
    monkeypatch.setenv(PASSWORD_ENV, "first")
    assert main(["useradd", str(path), "carol"]) == 0
    monkeypatch.setenv(PASSWORD_ENV, "second")
    assert main(["useradd", str(path), "CAROL"]) == 0
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    user = load_smbpasswd(path).get_user("carol")
    assert user is not None and user.nt_hash == crypto.ntowfv1("second")


def test_useradd_without_password_source_fails_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(SystemExit) as exc:
        main(["useradd", str(tmp_path / "f"), "dave"])
    assert "no password" in str(exc.value.code)
    assert not (tmp_path / "f").exists()
