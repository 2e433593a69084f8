"""The conformance suite proven on real servers: each configuration of tests/conformance/configs.py run
against smbd and against our harness set up alike, every verdict and observation equal to the table checked
in under fixtures/conformance/. The fixture itself must say why the two servers' rows differ wherever they
do, and our harness must PASS every case smbd PASSes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from smb2auth.conformance import CASES
from tests.conformance.configs import (
    CONFIGS,
    README_MARK,
    Config,
    differing,
    load,
    readme_table,
    run_ours,
    run_smbd,
)
from tests.peers import Smbd

IDS = [c.name for c in CONFIGS]
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_fixture_explains_every_difference(config: Config) -> None:
    fixture = load(config)
    ids = [c.id for c in CASES]
    assert list(fixture["smbd"]) == ids, "the smbd table lists the suite's cases in order"
    assert list(fixture["ours"]) == ids, "our table lists the suite's cases in order"
    assert set(fixture["differences"]) == differing(fixture), "a difference without its why, or a stale why"
    assert all(fixture["differences"].values()), "an empty explanation"
    short = [c for c in ids if fixture["smbd"][c]["verdict"].startswith("PASS")
             and not fixture["ours"][c]["verdict"].startswith("PASS")]
    assert short == [], "our harness must PASS where smbd does"


@pytest.mark.interop
@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_smbd_matches_its_table(config: Config, smbd: Smbd, smbd_factory: Callable[[str], Smbd]) -> None:
    server = smbd if not config.smbd else smbd_factory(config.smbd)
    assert run_smbd(server) == load(config)["smbd"]


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_our_harness_matches_its_table(config: Config) -> None:
    assert run_ours(config) == load(config)["ours"]


def test_readme_shows_the_smbd_default_table() -> None:
    text = README.read_text()
    assert README_MARK in text
    block = text.split(README_MARK, 1)[1].lstrip("\n")
    table = readme_table()
    assert block[: len(table)] == table, "README's table is not fixtures/conformance/smbd-default.json's" \
        " (python -m tests.conformance.regen --readme prints it)"
