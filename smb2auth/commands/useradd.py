"""`smb2auth useradd FILE NAME`: add or replace a user in a Samba smbpasswd file; never a password on argv."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from smb2auth.commands._args import PASSWORD_ENV, read_secret


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "useradd",
        help="add or replace a user in a Samba smbpasswd file",
        description=f"Password from stdin (--stdin), ${PASSWORD_ENV}, or a prompt; never from argv.",
    )
    p.add_argument("file", help="smbpasswd file (created with mode 0600 if missing)")
    p.add_argument("name", help="user name")
    p.add_argument("--stdin", action="store_true", help="read the password from the first line of stdin")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from smb2auth.authority.smbpasswd import check_user_name, write_smbpasswd_entry

    check_user_name(args.name)  # before asking for a password
    password = read_secret(f"New SMB password for {args.name}: ", from_stdin=args.stdin)
    if not args.stdin and PASSWORD_ENV not in os.environ and sys.stdin.isatty():
        again = getpass.getpass("Retype new SMB password: ")
        if again != password:
            print("smb2auth: passwords do not match", file=sys.stderr)
            return 1
    write_smbpasswd_entry(args.file, args.name, password)
    print(f"added user {args.name} to {args.file}")
    return 0
