"""`smb2auth serve`: the SMB2 harness on the command line. Heavy imports happen inside the handler."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from smb2auth.cli import add_account_arguments, build_authority, parse_listen, positive_seconds

DEFAULT_USER = "smb2auth"
DEFAULT_PORT = 4445


def _listen(text: str) -> tuple[str, int]:
    return parse_listen(text, DEFAULT_PORT)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        help="run the SMB2 authentication harness",
        description="Serve SMB2 NEGOTIATE/SESSION_SETUP/TREE_CONNECT on loopback; each login is logged.",
    )
    p.add_argument("--listen", action="append", type=_listen, metavar="HOST:PORT",
                   help="address to listen on (repeatable; default 127.0.0.1:4445; [::1]:PORT for IPv6)")
    add_account_arguments(
        p, users_help="an account (repeatable); without --user/--users one random account is made"
    )
    p.add_argument("--allow-guest", action="store_true", help="unknown users log in as guest")
    p.add_argument("--allow-anonymous", action="store_true", help="accept anonymous (null) sessions")
    p.add_argument("--min-dialect", default="SMB2_02", help="lowest dialect (SMB2_02 .. SMB3_11)")
    p.add_argument("--max-dialect", default="SMB3_11", help="highest dialect (SMB2_02 .. SMB3_11)")
    p.add_argument("--share", action="append", default=[], metavar="NAME", help="a disk share name")
    p.add_argument("--signing", choices=("required", "enabled"), default="required",
                   help="server signing (default required)")
    p.add_argument("--encrypt", action="store_true",
                   help='require SMB3 encryption of every session (Samba "smb encrypt = required")')
    p.add_argument("--max-connections", type=int, default=1024, help="connections open at once")
    p.add_argument("--max-pending-handshakes", type=int, default=1024,
                   help="unfinished SESSION_SETUP exchanges across the server")
    p.add_argument("--handshake-timeout", type=positive_seconds, default=30.0,
                   help="seconds to finish a SESSION_SETUP")
    p.add_argument("--idle-timeout", type=positive_seconds, default=900.0, help="seconds without a request")
    p.set_defaults(handler=_cmd_serve)


def _cmd_serve(args: argparse.Namespace) -> int:
    import asyncio
    import secrets
    import signal

    from smb2auth.ntlm.server import TargetInfo
    from smb2auth.server.aio import Smb2Server, format_address
    from smb2auth.server.config import ServerConfig
    from smb2auth.smb2.negotiate import parse_dialect

    try:
        min_dialect, max_dialect = parse_dialect(args.min_dialect), parse_dialect(args.max_dialect)
    except ValueError as exc:
        print(f"smb2auth serve: {exc}", file=sys.stderr)
        return 2
    authority = build_authority(args)
    try:
        config = ServerConfig(
            authority=authority,
            target=TargetInfo(nb_domain=args.domain.upper(), nb_computer=args.computer.upper()),
            shares=tuple(args.share),
            allow_guest=args.allow_guest,
            allow_anonymous=args.allow_anonymous,
            signing_required=args.signing == "required",
            encrypt=args.encrypt,
            min_dialect=min_dialect,
            max_dialect=max_dialect,
            max_connections=args.max_connections,
            max_pending_handshakes=args.max_pending_handshakes,
            handshake_timeout=args.handshake_timeout,
            idle_timeout=args.idle_timeout,
        )
    except ValueError as exc:
        print(f"smb2auth serve: {exc}", file=sys.stderr)
        return 2
    login_log = logging.getLogger("smb2auth.login")  # each login is logged, once the server is sure to run
    if login_log.getEffectiveLevel() > logging.INFO:
        login_log.setLevel(logging.INFO)
    if len(authority) == 0:
        password = secrets.token_urlsafe(16)
        authority.add_user(DEFAULT_USER, password)  # the config holds this same authority
        # The one secret this program prints: it was made for the operator, now, once the config is valid.
        print(f"user {DEFAULT_USER} password {password}", flush=True)
    listen: list[tuple[str, int]] = args.listen or [("127.0.0.1", DEFAULT_PORT)]

    async def serve() -> None:
        server = Smb2Server(config)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            for host, port in listen:
                bound: Any = await server.start(host, port)
                print(f"listening on {format_address(bound)}", flush=True)
            await stop.wait()
        finally:
            await server.close()

    asyncio.run(serve())
    return 0
