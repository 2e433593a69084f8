"""Each benchmark script runs (a tiny --seconds) and prints its ratio and floor lines. No timing is asserted:
the figures depend on the machine; the benchmarks are run by hand (README, Benchmarks)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.addc import DomainController
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


@pytest.mark.interop
def test_server_benchmark_prints_ratio_latency_and_memory() -> None:
    require_program("smbd", "/usr/sbin/smbd")
    out = _run("bench_server.py", "--seconds", "0.3", "--rounds", "1", "--workers", "1", "--concurrency", "1",
               "--pending", "50")
    assert re.search(r"^ours: smb2auth 0\.1\.0 \(.+\) \(`smb2auth serve`", out, re.M), out
    row = r"^  smb2auth serve --workers 1 +: +[\d.]+/s +p50 +[\d.]+ ms +p99 +[\d.]+ ms +ratio [\d.]+x"
    assert re.search(row, out, re.M), out
    assert re.search(r"^  harness RSS delta / N +: +[\d.]+ KiB", out, re.M), out
    assert re.search(r"^  sans-IO tracemalloc delta / N: +[\d.]+ KiB", out, re.M), out


def test_http_benchmark_prints_ratio() -> None:
    pytest.importorskip("spnego")
    out = _run("bench_http.py", "--seconds", "0.1", "--rounds", "2")
    assert "NTLM_USER_FILE in smbpasswd form" in out
    ratio = r"\d+\.\d\dx \(per round \d+\.\d\dx \.\. \d+\.\d\dx\)"
    assert re.search(rf"^ratio smb2auth/pyspnego over HTTP, per CPU-s: {ratio}; per wall-clock s: {ratio}$",
                     out, re.M), out


@pytest.mark.interop
def test_proxy_benchmark_prints_ratio() -> None:
    require_program("squid", "/usr/sbin/squid")
    require_program("ntlm_auth", "/usr/bin/ntlm_auth")
    out = _run("bench_proxy.py", "--seconds", "0.2", "--rounds", "1", "--rows", "1x1")
    assert re.search(r"^squid: Squid Cache: Version \S+", out, re.M), out
    assert re.search(r"^ +1 +1 +\d+ +\d+ +[\d.]+x +\d+ +\d+ +[\d.]+x$", out, re.M), out


@pytest.mark.interop
def test_netlogon_benchmark_prints_ratio(request: pytest.FixtureRequest) -> None:
    pytest.importorskip("impacket")
    addc: DomainController = request.getfixturevalue("addc")  # provisioned only once impacket is there
    out = _run("bench_netlogon.py", "--seconds", "0.2", "--rounds", "1", "--dc", addc.host)
    assert re.search(r"^smb2auth serial +logons/s: +\d+", out, re.M), out
    assert re.search(r"^ratio smb2auth serial / impacket: [\d.]+x; \d+ concurrent / impacket: [\d.]+x$",
                     out, re.M), out
