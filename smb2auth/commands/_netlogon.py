"""--netlogon and its companions, for serve, http-serve and proxy: logons validated by an AD domain
controller (smb2auth.authority.netlogon) instead of local accounts. The secure channel is set up before the
server listens, so a wrong machine password or a DC that refuses us stops the command at start-up."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smb2auth.authority import AnyAuthority
    from smb2auth.authority.netlogon import NetlogonAuthority


def add_netlogon_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "Netlogon", "validate logons at an Active Directory DC as the member server --machine-account"
        " (--domain is the DC's NetBIOS domain; --dns-domain its DNS name)")
    group.add_argument("--netlogon", action="append", default=[], metavar="DC_HOST[:PORT]",
                       help="a domain controller (repeatable: the next is used when one fails); PORT is the"
                       " Netlogon TCP port (default: ask the DC's endpoint mapper) or, with --transport np,"
                       " the SMB port (default 445)")
    group.add_argument("--machine-account", metavar="NAME", help="the member server's account, without $")
    group.add_argument("--machine-password-file", metavar="FILE",
                       help="file holding the machine account's password (its first line)")
    group.add_argument("--transport", choices=("tcp", "np"), default="tcp",
                       help="ncacn_ip_tcp (default) or ncacn_np (\\PIPE\\netlogon over SMB2)")
    group.add_argument("--logon-call", choices=("auto", "ex", "with-flags"), default="auto",
                       help="NetrLogonSamLogonEx (ex), NetrLogonSamLogonWithFlags with its authenticator"
                       " chain (with-flags, one call at a time per secure channel), or Ex falling back to"
                       " WithFlags on a DC without Ex (auto, the default)")
    group.add_argument("--require-group", action="append", default=[], metavar="SID",
                       help="admit only accounts holding this SID, the user's or a group's (repeatable: any"
                       " of them); others get STATUS_LOGON_TYPE_NOT_GRANTED")


def with_groups(args: argparse.Namespace, authority: AnyAuthority) -> AnyAuthority:
    """`authority`, behind --require-group when given."""
    from smb2auth.authority.groups import require_group

    for sid in args.require_group:
        if not sid.upper().startswith("S-1-"):
            raise ValueError(f"--require-group {sid}: not a SID (S-1-...)")
    return require_group(authority, args.require_group) if args.require_group else authority


def build_netlogon(args: argparse.Namespace) -> NetlogonAuthority | None:
    """The started NetlogonAuthority the options describe, or None without --netlogon. ValueError for
    options that do not fit; SecureChannelError when the DC refuses the channel."""
    from smb2auth.authority.netlogon import netlogon_authority

    if not args.netlogon:
        if args.machine_account or args.machine_password_file:
            raise ValueError("--machine-account and --machine-password-file need --netlogon")
        return None
    if not args.machine_account or not args.machine_password_file:
        raise ValueError("--netlogon needs --machine-account and --machine-password-file")
    if args.users or args.user:
        raise ValueError("--netlogon validates at the DC: no --users or --user with it")
    machine = args.machine_account.rstrip("$").upper()
    if args.computer is not None and args.computer.split(".")[0].upper() != machine:
        raise ValueError(f"--computer {args.computer}: with --netlogon the computer is the machine account"
                         f" {machine} (the DC checks the name the CHALLENGE announces)")
    args.computer = machine if not args.dns_domain else f"{machine}.{args.dns_domain}".lower()
    where = f"--machine-password-file {args.machine_password_file}"
    try:
        lines = Path(args.machine_password_file).read_text().splitlines()
    except OSError as exc:
        raise ValueError(f"{where}: {exc.strerror or exc}") from None
    if not lines or not lines[0]:
        raise ValueError(f"{where}: empty")
    try:
        authority = netlogon_authority(args.netlogon, machine, lines[0], args.domain.upper(),
                                       (args.dns_domain or "").strip(".").lower(), args.transport,
                                       logon_call=args.logon_call)
    except ValueError as exc:
        raise ValueError(f"--netlogon: {exc}") from None
    authority.start_sync()
    return authority
