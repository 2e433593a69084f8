"""Running cases against both servers, classing each disagreement, minimizing havoc cases.

A disagreement's category is decided at the first request the two servers answered differently (or, when
every answer agrees, by the connections' fates), most severe first:

* `ours completes a step smbd refuses`: we answered SUCCESS / MORE_PROCESSING_REQUIRED, smbd did not;
* `we refuse what smbd accepts`: the reverse;
* `connection fate differs`: one closed (or went silent) where the other answered or stayed;
* `status differs`: both refused, with different statuses.

Its class is the case's mutation (kind and label) and the category. A disagreement is run a second time;
one that does not show again (a server slower than the timeout once; the second run waits three times as
long) is counted as unstable, not classed.
"""

from __future__ import annotations

import itertools
import struct
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from fuzz.differential.cases import Case, make_case
from fuzz.differential.script import CLOSED, NBSS_POSITIVE, NO_ANSWER, SILENT, Account, Outcome, run

__all__ = ["CATEGORIES", "Campaign", "Disagreement", "Unstable", "classify", "run_campaign"]

OURS_ACCEPTS = "ours completes a step smbd refuses"
OURS_REFUSES = "we refuse what smbd accepts"
FATE = "connection fate differs"
STATUS = "status differs"
CATEGORIES = (OURS_ACCEPTS, OURS_REFUSES, FATE, STATUS)
_GOING_ON = {"STATUS_SUCCESS", "STATUS_MORE_PROCESSING_REQUIRED", NBSS_POSITIVE}
_GONE = {CLOSED, SILENT, NO_ANSWER}


def _accepted(step: tuple[str, ...] | None) -> bool:
    return step is not None and all(s in _GOING_ON for s in step)


def classify(ours: Outcome, smbd: Outcome) -> str | None:
    """The category of a disagreement, None when the servers agree."""
    if ours == smbd:
        return None
    for a, b in itertools.zip_longest(ours.steps, smbd.steps):
        if a == b:
            continue
        if _accepted(a) and (not _accepted(b) or len(a or ()) > len(b or ())):
            return OURS_ACCEPTS
        if _accepted(b) and not _accepted(a):
            return OURS_REFUSES
        gone_a = a is None or bool(set(a) & _GONE)
        gone_b = b is None or bool(set(b) & _GONE)
        if gone_a != gone_b or ours.fate != smbd.fate:
            return FATE
        return STATUS
    return FATE


@dataclass
class Disagreement:
    case: Case
    category: str
    ours: Outcome
    smbd: Outcome
    name: str = ""  # the class: the (minimized) case's name

    def to_json(self) -> dict[str, object]:
        return {
            "case": self.case.index,
            "family": self.case.family,
            "edits": [str(e) for e in self.case.edits],
            "ours": str(self.ours),
            "smbd": str(self.smbd),
        }


@dataclass
class Unstable:
    """A case whose second run did not show the category its first run did."""

    case: Case
    category: str
    ours: Outcome
    smbd: Outcome

    def __str__(self) -> str:
        shown = f"case {self.case.index} {self.case.name}: {self.category}"
        return f"{shown}: ours {self.ours} / smbd {self.smbd}"


@dataclass
class Campaign:
    seed: int
    cases: int = 0
    elapsed: float = 0.0
    per_family: Counter[str] = field(default_factory=Counter)
    disagreements: list[Disagreement] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unstable: list[Unstable] = field(default_factory=list)

    def classes(self) -> dict[tuple[str, str], list[Disagreement]]:
        out: dict[tuple[str, str], list[Disagreement]] = {}
        for d in self.disagreements:
            out.setdefault((d.name, d.category), []).append(d)
        return out


Runner = Callable[[Case], tuple[Outcome, Outcome]]


