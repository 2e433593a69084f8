"""The interop matrix: every SMB2 client people use, on every dialect it offers, logs into our harness as it
logs into smbd. Each row runs the client once against smbd and once against our harness, both requiring
signing (the NTLMv1 client: both permitting NTLMv1, unsigned): login, TREE_CONNECT to IPC$, LOGOFF. Against
ours the harness's login event must say who logged in, on which dialect, and that the session signs.
A failure says whose it is: "the client's" when smbd refuses it too, "ours" when only we do.
`python -m tests.interop.matrix` prints the same rows as a table.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tests.interop.clients import (
    Client,
    Servers,
    event_problem,
    go_smb2_program,
    rows,
    session_problem,
    use_go_program,
)
from tests.peers import missing_peer

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    with contextlib.ExitStack() as stack:
        yield Servers(stack)


@pytest.fixture(scope="module")
def go_program() -> Iterator[None]:
    with go_smb2_program() as binary:
        use_go_program(binary)
        yield


@pytest.mark.parametrize(("c", "dialect"), rows(), ids=[f"{c.name.replace(' ', '-')}-{d}" for c, d in rows()])
def test_client_logs_in(c: Client, dialect: str, servers: Servers, request: pytest.FixtureRequest) -> None:
    missing = c.missing()
    if missing is not None:
        missing_peer(f"{c.name}: {missing}")
    if c.name == "go-smb2":
        request.getfixturevalue("go_program")
    ours, smbd = servers.targets(c, dialect)
    theirs = session_problem(c, dialect, c.session(smbd, dialect))
    harness = servers.ours(c, dialect)
    before = len(harness.events)
    mine = session_problem(c, dialect, c.session(ours, dialect))
    events = harness.events[before:]
    if theirs:
        pytest.fail(f"the client's: {c.name} {dialect} fails against smbd too: {theirs}", pytrace=False)
    assert mine == "", f"ours: {c.name} {dialect} works against smbd, not against us: {mine}; events {events}"
    assert event_problem(c, dialect, events) == "", f"ours: {c.name} {dialect}"
