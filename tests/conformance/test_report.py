"""The suite's bookkeeping without a server: case selection, verdict labels, the table, JSON and JUnit
outputs, the exit rule; and that every case cites a spec section and is declared once."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from smb2auth.conformance import CASES, Result, select
from smb2auth.conformance.registry import Case, Group, Outcome, failed, passed, skipped, warned
from smb2auth.conformance.report import as_json, as_junit, as_table, failing, summary

SECTION = re.compile(r"^((MS-SMB2|MS-NLMP|MS-SPNG|RFC \d+) \d+(\.\d+)*(, \d+(\.\d+)*)*(; |, )?)+$")


def test_every_case_cites_its_section_and_has_a_unique_id() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert {c.group for c in CASES} == {"negotiate", "session", "ntlm", "spnego", "signing"}
    for case in CASES:
        assert SECTION.match(case.section), f"{case.id}: {case.section!r} is not a spec section"
        assert case.expectation, case.id


def test_a_group_refuses_the_same_id_twice() -> None:
    group = Group("g")
    group.add("a", "MS-SMB2 1", "x", lambda p: passed("ok"))
    with pytest.raises(ValueError, match="g.a declared twice"):
        group.add("a", "MS-SMB2 1", "y", lambda p: passed("ok"))


def test_select_by_substring_and_glob() -> None:
    chosen = select(CASES, ["negotiate.dialect-3"])
    assert [c.id for c in chosen] == ["negotiate.dialect-3.0", "negotiate.dialect-3.0.2",
                                      "negotiate.dialect-3.1.1"]
    assert [c.id for c in select(CASES, ["ntlm.mic-*", "spnego.kerberos-first"])] == [
        "ntlm.mic-tampered", "ntlm.mic-zeroed", "spnego.kerberos-first"]
    assert select(CASES, []) == list(CASES)
    assert select(CASES, ["no-such-case"]) == []


def _results(*outcomes: Outcome) -> list[Result]:
    cases = [Case(f"g.case-{i}", "MS-SMB2 3.3.5.4", f"expect {i} | piped", lambda p, o=o: o)
             for i, o in enumerate(outcomes)]
    return [Result(c, o, 0.25) for c, o in zip(cases, outcomes, strict=True)]


RESULTS = _results(passed("fine", "Samba"), failed("broken"), warned("weak"), skipped("absent"))


def test_labels_summary_and_exit_rule() -> None:
    assert [r.outcome.label for r in RESULTS] == ["PASS (Samba)", "FAIL", "WARN", "SKIP"]
    assert summary(RESULTS) == "4 cases: 1 PASS, 1 FAIL, 1 WARN, 1 SKIP"
    assert failing(RESULTS, strict=False)
    only_warn = _results(passed("fine"), warned("weak"))
    assert not failing(only_warn, strict=False) and failing(only_warn, strict=True)
    assert not failing(_results(passed("fine"), skipped("absent")), strict=True)


def test_table_rows_escape_bars() -> None:
    table = as_table(RESULTS).splitlines()
    assert table[0] == "| case | section | expectation | observed | verdict |"
    assert table[2] == "| g.case-0 | MS-SMB2 3.3.5.4 | expect 0 \\| piped | fine | PASS (Samba) |"
    assert table[-1] == "4 cases: 1 PASS, 1 FAIL, 1 WARN, 1 SKIP"


def test_json_document() -> None:
    document = json.loads(as_json(RESULTS, "127.0.0.1:445"))
    assert document["target"] == "127.0.0.1:445"
    assert document["summary"] == {"PASS": 1, "FAIL": 1, "WARN": 1, "SKIP": 1}
    first = document["cases"][0]
    assert first == {"id": "g.case-0", "section": "MS-SMB2 3.3.5.4", "expectation": "expect 0 | piped",
                     "verdict": "PASS", "platform": "Samba", "observed": "fine", "seconds": 0.25}


@pytest.mark.parametrize("strict", [False, True])
def test_junit_document(strict: bool) -> None:
    root = ET.fromstring(as_junit(RESULTS, "127.0.0.1:445", strict=strict))  # noqa: S314 (our own output)
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == "g" and suite.get("tests") == "4"
    assert suite.get("failures") == ("2" if strict else "1") and suite.get("skipped") == "1"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["g.case-1"].find("failure") is not None
    assert cases["g.case-3"].find("skipped") is not None
    assert (cases["g.case-2"].find("failure") is not None) is strict
    assert cases["g.case-0"].findtext("system-out") == "PASS (Samba): fine"
    assert (cases["g.case-2"].findtext("system-out") == "WARN: weak") is not strict
