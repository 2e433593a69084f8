"""Each command's help says what it does; README's Commands table has every option (issue 11, item 4)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from smb2auth.commands.main import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"
COMMANDS = ["serve", "connect", "useradd", "http-serve", "proxy", "conformance"]


def subparser(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parser: argparse.ArgumentParser = sub.choices[name]
    return parser


def help_of(name: str) -> str:
    return subparser(name).format_help()


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_a_description_and_every_option_a_help(name: str) -> None:
    parser = subparser(name)
    assert parser.description, name
    for action in parser._actions:
        assert action.help, f"{name} {action.option_strings or action.dest} has no help text"


def test_connect_help_prints_percent_once() -> None:
    text = help_of("connect")
    assert "%%" not in text
    assert "-U USER%PASSWORD" in " ".join(text.split())
    assert "password after %;" in " ".join(text.split())


@pytest.mark.parametrize("name", ["serve", "connect"])
def test_both_dialect_spellings_in_help(name: str) -> None:
    text = " ".join(help_of(name).split())
    assert "2.0.2 2.1 3.0 3.0.2 3.1.1, or smbclient's SMB2_02 SMB2_10 SMB3_00 SMB3_02 SMB3_11" in text


def readme_row(name: str) -> str:
    rows = [line for line in README.read_text().splitlines() if line.startswith(f"| `smb2auth {name} ")]
    assert len(rows) == 1, f"README has {len(rows)} rows for {name}"
    return re.split(r"(?<!\\)\|", rows[0])[1]  # the first cell; "\|" inside it is an escaped bar


@pytest.mark.parametrize("name", COMMANDS)
def test_readme_lists_every_option(name: str) -> None:
    row = readme_row(name)
    listed = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", row))
    for action in subparser(name)._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert set(action.option_strings) & listed or not action.option_strings, (
            f"README's {name} row lacks {'/'.join(action.option_strings)}"
        )
