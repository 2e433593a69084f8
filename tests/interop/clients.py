"""The SMB2 clients of the interop matrix, and the servers they log into.

Each `Client` runs one session (login, TREE_CONNECT to IPC$, LOGOFF where the client has one) as a separate
process against a `Target` and returns the `Outcome`: what the client itself reported, or its error. The same
row runs against our harness and against smbd set up alike (`Servers`), so a failure is classed "ours"
(passes on smbd) or "the client's" (fails on smbd too). Used by tests/interop/test_matrix.py and printed
by tests/interop/matrix.py.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smb2auth.events import LoginEvent
from smb2auth.ntlm.server import NtlmPolicy
from smb2auth.smb2.negotiate import Dialect
from smb2auth.testing import RunningServer, running_server
from tests.peers import Smbd, running_smbd

HERE = Path(__file__).parent
USER, PASSWORD, DOMAIN = "alice", "Passw0rd!", "TESTGRP"
ALL_DIALECTS = ("2.0.2", "2.1", "3.0", "3.0.2", "3.1.1")
SMBCLIENT_PROTOCOLS = {"2.0.2": "SMB2_02", "2.1": "SMB2_10", "3.0": "SMB3_00", "3.0.2": "SMB3_02",
                       "3.1.1": "SMB3_11"}
DIALECT_CODES = {"2.0.2": Dialect.SMB2_0_2, "2.1": Dialect.SMB2_1}
TIMEOUT = 60


@dataclass(frozen=True)
class Target:
    """Where one session goes: `side` is "ours" or "smbd"."""

    side: str
    port: int
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class Outcome:
    """What the client reported (`report`: dialect, signed, tree, logoff) or why it failed (`error`)."""

    report: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def _run(argv: list[str], *, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SMB2AUTH_PEER_PASSWORD=PASSWORD)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)


def _json_outcome(proc: subprocess.CompletedProcess[str]) -> Outcome:
    if proc.returncode != 0:
        return Outcome(error=(proc.stderr.strip() or proc.stdout.strip() or f"exit {proc.returncode}")[-500:])
    lines = proc.stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1])
    except (IndexError, ValueError):
        return Outcome(error=f"no JSON report: {proc.stdout[-300:]!r}")
    return Outcome(report=report)


@dataclass(frozen=True)
class Client:
    """One client: its name in the matrix, the dialects it offers one at a time, whether it signs (the servers
    require signing) or is the NTLMv1 unsigned kind, how to find its version and how to run one session."""

    name: str
    dialects: tuple[str, ...]
    version: Callable[[], str | None]
    session: Callable[[Target, str], Outcome]
    signed: bool = True
    logoff: bool = True
    needs: str = ""

    def missing(self) -> str | None:
        """What must be installed first, or None when the client is here."""
        return None if self.version() is not None else self.needs


# -- the clients ----------------------------------------------------------------------------------------


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _smbclient_version() -> str | None:
    program = shutil.which("smbclient")
    if program is None:
        return None
    out = _run([program, "--version"], timeout=30).stdout.strip()
    return out.removeprefix("Version ") or None


def _smbclient(protection: str) -> Callable[[Target, str], Outcome]:
    def session(target: Target, dialect: str) -> Outcome:
        # -d 4 prints "negotiated dialect[...]"; smbclient connects to the share of its path before running
        # -c, and refuses a session it cannot sign (or encrypt) under --client-protection.
        proc = _run(["smbclient", f"//{target.host}/IPC$", "-p", str(target.port),
                     "-U", f"{DOMAIN}/{USER}%{PASSWORD}", "--use-kerberos=off", "-s", "/dev/null",
                     "-m", SMBCLIENT_PROTOCOLS[dialect], f"--client-protection={protection}",
                     "-d", "4", "-c", "logoff"])
        out = proc.stdout + proc.stderr
        if proc.returncode != 0:
            failure = [line for line in out.splitlines() if "NT_STATUS" in line or "failed" in line]
            return Outcome(error=(failure[-1] if failure else out[-300:]).strip())
        negotiated = re.search(r"negotiated dialect\[(\w+)\]", out)
        names = {v: k for k, v in SMBCLIENT_PROTOCOLS.items()}
        return Outcome(report={"dialect": names.get(negotiated.group(1)) if negotiated else None,
                               "signed": True, "tree": True, "logoff": "logoff successful" in out})

    return session


def _python(driver: str) -> Callable[[Target, str], Outcome]:
    def session(target: Target, dialect: str) -> Outcome:
        script = str(HERE / "client_drivers.py")
        return _json_outcome(_run([sys.executable, script, driver, dialect, target.host, str(target.port),
                                   DOMAIN, USER]))

    return session


GO_SMB2 = Path("/usr/share/gocode/src/github.com/hirochachacha/go-smb2")


def _go_smb2_version() -> str | None:
    if shutil.which("go") is None or not GO_SMB2.is_dir() or shutil.which("dpkg-query") is None:
        return None
    proc = _run(["dpkg-query", "-W", "-f=${Version}", "golang-github-hirochachacha-go-smb2-dev"], timeout=30)
    return proc.stdout.strip() or None


@contextlib.contextmanager
def go_smb2_program() -> Iterator[Path]:
    """tests/interop/go/smb2login.go built offline against Debian's go-smb2, in a temp dir."""
    with tempfile.TemporaryDirectory(prefix="smb2auth-go-") as tmp:
        binary = Path(tmp) / "smb2login"
        env = dict(os.environ, GO111MODULE="off", GOPATH=f"{tmp}:/usr/share/gocode", GOCACHE=f"{tmp}/cache",
                   GOFLAGS="", CGO_ENABLED="0")
        subprocess.run(["go", "build", "-o", str(binary), str(HERE / "go" / "smb2login.go")], env=env,
                       check=True, capture_output=True, timeout=300)
        yield binary


