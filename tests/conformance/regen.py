"""Rewrite fixtures/conformance/*.json from live runs against smbd and our harness, keeping the explanations
of the differences, and print the differences that have none (add them by hand); with --readme, print the
smbd-default table for README instead. With --clients, rewrite the client suite's tables
(fixtures/conformance/client-*.json) from live runs of each client of tests/conformance/clients.py; with
--clients-readme, print README's client tables.

    python -m tests.conformance.regen [NAME ...]
    python -m tests.conformance.regen --readme
    python -m tests.conformance.regen --clients [CLIENT ...]
    python -m tests.conformance.regen --clients-readme
"""

from __future__ import annotations

import json
import sys

from smb2auth.conformance import CASES
from tests.conformance.configs import CONFIGS, differing, readme_table, run_ours, run_smbd
from tests.peers import running_smbd


def main(names: list[str]) -> int:
    if names == ["--readme"]:
        sys.stdout.write(readme_table())
        return 0
    if names[:1] in (["--clients"], ["--clients-readme"]):
        from tests.conformance.clients import CLIENTS, readme_tables, write_fixture

        if names == ["--clients-readme"]:
            sys.stdout.write(readme_tables())
            return 0
        for client in CLIENTS:
            if names[1:] and client.name not in names[1:]:
                continue
            print(f"wrote {write_fixture(client)}")
        return 0
    unexplained = 0
    for config in CONFIGS:
        if names and config.name not in names:
            continue
        with running_smbd(config.smbd) as server:
            smbd = run_smbd(server)
        ours = run_ours(config)
        old = json.loads(config.fixture.read_text()) if config.fixture.exists() else {}
        fixture = {"config": config.describe(), "smbd": smbd, "ours": ours, "differences": {}}
        notes = old.get("differences", {})
        for case in sorted(differing(fixture), key=[c.id for c in CASES].index):
            fixture["differences"][case] = notes.get(case, "")
            if not notes.get(case):
                unexplained += 1
                print(f"{config.name}: {case} differs, unexplained:")
                print(f"  smbd {smbd[case]}\n  ours {ours[case]}")
        config.fixture.write_text(json.dumps(fixture, indent=2) + "\n")
        print(f"wrote {config.fixture}")
    return 1 if unexplained else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
