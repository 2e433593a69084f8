"""The client suite (`smb2auth conformance --client -- COMMAND...`): for each hostile scenario of
server/hostile.py, the harness on a free loopback port misbehaving so, the client command run once against it,
and the verdict from what the harness recorded.

PASS: the client refused where the cited section says it must (or, for a grant it must take, took it).
FAIL: it carried on where it must refuse. WARN: it carried on where the spec allows it but security is
weaker. SKIP: the scenario did not apply to this client (a dialect it never negotiated), with the reason.

The command's arguments may name {host} {port} {user} {password} {domain} and {share}; each is replaced by the
harness's. The results are the server suite's (`runner.Result`), so `report` prints them the same way.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from smb2auth.conformance.registry import Case, Outcome, failed, passed, select, skipped, warned
from smb2auth.conformance.runner import Result
from smb2auth.events import LoginEvent
from smb2auth.server.hostile import SCENARIOS, Scenario

__all__ = ["CLIENT_CASES", "ClientRun", "judge", "run_clients", "substitute"]

GROUP = "client"
SHARE = "share"
DEFAULT_TIMEOUT = 20.0
_GRACE = 1.0  # seconds a client may take to exit once its verdict is in


def _not_a_server_case(probe: object) -> Outcome:
    raise TypeError("a client scenario runs through smb2auth.conformance.clients, not against a server")


CLIENT_CASES: tuple[Case, ...] = tuple(
    Case(f"{GROUP}.{s.name}", s.section, s.expectation, _not_a_server_case) for s in SCENARIOS
)
_BY_ID = {f"{GROUP}.{s.name}": s for s in SCENARIOS}


@dataclass(frozen=True)
class ClientRun:
    """What one scenario's run left: the verdict events the harness recorded (one per connection), and how
    the command ended."""

    events: tuple[LoginEvent, ...]
    returncode: int | None  # None: killed (it outlived the scenario's time limit or its verdict)
    output: str


def substitute(command: Sequence[str], values: dict[str, str]) -> list[str]:
    """Each argument with {host} {port} {user} {password} {domain} {share} replaced; other braces kept."""
    out = []
    for arg in command:
        for key, value in values.items():
            arg = arg.replace("{" + key + "}", value)
        out.append(arg)
    return out


def judge(scenario: Scenario, run: ClientRun) -> Outcome:
    """The verdict of one scenario from the harness's events: a client that carried on on any connection
    carried on; else one that refused on any refused."""
    events = [e for e in run.events if e.hostile == scenario.name]
    if not events:
        how = "killed" if run.returncode is None else f"exit {run.returncode}"
        tail = run.output.strip().splitlines()[-1:] or [""]
        return failed(f"no connection reached the harness ({how}{': ' + tail[0][:120] if tail[0] else ''})")
    carried = next((e for e in events if e.refused is False), None)
    refused = next((e for e in events if e.refused is True), None)
    if carried is None and refused is None:
        return skipped(events[0].observed)
    event = carried if carried is not None else refused
    assert event is not None
    observed = event.observed
    dialect = event.dialect or "?"
    name = scenario.name
    if name == "credits-65535":
        # MS-SMB2 3.2.5.1.4: the client adds the credits granted; a legal grant is no reason to stop.
        return passed(observed) if carried is not None else failed(observed)
    if carried is None:
        return passed(observed)
    if name == "challenge-no-timestamp":
        # MS-NLMP 3.1.5.1.2: without the server's timestamp the client sends no MIC (and an LMv2 response).
        return warned(f"{observed}: allowed, but no MIC protects the NTLM exchange")
    if name == "setup-unsigned" and dialect != "3.1.1":
        # MS-SMB2 3.2.5.3.1: only 3.1.1 must have its final SESSION_SETUP response signed.
        return warned(f"{observed} ({dialect}): allowed before 3.1.1, but the session setup goes unprotected")
    return failed(f"{observed} ({dialect})")


def _run_command(argv: list[str], verdict_in: Callable[[], bool], timeout: float) -> tuple[int | None, str]:
    """Run the client until it exits, or until `timeout`, or shortly after its verdict is in."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    decided_at: float | None = None
    while proc.poll() is None:
        now = time.monotonic()
        if decided_at is None and verdict_in():
            decided_at = now
        if now > deadline or (decided_at is not None and now - decided_at > _GRACE):
            proc.kill()
            break
        time.sleep(0.05)
    out, _ = proc.communicate()
    return (proc.returncode if proc.returncode >= 0 else None), out.decode(errors="replace")


def run_scenario(
    scenario: Scenario, command: Sequence[str], *, user: str, password: str, domain: str,
    timeout: float = DEFAULT_TIMEOUT, wait: float = 3.0,
) -> ClientRun:
    """One scenario: the harness misbehaving so, the command run once against it."""
    from smb2auth.testing import running_server

    with running_server(username=user, password=password, domain=domain, hostile=scenario.name,
                        hostile_wait=wait, shares=(SHARE,)) as server:
        values = {"host": server.host, "port": str(server.port), "user": user, "password": password,
                  "domain": domain, "share": SHARE}
        argv = substitute(command, values)
        try:
            code, output = _run_command(argv, lambda: bool(server.verdicts()), timeout)
        except OSError as exc:
            return ClientRun((), 127, f"{argv[0]}: {exc.strerror or exc}")
        # The client's connections close with it; their verdicts follow within the wait.
        with contextlib.suppress(TimeoutError):
            server.wait_for_verdict(wait + 2.0)
        time.sleep(0.1)  # a second connection's verdict, closed at the same moment
        return ClientRun(tuple(server.verdicts()), code, output)


def run_clients(
    command: Sequence[str],
    patterns: Sequence[str] = (),
    *,
    user: str = "smb2auth",
    password: str | None = None,
    domain: str = "TESTGRP",
    timeout: float = DEFAULT_TIMEOUT,
    wait: float = 3.0,
    progress: Callable[[int, int, Result], None] | None = None,
) -> list[Result]:
    """Every selected scenario in order, the command run once against each; `progress(i, n, result)`."""
    if not command:
        raise ValueError("give the client command after --")
    password = password if password is not None else secrets.token_urlsafe(12)
    cases = select(CLIENT_CASES, patterns)
    results: list[Result] = []
    for i, case in enumerate(cases, 1):
        scenario = _BY_ID[case.id]
        start = time.monotonic()
        run = run_scenario(scenario, command, user=user, password=password, domain=domain, timeout=timeout,
                           wait=wait)
        result = Result(case, judge(scenario, run), time.monotonic() - start)
        results.append(result)
        if progress is not None:
            progress(i, len(cases), result)
    return results
