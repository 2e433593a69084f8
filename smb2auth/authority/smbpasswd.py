"""Samba's smbpasswd file: `name:uid:LMHASH:NTHASH:[FLAGS      ]:LCT-XXXXXXXX:` (smbpasswd(5))."""

from __future__ import annotations

import binascii
import os
import time
from pathlib import Path

from smb2auth.authority.local import LocalAuthority
from smb2auth.ntlm import crypto

_NO_HASH = "X" * 32


def _hash(field: str) -> bytes | None:
    if len(field) != 32 or field.startswith(("X", "*", "NO PASSWORD")):
        return None
    try:
        return binascii.unhexlify(field)
    except binascii.Error:
        return None


def parse_smbpasswd_line(line: str) -> dict[str, object] | None:
    """One entry as a dict (name, uid, lm_hash, nt_hash, flags, lct); None for comments and blanks."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    parts = line.split(":")
    if len(parts) < 5:
        raise ValueError(f"smbpasswd line has {len(parts)} fields, expected at least 5")
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


def load_smbpasswd(path: str | os.PathLike[str], domain: str = "WORKGROUP") -> LocalAuthority:
    """Read an smbpasswd file into a LocalAuthority. Flag D disables, L locks; N (no password) is skipped."""
    authority = LocalAuthority(domain)
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        try:
            entry = parse_smbpasswd_line(raw)
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from None
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
        )
    return authority


def format_smbpasswd_entry(
    name: str, uid: int, nt_hash: bytes, flags: str = "UX", when: float | None = None
) -> str:
    """An smbpasswd line; the LM hash is always stored as X's (no LM)."""
    if ":" in name or "\n" in name:
        raise ValueError("user names cannot contain ':' or newlines")
    lct = int(time.time() if when is None else when)
    return f"{name}:{uid}:{_NO_HASH}:{nt_hash.hex().upper()}:[{flags:<11}]:LCT-{lct:08X}:"


def write_smbpasswd_entry(
    path: str | os.PathLike[str], name: str, password: str, *, uid: int | None = None
) -> None:
    """Add or replace `name` in an smbpasswd file (created with mode 0600)."""
    target = Path(path)
    lines = target.read_text(encoding="utf-8").splitlines() if target.exists() else []
    kept: list[str] = []
    old_uid: int | None = None
    for line in lines:
        entry = parse_smbpasswd_line(line)
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
