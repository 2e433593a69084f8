"""`smb2auth conformance`: the command against our harness in-process: the table, --json, --junit, -k,
--list, --strict and its exit status, the password's sources, and bad input answered with one line."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from smb2auth.commands._args import PASSWORD_ENV
from smb2auth.conformance import CASES
from smb2auth.conformance.clients import CLIENT_CASES
from smb2auth.testing import running_server
from tests.peers import free_port
from tests.test_cli_errors import error_line, run_main

TWO = ["-k", "negotiate.dialect-3.1.1", "-k", "signing.final-response-3.1.1"]


def test_list_needs_no_server(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "conformance", "--list")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == [c.id for c in CASES]
    assert lines[0].split()[1:3] == ["MS-SMB2", "3.3.5.4"]
    code, out, _ = run_main(capsys, "conformance", "--list", "-k", "spnego.")
    assert code == 0 and all(line.startswith("spnego.") for line in out.splitlines())


def test_json_and_junit(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    junit = tmp_path / "conformance.xml"
    with running_server() as s:
        code, out, err = run_main(capsys, "conformance", f"//127.0.0.1:{s.port}",
                                  "-U", f"{s.domain}/{s.username}%{s.password}", *TWO, "--json",
                                  "--junit", str(junit))
        assert code == 0, err
        assert all(e.success and e.user == s.username for e in s.events)
    document = json.loads(out)
    assert document["target"] == f"127.0.0.1:{s.port}"
    assert [(c["id"], c["verdict"]) for c in document["cases"]] == [
        ("negotiate.dialect-3.1.1", "PASS"), ("signing.final-response-3.1.1", "PASS")]
    assert document["summary"] == {"PASS": 2, "FAIL": 0, "WARN": 0, "SKIP": 0}
    root = ET.fromstring(junit.read_text())  # noqa: S314 (our own output)
    assert sorted(c.get("name") or "" for c in root.iter("testcase")) == [
        "negotiate.dialect-3.1.1", "signing.final-response-3.1.1"]
    assert root.find(".//failure") is None
    assert err == "", "no progress lines when stderr is not a terminal"


def test_table_and_strict(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    with running_server(signing_required=False) as s:
        monkeypatch.setenv(PASSWORD_ENV, s.password)
        args = ["conformance", f"//127.0.0.1:{s.port}", "-U", f"{s.domain}/{s.username}",
                "-k", "negotiate.signing-required"]
        code, out, err = run_main(capsys, *args)
        assert code == 0, err
        lines = out.splitlines()
        assert lines[0] == "| case | section | expectation | observed | verdict |"
        assert lines[2].endswith("| signing enabled, not required | WARN |")
        assert lines[-1] == "1 cases: 1 WARN"
        code, out, err = run_main(capsys, *args, "--strict")
        assert code == 1, err


def test_a_fail_is_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with running_server() as s:
        code, out, _ = run_main(capsys, "conformance", f"//127.0.0.1:{s.port}", "-U",
                                f"{s.domain}/{s.username}%wrong", "-k", "session.new", "--json")
    assert code == 1
    [case] = json.loads(out)["cases"]
    assert case["verdict"] == "FAIL" and case["observed"].startswith("STATUS_LOGON_FAILURE")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-U", "a%b", "-k", "nothing-like-this"], "-k nothing-like-this: no case matches"),
        (["-U", "a%b"], "give the server as //HOST[:PORT]"),
        (["//127.0.0.1:1"], "give the account with -U [DOMAIN/]USER[%PASSWORD]"),
        (["//127.0.0.1:1/share", "-U", "a%b"],
         "target '//127.0.0.1:1/share': the suite takes //HOST[:PORT], no share"),
        (["//127.0.0.1:1", "-U", "%b"], "-U '%b': no user name"),
        (["//127.0.0.1:1", "-U", "a%b", "--stdin"], "--stdin: the password is already given after % in -U"),
    ],
    ids=["no-match", "no-target", "no-user", "share", "no-name", "stdin-and-password"],
)
def test_bad_input_is_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, out, err = run_main(capsys, "conformance", *args)
    assert (code, out) == (2, "")
    assert error_line(err) == f"smb2auth conformance: {message}"


def test_nothing_listening_is_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "conformance", f"//127.0.0.1:{free_port()}", "-U", "a%b")
    assert (code, out) == (1, "")
    assert error_line(err).startswith("smb2auth conformance: ")


# --- --client: the client suite through the command ---------------------------------------------------


def test_client_list_needs_no_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "conformance", "--client", "--list")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == [c.id for c in CLIENT_CASES]


def test_client_runs_the_command_after_the_dashes(capsys: pytest.CaptureFixture[str]) -> None:
    # Our own client against two scenarios: the options before -- are the suite's, those after the client's.
    command = [sys.executable, "-m", "smb2auth", "connect", "//{host}:{port}/{share}", "-U",
               "{domain}/{user}%{password}"]
    code, out, err = run_main(capsys, "conformance", "--client", "-k", "credits-65535", "-k",
                              "setup-wrong-key", "--json", "--", *command)
    assert code == 0, err
    document = json.loads(out)
    assert document["target"] == " ".join(command)
    assert [(c["id"], c["verdict"]) for c in document["cases"]] == [
        ("client.setup-wrong-key", "PASS"), ("client.credits-65535", "PASS")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--client", "-k", "nothing-like-this", "--", "true"], "-k nothing-like-this: no scenario matches"),
        (["--client"], "give the client command after --, e.g. -- smbclient //{host}/{share} -p {port} ..."),
        (["--client", "--stdin", "--", "true"],
         "--stdin: the client suite makes its own account (-U names it)"),
        (["--client", "-U", "%b", "--", "true"], "-U '%b': no user name"),
        (["-U", "a%b", "--", "smbclient", "-L", "x"],
         "unexpected arguments 'smbclient -L x' (a client command needs --client)"),
    ],
    ids=["no-match", "no-command", "stdin", "no-name", "command-without-client"],
)
def test_client_bad_input_is_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run_main(capsys, "conformance", *args)
    assert (code, out) == (2, "")
    assert error_line(err) == f"smb2auth conformance: {message}"


def test_serve_hostile_names_a_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "serve", "--hostile", "nothing-like-this")
    assert (code, out) == (2, "")
    assert "'nothing-like-this' is not a scenario: setup-unsigned, " in err
