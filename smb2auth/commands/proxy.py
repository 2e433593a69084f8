"""`smb2auth proxy`: a forward proxy demanding 407 NTLM authentication; plain HTTP and CONNECT tunnels.

With `--workers N` (default: the cores this process may run on) N forked processes serve one SO_REUSEPORT
group, as `serve --workers` does (smb2auth.server.workers): each client connection lives in the one worker
that accepted it, with its authentication, its upstream pool and its pinned upstream, so pinning holds per
client connection as with one process. Each worker's login events and log records reach this process,
which logs them. With --netlogon the proxy is one process (a secure channel belongs to one).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import TYPE_CHECKING

from smb2auth.commands._args import warn_if_exposed, worker_count
from smb2auth.commands._http import add_http_arguments, build_http_config, http_logging

if TYPE_CHECKING:
    import socket

    from smb2auth.events import EventLog
    from smb2auth.http.proxy import NtlmProxy
    from smb2auth.server.workers import Closer

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
    p.add_argument("--identity-header", metavar="NAME",
                   help="pass DOMAIN\\user to the origin in this request header (as WSA's"
                   " X-Authenticated-User); a client's own copy is dropped")
    p.add_argument("--share-idle-upstreams", action=argparse.BooleanOptionalAction, default=True,
                   help="a closed client connection's idle upstream connections (never one that was pinned)"
                   " serve the next client connection to the same origin, as Squid reuses them (default: on)")
    p.add_argument("--workers", type=worker_count, default="auto", metavar="N",
                   help="processes serving, each client connection (and its pinned upstream) in one of"
                   " them (default auto: one per core this process may run on; 1: no worker processes)")
    p.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto",
                   help="the event loop: uvloop (pip install 'smb2auth[fast]'), asyncio's own, or auto:"
                   " uvloop when it is installed (default)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    previous = asyncio.get_event_loop_policy()
    try:
        return _run(args)
    finally:
        # the loop choice is this command's: a caller in the same process (a test, an embedding program)
        # gets its own event loop policy back
        asyncio.set_event_loop_policy(previous)


def _run(args: argparse.Namespace) -> int:
    from smb2auth.http.auth import Role
    from smb2auth.http.proxy import NtlmProxy

    http_logging(args)
    loop = _use_loop(args.loop)
    proxy = NtlmProxy(build_http_config(args, Role.PROXY), idle_timeout=args.idle_timeout,
                      identity_header=args.identity_header, share_idle_upstreams=args.share_idle_upstreams)
    warn_if_exposed("proxy", [args.listen])
    workers = 1 if args.netlogon else args.workers
    print(f"proxy: {workers} process{'es' if workers > 1 else ''} on the {loop} event loop", file=sys.stderr,
          flush=True)
    if workers == 1:
        _serve_here(proxy, args.listen)
    else:
        _serve_workers(proxy, workers, args.listen)
    return 0


def _use_loop(choice: str) -> str:
    """Make `choice` the event loop asyncio.run starts (here, and in every worker forked after this)."""
    if choice == "asyncio":
        return choice
    import asyncio
    import importlib

    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        if choice == "uvloop":
            missing = "--loop uvloop: uvloop is not installed (pip install 'smb2auth[fast]')"
            raise ValueError(missing) from None
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def _started(host: str, port: int) -> None:
    print(f"proxy: listening on {host}:{port}", file=sys.stderr, flush=True)


def _serve_here(proxy: NtlmProxy, listen: tuple[str, int]) -> None:
    import asyncio

    from smb2auth.http.proxy import serve_proxy

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_proxy(proxy, *listen, started=_started))


def _serve_workers(proxy: NtlmProxy, workers: int, listen: tuple[str, int]) -> None:
    import asyncio
    import dataclasses

    from smb2auth.http.wire import MAX_HEAD
    from smb2auth.server.workers import ProcessPool

    class ProxyWorkers(ProcessPool):
        async def serve_worker(self, sockets: list[socket.socket], events: EventLog) -> Closer:
            # forked: this worker's copy of the proxy, its logins sent to the parent
            proxy.config = dataclasses.replace(proxy.config, on_login=events)
            servers = [await asyncio.start_server(proxy.handle, sock=sock, limit=MAX_HEAD)
                       for sock in sockets]

            async def close() -> None:
                for server in servers:
                    server.close()
                await proxy.close_connections()
                for server in servers:
                    await server.wait_closed()

            return close

    pool = ProxyWorkers(workers)
    pool.run_until_signalled(lambda: pool.listen(*listen), lambda bound: _started(*bound))
