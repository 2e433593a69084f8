"""`smb2auth serve`: the SMB2 harness on the command line, its switches named after smb.conf's."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from smb2auth.commands._args import (
    DIALECT_SPELLINGS,
    LOOPBACK,
    add_account_arguments,
    add_ntlm_auth_argument,
    build_authority,
    build_target,
    ntlm_policy,
    parse_listen,
    positive_seconds,
    warn_if_exposed,
    worker_count,
)
from smb2auth.commands._netlogon import add_netlogon_arguments, build_netlogon, with_groups

if TYPE_CHECKING:
    from collections.abc import Callable

    from smb2auth.authority import AnyAuthority
    from smb2auth.server.config import ServerConfig

DEFAULT_USER = "smb2auth"
DEFAULT_PORT = 4445

def _listen(text: str) -> tuple[str, int]:
    return parse_listen(text, DEFAULT_PORT)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        help="run the SMB2 authentication harness",
        description=(
            "Serve SMB2 NEGOTIATE/SESSION_SETUP/TREE_CONNECT (on loopback unless --listen says otherwise;"
            " another address gets a warning); each login is logged on stderr. Without --user/--users one"
            " account is made and its password printed once the server listens."
        ),
    )
    p.add_argument("--listen", action="append", type=_listen, metavar="HOST:PORT",
                   help=f"address to listen on: HOST:PORT, [V6]:PORT, HOST or PORT (repeatable; default"
                   f" {LOOPBACK}:{DEFAULT_PORT})")
    add_account_arguments(
        p, users_help="an account (repeatable); without --user/--users one random account is made"
    )
    p.add_argument("--allow-guest", action="store_true", help="unknown users log in as guest")
    p.add_argument("--allow-anonymous", action="store_true", help="accept anonymous (null) sessions")
    add_ntlm_auth_argument(p)
    p.add_argument("--require-128bit", action="store_true",
                   help="refuse NTLM clients that do not negotiate 128-bit keys (NTLMSSP_NEGOTIATE_128)")
    p.add_argument("--min-dialect", default="SMB2_02", metavar="DIALECT",
                   help=f"lowest dialect: {DIALECT_SPELLINGS} (default SMB2_02)")
    p.add_argument("--max-dialect", default="SMB3_11", metavar="DIALECT",
                   help="highest dialect, spelt as --min-dialect (default SMB3_11)")
    p.add_argument("--share", action="append", default=[], metavar="NAME", help="a disk share name")
    p.add_argument("--signing", choices=("required", "enabled"), default="required",
                   help="server signing (default required)")
    p.add_argument("--encrypt", action="store_true",
                   help='require SMB3 encryption of every session (Samba "smb encrypt = required")')
    p.add_argument("--max-connections", type=int, default=1024, metavar="N",
                   help="connections open at once (default 1024)")
    p.add_argument("--max-pending-handshakes", type=int, default=1024, metavar="N",
                   help="unfinished SESSION_SETUP exchanges across the server (default 1024)")
    p.add_argument("--handshake-timeout", type=positive_seconds, default=30.0, metavar="SECONDS",
                   help="seconds to finish a SESSION_SETUP (default 30)")
    p.add_argument("--idle-timeout", type=positive_seconds, default=900.0, metavar="SECONDS",
                   help="seconds without a request (default 900)")
    p.add_argument("--hostile", metavar="SCENARIO", type=_scenario,
                   help="misbehave on purpose, once per connection, and log whether the client refused"
                   " (smb2auth conformance --client --list lists the scenarios; --client runs them all)")
    p.add_argument("--hostile-wait", type=positive_seconds, default=3.0, metavar="SECONDS",
                   help="with --hostile: a client silent this long after the hostile step refused it"
                   " (default 3)")
    p.add_argument("--workers", type=worker_count, default="auto", metavar="N",
                   help="processes serving, each with its own limits and sessions (default auto: one per"
                   " core this process may run on; 1: no worker processes)")
    add_netlogon_arguments(p)
    p.set_defaults(handler=run)


def _scenario(text: str) -> str:
    """--hostile SCENARIO: one of server/hostile.py's, loaded only when the option is given (building the
    parser stays light)."""
    from smb2auth.server.hostile import SCENARIO_NAMES

    if text not in SCENARIO_NAMES:
        raise argparse.ArgumentTypeError(f"{text!r} is not a scenario: {', '.join(SCENARIO_NAMES)}")
    return text


def server_config(args: argparse.Namespace, authority: AnyAuthority) -> ServerConfig:
    """The ServerConfig the options describe around `authority`; ValueError for options that do not fit."""
    from dataclasses import replace

    from smb2auth.server.config import ServerConfig
    from smb2auth.smb2.negotiate import parse_dialect

    config = ServerConfig(
        authority=authority,
        policy=ntlm_policy(args, require_128bit=args.require_128bit),
        shares=tuple(args.share),
        allow_guest=args.allow_guest,
        allow_anonymous=args.allow_anonymous,
        signing_required=args.signing == "required",
        encrypt=args.encrypt,
        min_dialect=parse_dialect(args.min_dialect),
        max_dialect=parse_dialect(args.max_dialect),
        max_connections=args.max_connections,
        max_pending_handshakes=args.max_pending_handshakes,
        handshake_timeout=args.handshake_timeout,
        idle_timeout=args.idle_timeout,
        hostile=args.hostile,
        hostile_wait=args.hostile_wait,
    )
    # The library's default names, with what --domain, --computer and --dns-domain say instead.
    return replace(config, target=build_target(args, config.target))


def run(args: argparse.Namespace) -> int:
    import secrets

    from smb2auth.authority.local import LocalAuthority

    netlogon = build_netlogon(args)
    authority: AnyAuthority = netlogon if netlogon is not None else build_authority(args)
    config = server_config(args, with_groups(args, authority))
    login_log = logging.getLogger("smb2auth.login")  # each login is logged, once the server is sure to run
    if login_log.getEffectiveLevel() > logging.INFO:
        login_log.setLevel(logging.INFO)
    listen: list[tuple[str, int]] = args.listen or [(LOOPBACK, DEFAULT_PORT)]
    warn_if_exposed("serve", listen)
    password: str | None = None
    if isinstance(authority, LocalAuthority) and len(authority) == 0:
        password = secrets.token_urlsafe(16)
        authority.add_user(DEFAULT_USER, password)  # the config holds this same authority
    if args.workers == 1 or netlogon is not None:
        # A Netlogon secure channel belongs to one process: with --netlogon the server is one process.
        _serve_here(config, listen, password)
        return 0

    def worker_authority() -> AnyAuthority:
        # Each worker reads --users FILE itself: one started after a change serves the file as it is then.
        fresh = build_authority(args)
        if password is not None:
            fresh.add_user(DEFAULT_USER, password)
        return fresh

    _serve_workers(config, args.workers, worker_authority, listen, password)
    return 0


def _announce(password: str | None, bound: list[tuple[str, int]]) -> None:
    from smb2auth.server.aio import format_address

    if password is not None:
        # The one secret this program prints: made for the operator, now that the server listens.
        print(f"user {DEFAULT_USER} password {password}", flush=True)
    for address in bound:
        print(f"listening on {format_address(address)}", flush=True)


def _serve_here(config: ServerConfig, listen: list[tuple[str, int]], password: str | None) -> None:
    """One process: the asyncio server in this one."""
    import asyncio
    import signal

    from smb2auth.server.aio import Smb2Server

    async def serve() -> None:
        server = Smb2Server(config)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            _announce(password, [await server.start(host, port) for host, port in listen])
            await stop.wait()
        finally:
            await server.close()

    asyncio.run(serve())


def _serve_workers(
    config: ServerConfig,
    workers: int,
    authority: Callable[[], AnyAuthority],
    listen: list[tuple[str, int]],
    password: str | None,
) -> None:
    """`workers` processes on one SO_REUSEPORT group per address; this one logs their logins."""

    from smb2auth.server.workers import WorkerPool

    pool = WorkerPool(config, workers, authority=authority)
    pool.run_until_signalled(lambda: [pool.listen(host, port) for host, port in listen],
                             lambda bound: _announce(password, bound))
