"""`smb2auth connect //HOST[:PORT][/SHARE] -U [DOMAIN/]USER[%PASSWORD]` (or `-N`): NEGOTIATE, SESSION_SETUP,
TREE_CONNECT, LOGOFF, and a summary. The client loads inside the handler."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from smb2auth.commands._args import DIALECT_SPELLINGS, PASSWORD_ENV, positive_seconds, read_secret, tcp_port
from smb2auth.status import NtStatus

DEFAULT_PORT = 445


def parse_target(text: str) -> tuple[str, int | None, str]:
    """//HOST[:PORT][/SHARE] or \\\\HOST\\SHARE -> (host, port or None, share or "")."""
    t = text.replace("\\", "/")
    if not t.startswith("//"):
        raise ValueError(f"target {text!r} is not //HOST[:PORT][/SHARE]")
    hostport, _, share = t[2:].partition("/")
    share = share.strip("/")
    if "/" in share:
        raise ValueError(f"target {text!r}: a share name, not a path")
    port: int | None = None
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ValueError(f"target {text!r}: unclosed [")
        host, rest = hostport[1:end], hostport[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"target {text!r}: junk after ]")
            port = _port(text, rest[1:])
    elif hostport.count(":") == 1:
        host, _, p = hostport.partition(":")
        port = _port(text, p)
    else:
        host = hostport
    if not host:
        raise ValueError(f"target {text!r} has no host")
    return host, port, share


def _port(target: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"target {target!r}: bad port {text!r} (1..65535)")
    return int(text)


def parse_credentials(text: str) -> tuple[str, str, str | None]:
    """[DOMAIN/]USER[%PASSWORD] (or DOMAIN\\USER) -> (domain, user, password or None)."""
    user, sep, password = text.partition("%")
    domain = ""
    for slash in ("\\", "/"):
        if slash in user:
            domain, _, user = user.partition(slash)
            break
    return domain, user, password if sep else None


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "connect",
        help="SMB2 session setup against a server (NEGOTIATE, SESSION_SETUP, TREE_CONNECT, LOGOFF)",
        description=(
            "Authenticate to an SMB2/3 server with NTLM and report what was negotiated. The password comes"
            f" from -U USER%PASSWORD, --stdin, ${PASSWORD_ENV}, or a prompt; -N (or -U %) logs on"
            " anonymously."
        ),
    )
    p.add_argument("target", help="//HOST[:PORT][/SHARE] (IPC$ when no share is given)")
    p.add_argument("-U", "--user", metavar="[DOMAIN/]USER[%PASSWORD]",
                   help="the account, and its password after %%; -U %% alone is -N")
    p.add_argument("-N", "--anonymous", action="store_true",
                   help="anonymous logon (empty user and password, MS-NLMP 3.1.5.1.2); such a session"
                   " cannot sign, so signing is not required")
    p.add_argument("--stdin", action="store_true", help="read the password from the first line of stdin")
    p.add_argument("-p", "--port", type=tcp_port, metavar="PORT",
                   help=f"TCP port (default {DEFAULT_PORT}); refused if //HOST:PORT names another")
    p.add_argument("-m", "--max-protocol", default="3.1.1", metavar="DIALECT",
                   help=f"highest dialect offered: {DIALECT_SPELLINGS} (default 3.1.1)")
    p.add_argument("--min-protocol", default="2.0.2", metavar="DIALECT",
                   help="lowest dialect offered, spelt as -m (default 2.0.2)")
    p.add_argument("-e", "--encrypt", action="store_true", help="require encryption (SMB 3.x)")
    p.add_argument("--no-signing", action="store_true", help="do not require signing (server may still)")
    p.add_argument(
        "--no-validate-negotiate",
        action="store_true",
        help="skip FSCTL_VALIDATE_NEGOTIATE_INFO after the tree connect (SMB 3.0/3.0.2)",
    )
    p.add_argument("--pw-nt-hash", action="store_true", help="the password is the NT hash in hex")
    p.add_argument("--timeout", type=positive_seconds, default=30.0, help="seconds to wait for each answer")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run)


def _credentials(args: argparse.Namespace) -> tuple[str, str, str | None, bytes | None, bool]:
    """(domain, user, password, NT hash, anonymous) from -U, -N, --stdin and --pw-nt-hash."""
    domain, user, password = parse_credentials(args.user) if args.user is not None else ("", "", None)
    anonymous = args.anonymous or (args.user is not None and not user and not password and not domain)
    if anonymous:
        if user or password or domain or args.stdin or args.pw_nt_hash:
            raise ValueError("-N is an anonymous logon: no user, password, --stdin or --pw-nt-hash with it")
        if args.encrypt:
            # MS-SMB2 3.3.5.5.3: an anonymous session has no key, so it can neither sign nor encrypt.
            raise ValueError("-e: an anonymous session cannot encrypt")
        return "", "", None, None, True
    if args.user is None:
        raise ValueError("give the account with -U [DOMAIN/]USER[%PASSWORD], or -N for an anonymous logon")
    if not user:
        raise ValueError(f"-U {args.user!r}: no user name (-U % alone is an anonymous logon)")
    if password is not None and args.stdin:
        raise ValueError("--stdin: the password is already given after % in -U")
    if password is None:
        name = f"{domain}\\{user}" if domain else user
        password = read_secret(f"Password for [{name}]: ", from_stdin=args.stdin,
                               also="after % in -U USER%PASSWORD, ")
    if not args.pw_nt_hash:
        return domain, user, password, None, False
    try:
        nt_hash = bytes.fromhex(password)
    except ValueError:
        nt_hash = b""
    if len(nt_hash) != 16:
        raise ValueError("--pw-nt-hash needs 32 hex digits")
    return domain, user, None, nt_hash, False


