"""The results as a table (Markdown, for a terminal and for README), as JSON, and as JUnit XML; the
progress line a terminal gets after each case; the exit status."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from typing import Any

from smb2auth.conformance.registry import Case, Verdict
from smb2auth.conformance.runner import Result

__all__ = ["as_json", "as_junit", "as_table", "failing", "listing", "progress_line", "summary"]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def as_table(results: Sequence[Result]) -> str:
    """A Markdown table: case, spec section, expectation, observed, verdict; then the summary line."""
    lines = ["| case | section | expectation | observed | verdict |", "|---|---|---|---|---|"]
    for r in results:
        cells = (r.case.id, r.case.section, r.case.expectation, r.outcome.observed, r.outcome.label)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n\n" + summary(results) + "\n"


def summary(results: Sequence[Result]) -> str:
    """ "56 cases: 48 PASS, 1 FAIL, 5 WARN, 2 SKIP"."""
    counts = Counter(r.verdict for r in results)
    parts = ", ".join(f"{counts[v]} {v.value}" for v in Verdict if counts[v])
    return f"{len(results)} cases: {parts or 'none run'}"


def as_json(results: Sequence[Result], target: str) -> str:
    counts = Counter(r.verdict for r in results)
    document: dict[str, Any] = {
        "target": target,
        "summary": {v.value: counts[v] for v in Verdict},
        "cases": [
            {
                "id": r.case.id,
                "section": r.case.section,
                "expectation": r.case.expectation,
                "verdict": r.verdict.value,
                "platform": r.outcome.platform or None,
                "observed": r.outcome.observed,
                "seconds": round(r.seconds, 3),
            }
            for r in results
        ],
    }
    return json.dumps(document, indent=2)


def as_junit(results: Sequence[Result], target: str, *, strict: bool = False) -> str:
    """One <testsuite> per group. FAIL is a <failure>, SKIP <skipped>; WARN is a <failure> with --strict,
    otherwise its observation goes to <system-out>."""
    root = ET.Element("testsuites", name=f"smb2auth conformance {target}")
    suites: dict[str, ET.Element] = {}
    for r in results:
        group = r.case.group
        suite = suites.get(group)
        if suite is None:
            suite = suites[group] = ET.SubElement(root, "testsuite", name=group)
        case = ET.SubElement(suite, "testcase", classname=f"conformance.{group}", name=r.case.id,
                             time=f"{r.seconds:.3f}")
        text = f"{r.case.section}: expected {r.case.expectation}; observed {r.outcome.observed}"
        if r.verdict is Verdict.FAIL or (strict and r.verdict is Verdict.WARN):
            ET.SubElement(case, "failure", message=r.outcome.observed, type=r.verdict.value).text = text
        elif r.verdict is Verdict.SKIP:
            ET.SubElement(case, "skipped", message=r.outcome.observed)
        else:
            ET.SubElement(case, "system-out").text = f"{r.outcome.label}: {r.outcome.observed}"
    for group, suite in suites.items():
        mine = [r for r in results if r.case.group == group]
        bad = sum(r.verdict is Verdict.FAIL or (strict and r.verdict is Verdict.WARN) for r in mine)
        suite.set("tests", str(len(mine)))
        suite.set("failures", str(bad))
        suite.set("skipped", str(sum(r.verdict is Verdict.SKIP for r in mine)))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def progress_line(i: int, n: int, result: Result) -> str:
    """ "[ 3/56] negotiate.dialect-3.0  PASS  3.0 negotiated, logged in"."""
    width = len(str(n))
    return f"[{i:>{width}}/{n}] {result.case.id:<36} {result.outcome.label:<12} {result.outcome.observed}"


def listing(cases: Sequence[Case]) -> str:
    """--list: each case's id, section and expectation."""
    return "".join(f"{c.id:<36} {c.section:<28} {c.expectation}\n" for c in cases)


def failing(results: Sequence[Result], *, strict: bool) -> bool:
    """Whether the run fails: a FAIL, or with `strict` a WARN."""
    bad = {Verdict.FAIL, Verdict.WARN} if strict else {Verdict.FAIL}
    return any(r.verdict in bad for r in results)
