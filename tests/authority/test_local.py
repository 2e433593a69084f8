"""LocalAuthority and the smbpasswd file."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from smb2auth.authority.local import LocalAuthority
from smb2auth.authority.smbpasswd import (
    SmbpasswdError,
    load_smbpasswd,
    parse_smbpasswd_line,
    write_smbpasswd_entry,
)
from smb2auth.errors import Smb2AuthError
from smb2auth.ntlm import NtlmClient, NtlmServer, TargetInfo, crypto
from smb2auth.ntlm.authority import ResponseKind, ValidationRequest
from smb2auth.status import NtStatus

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ntlm"
SC = bytes.fromhex("0123456789abcdef")


def _v2_request(
    user: str, domain: str, password: str, *, sign_domain: str | None = None
) -> ValidationRequest:
    key = crypto.ntowfv2(crypto.ntowfv1(password), user, domain if sign_domain is None else sign_domain)
    temp = crypto.ntlmv2_temp(0, b"\xaa" * 8, b"\x00\x00\x00\x00", trailer=b"")
    nt, lm, _ = crypto.compute_response_v2(key, SC, b"\xaa" * 8, temp)
    return ValidationRequest(user, domain, "WS", SC, lm, nt, 0, ResponseKind.NTLMV2)


def test_case_insensitive_names_and_any_domain() -> None:
    a = LocalAuthority()
    a.add_user("Alice", "pw")
    result = a.validate(_v2_request("ALICE", "SOMEWHERE", "pw"))
    assert result.ok and result.account is not None and result.account.username == "Alice"
    assert result.session_base_key is not None and len(result.session_base_key) == 16


def test_domain_tried_upper_cased_and_empty() -> None:
    # Samba ntlm_check.c: as sent, upper-cased, then empty.
    a = LocalAuthority()
    a.add_user("alice", "pw")
    assert a.validate(_v2_request("alice", "dom", "pw", sign_domain="DOM")).ok
    assert a.validate(_v2_request("alice", "dom", "pw", sign_domain="")).ok
    assert not a.validate(_v2_request("alice", "dom", "pw", sign_domain="OTHER")).ok


def test_failures() -> None:
    a = LocalAuthority()
    a.add_user("alice", "pw")
    assert a.validate(_v2_request("bob", "", "pw")).status == NtStatus.STATUS_NO_SUCH_USER
    assert a.validate(_v2_request("alice", "", "bad")).status == NtStatus.STATUS_WRONG_PASSWORD
    a.add_user("carol", "pw", disabled=True)
    assert a.validate(_v2_request("carol", "", "pw")).status == NtStatus.STATUS_ACCOUNT_DISABLED
    with pytest.raises(ValueError):
        a.add_user("dave")


def test_nt_hash_not_in_repr() -> None:
    a = LocalAuthority()
    user = a.add_user("alice", nt_hash=b"\x01" * 16)
    assert "01" * 4 not in repr(user)


def test_load_smbpasswd_written_by_samba() -> None:
    # fixtures/ntlm/smbpasswd-samba: written by Debian's `smbpasswd -a`, user root, password Secret1.
    a = load_smbpasswd(FIXTURES / "smbpasswd-samba")
    user = a.get_user("root")
    assert user is not None and user.nt_hash == crypto.ntowfv1("Secret1")
    server = NtlmServer(a, target=TargetInfo())
    client = NtlmClient("root", "Secret1")
    server.step(client.step(server.step(client.step(None) or b"")))  # type: ignore[arg-type]
    assert server.complete


def test_parse_flags(tmp_path: Path) -> None:
    entry = parse_smbpasswd_line("x:1:" + "X" * 32 + ":" + "NO PASSWORD" + "X" * 21 + ":[NU         ]:LCT-0:")
    assert entry is not None and entry["nt_hash"] is None and entry["flags"] == "NU"
    path = tmp_path / "smbpasswd"
    h = crypto.ntowfv1("pw").hex().upper()
    path.write_text(
        f"# comment\nd:1:{'X' * 32}:{h}:[DU         ]:LCT-0:\nw:2:{'X' * 32}:{h}:[W          ]:LCT-0:\n"
    )
    a = load_smbpasswd(path)
    assert "w" not in a and a.get_user("d") is not None and a.get_user("d").disabled  # type: ignore[union-attr]


def test_write_smbpasswd_entry(tmp_path: Path) -> None:
    path = tmp_path / "smbpasswd"
    write_smbpasswd_entry(path, "alice", "one", uid=1000)
    write_smbpasswd_entry(path, "bob", "two", uid=1001)
    write_smbpasswd_entry(path, "ALICE", "three")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and lines[1].startswith("ALICE:1000:" + "X" * 32 + ":")
    a = load_smbpasswd(path)
    assert a.get_user("alice").nt_hash == crypto.ntowfv1("three")  # type: ignore[union-attr]


@pytest.mark.skipif(shutil.which("pdbedit") is None, reason="Samba's pdbedit not installed")
def test_file_we_write_is_read_by_samba(tmp_path: Path) -> None:
    # smbpasswd entries need a Unix account: use the one running the tests.
    name = pwd.getpwuid(os.getuid()).pw_name
    path = tmp_path / "smbpasswd"
    write_smbpasswd_entry(path, name, "Secret1", uid=os.getuid())
    conf = tmp_path / "smb.conf"
    conf.write_text(
        f"[global]\npassdb backend = smbpasswd:{path}\nprivate dir = {tmp_path}\nlock dir = {tmp_path}\n"
        f"state directory = {tmp_path}\ncache directory = {tmp_path}\n"
    )
    proc = subprocess.run(
        ["pdbedit", "-s", str(conf), "-L", "-w"], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith(name + ":"))
    assert crypto.ntowfv1("Secret1").hex().upper() in line


def test_smbpasswd_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "smbpasswd"
    h = crypto.ntowfv1("pw").hex().upper()
    path.write_text(f"# comment\nok:1:{'X' * 32}:{h}:[U          ]:LCT-0:\njunk\n")
    with pytest.raises(SmbpasswdError, match=rf"^{re.escape(str(path))}:3: .*1 field,") as exc:
        load_smbpasswd(path)
    assert isinstance(exc.value, Smb2AuthError) and exc.value.line == 3 and exc.value.path == str(path)
    with pytest.raises(SmbpasswdError, match=r":3: "):
        write_smbpasswd_entry(path, "new", "pw")
    path.write_text(f":2:{'X' * 32}:{h}:[U          ]:LCT-0:\n")
    with pytest.raises(SmbpasswdError, match=r":1: .*empty user name"):
        load_smbpasswd(path)
    path.write_bytes(b"caf\xe9:1:\n")
    with pytest.raises(SmbpasswdError, match="not UTF-8"):
        load_smbpasswd(path)


@pytest.mark.parametrize("name", ["", "bo:b", "a\nb", "a\rb"])
def test_write_smbpasswd_rejects_bad_names(tmp_path: Path, name: str) -> None:
    path = tmp_path / "smbpasswd"
    with pytest.raises(SmbpasswdError):
        write_smbpasswd_entry(path, name, "pw")
    assert not path.exists()
