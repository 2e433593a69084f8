"""Shared fixtures: real peers (see tests/peers.py); the hypothesis profile every test runs under."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest
from hypothesis import settings

from tests.addc import DomainController, running_addc, running_second_dc
from tests.peers import Smbd, running_smbd

# No deadline: hypothesis' default 200 ms per example is a timing assertion, and fails on a loaded machine.
# Everything else (max_examples included) stays as hypothesis and each test's @settings have it.
settings.register_profile("smb2auth", deadline=None)
settings.load_profile("smb2auth")


@pytest.fixture(scope="session")
def smbd() -> Iterator[Smbd]:
    """A private smbd on loopback with user alice / Passw0rd!, default signing."""
    with running_smbd() as server:
        yield server


@pytest.fixture(scope="session")
def smbd_factory() -> Iterator[Callable[[str], Smbd]]:
    """Start extra smbd instances with their own [global] lines; all are stopped at session end."""
    with contextlib.ExitStack() as stack:

        def start(extra_global: str) -> Smbd:
            return stack.enter_context(running_smbd(extra_global))

        yield start


@pytest.fixture(scope="session")
def addc() -> Iterator[DomainController]:
    """One Samba AD DC for the whole session (provisioning takes 10-20 s): domain SMB2AUTH, user alice,
    machine account HARNESS$ (tests/addc.py)."""
    with running_addc() as dc:
        yield dc


@pytest.fixture(scope="session")
def addc2(addc: DomainController) -> Iterator[DomainController]:
    """A second DC of the same domain (samba-tool domain join, ~10 s), replicated once from the first: it
    knows alice and HARNESS$, not the accounts made later."""
    with running_second_dc(addc) as dc:
        yield dc


@pytest.fixture(scope="session")
def domain_accounts(addc: DomainController) -> dict[str, str]:
    """More accounts on the DC: bob (disabled), carol (must change her password), dave (in no group of
    ours), erin (account expired); the group engineers with alice in it. -> the SIDs of alice, dave,
    engineers and Domain Users."""
    addc.tool("user", "create", "bob", "B0b!Passw0rd")
    addc.tool("user", "disable", "bob")
    addc.tool("user", "create", "carol", "C4rol!Passw0rd", "--must-change-at-next-login")
    addc.tool("user", "create", "dave", "D4ve!Passw0rd")
    addc.tool("user", "create", "erin", "E4rin!Passw0rd")
    addc.tool("user", "setexpiry", "erin", "--days=0")
    addc.tool("group", "add", "engineers")
    addc.tool("group", "addmembers", "engineers", addc.user)
    sids = {name: addc.sid(name) for name in (addc.user, "dave")}
    sids.update({name: addc.sid(name, group=True) for name in ("engineers", "Domain Users")})
    return sids
