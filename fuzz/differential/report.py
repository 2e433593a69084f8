"""The table a run prints and the JSON it writes: counts per category and per class, a few examples each."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from fuzz.differential.compare import CATEGORIES, Campaign, Disagreement

__all__ = ["EXAMPLES", "render", "to_json"]

EXAMPLES = 3


def to_json(campaign: Campaign, known: Callable[[Disagreement], str | None] | None = None) -> dict[str, Any]:
    """`known` says why a disagreement is kept (known.explain); a class is known when all its cases are."""
    def why(d: Disagreement) -> str | None:
        return known(d) if known is not None else None

    classes = []
    for (name, category), found in sorted(campaign.classes().items(), key=lambda kv: (
            CATEGORIES.index(kv[0][1]), -len(kv[1]), kv[0][0])):
        outcomes = Counter(f"ours {d.ours}  /  smbd {d.smbd}" for d in found)
        classes.append({
            "class": name,
            "category": category,
            "count": len(found),
            "known": why(found[0]) if all(why(d) for d in found) else None,
            "outcomes": dict(outcomes.most_common()),
            "examples": [d.to_json() for d in found[:EXAMPLES]],
        })
    return {
        "seed": campaign.seed,
        "cases": campaign.cases,
        "elapsed_seconds": round(campaign.elapsed, 1),
        "cases_per_family": dict(sorted(campaign.per_family.items())),
        "disagreements": len(campaign.disagreements),
        "outside_known": sum(1 for d in campaign.disagreements if why(d) is None),
        "per_category": {c: sum(1 for d in campaign.disagreements if d.category == c) for c in CATEGORIES},
        "classes": classes,
        "fuzzer_errors": campaign.errors,
        "unstable": [str(u) for u in campaign.unstable],
    }


def render(report: dict[str, Any], *, examples: bool = True) -> str:
    lines = [
        f"seed {report['seed']}: {report['cases']} cases in {report['elapsed_seconds']} s "
        f"({', '.join(f'{k} {v}' for k, v in report['cases_per_family'].items())}), "
        f"{report['disagreements']} disagreements ({report['outside_known']} outside known.py), "
        f"{len(report['unstable'])} unstable",
        "",
        "| category | cases |",
        "|---|---:|",
    ]
    lines += [f"| {c} | {n} |" for c, n in report["per_category"].items()]
    lines += ["", "| class | category | cases | known |", "|---|---|---:|---|"]
    for cls in report["classes"]:
        known = "yes" if cls["known"] else ""
        lines.append(f"| {cls['class']} | {cls['category']} | {cls['count']} | {known} |")
    if examples:
        for cls in report["classes"]:
            lines += ["", f"## {cls['class']} ({cls['category']}, {cls['count']})"]
            for outcome, n in list(cls["outcomes"].items())[:4]:
                lines.append(f"  {n:4} x {outcome}")
            for ex in cls["examples"]:
                lines.append(f"  case {ex['case']}: {' + '.join(ex['edits'])}")
    if report["unstable"]:
        lines += ["", f"{len(report['unstable'])} unstable (not shown again on a second run):"]
        lines += [f"  {u}" for u in report["unstable"][:10]]
    for error in report["fuzzer_errors"]:
        lines.append(f"fuzzer error: {error}")
    return "\n".join(lines)
