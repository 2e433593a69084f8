"""What `http-serve` and `proxy` share: their options, the HTTP authentication config, and logging."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from smb2auth.commands._args import (
    add_account_arguments,
    add_ntlm_auth_argument,
    build_authority,
    build_target,
    ntlm_policy,
    parse_listen,
)
from smb2auth.commands._args import positive_seconds as seconds
from smb2auth.commands._netlogon import add_netlogon_arguments, build_netlogon, with_groups

if TYPE_CHECKING:
    from smb2auth.authority import AnyAuthority
    from smb2auth.http.auth import HttpAuthConfig, Role


def add_http_arguments(parser: argparse.ArgumentParser, port: int) -> None:
    def listen(text: str) -> tuple[str, int]:
        return parse_listen(text, port)

    parser.add_argument("--listen", type=listen, default=("127.0.0.1", port), metavar="HOST:PORT",
                        help=f"address to listen on: HOST:PORT, HOST or PORT (default 127.0.0.1:{port})")
    add_account_arguments(parser, users_help="an account (repeatable); the password is visible in ps")
    parser.add_argument("--groups", metavar="FILE",
                        help="the accounts' groups, in /etc/group's format (NAME:x:GID:USER,USER)")
    parser.add_argument("--allow-group", action="append", default=[], metavar="NAME",
                        help="only members of this group get through, others get 403 (repeatable)")
    add_ntlm_auth_argument(parser)
    parser.add_argument("--basic", action="store_true", help="also offer Basic (checked via NTLMv2)")
    parser.add_argument("--auth-timeout", type=seconds, default=3600.0, metavar="SECONDS",
                        help="how long a connection stays authenticated (default 3600)")
    parser.add_argument("--idle-timeout", type=seconds, default=60.0, metavar="SECONDS",
                        help="close a connection silent this long (default 60)")
    # Its own dest: `smb2auth -v` (a count, before the command) must survive the subparser's defaults.
    parser.add_argument("-v", "--verbose", dest="log_requests", action="store_true", help="log every request")
    add_netlogon_arguments(parser)


def http_authority(args: argparse.Namespace) -> AnyAuthority:
    """The started Netlogon authority of --netlogon, or the local accounts of --users / --user."""
    netlogon = build_netlogon(args)
    if netlogon is not None:
        return with_groups(args, netlogon)
    authority = build_authority(args, args.groups)
    if not len(authority):
        raise ValueError("no accounts: give --users FILE or --user NAME:PASSWORD")
    return with_groups(args, authority)


def build_http_config(
    args: argparse.Namespace, role: Role, authority: AnyAuthority | None = None
) -> HttpAuthConfig:
    from smb2auth.http.mechanisms import ntlm_http_config
    from smb2auth.ntlm.server import TargetInfo

    if authority is None:
        authority = http_authority(args)
    return ntlm_http_config(
        authority,
        role=role,
        target=build_target(args, TargetInfo()),
        policy=ntlm_policy(args),
        basic=args.basic,
        allowed_groups=tuple(args.allow_group),
        auth_timeout=args.auth_timeout,
        close_after_first_challenge=bool(getattr(args, "close_after_first_challenge", False)),
    )


def http_logging(args: argparse.Namespace) -> None:
    """INFO by default; DEBUG (every request) with the command's -v or `smb2auth -v`."""
    level = logging.DEBUG if args.log_requests or getattr(args, "verbose", 0) else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger().setLevel(level)  # commands.main has already configured the root logger
