"""ServerConfig refuses settings the harness cannot honour, at construction."""

from __future__ import annotations

import math

import pytest

from smb2auth.authority.local import LocalAuthority
from smb2auth.ntlm.server import TargetInfo
from smb2auth.server.config import ServerConfig, host_dns_names
from smb2auth.smb2.negotiate import Dialect


@pytest.mark.parametrize("name", ["handshake_timeout", "idle_timeout"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 0.0, -1.0])
def test_timeouts_positive_and_finite(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=name):
        ServerConfig(authority=LocalAuthority(), **{name: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("top", [Dialect.SMB2_0_2, Dialect.SMB2_1])
def test_encrypt_needs_a_3x_dialect(top: Dialect) -> None:
    with pytest.raises(ValueError, match="encrypt needs a max_dialect of 3.0"):
        ServerConfig(authority=LocalAuthority(), encrypt=True, max_dialect=top)
    assert not ServerConfig(authority=LocalAuthority(), max_dialect=top).encrypt


@pytest.mark.parametrize("top", [Dialect.SMB3_0, Dialect.SMB3_0_2, Dialect.SMB3_1_1])
def test_encrypt_with_a_3x_top_dialect(top: Dialect) -> None:
    config = ServerConfig(authority=LocalAuthority(), encrypt=True, max_dialect=top)
    assert config.encrypt and config.dialects[0] == top


def test_target_gets_the_hosts_dns_names() -> None:
    # smbd's CHALLENGE carries the host's DNS names (Samba get_mydnsfullname / get_mydnsdomname).
    computer, domain = host_dns_names()
    assert computer and computer == computer.lower()
    target = ServerConfig(authority=LocalAuthority(), target=TargetInfo("TESTGRP", "HARNESS")).target
    assert (target.nb_domain, target.nb_computer, target.dns_computer, target.dns_domain) == (
        "TESTGRP", "HARNESS", computer, domain,
    )


def test_target_dns_names_given_are_kept() -> None:
    given = TargetInfo("TESTGRP", "HARNESS", dns_domain="example.org", dns_computer="harness.example.org")
    assert ServerConfig(authority=LocalAuthority(), target=given).target == given
