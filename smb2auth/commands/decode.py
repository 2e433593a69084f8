"""`smb2auth decode`: read INPUT (words, @FILE or stdin), decode it, print the tree as text or JSON.

The decoder is imported when the command runs, and it imports no asyncio, server or HTTP binding.
"""

from __future__ import annotations

import argparse
import sys

MAX_INPUT = 16 * 2**20  # bytes read from a file or stdin; a message or a paste of one is far smaller


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "decode",
        help="annotate an NTLMSSP message, SPNEGO token or SMB2 message",
        description=(
            "INPUT is hex (spaces, colons, 0x, hex dumps), base64, an HTTP header line "
            "('WWW-Authenticate: NTLM ...'), @FILE (raw bytes or any of these as text), or - for stdin."
        ),
    )
    p.add_argument("input", nargs="+", metavar="INPUT", help="what to decode (several words are joined)")
    p.add_argument(
        "--json", action="store_true", help="the tree as JSON: name, value, note, offset, children"
    )
    p.set_defaults(handler=run)


def _read_argument(words: list[str]) -> bytes:
    """INPUT words, `-` (stdin) or `@FILE`: at most MAX_INPUT + 1 bytes are read (endless input ends)."""
    if len(words) == 1 and words[0] == "-":
        return sys.stdin.buffer.read(MAX_INPUT + 1)
    if len(words) == 1 and words[0].startswith("@"):
        with open(words[0][1:], "rb") as f:
            return f.read(MAX_INPUT + 1)
    return " ".join(words).encode("utf-8", "surrogateescape")


def run(args: argparse.Namespace) -> int:
    from smb2auth.decode import DecodeError, decode_input, render_json, render_text

    try:
        raw = _read_argument(args.input)
    except OSError as exc:
        print(f"smb2auth decode: cannot read {exc.filename or 'stdin'}: {exc.strerror}", file=sys.stderr)
        return 2
    if len(raw) > MAX_INPUT:
        print(f"smb2auth decode: input larger than {MAX_INPUT} bytes", file=sys.stderr)
        return 2
    try:
        tree = decode_input(raw)
    except DecodeError as exc:
        print(f"smb2auth decode: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render_json(tree) if args.json else render_text(tree))
    return 0
