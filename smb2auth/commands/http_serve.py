"""`smb2auth http-serve`: a 401 NTLM/Negotiate-protected page that answers who logged in."""

from __future__ import annotations

import argparse
import contextlib
import sys

from smb2auth.commands._args import at_least_one, warn_if_exposed
from smb2auth.commands._http import add_http_arguments, build_http_config, http_authority, http_logging

PORT = 8080


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "http-serve",
        help="a 401 NTLM/Negotiate-protected page that says who logged in",
        description=(
            "Serve one page behind HTTP NTLM/Negotiate authentication (401, WWW-Authenticate) on loopback by"
            " default; it answers with the account that logged in, as JSON."
        ),
    )
    add_http_arguments(p, PORT)
    p.add_argument("--max-connections", type=at_least_one, default=256, metavar="N",
                   help="connections open at once; more are answered 503 (default 256)")
    p.add_argument("--winrm-echo", action="store_true",
                   help="answer WinRM-encrypted messages (MS-WSMV 2.2.9.1) back sealed, refusing plaintext,"
                   " instead of saying who logged in")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from smb2auth.authority import AnyAuthority
    from smb2auth.http.auth import Role
    from smb2auth.http.winrm import winrm_echo_app
    from smb2auth.http.wsgi import KeepAliveWSGIServer, NtlmAuthMiddleware, whoami_app

    http_logging(args)
    host, port = args.listen

    # a Netlogon authority (an AsyncAuthority) runs on the middleware's one private event loop, shared by
    # every request thread
    authority: AnyAuthority = http_authority(args)
    app = NtlmAuthMiddleware(winrm_echo_app if args.winrm_echo else whoami_app,
                             build_http_config(args, Role.ORIGIN, authority))
    warn_if_exposed("http-serve", [args.listen])
    with KeepAliveWSGIServer(
        (host, port), app, idle_timeout=args.idle_timeout, max_connections=args.max_connections
    ) as server:
        print(f"http-serve: listening on http://{host}:{server.server_address[1]}/", file=sys.stderr,
              flush=True)
        try:
            with contextlib.suppress(KeyboardInterrupt):
                server.serve_forever()
        finally:
            app.close()
    return 0
