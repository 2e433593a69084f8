"""`smb2auth conformance //HOST[:PORT] -U [DOMAIN/]USER[%PASSWORD]`: the SMB2 authentication conformance suite
against any server, a table of verdicts (or JSON, or JUnit XML); `smb2auth conformance --client --
COMMAND...`: the client suite, the command run against the hostile harness once per scenario. The suites load
inside the handler."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from smb2auth.commands._args import PASSWORD_ENV, positive_seconds, read_secret
from smb2auth.commands.connect import DEFAULT_PORT, parse_credentials, parse_target

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from smb2auth.conformance import Result, Target
    from smb2auth.conformance.registry import Case


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "conformance",
        help="run the SMB2 authentication conformance suite against a server",
        description=(
            "Run each case (negotiate, session, NTLM, SPNEGO, signing and encryption) on fresh connections"
            " and print case, spec section, expectation, what was observed and the verdict: PASS, FAIL (the"
            " spec is broken), WARN (allowed, but it weakens security), SKIP (does not apply, and why)."
            " Exit 1 when a case FAILs (or WARNs, with --strict). The password comes from -U USER%PASSWORD,"
            f" --stdin, ${PASSWORD_ENV}, or a prompt."
        ),
    )
    p.add_argument("target", nargs="?", help="//HOST[:PORT] (port 445 by default)")
    # Not dest="command": main's subparsers own that name. After --, the first word lands in target.
    p.add_argument("client_command", nargs="*", metavar="COMMAND",
                   help="with --client, after --: the client command, run once per scenario; {host} {port}"
                   " {user} {password} {domain} {share} are replaced by the harness's")
    p.add_argument("--client", action="store_true",
                   help="the client suite: start the hostile harness (smb2auth serve --hostile) on loopback"
                   " for each scenario and run the command after -- against it")
    p.add_argument("--hostile-wait", type=positive_seconds, default=3.0, metavar="SECONDS",
                   help="with --client: a client silent this long after the hostile step refused it"
                   " (default 3)")
    p.add_argument("-U", "--user", metavar="[DOMAIN/]USER[%PASSWORD]",
                   help="the account the cases log in with, and its password after %%")
    p.add_argument("--stdin", action="store_true", help="read the password from the first line of stdin")
    p.add_argument("-k", dest="patterns", action="append", default=[], metavar="PATTERN",
                   help="run only the cases whose id contains PATTERN (or matches it, with * ? [);"
                   " repeatable")
    p.add_argument("--list", action="store_true", help="list the cases (id, section, expectation) and exit")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    p.add_argument("--junit", metavar="FILE", help="also write the results as JUnit XML to FILE")
    p.add_argument("--strict", action="store_true", help="exit 1 on a WARN as well as on a FAIL")
    p.add_argument("--timeout", type=positive_seconds, default=None, metavar="SECONDS",
                   help="the most one case may take (default 10; 20 for a client scenario)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.client:
        return run_client(args)
    if args.client_command:
        # After --, the command's first word took the target's place.
        words = [args.target] if args.target and not args.target.startswith("//") else []
        words += args.client_command
        raise ValueError(f"unexpected arguments {' '.join(words)!r} (a client command needs --client)")
    from smb2auth.conformance import CASES, DEFAULT_TIMEOUT, Target
    from smb2auth.conformance import run as run_suite

    cases = _selected(CASES, args, "case")
    if args.list:
        return 0
    if args.target is None:
        raise ValueError("give the server as //HOST[:PORT]")
    host, port, share = parse_target(args.target)
    if share:
        raise ValueError(f"target {args.target!r}: the suite takes //HOST[:PORT], no share")
    if args.user is None:
        raise ValueError("give the account with -U [DOMAIN/]USER[%PASSWORD]")
    domain, user, password = parse_credentials(args.user)
    if not user:
        raise ValueError(f"-U {args.user!r}: no user name")
    if password is not None and args.stdin:
        raise ValueError("--stdin: the password is already given after % in -U")
    if password is None:
        password = read_secret(f"Password for [{domain}\\{user}]: " if domain else f"Password for [{user}]: ",
                               from_stdin=args.stdin, also="after % in -U USER%PASSWORD, ")
    target = Target(host, port or DEFAULT_PORT, user, password, domain)
    where = f"[{host}]:{target.port}" if ":" in host else f"{host}:{target.port}"
    _reachable(target)
    results = run_suite(cases, target, timeout=args.timeout or DEFAULT_TIMEOUT, progress=_progress())
    return _report(results, where, args)


def run_client(args: argparse.Namespace) -> int:
    import logging

    from smb2auth.conformance.clients import CLIENT_CASES, DEFAULT_TIMEOUT, run_clients

    _selected(CLIENT_CASES, args, "scenario")
    if args.list:
        return 0
    command = ([args.target] if args.target else []) + list(args.client_command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise ValueError("give the client command after --, e.g. -- smbclient //{host}/{share} -p {port} ...")
    if args.stdin:
        raise ValueError("--stdin: the client suite makes its own account (-U names it)")
    domain, user, password = ("TESTGRP", "smb2auth", None)
    if args.user is not None:
        domain, user, password = parse_credentials(args.user)
        if not user:
            raise ValueError(f"-U {args.user!r}: no user name")
        domain = domain or "TESTGRP"
    # The harness's login events are the verdicts the table reports; one line each on stderr is noise here.
    logging.getLogger("smb2auth.login").setLevel(logging.ERROR)
    results = run_clients(command, args.patterns, user=user, password=password, domain=domain,
                          timeout=args.timeout or DEFAULT_TIMEOUT, wait=args.hostile_wait,
                          progress=_progress())
    return _report(results, " ".join(command), args)


def _selected(cases: Sequence[Case], args: argparse.Namespace, noun: str) -> list[Case]:
    """The cases -k picks (ValueError when it picks none); with --list, their listing is printed."""
    from smb2auth.conformance.registry import select
    from smb2auth.conformance.report import listing

    picked = select(cases, args.patterns)
    if args.patterns and not picked:
        raise ValueError(f"-k {' -k '.join(args.patterns)}: no {noun} matches")
    if args.list:
        sys.stdout.write(listing(picked))
    return picked


def _progress() -> Callable[[int, int, Result], None] | None:
    """A progress line per case on stderr, when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None
    from smb2auth.conformance.report import progress_line

    def progress(i: int, n: int, result: Result) -> None:
        print(progress_line(i, n, result), file=sys.stderr, flush=True)

    return progress


def _report(results: list[Result], where: str, args: argparse.Namespace) -> int:
    """The table or JSON on stdout, JUnit XML to --junit; exit 1 on a FAIL (or a WARN with --strict)."""
    from smb2auth.conformance.report import as_json, as_junit, as_table, failing

    sys.stdout.write(as_json(results, where) + "\n" if args.json else as_table(results))
    if args.junit:
        Path(args.junit).write_text(as_junit(results, where, strict=args.strict))
    return 1 if failing(results, strict=args.strict) else 0


def _reachable(target: Target) -> None:
    """OSError (exit 1, one line) when nothing listens at the target."""
    with socket.create_connection((target.host, target.port), timeout=10):
        pass
