"""The client suite proven on real clients: each client of tests/conformance/clients.py run against the
hostile harness once per scenario, every verdict and observation equal to its table under
fixtures/conformance/client-*.json; our own client must refuse every scenario it must."""

from __future__ import annotations

from pathlib import Path

import pytest

from smb2auth.conformance.clients import CLIENT_CASES
from tests.conformance.clients import CLIENTS, Client, load, readme_tables, run_client
from tests.peers import missing_peer

README = Path(__file__).resolve().parents[2] / "README.md"
README_MARK = "<!-- conformance:clients -->"
OURS, PEERS = CLIENTS[0], CLIENTS[1:]


@pytest.mark.parametrize("client", CLIENTS, ids=[c.name for c in CLIENTS])
def test_fixture_lists_every_scenario(client: Client) -> None:
    assert list(load(client)["results"]) == [c.id for c in CLIENT_CASES]


def test_our_client_refuses_what_it_must() -> None:
    rows = load(OURS)["results"]
    assert [case for case, row in rows.items() if row["verdict"] not in ("PASS", "WARN")] == []
    # The one WARN: MS-NLMP 3.1.5.1.2 lets a client answer a CHALLENGE without a timestamp.
    warned = [case for case, row in rows.items() if row["verdict"] == "WARN"]
    assert warned == ["client.challenge-no-timestamp"]


def test_our_client_matches_its_table() -> None:
    assert run_client(OURS) == load(OURS)["results"]


@pytest.mark.interop
@pytest.mark.parametrize("client", PEERS, ids=[c.name for c in PEERS])
def test_peer_matches_its_table(client: Client) -> None:
    if not client.installed():
        missing_peer(client.needs)
    assert run_client(client) == load(client)["results"]


def test_readme_shows_the_client_tables() -> None:
    text = README.read_text()
    assert README_MARK in text
    block = text.split(README_MARK, 1)[1].lstrip("\n")
    tables = readme_tables()
    assert block[: len(tables)] == tables, (
        "README's client tables are not fixtures/conformance/client-*.json's"
        " (python -m tests.conformance.regen --clients-readme prints them)"
    )
