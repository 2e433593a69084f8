"""What the commands share: passwords, --listen, numbers of seconds and ports, the accounts a server
accepts and the names it announces. Only the standard library at load time; the rest loads when used."""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import math
import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smb2auth.authority.local import LocalAuthority
    from smb2auth.ntlm.server import NtlmPolicy, TargetInfo

PASSWORD_ENV = "SMB2AUTH_PASSWORD"
DIALECT_SPELLINGS = "2.0.2 2.1 3.0 3.0.2 3.1.1, or smbclient's SMB2_02 SMB2_10 SMB3_00 SMB3_02 SMB3_11"
LOOPBACK = "127.0.0.1"


def read_secret(prompt: str, *, from_stdin: bool = False, env: str = PASSWORD_ENV, also: str = "") -> str:
    """A password from stdin (one line), the environment, or an interactive prompt, in that order.

    `also` names a further source the command has, for the message when there is none."""
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    value = os.environ.get(env)
    if value is not None:
        return value
    if not sys.stdin.isatty():
        sources = f"{also}on stdin (--stdin), in ${env}, or on a terminal"
        raise SystemExit(f"smb2auth: no password: give it {sources}")
    return getpass.getpass(prompt)


def parse_listen(text: str, default_port: int) -> tuple[str, int]:
    """HOST:PORT, [V6]:PORT, [V6], a bare IPv6 address, HOST, :PORT or PORT (loopback without a host)."""
    if text.isdigit():
        host, port = "", text
    elif text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise argparse.ArgumentTypeError(f"unclosed [ in {text!r}")
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise argparse.ArgumentTypeError(f"junk after ] in {text!r}")
        port = rest[1:] if rest else str(default_port)
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:  # a host name, or an IPv6 address without brackets
        host, port = text, str(default_port)
    try:
        number = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range in {text!r}")
    return host or LOOPBACK, number


def is_loopback(host: str) -> bool:
    """localhost or a loopback address (127.0.0.0/8, ::1); a name is not looked up."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warn_if_exposed(command: str, addresses: Iterable[tuple[str, int]]) -> None:
    """One line on stderr when any address to listen on is not loopback: the servers hold test accounts."""
    exposed = [f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in addresses if not is_loopback(h)]
    if exposed:
        print(
            f"smb2auth {command}: warning: {', '.join(exposed)} is not loopback; whoever reaches it can log"
            " in with these accounts",
            file=sys.stderr,
            flush=True,
        )


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


def worker_count(text: str) -> int:
    """--workers N or auto (the cores this process may run on)."""
    if text == "auto":
        from smb2auth.server.workers import usable_cores

        return usable_cores()
    return at_least_one(text)


def parse_account(text: str) -> tuple[str, str]:
    """--user NAME:PASSWORD."""
    name, sep, password = text.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError("--user takes NAME:PASSWORD")
    return name, password


def add_account_arguments(parser: argparse.ArgumentParser, *, users_help: str) -> None:
    """--users, --user: the accounts a server accepts; --domain, --computer, --dns-domain: the names it
    announces in the NTLM CHALLENGE (MS-NLMP 2.2.2.1)."""
    parser.add_argument("--users", metavar="FILE", help="Samba smbpasswd file with the accounts")
    parser.add_argument("--user", action="append", type=parse_account, default=[], metavar="NAME:PASSWORD",
                        help=users_help)
    parser.add_argument("--domain", default="WORKGROUP", metavar="NAME",
                        help="NetBIOS domain announced (default WORKGROUP)")
    parser.add_argument("--computer", metavar="NAME",
                        help="computer name announced: NetBIOS name (default SMB2AUTH) and DNS name; a dotted"
                        " NAME is the full DNS name")
    parser.add_argument("--dns-domain", metavar="NAME",
                        help="DNS domain announced; the DNS computer name becomes COMPUTER.NAME")


def build_authority(args: argparse.Namespace, groups_file: str | None = None) -> LocalAuthority:
    """The accounts of --users FILE and each --user NAME:PASSWORD, in one LocalAuthority; `groups_file`
    (/etc/group format) gives them their groups."""
    from smb2auth.authority.local import LocalAuthority
    from smb2auth.authority.smbpasswd import load_groups, load_smbpasswd

    member_of: dict[str, tuple[str, ...]] = {}
    if groups_file is not None:
        try:
            member_of = load_groups(groups_file)
        except OSError as exc:
            raise ValueError(f"--groups {groups_file}: {exc.strerror or exc}") from None
    if not args.users:
        authority = LocalAuthority(args.domain)
    else:
        try:
            authority = load_smbpasswd(args.users, domain=args.domain, groups=member_of)
        except OSError as exc:  # a file named on the command line that cannot be read is bad input
            raise ValueError(f"--users {args.users}: {exc.strerror or exc}") from None
    for name, password in args.user:
        authority.add_user(name, password, groups=member_of.get(name.casefold(), ()))
    return authority


# smb.conf "ntlm auth": whether NTLMv1 is accepted besides NTLMv2 ("yes" is "ntlmv1-permitted"); LM needs
# "lanman auth = yes" as well (smb.conf(5): without ntlm auth, LanMan authentication is disabled too).
NTLM_AUTH = {"ntlmv2-only": False, "ntlmv1-permitted": True, "yes": True}


def add_ntlm_auth_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ntlm-auth", choices=tuple(NTLM_AUTH), default="ntlmv2-only",
                        help='as smb.conf "ntlm auth": ntlmv2-only (default), ntlmv1-permitted (or yes) also'
                        " accepts NTLMv1")
    parser.add_argument("--lanman-auth", action="store_true",
                        help='as smb.conf "lanman auth = yes": also accept LM responses (needs --ntlm-auth'
                        " ntlmv1-permitted or yes; default off)")


def ntlm_policy(args: argparse.Namespace, *, require_128bit: bool = False) -> NtlmPolicy:
    """The NtlmPolicy of --ntlm-auth and --lanman-auth."""
    from smb2auth.ntlm.server import NtlmPolicy

    allow_ntlmv1 = NTLM_AUTH[args.ntlm_auth]
    allow_lm = bool(getattr(args, "lanman_auth", False))
    if allow_lm and not allow_ntlmv1:
        # smb.conf(5) "ntlm auth": with NTLMv1 refused, LanMan authentication is refused too.
        raise ValueError("--lanman-auth needs --ntlm-auth ntlmv1-permitted or yes (as smb.conf's lanman"
                         " auth)")
    return NtlmPolicy(allow_ntlmv1=allow_ntlmv1, allow_lm=allow_lm, require_128bit=require_128bit)


def build_target(args: argparse.Namespace, base: TargetInfo) -> TargetInfo:
    """`base` (the library's default names) with --domain, --computer and --dns-domain applied."""
    from dataclasses import replace

    computer: str | None = args.computer
    if computer is not None and not computer.strip("."):
        raise ValueError("--computer: empty name")
    target = replace(base, nb_domain=args.domain.upper())
    if computer is None and args.dns_domain is None:
        return target
    dns_domain = target.dns_domain if args.dns_domain is None else args.dns_domain.strip(".").lower()
    if computer is not None:
        label = computer.strip(".").split(".")[0]
        target = replace(target, nb_computer=label.upper())
    else:
        label = (target.dns_computer or target.nb_computer).split(".")[0]
    if computer is not None and "." in computer.strip("."):
        dns_computer = computer.strip(".").lower()
    else:
        dns_computer = f"{label}.{dns_domain}".lower() if dns_domain else label.lower()
    return replace(target, dns_domain=dns_domain, dns_computer=dns_computer)
