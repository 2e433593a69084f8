"""Print the interop matrix as a Markdown table: each client on each dialect, against our harness and smbd.

    python -m tests.interop.matrix

The rows and their checks are tests/interop/test_matrix.py's (tests/interop/clients.py): login, TREE_CONNECT
to IPC$ and LOGOFF with signing required (the NTLMv1 client: unsigned), and on ours the login event's user,
dialect and signing. A cell is "ok", or what failed. Needs the peers README's test line installs.
"""

from __future__ import annotations

import contextlib
import sys

from tests.interop.clients import (
    CLIENTS,
    Servers,
    event_problem,
    go_smb2_program,
    session_problem,
    use_go_program,
    versions,
)


def _cell(problem: str) -> str:
    return "ok" if not problem else "FAIL: " + problem.splitlines()[-1][:90].replace("|", "/")


def main() -> int:
    found = versions()
    lines = ["| client | version | dialect | ours | smbd |", "|---|---|---|---|---|"]
    failed = 0
    with contextlib.ExitStack() as stack:
        servers = Servers(stack)
        if any(c.name == "go-smb2" and c.missing() is None for c in CLIENTS):
            use_go_program(stack.enter_context(go_smb2_program()))
        for c in CLIENTS:
            missing = c.missing()
            for dialect in c.dialects:
                if missing is not None:
                    lines.append(f"| {c.name} | {found[c.name]} | {dialect} | missing | missing |")
                    failed += 1
                    continue
                ours, smbd = servers.targets(c, dialect)
                theirs = _cell(session_problem(c, dialect, c.session(smbd, dialect)))
                harness = servers.ours(c, dialect)
                before = len(harness.events)
                problem = session_problem(c, dialect, c.session(ours, dialect))
                mine = _cell(problem or event_problem(c, dialect, harness.events[before:]))
                failed += mine != "ok" or theirs != "ok"
                lines.append(f"| {c.name} | {found[c.name]} | {dialect} | {mine} | {theirs} |")
    print("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
