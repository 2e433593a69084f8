"""The conformance cases and their verdicts: what a case is, what it may conclude, and how cases are picked.

A case is one small function of a `Probe` (fresh connections to the server under test) returning an
`Outcome`: a verdict and what was observed. PASS: the server does what the cited section says. FAIL: it does
not. WARN: the spec allows what it did, but it weakens security (NTLMv1 or LM accepted, a null session, guest
fallback, signing not required, SMB 2.0.2). SKIP: the case does not apply (a dialect or feature the server
does not offer), with the reason. Where Windows and Samba legitimately differ the outcome names the behaviour
seen (`platform`), rendered "PASS (Samba)".
"""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smb2auth.conformance.probe import Probe

__all__ = ["Case", "Group", "Outcome", "Verdict", "failed", "passed", "select", "skipped", "warned"]


class Verdict(enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    WARN = "WARN"
    SKIP = "SKIP"


@dataclass(frozen=True)
class Outcome:
    """A case's verdict, what it saw (or why it skipped), and which legitimate behaviour it was."""

    verdict: Verdict
    observed: str
    platform: str = ""

    @property
    def label(self) -> str:
        """ "PASS", or "PASS (Samba)" when the case names the behaviour it saw."""
        return f"{self.verdict.value} ({self.platform})" if self.platform else self.verdict.value


def passed(observed: str, platform: str = "") -> Outcome:
    return Outcome(Verdict.PASS, observed, platform)


def failed(observed: str) -> Outcome:
    return Outcome(Verdict.FAIL, observed)


def warned(observed: str, platform: str = "") -> Outcome:
    return Outcome(Verdict.WARN, observed, platform)


def skipped(reason: str) -> Outcome:
    return Outcome(Verdict.SKIP, reason)


Check = Callable[["Probe"], Outcome]


@dataclass(frozen=True)
class Case:
    """One case: its id ("group.name"), the spec section its expectation cites, the expectation, its check."""

    id: str
    section: str
    expectation: str
    check: Check

    @property
    def group(self) -> str:
        return self.id.partition(".")[0]


class Group:
    """The cases of one group, in the order they are declared."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cases: list[Case] = []

    def add(self, name: str, section: str, expectation: str, check: Check) -> None:
        case_id = f"{self.name}.{name}"
        if any(c.id == case_id for c in self.cases):
            raise ValueError(f"case {case_id} declared twice")
        self.cases.append(Case(case_id, section, expectation, check))

    def case(self, name: str, section: str, expectation: str) -> Callable[[Check], Check]:
        """Declare the decorated function as case `name` of this group."""

        def declare(check: Check) -> Check:
            self.add(name, section, expectation, check)
            return check

        return declare


def select(cases: Iterable[Case], patterns: Sequence[str]) -> list[Case]:
    """The cases whose id matches any of `patterns` (a glob when it has *, ? or [, else a substring); all of
    them without patterns."""
    chosen = []
    for case in cases:
        if not patterns or any(_matches(case.id, p) for p in patterns):
            chosen.append(case)
    return chosen


def _matches(case_id: str, pattern: str) -> bool:
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(case_id, pattern)
    return pattern in case_id
