"""The compiled build (SMB2AUTH_COMPILE=1: setup.py hands smb2auth/_compiled.py's modules to mypyc), built
from this tree into a temporary directory; then the tests of what it compiles run in a child pytest whose
`smb2auth` is that build: the NTLM, SPNEGO and SMB2 codecs, contexts and vectors, the client core, the
state machines, and the hostile-input suite (every parse failure still MalformedMessage, every server still
answering)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from smb2auth._compiled import COMPILED
from tests.peers import REQUIRE_PEERS, missing_peer

# A wheel build (a minute of both cores) and a child run of the suites below.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
# The differential pass waits on timeouts (two minutes of them), it does not compute: the main run has it.
SUITES = ["tests/ntlm", "tests/spnego", "tests/smb2", "tests/client", "tests/test_state_machines.py",
          "tests/hardening"]
DESELECT = ["tests/hardening/test_differential.py::test_no_difference_outside_known"]


def _run(
    args: list[str], *, cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def compiled_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This tree built as a user builds it (`SMB2AUTH_COMPILE=1 pip wheel`: pip's isolated build gets
    setuptools, and mypy through _build/backend.py) and installed into a directory of its own."""
    try:
        import mypyc.build  # noqa: F401
    except ImportError:
        missing_peer("mypyc (pip install -e '.[dev]' installs mypy, which carries it)")
    tmp = tmp_path_factory.mktemp("compiled")
    env = {**os.environ, "SMB2AUTH_COMPILE": "1"}
    built = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                  "-w", str(tmp / "wheel"), str(ROOT)], cwd=tmp, env=env, timeout=900)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp / "wheel").glob("smb2auth-*.whl")
    site = tmp / "site"
    installed = _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target",
                      str(site), str(wheel)], cwd=tmp, env=os.environ.copy(), timeout=300)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return site


def _child_env(site: Path) -> dict[str, str]:
    """The build first, then the repository (for the `tests` package; its smb2auth comes second)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join((str(site), str(ROOT)))}


def test_every_listed_module_is_compiled(compiled_site: Path) -> None:
    code = "from smb2auth._compiled import build, compiled_modules as m; print(build()); print(*m())"
    proc = _run([sys.executable, "-c", code], cwd=compiled_site.parent, env=_child_env(compiled_site),
                timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "NTLM, SPNEGO, SMB2 and client cores compiled by mypyc",
        " ".join(COMPILED),
    ]


def test_compiled_cores_pass_their_tests(compiled_site: Path) -> None:
    # --import-mode=append and a working directory outside the tree: nothing puts the repository before the
    # build; tests/_expect_compiled.py stops the run unless the compiled modules are the ones imported.
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=append",
            "--rootdir", str(ROOT), "-p", "tests._expect_compiled", "-m", "not slow",
            *(str(ROOT / s) for s in SUITES), *(f"--deselect={ROOT / d}" for d in DESELECT)]
    proc = _run(args, cwd=compiled_site.parent, env=_child_env(compiled_site), timeout=1200)
    tail = "\n".join(proc.stdout.splitlines()[-30:])
    assert proc.returncode == 0, tail + proc.stderr[-2000:]
    assert " passed" in tail and " failed" not in tail, tail
    if REQUIRE_PEERS:  # the child inherits it, so a missing peer fails there; nothing else may skip
        assert " skipped" not in tail, tail
