"""`smb2auth`: builds the parser from each command's `register(sub)` and runs the chosen handler.

Building the parser imports only argparse-level modules; each handler imports its layer when it runs, so
`smb2auth decode` does not pay for asyncio servers. Errors are one line on stderr and a non-zero exit,
never a traceback: 2 for bad input (usage, a bad combination of options, a malformed or missing file named
on the command line, a value out of range), 1 for what went wrong at run time (a peer, the network).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from smb2auth import __version__
from smb2auth.errors import Smb2AuthError

Handler = Callable[[argparse.Namespace], int]
Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

# One "module:function" per command, in the order `smb2auth --help` lists them.
REGISTRARS: list[str] = [
    "smb2auth.commands.useradd:register",
    "smb2auth.commands.serve:register",
    "smb2auth.commands.http_serve:register",
    "smb2auth.commands.proxy:register",
    "smb2auth.commands.decode:register",
    "smb2auth.commands.connect:register",
    "smb2auth.commands.conformance:register",
]


def _load(spec: str) -> Registrar:
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    registrar: Registrar = getattr(module, attr)
    return registrar


class _Version(argparse.Action):
    """argparse's "version" action, but the build (smb2auth/_compiled.py imports the cores to tell) is looked
    up only when asked for."""

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        from smb2auth._compiled import build

        print(f"smb2auth {__version__} ({build()})")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smb2auth", description="SMB2 session authentication tools")
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and build, and exit")
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
