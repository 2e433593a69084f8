"""What the commands share: passwords, --listen, numbers of seconds and ports, the accounts a server
accepts. Only the standard library at load time; the rest loads when used."""

from __future__ import annotations

import argparse
import getpass
import math
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smb2auth.authority.local import LocalAuthority

PASSWORD_ENV = "SMB2AUTH_PASSWORD"


def read_secret(prompt: str, *, from_stdin: bool = False, env: str = PASSWORD_ENV) -> str:
    """A password from stdin (one line), the environment, or an interactive prompt, in that order."""
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    value = os.environ.get(env)
    if value is not None:
        return value
    if not sys.stdin.isatty():
        raise SystemExit(f"smb2auth: no password: give it on stdin (--stdin), in ${env}, or on a terminal")
    return getpass.getpass(prompt)


def parse_listen(text: str, default_port: int) -> tuple[str, int]:
    """HOST:PORT, [V6]:PORT, HOST or :PORT (loopback when the host is left out)."""
    host, sep, port = text.rpartition(":")
    if not sep or "]" in port:
        host, port = text, str(default_port)
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range in {text!r}")
    return host, number


def positive_seconds(text: str) -> float:
    """A number of seconds: finite and above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive finite number of seconds, not {text!r}")
    return value


def tcp_port(text: str) -> int:
    """A TCP port to connect to: 1..65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port {text!r}") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"bad port {text!r}: not in 1..65535")
    return value


def at_least_one(text: str) -> int:
    """A count: a whole number, 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def parse_account(text: str) -> tuple[str, str]:
    """--user NAME:PASSWORD."""
    name, sep, password = text.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError("--user takes NAME:PASSWORD")
    return name, password


def add_account_arguments(parser: argparse.ArgumentParser, *, users_help: str) -> None:
    """--users FILE, --user NAME:PASSWORD, --domain, --computer: the accounts a server accepts."""
    parser.add_argument("--users", metavar="FILE", help="Samba smbpasswd file with the accounts")
    parser.add_argument("--user", action="append", type=parse_account, default=[], metavar="NAME:PASSWORD",
                        help=users_help)
    parser.add_argument("--domain", default="WORKGROUP", help="NetBIOS domain announced (default WORKGROUP)")
    parser.add_argument("--computer", default="SMB2AUTH", help="NetBIOS computer name announced")


def build_authority(args: argparse.Namespace) -> LocalAuthority:
    """The accounts of --users FILE and each --user NAME:PASSWORD, in one LocalAuthority."""
    from smb2auth.authority.local import LocalAuthority
    from smb2auth.authority.smbpasswd import load_smbpasswd

    authority = load_smbpasswd(args.users, domain=args.domain) if args.users else LocalAuthority(args.domain)
    for name, password in args.user:
        authority.add_user(name, password)
    return authority
