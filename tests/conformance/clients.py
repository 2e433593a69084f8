"""The clients the client suite (`smb2auth conformance --client`) is proven on: each a command line with the
suite's placeholders, and the table it must produce checked in as fixtures/conformance/client-NAME.json.

`python -m tests.conformance.regen --clients` rewrites those tables from live runs.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smb2auth.conformance.clients import CLIENT_CASES, run_clients
from smb2auth.conformance.registry import Outcome, Verdict
from smb2auth.conformance.report import as_table
from smb2auth.conformance.runner import Result
from tests.conformance.configs import DOMAIN, FIXTURES, PASSWORD, USER, table

HERE = Path(__file__).resolve().parent
PLACES = ("{host}", "{port}", "{domain}", "{user}", "{password}", "{share}")


@dataclass(frozen=True)
class Client:
    name: str
    command: tuple[str, ...]
    needs: str  # the program or Python module that must be installed
    module: bool = False

    @property
    def fixture(self) -> Path:
        return FIXTURES / f"client-{self.name}.json"

    def installed(self) -> bool:
        if self.module:
            return importlib.util.find_spec(self.needs) is not None
        return shutil.which(self.needs) is not None

    def version(self) -> str:
        if self.module:
            from importlib.metadata import version

            return f"{self.needs} {version(self.needs)}"
        out = subprocess.run([self.needs, "--version"], capture_output=True, text=True, timeout=30).stdout
        return f"{self.needs} {out.strip().removeprefix('Version ')}"


CLIENTS = (
    # Our own client, as a user runs it.
    Client("smb2auth", (sys.executable, "-m", "smb2auth", "connect", "//{host}:{port}/{share}",
                        "-U", "{domain}/{user}%{password}"), "smb2auth", module=True),
    # smbclient offers 2.0.2 to 3.1.1 with -m SMB3 (client min protocol stays SMB2_02).
    Client("smbclient", ("smbclient", "-s", "/dev/null", "//{host}/{share}", "-p", "{port}",
                         "-U", "{domain}/{user}%{password}", "--use-kerberos=off", "-m", "SMB3", "-c", "ls"),
           "smbclient"),
    Client("smbprotocol", (sys.executable, str(HERE / "smbprotocol_client.py"), *PLACES), "smbprotocol",
           module=True),
    Client("impacket", (sys.executable, str(HERE / "impacket_client.py"), *PLACES), "impacket", module=True),
)


def run_client(client: Client) -> dict[str, dict[str, str]]:
    return table(run_clients(client.command, user=USER, password=PASSWORD, domain=DOMAIN))


def load(client: Client) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(client.fixture.read_text())
    return data


def fixture_results(rows: dict[str, dict[str, str]]) -> list[Result]:
    """A client fixture's table as results, to render as the command prints it."""
    results = []
    for case in CLIENT_CASES:
        label, observed = rows[case.id]["verdict"], rows[case.id]["observed"]
        results.append(Result(case, Outcome(Verdict(label), observed), 0.0))
    return results


def readme_tables(clients: Sequence[Client] = CLIENTS) -> str:
    """README's client-suite tables, one per client, as `smb2auth conformance --client` prints them."""
    parts = []
    for client in clients:
        data = load(client)
        parts.append(f"**{data['client']}** (`{' '.join(data['command'])}`):\n\n"
                     + as_table(fixture_results(data["results"])))
    return "\n".join(parts)


def write_fixture(client: Client) -> Path:
    root = str(HERE.parents[1]) + "/"
    shown = [arg.replace(sys.executable, "python").replace(root, "") for arg in client.command]
    data = {"client": client.version(), "command": shown, "results": run_client(client)}
    client.fixture.write_text(json.dumps(data, indent=2) + "\n")
    return client.fixture
