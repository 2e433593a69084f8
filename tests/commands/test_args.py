"""The shared argument helpers: --listen, the loopback warning, the names a server announces."""

from __future__ import annotations

import argparse
from dataclasses import replace

import pytest

from smb2auth.commands._args import build_target, is_loopback, parse_listen, warn_if_exposed
from smb2auth.ntlm.server import TargetInfo


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4447", ("127.0.0.1", 4447)),  # a bare port is loopback (issue 11: not host 0.0.17.95)
        ("0", ("127.0.0.1", 0)),
        (":4447", ("127.0.0.1", 4447)),
        ("0.0.0.0:4447", ("0.0.0.0", 4447)),
        ("localhost", ("localhost", 445)),
        ("[::1]:81", ("::1", 81)),
        ("[::1]", ("::1", 445)),
        ("::1", ("::1", 445)),
        ("fe80::1", ("fe80::1", 445)),
    ],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text, 445) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("h:abc", "bad port in 'h:abc'"), ("99999", "port out of range"), ("[::1", "unclosed ["),
     ("[::1]x", "junk after ]"), ("[::1]:", "bad port")],
)
def test_parse_listen_refuses(text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=message.replace("[", r"\[")):
        parse_listen(text, 445)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("localhost", True), ("LocalHost", True),
     ("0.0.0.0", False), ("::", False), ("192.0.2.1", False), ("example.org", False)],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_warning_is_one_line_for_every_exposed_address(capsys: pytest.CaptureFixture[str]) -> None:
    warn_if_exposed("serve", [("127.0.0.1", 1), ("localhost", 2), ("::1", 3)])
    assert capsys.readouterr().err == ""
    warn_if_exposed("serve", [("0.0.0.0", 4445), ("127.0.0.1", 1), ("::", 4446)])
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("smb2auth serve: warning: 0.0.0.0:4445, [::]:4446 is not loopback")


def names(computer: str | None = None, dns_domain: str | None = None, domain: str = "WORKGROUP"
          ) -> argparse.Namespace:
    return argparse.Namespace(computer=computer, dns_domain=dns_domain, domain=domain)


BASE = TargetInfo(nb_domain="WORKGROUP", nb_computer="SMB2AUTH", dns_domain="", dns_computer="host1")


def test_target_defaults_pass_through() -> None:
    # Without --computer/--dns-domain the library's default names stand, whatever they are.
    assert build_target(names(), BASE) == BASE
    assert build_target(names(domain="testgrp"), BASE) == replace(BASE, nb_domain="TESTGRP")


@pytest.mark.parametrize(
    ("computer", "dns_domain", "nb_computer", "dns_computer", "announced_domain"),
    [
        ("harness", None, "HARNESS", "harness", ""),
        ("harness", "Test.Example", "HARNESS", "harness.test.example", "test.example"),
        ("Harness.Lab.Example", None, "HARNESS", "harness.lab.example", ""),
        ("harness.lab.example", "other.example", "HARNESS", "harness.lab.example", "other.example"),
        (None, "test.example.", "SMB2AUTH", "host1.test.example", "test.example"),
        (None, "", "SMB2AUTH", "host1", ""),
    ],
)
def test_computer_and_dns_domain_override(
    computer: str | None, dns_domain: str | None, nb_computer: str, dns_computer: str, announced_domain: str
) -> None:
    target = build_target(names(computer, dns_domain), BASE)
    assert (target.nb_computer, target.dns_computer, target.dns_domain) == (
        nb_computer, dns_computer, announced_domain,
    )
    assert target.nb_domain == "WORKGROUP"


def test_dns_domain_without_a_dns_computer_name_uses_the_netbios_one() -> None:
    base = replace(BASE, dns_computer="")
    assert build_target(names(dns_domain="test.example"), base).dns_computer == "smb2auth.test.example"


def test_empty_computer_name_is_refused() -> None:
    with pytest.raises(ValueError, match="--computer: empty name"):
        build_target(names(computer="."), BASE)
