"""`smb2auth` command line: serve, connect, decode, useradd, http-serve, proxy.

Each subcommand imports its layer lazily so `smb2auth decode` does not pay for asyncio servers.
Errors are one line on stderr and a non-zero exit, never a traceback: 2 for bad input (usage, a malformed
file, a value out of range), 1 for what went wrong at run time (a peer, the network, a missing file).
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from smb2auth import __version__
from smb2auth.errors import Smb2AuthError

if TYPE_CHECKING:
    from smb2auth.authority.local import LocalAuthority

PASSWORD_ENV = "SMB2AUTH_PASSWORD"

Handler = Callable[[argparse.Namespace], int]


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


def parse_user(text: str) -> tuple[str, str]:
    """--user NAME:PASSWORD."""
    name, sep, password = text.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError("--user takes NAME:PASSWORD")
    return name, password


def add_account_arguments(parser: argparse.ArgumentParser, *, users_help: str) -> None:
    """--users FILE, --user NAME:PASSWORD, --domain, --computer: the accounts a server accepts."""
    parser.add_argument("--users", metavar="FILE", help="Samba smbpasswd file with the accounts")
    parser.add_argument("--user", action="append", type=parse_user, default=[], metavar="NAME:PASSWORD",
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


def _cmd_useradd(args: argparse.Namespace) -> int:
    from smb2auth.authority.smbpasswd import check_user_name, write_smbpasswd_entry

    check_user_name(args.name)  # before asking for a password
    password = read_secret(f"New SMB password for {args.name}: ", from_stdin=args.stdin)
    if not args.stdin and PASSWORD_ENV not in os.environ and sys.stdin.isatty():
        again = getpass.getpass("Retype new SMB password: ")
        if again != password:
            print("smb2auth: passwords do not match", file=sys.stderr)
            return 1
    write_smbpasswd_entry(args.file, args.name, password)
    print(f"added user {args.name} to {args.file}")
    return 0


def _add_useradd(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "useradd",
        help="add or replace a user in a Samba smbpasswd file",
        description=f"Password from stdin (--stdin), ${PASSWORD_ENV}, or a prompt; never from argv.",
    )
    p.add_argument("file", help="smbpasswd file (created with mode 0600 if missing)")
    p.add_argument("name", help="user name")
    p.add_argument("--stdin", action="store_true", help="read the password from the first line of stdin")
    p.set_defaults(handler=_cmd_useradd)


def _add_http(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from smb2auth.http import commands

    serve = sub.add_parser("http-serve", help="a 401 NTLM/Negotiate-protected page that says who logged in")
    commands.add_http_serve_arguments(serve)
    serve.set_defaults(handler=commands.run_http_serve)
    proxy = sub.add_parser("proxy", help="a forward proxy demanding 407 NTLM authentication (CONNECT too)")
    commands.add_proxy_arguments(proxy)
    proxy.set_defaults(handler=commands.run_proxy)


Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

# Each layer registers its own subcommand from a light module ("module:function"); the module imports
# its heavy parts inside the handler. Add a line here when a layer grows a command.
REGISTRARS: list[str] = [
    "smb2auth.cli:_add_useradd",
    "smb2auth.server.cli:register",
    "smb2auth.cli:_add_http",
    "smb2auth.commands.decode:register",
    "smb2auth.client.cli:register",
]


def _load(spec: str) -> Registrar:
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    registrar: Registrar = getattr(module, attr)
    return registrar


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smb2auth", description="SMB2 session authentication tools")
    parser.add_argument("--version", action="version", version=f"smb2auth {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for spec in REGISTRARS:
        _load(spec)(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except ValueError as exc:  # bad input: a malformed file, a name or value a command cannot take
        print(f"smb2auth {args.command}: {exc}", file=sys.stderr)
        return 2
    except (Smb2AuthError, OSError) as exc:
        print(f"smb2auth {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
