"""`smb2auth` starts light: building the parser and printing any help import no protocol layer, server or
HTTP stack; each command loads its layer when it runs (issue 16, items 5 and 8)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from smb2auth._compiled import build

ROOT = Path(__file__).resolve().parents[2]
HEAVY = (
    "asyncio",
    "http.server",
    "wsgiref",
    "pyasn1",
    "Crypto",
    "smb2auth.server",
    "smb2auth.client",
    "smb2auth.http",
    "smb2auth.authority",
    "smb2auth.ntlm",
    "smb2auth.spnego",
    "smb2auth.smb2",
)


def imported_by(code: str) -> list[str]:
    """The modules loaded after running `code` in a fresh interpreter (it must not print to stderr)."""
    report = "import json, sys; print(json.dumps(sorted(sys.modules)), file=sys.stderr)"
    proc = subprocess.run([sys.executable, "-c", f"{code}\n{report}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    modules: list[str] = json.loads(proc.stderr)
    return modules


def heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


def test_building_the_parser_imports_nothing_heavy() -> None:
    modules = imported_by("from smb2auth.commands.main import build_parser\nbuild_parser()")
    assert "smb2auth.commands.serve" in modules and "smb2auth.commands.connect" in modules
    assert heavy(modules) == []


@pytest.mark.parametrize("command", ["", "serve", "connect", "useradd", "http-serve", "proxy", "decode"])
def test_help_imports_nothing_heavy(command: str) -> None:
    argv = [*command.split(), "--help"]
    code = (
        "import contextlib, io\n"
        "from smb2auth.commands.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):\n"
        f"    main({argv!r})\n"
        "assert 'usage: smb2auth' in out.getvalue()"
    )
    assert heavy(imported_by(code)) == []


def test_python_dash_m_smb2auth() -> None:
    proc = subprocess.run([sys.executable, "-m", "smb2auth", "--version"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert (proc.returncode, proc.stdout.strip()) == (0, f"smb2auth 0.1.0 ({build()})")
