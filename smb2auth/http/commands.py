"""Entry points behind `smb2auth http-serve` and `smb2auth proxy`.

Each command has `add_*_arguments(parser)` (for a subparser), `run_*(args) -> int`, and a standalone
`main_*(argv) -> int`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable, Sequence

from smb2auth.authority.local import LocalAuthority
from smb2auth.cli import add_account_arguments, build_authority, parse_listen, positive_seconds
from smb2auth.http.auth import HttpAuthConfig, Role
from smb2auth.http.mechanisms import ntlm_http_config
from smb2auth.http.proxy import NtlmProxy, serve_proxy
from smb2auth.http.wsgi import KeepAliveWSGIServer, NtlmAuthMiddleware, whoami_app
from smb2auth.ntlm import TargetInfo

HTTP_SERVE_PORT = 8080
PROXY_PORT = 3128


def _http_serve_listen(text: str) -> tuple[str, int]:
    return parse_listen(text, HTTP_SERVE_PORT)


def _proxy_listen(text: str) -> tuple[str, int]:
    return parse_listen(text, PROXY_PORT)


def _common(parser: argparse.ArgumentParser, listen: Callable[[str], tuple[str, int]], port: int) -> None:
    parser.add_argument("--listen", type=listen, default=("127.0.0.1", port), metavar="HOST:PORT",
                        help=f"address to listen on (default 127.0.0.1:{port})")
    add_account_arguments(parser, users_help="an account (repeatable); the password is visible in ps")
    parser.add_argument("--basic", action="store_true", help="also offer Basic (checked via NTLMv2)")
    parser.add_argument("--auth-timeout", type=positive_seconds, default=3600.0, metavar="SECONDS",
                        help="how long a connection stays authenticated (default 3600)")
    parser.add_argument("--idle-timeout", type=positive_seconds, default=60.0, metavar="SECONDS",
                        help="close a connection silent this long (default 60)")
    # Its own dest: `smb2auth -v` (a count, before the command) must survive the subparser's defaults.
    parser.add_argument("-v", "--verbose", dest="log_requests", action="store_true", help="log every request")


def add_http_serve_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser, _http_serve_listen, HTTP_SERVE_PORT)
    parser.add_argument("--max-connections", type=_at_least_one, default=256, metavar="N",
                        help="connections open at once; more are answered 503 (default 256)")


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def add_proxy_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser, _proxy_listen, PROXY_PORT)
    parser.add_argument("--close-after-first-challenge", action="store_true",
                        help="close the connection after the first 407, as ISA/TMG do")


def _accounts(args: argparse.Namespace) -> LocalAuthority:
    authority = build_authority(args)
    if not len(authority):
        raise SystemExit("no accounts: give --users FILE or --user NAME:PASSWORD")
    return authority


def build_config(args: argparse.Namespace, role: Role) -> HttpAuthConfig:
    return ntlm_http_config(
        _accounts(args),
        role=role,
        target=TargetInfo(nb_domain=args.domain.upper(), nb_computer=args.computer.upper()),
        basic=args.basic,
        auth_timeout=args.auth_timeout,
        close_after_first_challenge=bool(getattr(args, "close_after_first_challenge", False)),
    )


def _logging(args: argparse.Namespace) -> None:
    """INFO by default; DEBUG (every request) with the command's -v or `smb2auth -v`."""
    level = logging.DEBUG if args.log_requests or getattr(args, "verbose", 0) else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger().setLevel(level)  # smb2auth.cli.main has already configured the root logger


def run_http_serve(args: argparse.Namespace) -> int:
    """Serve the who-am-I endpoint behind NTLM/Negotiate until interrupted."""
    _logging(args)
    host, port = args.listen
    config = build_config(args, Role.ORIGIN)
    app = NtlmAuthMiddleware(whoami_app, config)
    with KeepAliveWSGIServer(
        (host, port), app, idle_timeout=args.idle_timeout, max_connections=args.max_connections
    ) as server:
        print(f"http-serve: listening on http://{host}:{server.server_address[1]}/", file=sys.stderr,
              flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    return 0


def run_proxy(args: argparse.Namespace) -> int:
    """Run the 407-protected forward proxy until interrupted."""
    _logging(args)
    host, port = args.listen
    proxy = NtlmProxy(build_config(args, Role.PROXY), idle_timeout=args.idle_timeout)

    def started(h: str, p: int) -> None:
        print(f"proxy: listening on {h}:{p}", file=sys.stderr, flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_proxy(proxy, host, port, started=started))
    return 0


def main_http_serve(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smb2auth http-serve", description=run_http_serve.__doc__)
    add_http_serve_arguments(parser)
    return run_http_serve(parser.parse_args(argv))


def main_proxy(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smb2auth proxy", description=run_proxy.__doc__)
    add_proxy_arguments(parser)
    return run_proxy(parser.parse_args(argv))