def run(args: argparse.Namespace) -> int:
    from smb2auth.authority import ResponseKind
    from smb2auth.client import ALL_DIALECTS, Dialect, connect, parse_dialect
    from smb2auth.errors import Smb2AuthError

    host, target_port, share = parse_target(args.target)
    if target_port is not None and args.port is not None and target_port != args.port:
        raise ValueError(f"the port in {args.target} and -p {args.port} disagree: give one")
    port = target_port or args.port or DEFAULT_PORT
    top, low = parse_dialect(args.max_protocol), parse_dialect(args.min_protocol)
    dialects = tuple(d for d in ALL_DIALECTS if low <= d <= top)
    if not dialects:
        raise ValueError("no dialect between the minimum and the maximum")
    if args.encrypt and top < Dialect.SMB3_0:
        # MS-SMB2 3.1.4.3: encryption is SMB 3.x only.
        raise ValueError(f"-e needs SMB 3.0 or above; -m {args.max_protocol} offers none")
    domain, user, password, nt_hash, anonymous = _credentials(args)
    share = share or "IPC$"
    summary: dict[str, Any] = {"server": host, "port": port, "user": user, "domain": domain}
    try:
        session = connect(
            host,
            port,
            username=user,
            password=password,
            nt_hash=nt_hash,
            domain=domain,
            dialects=dialects,
            require_signing=not (args.no_signing or anonymous),
            require_encryption=args.encrypt,
            validate_negotiate=not args.no_validate_negotiate,
            ntlm_version=ResponseKind.ANONYMOUS if anonymous else ResponseKind.NTLMV2,
            timeout=args.timeout,
        )
        with session:
            tree = session.tree_connect(share)
            summary.update(
                status="STATUS_SUCCESS",
                dialect=session.dialect_name,
                dialect_revision=f"0x{int(session.dialect):04x}",
                session_id=session.session_id,
                session_flags=[
                    f.name for f in type(session.session_flags) if f in session.session_flags
                ],
                signed=session.signed,
                signing_algorithm=session.signing_algorithm.name
                if session.signing_algorithm is not None
                else None,
                cipher=session.cipher.name if session.cipher is not None else None,
                encrypted=session.encrypted or tree.encrypt,
                share=share,
                tree_id=tree.tree_id,
                share_type=tree.response.share_type.name,
                validated_negotiate=session.validated_negotiate,
            )
            session.tree_disconnect(tree)
    except (Smb2AuthError, OSError) as exc:
        status = getattr(exc, "status", None)
        if isinstance(exc, Smb2AuthError) and isinstance(status, int):
            name = NtStatus.name_of(status)
            text = str(exc) if str(exc).startswith(name) else f"{name}: {exc}"
        else:
            name, text = "CONNECTION_FAILED", f"cannot reach {host}:{port}: {exc}"
        print(f"smb2auth: {text}", file=sys.stderr)
        if args.json:
            summary["status"] = name
            print(json.dumps(summary))
        return 1
    if args.json:
        print(json.dumps(summary))
    else:
        _print_summary(summary, anonymous)
    return 0


def _print_summary(summary: dict[str, Any], anonymous: bool) -> None:
    domain, user = summary["domain"], summary["user"]
    who = "anonymous" if anonymous else (f"{domain}\\{user}" if domain else user)
    print(f"connected to {summary['server']}:{summary['port']} as {who}")
    print(f"  dialect         SMB {summary['dialect']}")
    print(f"  session id      0x{summary['session_id']:016x}")
    print(f"  session flags   {', '.join(summary['session_flags']) or '-'}")
    print(f"  signed          {'yes' if summary['signed'] else 'no'} ({summary['signing_algorithm']})")
    encrypted = "yes" if summary["encrypted"] else "no"
    print(f"  cipher          {summary['cipher'] or '-'} (encrypted: {encrypted})")
    print(f"  tree            {summary['share']} id 0x{summary['tree_id']:08x} ({summary['share_type']})")
    validated = {True: "yes", False: "no", None: "n/a"}[summary["validated_negotiate"]]
    print(f"  validated       {validated} (FSCTL_VALIDATE_NEGOTIATE_INFO)")
    print("  logoff          ok")
