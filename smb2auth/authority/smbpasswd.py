"""Samba's smbpasswd file: `name:uid:LMHASH:NTHASH:[FLAGS      ]:LCT-XXXXXXXX:` (smbpasswd(5))."""

from __future__ import annotations

import binascii
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from smb2auth.authority.local import LocalAuthority
from smb2auth.errors import Smb2AuthError
from smb2auth.ntlm import crypto

_NO_HASH = "X" * 32


class SmbpasswdError(Smb2AuthError, ValueError):
    """An smbpasswd file or entry we cannot read or write; the message starts with FILE:LINE when known."""

    def __init__(
        self, reason: str, path: str | os.PathLike[str] | None = None, line: int | None = None
    ) -> None:
        self.reason = reason
        self.path = None if path is None else os.fspath(path)
        self.line = line
        where = "" if self.path is None else f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(f"{where}{reason}")


def check_user_name(name: str) -> None:
    """Raise SmbpasswdError for a name an smbpasswd line cannot hold: empty, or with ':' or a line break."""
    if not name:
        raise SmbpasswdError("empty user name")
    if ":" in name or "\n" in name or "\r" in name:
        raise SmbpasswdError(f"user name {name!r} cannot contain ':' or line breaks")


def _hash(field: str) -> bytes | None:
    if len(field) != 32 or field.startswith(("X", "*", "NO PASSWORD")):
        return None
    try:
        return binascii.unhexlify(field)
    except binascii.Error:
        return None


def parse_smbpasswd_line(line: str) -> dict[str, object] | None:
    """One entry as a dict (name, uid, lm_hash, nt_hash, flags, lct); None for comments and blanks.

    Raises SmbpasswdError (without a file or line number) for a line that is not an entry."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    parts = line.split(":")
    if len(parts) < 5:
        count = f"{len(parts)} field" + ("" if len(parts) == 1 else "s")
        raise SmbpasswdError(f"smbpasswd line has {count}, expected at least 5")
    if not parts[0]:
        raise SmbpasswdError("smbpasswd line has an empty user name")
    flags = parts[4].strip()
    if flags.startswith("[") and "]" in flags:
        flags = flags[1 : flags.index("]")].replace(" ", "")
    lct = parts[5] if len(parts) > 5 else ""
    return {
        "name": parts[0],
        "uid": int(parts[1]) if parts[1].strip().lstrip("-").isdigit() else -1,
        "lm_hash": _hash(parts[2]),
        "nt_hash": _hash(parts[3]),
        "flags": flags,
        "lct": lct,
    }


def load_groups(path: str | os.PathLike[str]) -> dict[str, tuple[str, ...]]:
    """A group file in /etc/group's format (`name:password:gid:member,member`; `name:member,...` also does),
    as the Unix groups Samba's standalone server maps its users to: user (casefolded) -> their groups."""
    groups: dict[str, list[str]] = {}
    for number, raw in enumerate(_read_lines(path), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) < 2 or not fields[0]:
            raise SmbpasswdError("a group line is NAME:...:MEMBER,MEMBER", path, number)
        for member in filter(None, (m.strip() for m in fields[-1].split(","))):
            groups.setdefault(member.casefold(), []).append(fields[0])
    return {user: tuple(names) for user, names in groups.items()}


def load_smbpasswd(
    path: str | os.PathLike[str], domain: str = "WORKGROUP", groups: Mapping[str, Sequence[str]] | None = None
) -> LocalAuthority:
    """Read an smbpasswd file into a LocalAuthority. Flag D disables, L locks; N (no password) is skipped.
    `groups` (as `load_groups` returns) gives each user (casefolded name) the groups its account carries."""
    member_of = {user.casefold(): tuple(names) for user, names in (groups or {}).items()}
    authority = LocalAuthority(domain)
    for number, raw in enumerate(_read_lines(path), 1):
        entry = _parse_at(raw, path, number)
        if entry is None:
            continue
        flags = str(entry["flags"])
        nt_hash = entry["nt_hash"]
        if "N" in flags or not isinstance(nt_hash, bytes) or ("U" not in flags and flags):
            continue
        lm_hash = entry["lm_hash"]
        authority.add_user(
            str(entry["name"]),
            nt_hash=nt_hash,
            lm_hash=lm_hash if isinstance(lm_hash, bytes) else None,
            disabled="D" in flags,
            locked="L" in flags,
            groups=member_of.get(str(entry["name"]).casefold(), ()),
        )
    return authority


def _read_lines(path: str | os.PathLike[str]) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise SmbpasswdError(f"not UTF-8 text (byte {exc.start})", path) from None


def _parse_at(raw: str, path: str | os.PathLike[str], number: int) -> dict[str, object] | None:
    try:
        return parse_smbpasswd_line(raw)
    except SmbpasswdError as exc:
        raise SmbpasswdError(exc.reason, path, number) from None


def format_smbpasswd_entry(
    name: str, uid: int, nt_hash: bytes, flags: str = "UX", when: float | None = None
) -> str:
    """An smbpasswd line; the LM hash is always stored as X's (no LM)."""
    check_user_name(name)
    lct = int(time.time() if when is None else when)
    return f"{name}:{uid}:{_NO_HASH}:{nt_hash.hex().upper()}:[{flags:<11}]:LCT-{lct:08X}:"


def write_smbpasswd_entry(
    path: str | os.PathLike[str], name: str, password: str, *, uid: int | None = None
) -> None:
    """Add or replace `name` in an smbpasswd file (created with mode 0600)."""
    check_user_name(name)
    target = Path(path)
    lines = _read_lines(target) if target.exists() else []
    kept: list[str] = []
    old_uid: int | None = None
    for number, line in enumerate(lines, 1):
        entry = _parse_at(line, path, number)
        if entry is not None and str(entry["name"]).casefold() == name.casefold():
            old_uid = int(str(entry["uid"]))
            continue
        kept.append(line)
    if uid is None:
        uid = old_uid if old_uid is not None else os.getuid()
    kept.append(format_smbpasswd_entry(name, uid, crypto.ntowfv1(password)))
    tmp = target.with_name(target.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(kept) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, target)
