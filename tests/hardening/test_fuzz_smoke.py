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
    from smb2auth.server.connection import Connection
    from smb2auth.server.inline import answer_frame

    conn = Connection(ctx, "smoke")
    for step in (script.negotiate, script.setup1, script.setup2):
        answer_frame(conn, step)
    assert [e.status for e in ctx.events.events] == ["STATUS_SUCCESS"]
    assert script.session_id in conn.sessions


def test_server_sealed_mode_reaches_the_session() -> None:
    """Mode 0x2f: a login with AES-128-GCM replayed, then the payload sealed with the session's key; an ECHO
    comes back encrypted and decrypts to STATUS_SUCCESS."""
    from smb2auth.server.connection import Connection
    from smb2auth.server.inline import answer_frame
    from smb2auth.smb2.crypto import decrypt, encrypt
    from smb2auth.smb2.header import Command, HeaderFlags, Smb2Header
    from smb2auth.smb2.negotiate_contexts import Cipher
    from smb2auth.smb2.simple import EchoRequest

    script = harnesses.server_script(True)
    conn = Connection(harnesses.new_context(), "smoke")
    for step in (script.negotiate, script.setup1, script.setup2):
        answer_frame(conn, step)
    echo = Smb2Header(Command.ECHO, HeaderFlags(0), 3, script.session_id, 0, credit=1, credit_charge=1)
    sealed = encrypt(echo.pack() + EchoRequest().pack(), script.c2s_key, Cipher.AES_128_GCM,
                     script.session_id, b"\x07" * 12)
    (out,) = answer_frame(conn, sealed)
    _, plain = decrypt(out[4:], script.s2c_key, Cipher.AES_128_GCM)
    assert Smb2Header.unpack(plain).status == 0
    harnesses.server(b"\x2f" + echo.pack() + EchoRequest().pack())
