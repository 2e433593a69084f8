"""A short, deterministic fuzz run of every harness in fuzz/harnesses.py (the long runs: fuzz/run.py).

Seeds come from fixtures/fuzz/ (python -m fuzz.corpus); the mutator is fuzz.run.mutate with a fixed seed, so
a failure here reproduces exactly. A harness raises on any broken contract (see fuzz/harnesses.py).
"""

from __future__ import annotations

import logging
import random

import pytest

from fuzz import harnesses
from fuzz.corpus import load
from fuzz.run import mutate

RUNS = {
    "ntlm_negotiate": 5000,
    "ntlm_challenge": 5000,
    "ntlm_authenticate": 5000,
    "spnego": 4000,
    "smb2_message": 5000,
    "decode": 3000,
    "server": 3000,
}


def test_every_target_has_seeds_and_runs() -> None:
    assert set(RUNS) == set(harnesses.TARGETS)
    for target in harnesses.TARGETS:
        assert load(target), f"no seeds for {target}: run python -m fuzz.corpus"


@pytest.mark.parametrize("target", sorted(RUNS))
def test_fuzz_smoke(target: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL)  # the server harness logs a failed login per input
    fn = harnesses.TARGETS[target]
    seeds = load(target)
    for seed in seeds:
        fn(seed)  # every seed passes as is
    rnd = random.Random(f"smoke-{target}")
    for _ in range(RUNS[target]):
        fn(mutate(rnd.choice(seeds), rnd, seeds, 2048))


def test_server_seeds_reach_authentication() -> None:
    """The replayed prefix works: a seed that carries the AUTHENTICATE logs in."""
    script = harnesses.server_script()
    ctx = harnesses.new_context()
    from smb2auth.server.protocol import Connection, drive

    conn = Connection(ctx, "smoke")
    for step in (script.negotiate, script.setup1, script.setup2):
        drive(conn.handle_frame(step))
    assert [e.status for e in ctx.events.events] == ["STATUS_SUCCESS"]
    assert script.session_id in conn.sessions
