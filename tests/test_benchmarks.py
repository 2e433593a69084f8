"""Each benchmark script runs (a tiny --seconds) and prints its ratio and floor lines. No timing is asserted:
the figures depend on the machine; the benchmarks are run by hand (README, Benchmarks)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.peers import require_program

ROOT = Path(__file__).resolve().parent.parent
RATIO = r"\d+\.\dx \(per round \d+\.\dx \.\. \d+\.\dx\)"


def _run(script: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.parametrize("script", ["bench_ntlm.py", "bench_spnego.py"])
def test_in_process_benchmark_prints_ratios_and_floor(script: str) -> None:
    pytest.importorskip("spnego")
    out = _run(script, "--seconds", "0.02", "--rounds", "2")
    assert "peer: pyspnego 0.12" in out
    assert "smbpasswd form" in out
    assert re.search(rf"^ratio smb2auth, password / pyspnego, password: {RATIO}$", out, re.M), out
    assert re.search(rf"^ratio smb2auth-best / pyspnego-best: {RATIO}$", out, re.M), out
    assert re.search(rf"^floor: smb2auth, NT hash takes {RATIO} the floor$", out, re.M), out
    assert re.search(r"^floor for smb2auth, password: [\d.]+ µs = 1 x MD4 [\d.]+ \+ ", out, re.M), out


@pytest.mark.interop
def test_client_benchmark_prints_ratios_and_floor() -> None:
    pytest.importorskip("smbprotocol")
    require_program("smbd", "/usr/sbin/smbd")
    out = _run("bench_client.py", "-n", "10", "--rounds", "1", "--seconds", "0.02")
    assert "Session(require_encryption=False, auth_protocol='ntlm')" in out
    best = r"^ratio smbprotocol-best/smb2auth-best CPU \(each its cheaper secret and placement\): "
    assert re.search(rf"{best}{RATIO} \(target >= 5x\)$", out, re.M), out
    assert re.search(rf"the core takes {RATIO} the floor$", out, re.M), out
    assert re.search(r"^pycryptodome's AES-GMAC object set-up .* = \d+% of the core's CPU", out, re.M), out
    saved = r"^AES from pycryptodome vs from cryptography .*, the core alone: .* saved: -?\d+%$"
    assert re.search(saved, out, re.M), out
