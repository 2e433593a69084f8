"""`smb2auth proxy`: a forward proxy demanding 407 NTLM authentication; plain HTTP and CONNECT tunnels."""

from __future__ import annotations

import argparse
import contextlib
import sys

from smb2auth.commands._args import warn_if_exposed
from smb2auth.commands._http import add_http_arguments, build_http_config, http_logging

PORT = 3128


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "proxy",
        help="a forward proxy demanding 407 NTLM authentication (CONNECT too)",
        description=(
            "A forward proxy on loopback by default that demands NTLM/Negotiate proxy authentication (407,"
            " Proxy-Authenticate), then forwards plain HTTP requests and tunnels CONNECT."
        ),
    )
    add_http_arguments(p, PORT)
    p.add_argument("--close-after-first-challenge", action="store_true",
                   help="close the connection after the first 407, as ISA/TMG do")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from smb2auth.http.auth import Role
    from smb2auth.http.proxy import NtlmProxy, serve_proxy

    http_logging(args)
    host, port = args.listen
    proxy = NtlmProxy(build_http_config(args, Role.PROXY), idle_timeout=args.idle_timeout)
    warn_if_exposed("proxy", [args.listen])

    def started(h: str, p: int) -> None:
        print(f"proxy: listening on {h}:{p}", file=sys.stderr, flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_proxy(proxy, host, port, started=started))
    return 0
