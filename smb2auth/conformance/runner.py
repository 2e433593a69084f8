"""Running the cases: each on fresh connections within its time limit, one after another, a result per case.

A case that raises is judged here: running out of time, the server closing the connection where the case
expected an answer, or the client refusing what the server sent are FAILs that say so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from smb2auth.conformance.probe import CaseTimeout, Closed, Probe, Profile, Target
from smb2auth.conformance.registry import Case, Outcome, Verdict, failed
from smb2auth.errors import Smb2AuthError

__all__ = ["DEFAULT_TIMEOUT", "Result", "run"]

DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Result:
    case: Case
    outcome: Outcome
    seconds: float

    @property
    def verdict(self) -> Verdict:
        return self.outcome.verdict


def run_case(case: Case, target: Target, profile: Profile, timeout: float) -> Outcome:
    """One case's outcome; whatever it raises becomes a FAIL that says what happened."""
    probe = Probe(target, timeout, profile)
    try:
        return case.check(probe)
    except CaseTimeout as exc:
        return failed(str(exc))
    except Closed as exc:
        return failed(f"connection closed: {exc}")
    except Smb2AuthError as exc:
        return failed(str(exc))
    except OSError as exc:
        return failed(f"connection failed: {exc.strerror or exc}")
    except Exception as exc:  # a case that breaks on what the server sent is a FAIL, not a traceback
        return failed(f"unexpected answer: {type(exc).__name__}: {exc}")
    finally:
        probe.close()


def run(
    cases: Sequence[Case],
    target: Target,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Callable[[int, int, Result], None] | None = None,
) -> list[Result]:
    """Every case in order against `target`; `progress(i, n, result)` after each."""
    profile = Profile(target, timeout)
    results: list[Result] = []
    for i, case in enumerate(cases, 1):
        start = time.monotonic()
        outcome = run_case(case, target, profile, timeout)
        result = Result(case, outcome, time.monotonic() - start)
        results.append(result)
        if progress is not None:
            progress(i, len(cases), result)
    return results