def _minimize(case: Case, category: str, both: Runner) -> tuple[Case, Outcome, Outcome] | None:
    """The smallest proper subset of a havoc case's edits that shows the same category, or None."""
    for size in range(1, len(case.edits)):
        for subset in itertools.combinations(case.edits, size):
            smaller = Case(case.index, case.family, subset)
            ours, smbd = both(smaller)
            if classify(ours, smbd) == category:
                return smaller, ours, smbd
    return None


def run_campaign(
    seed: int,
    count: int,
    ours: tuple[str, int],
    smbd: tuple[str, int],
    *,
    account: Account,
    timeout: float = 1.0,
    time_limit: float | None = None,
    progress: Callable[[int], None] | None = None,
    only: tuple[str, ...] = (),
    jobs: int = 1,
    checkpoint: Callable[[Campaign], None] | None = None,
    checkpoint_every: int = 2000,
) -> Campaign:
    """Cases 0..count-1 of `seed` against both servers, within `time_limit` seconds if given; with `only`,
    just the cases whose every edit's kind starts with one of those prefixes. `jobs` cases run at once (each
    on its own connections; most of a case's time is a server's silence waited out), recorded in index
    order, so the report is the same for any `jobs`. `checkpoint`, if given, sees the campaign so far every
    `checkpoint_every` cases (a long run stopped early still leaves its figures)."""
    campaign = Campaign(seed)
    start = time.monotonic()

    def both(case: Case, wait: float = timeout) -> tuple[Outcome, Outcome]:
        return run(case.edits, ours, account, wait), run(case.edits, smbd, account, wait)

    baseline = both(Case(-1, "baseline", ()))
    for outcome, who in zip(baseline, ("ours", "smbd"), strict=True):
        if outcome.steps[-1] != ("STATUS_SUCCESS",) or outcome.fate != "open":
            raise RuntimeError(f"the unmutated login does not succeed on {who}: {outcome}")

    def one(case: Case) -> Disagreement | Unstable | None | str:
        try:
            ours_outcome, smbd_outcome = both(case)
        except (ValueError, IndexError, KeyError, TypeError, OverflowError, struct.error) as exc:
            return f"case {case.index} {case.name}: {type(exc).__name__}: {exc}"
        category = classify(ours_outcome, smbd_outcome)
        if category is None:
            return None
        if classify(*both(case, 3 * timeout)) != category:
            # A server slower than `timeout` once (a loaded machine) is no behaviour: counted apart. The
            # second run waits three times as long, so a server that is merely slow answers this time.
            return Unstable(case, category, ours_outcome, smbd_outcome)
        shown = case
        if len(case.edits) > 1:
            smaller = _minimize(case, category, both)
            if smaller is not None:
                shown, ours_outcome, smbd_outcome = smaller
        return Disagreement(shown, category, ours_outcome, smbd_outcome, shown.name)

    def record(case: Case, result: Disagreement | Unstable | None | str) -> None:
        if isinstance(result, str):
            campaign.errors.append(result)
            return
        campaign.cases += 1
        campaign.per_family[case.family] += 1
        if isinstance(result, Unstable):
            campaign.unstable.append(result)
        elif result is not None:
            campaign.disagreements.append(result)
        if progress is not None:
            progress(case.index)
        if checkpoint is not None and campaign.cases % checkpoint_every == 0:
            campaign.elapsed = time.monotonic() - start
            checkpoint(campaign)

    def cases() -> Iterator[Case]:
        for index in range(count):
            if time_limit is not None and time.monotonic() - start > time_limit:
                return
            case = make_case(seed, index)
            if not only or all(e.kind.startswith(only) for e in case.edits):
                yield case

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        pending: deque[tuple[Case, Future[Disagreement | Unstable | None | str]]] = deque()
        for case in cases():
            pending.append((case, pool.submit(one, case)))
            while len(pending) >= 4 * max(1, jobs) or (pending and pending[0][1].done()):
                done_case, future = pending.popleft()
                record(done_case, future.result())
        for done_case, future in pending:
            record(done_case, future.result())
    campaign.elapsed = time.monotonic() - start
    return campaign
