"""The hostile harness (server/hostile.py) with our own client in process: the verdict in the login event,
a scenario that does not apply, and the configuration's checks."""

from __future__ import annotations

import socket

import pytest

from smb2auth.authority.local import LocalAuthority
from smb2auth.client import ALL_DIALECTS, connect
from smb2auth.commands.main import build_parser
from smb2auth.commands.serve import server_config
from smb2auth.errors import Smb2AuthError
from smb2auth.server.config import ServerConfig
from smb2auth.server.hostile import SCENARIO_NAMES
from smb2auth.smb2.negotiate import Dialect
from smb2auth.testing import RunningServer, running_server

PASSWORD = "Passw0rd!"
DOWNGRADE = "validate-negotiate-downgrade"


def login(server: RunningServer, dialects: tuple[Dialect, ...] = ALL_DIALECTS) -> str:
    """Connect and tree connect to "share"; the error's text when our client refused."""
    try:
        with connect(server.host, server.port, username=server.username, password=server.password,
                     domain=server.domain, timeout=10, dialects=dialects) as session:
            session.tree_connect("share")
    except Smb2AuthError as exc:
        return str(exc)
    return ""


@pytest.mark.parametrize("scenario", ["setup-wrong-key", "negtokenresp-reject", "credits-0"])
def test_our_client_refuses_and_the_event_says_so(scenario: str) -> None:
    with running_server(password=PASSWORD, hostile=scenario, shares=("share",), hostile_wait=1.0) as server:
        assert login(server) != ""
        verdict = server.wait_for_verdict()
    assert (verdict.hostile, verdict.refused, verdict.success) == (scenario, True, True)
    assert verdict.observed.startswith("closed the connection after the ")
    assert f"hostile={scenario} refused" in verdict.describe()


def test_a_grant_of_65535_is_taken() -> None:
    with running_server(password=PASSWORD, hostile="credits-65535", shares=("share",)) as server:
        assert login(server) == ""
        verdict = server.wait_for_verdict()
    assert (verdict.refused, verdict.observed) == (False, "took the grant: TREE_CONNECT with MessageId 3")


def test_a_scenario_that_does_not_apply_says_why() -> None:
    with running_server(password=PASSWORD, hostile="setup-no-preauth", shares=("share",)) as server:
        assert login(server, dialects=(Dialect.SMB3_0_2,)) == ""
        verdict = server.wait_for_verdict()
    assert (verdict.refused, verdict.observed) == (None, "negotiated 3.0.2: the scenario needs 3.1.1")


def test_the_downgrade_needs_a_lower_3x_dialect() -> None:
    with running_server(password=PASSWORD, hostile=DOWNGRADE, shares=("share",)) as server:
        assert login(server, dialects=(Dialect.SMB3_1_1,)) == ""
        verdict = server.wait_for_verdict()
    assert verdict.refused is None
    assert verdict.observed == "the client offers no 3.0 or 3.0.2 below the dialect chosen (3.1.1)"


def test_the_downgrade_is_caught_by_our_client() -> None:
    with running_server(password=PASSWORD, hostile=DOWNGRADE, shares=("share",)) as server:
        error = login(server)
        verdict = server.wait_for_verdict()
    assert "Dialect" in error and (verdict.dialect, verdict.refused) == ("3.0", True)


def test_config_names_a_known_scenario() -> None:
    with pytest.raises(ValueError, match="unknown hostile scenario"):
        ServerConfig(authority=LocalAuthority(), hostile="be-nice")
    assert len(SCENARIO_NAMES) == 11


def test_serve_takes_the_scenario() -> None:
    args = build_parser().parse_args(["serve", "--hostile", "credits-0", "--hostile-wait", "1.5"])
    config = server_config(args, LocalAuthority())
    assert (config.hostile, config.hostile_wait) == ("credits-0", 1.5)
    assert server_config(build_parser().parse_args(["serve"]), LocalAuthority()).hostile is None


def test_a_client_that_never_gets_there_is_not_applied() -> None:
    with running_server(password=PASSWORD, hostile="setup-unsigned", shares=("share",)) as server:
        socket.create_connection((server.host, server.port), timeout=5).close()
        verdict = server.wait_for_verdict()
    assert (verdict.refused, verdict.status) == (None, "STATUS_CANCELLED")
    assert verdict.observed == "the client never reached the hostile step (connection lost)"


@pytest.mark.parametrize("smb2_hostile_server", ["session-id-other"], indirect=True)
def test_the_pytest_fixture(smb2_hostile_server: RunningServer) -> None:
    assert login(smb2_hostile_server) != ""
    verdict = smb2_hostile_server.wait_for_verdict()
    assert (verdict.hostile, verdict.refused) == ("session-id-other", True)