_go_binary: list[Path] = []


def use_go_program(binary: Path) -> None:
    """Where the built go-smb2 program is, for the go-smb2 client's sessions."""
    _go_binary[:] = [binary]


def _go_session(target: Target, dialect: str) -> Outcome:
    assert _go_binary, "build the go-smb2 program first (go_smb2_program, use_go_program)"
    return _json_outcome(_run([str(_go_binary[0]), "-addr", f"{target.host}:{target.port}", "-user", USER,
                               "-domain", DOMAIN, "-dialect", dialect]))


NODE_SMB2 = HERE / "node" / "node_modules" / "@marsaud" / "smb2" / "package.json"


def _marsaud_version() -> str | None:
    if shutil.which("node") is None or not NODE_SMB2.is_file():
        return None
    return str(json.loads(NODE_SMB2.read_text())["version"])


def _marsaud_session(target: Target, dialect: str) -> Outcome:
    # OpenSSL 3 keeps MD4 and DES (NTLMv1) in its legacy provider.
    script = str(HERE / "node" / "login.js")
    return _json_outcome(_run(["node", "--openssl-legacy-provider", script, target.host, str(target.port),
                               DOMAIN, USER]))


CLIENTS: tuple[Client, ...] = (
    Client("smbclient", ALL_DIALECTS, _smbclient_version, _smbclient("sign"),
           needs="apt-get install smbclient"),
    Client("smbclient encrypt", ("3.0", "3.0.2", "3.1.1"), _smbclient_version, _smbclient("encrypt"),
           needs="apt-get install smbclient"),
    # impacket 0.13 has no 3.0.2 ("Unknown dialect", against smbd too).
    Client("impacket", ("2.0.2", "2.1", "3.0", "3.1.1"), lambda: _package_version("impacket"),
           _python("impacket"), needs="pip install -e '.[interop]' (impacket)"),
    Client("smbprotocol", ALL_DIALECTS, lambda: _package_version("smbprotocol"), _python("smbprotocol"),
           needs="pip install -e '.[interop]' (smbprotocol)"),
    Client("smbprotocol register_session", ("3.1.1",), lambda: _package_version("smbprotocol"),
           _python("smbprotocol-register-session"), needs="pip install -e '.[interop]' (smbprotocol)"),
    Client("aiosmb", ALL_DIALECTS, lambda: _package_version("aiosmb"), _python("aiosmb"),
           needs="pip install -e '.[interop]' (aiosmb)"),
    Client("pysmb", ("2.0.2",), lambda: _package_version("pysmb"), _python("pysmb"), logoff=False,
           needs="pip install -e '.[interop]' (pysmb)"),
    Client("go-smb2", ALL_DIALECTS, _go_smb2_version, _go_session,
           needs="apt-get install golang-go golang-github-hirochachacha-go-smb2-dev"),
    Client("@marsaud/smb2", ("2.0.2", "2.1"), _marsaud_version, _marsaud_session, signed=False, logoff=False,
           needs="npm install --prefix tests/interop/node (and node)"),
)


