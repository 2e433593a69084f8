"""The server configurations the conformance suite is proven on: each an smbd set up with smb.conf lines
(tests/peers.py) and our harness set up to match (smb2auth.testing.running_server), with the verdict tables
both must produce checked in as fixtures/conformance/NAME.json.

A fixture holds, per server, each case's verdict and observation, and under "differences" why the two servers'
rows differ where they do. `python -m tests.conformance.regen` rewrites the tables from live runs, keeping the
explanations.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smb2auth.conformance import CASES, Result, Target, run
from smb2auth.conformance.registry import Outcome, Verdict
from smb2auth.conformance.report import as_table
from smb2auth.ntlm.server import NtlmPolicy
from smb2auth.testing import running_server
from tests.peers import Smbd

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "conformance"
USER, PASSWORD, DOMAIN = "alice", "Passw0rd!", "TESTGRP"  # tests/peers.py's smbd account
TIMEOUT = 10.0


@dataclass(frozen=True)
class Config:
    name: str
    smbd: str  # [global] lines
    ours: dict[str, Any] = field(default_factory=dict)  # running_server keywords

    @property
    def fixture(self) -> Path:
        return FIXTURES / f"{self.name}.json"

    def describe(self) -> dict[str, str]:
        ours = ", ".join(f"{k}={v!r}" for k, v in self.ours.items())
        smbd = " ".join(line.strip() + ";" for line in self.smbd.splitlines() if line.strip())
        return {"smbd": smbd or "tests/peers.py's smb.conf: Samba's defaults (server signing = default,"
                " ntlm auth = ntlmv2-only, map to guest = never)", "ours": ours}


CONFIGS = (
    # smbd's own defaults (server signing = default: enabled, not required), and ours likewise.
    Config("smbd-default", "", {"signing_required": False}),
    Config("signing-encryption", "  server signing = mandatory\n  smb encrypt = required\n",
           {"signing_required": True, "encrypt": True}),
    # smb.conf "ntlm auth = yes" is ntlmv1-permitted; LM needs "lanman auth" as well, which stays off.
    Config("ntlm-auth-yes", "  ntlm auth = yes\n",
           {"signing_required": False, "policy": NtlmPolicy(allow_ntlmv1=True)}),
    Config("map-to-guest", "  map to guest = bad user\n", {"signing_required": False, "allow_guest": True}),
)


def table(results: Sequence[Result]) -> dict[str, dict[str, str]]:
    """What a fixture records of a run: per case id, the verdict label and the observation."""
    return {r.case.id: {"verdict": r.outcome.label, "observed": r.outcome.observed} for r in results}


def run_smbd(server: Smbd) -> dict[str, dict[str, str]]:
    return table(run(CASES, Target("127.0.0.1", server.port, server.user, server.password, DOMAIN),
                     timeout=TIMEOUT))


@contextlib.contextmanager
def harness(config: Config) -> Iterator[Target]:
    with running_server(username=USER, password=PASSWORD, domain=DOMAIN, **config.ours) as server:
        yield Target(server.host, server.port, USER, PASSWORD, DOMAIN)


def run_ours(config: Config) -> dict[str, dict[str, str]]:
    with harness(config) as target:
        return table(run(CASES, target, timeout=TIMEOUT))


def load(config: Config) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(config.fixture.read_text())
    return data


def differing(fixture: dict[str, Any]) -> set[str]:
    """The cases whose rows differ between smbd and ours."""
    smbd, ours = fixture["smbd"], fixture["ours"]
    return {case for case in smbd.keys() | ours.keys() if smbd.get(case) != ours.get(case)}


README_MARK = "<!-- conformance:smbd-default -->"


def fixture_results(rows: dict[str, dict[str, str]]) -> list[Result]:
    """A fixture's table as results (no timings), to render as `smb2auth conformance` prints them."""
    results = []
    for case in CASES:
        label, observed = rows[case.id]["verdict"], rows[case.id]["observed"]
        verdict, _, platform = label.partition(" (")
        results.append(Result(case, Outcome(Verdict(verdict), observed, platform.rstrip(")")), 0.0))
    return results


def readme_table() -> str:
    """README's block under README_MARK: the smbd-default table as the command prints it."""
    return as_table(fixture_results(load(CONFIGS[0])["smbd"]))