def client(name: str) -> Client:
    return next(c for c in CLIENTS if c.name == name)


def rows() -> list[tuple[Client, str]]:
    return [(c, d) for c in CLIENTS for d in c.dialects]


def session_problem(c: Client, dialect: str, outcome: Outcome) -> str:
    """Why the client's own report is not a full session on `dialect` (login, TREE_CONNECT to IPC$, LOGOFF
    where it has one, signed where it signs), or "" when it is."""
    if not outcome.ok:
        return outcome.error
    expected = {"dialect": dialect, "signed": c.signed, "tree": True, "logoff": c.logoff}
    got = {key: outcome.report.get(key) for key in expected}
    return "" if got == expected else f"reported {got}, expected {expected}"


def event_problem(c: Client, dialect: str, events: list[LoginEvent]) -> str:
    """Why the harness's login events for one session are not one successful login of USER on `dialect`,
    signed where the client signs, or "" when they are."""
    if len(events) != 1:
        return f"{len(events)} login events: {events}"
    (e,) = events
    got = (e.status, e.user, e.dialect, e.signed)
    expected = ("STATUS_SUCCESS", USER, dialect, c.signed)
    return "" if got == expected else f"login event (status, user, dialect, signed) {got}, not {expected}"


# -- the servers ----------------------------------------------------------------------------------------


class Servers:
    """Our harness and smbd, each started once on first use and stopped when the stack closes.

    A signing client gets the servers that require signing and NTLMv2 (our defaults; smbd "server signing =
    mandatory"), on every dialect. The NTLMv1 kind (@marsaud/smb2: unsigned, offers 2.0.2 and 2.1 together)
    gets a server per dialect capped at that dialect, with NTLMv1 permitted (smbd "ntlm auth =
    ntlmv1-permitted") and signing not required."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self.stack = stack
        self._ours: dict[str, RunningServer] = {}
        self._smbd: dict[str, Smbd] = {}

    @staticmethod
    def _key(c: Client, dialect: str) -> str:
        return "signed" if c.signed else f"ntlmv1-{dialect}"

    def ours(self, c: Client, dialect: str) -> RunningServer:
        key = self._key(c, dialect)
        if key not in self._ours:
            config: dict[str, Any] = {}
            if not c.signed:
                config = {"policy": NtlmPolicy(allow_ntlmv1=True), "signing_required": False,
                          "max_dialect": DIALECT_CODES[dialect]}
            self._ours[key] = self.stack.enter_context(
                running_server(username=USER, password=PASSWORD, domain=DOMAIN, **config))
        return self._ours[key]

    def smbd(self, c: Client, dialect: str) -> Smbd:
        key = self._key(c, dialect)
        if key not in self._smbd:
            extra = "  server signing = mandatory\n"
            if not c.signed:
                top = SMBCLIENT_PROTOCOLS[dialect]
                extra = f"  ntlm auth = ntlmv1-permitted\n  server max protocol = {top}\n"
            self._smbd[key] = self.stack.enter_context(running_smbd(extra))
        return self._smbd[key]

    def targets(self, c: Client, dialect: str) -> tuple[Target, Target]:
        return Target("ours", self.ours(c, dialect).port), Target("smbd", self.smbd(c, dialect).port)


def versions() -> dict[str, str]:
    """Each client's version as installed here ("missing: HOW" when it is not)."""
    out: dict[str, str] = {}
    for c in CLIENTS:
        found = c.version()
        out[c.name] = found if found is not None else f"missing: {c.needs}"
    return out
