"""What the NTLM server's CHALLENGE carries (checked against a real smbd in tests/interop/test_challenge.py),
and which response kind an AUTHENTICATE's response lengths mean."""

from __future__ import annotations

import pytest

from smb2auth.authority.local import LocalAuthority
from smb2auth.ntlm import NtlmServer, TargetInfo
from smb2auth.ntlm.authority import ResponseKind
from smb2auth.ntlm.events import Send
from smb2auth.ntlm.messages import AvId, ChallengeMessage, NegotiateFlags, NegotiateMessage, Version, av_get
from smb2auth.ntlm.server import classify_response

ASKS = (
    NegotiateFlags.NTLMSSP_NEGOTIATE_UNICODE
    | NegotiateFlags.NTLMSSP_REQUEST_TARGET
    | NegotiateFlags.NTLMSSP_NEGOTIATE_NTLM
)


def challenge_for(target: TargetInfo, flags: int = ASKS) -> ChallengeMessage:
    server = NtlmServer(LocalAuthority(), target=target, clock=lambda: 1_700_000_000.0)
    event = server.receive(NegotiateMessage(flags).pack())
    assert isinstance(event, Send)
    return ChallengeMessage.unpack(event.token)


def test_names_in_smbds_order() -> None:
    target = TargetInfo("TESTGRP", "HARNESS", "example.org", "harness.example.org", "example.org")
    pairs = challenge_for(target).target_info
    # Samba ntlmssp_server_negotiate / Windows: NetBIOS domain, computer, DNS domain, computer, (tree), time.
    assert [p.id for p in pairs] == [
        AvId.MsvAvNbDomainName,
        AvId.MsvAvNbComputerName,
        AvId.MsvAvDnsDomainName,
        AvId.MsvAvDnsComputerName,
        AvId.MsvAvDnsTreeName,
        AvId.MsvAvTimestamp,
    ]
    assert av_get(pairs, AvId.MsvAvDnsComputerName) == "harness.example.org".encode("utf-16-le")
    assert av_get(pairs, AvId.MsvAvDnsDomainName) == "example.org".encode("utf-16-le")


def test_empty_dns_names_are_sent_empty() -> None:
    # smbd on a host without a DNS domain sends MsvAvDnsDomainName with an empty value; impacket needs
    # MsvAvDnsComputerName present.
    pairs = challenge_for(TargetInfo("TESTGRP", "HARNESS")).target_info
    dns = [(AvId.MsvAvDnsDomainName, b""), (AvId.MsvAvDnsComputerName, b"")]
    assert [(p.id, p.value) for p in pairs[2:4]] == dns
    assert AvId.MsvAvDnsTreeName not in [p.id for p in pairs]


@pytest.mark.parametrize("asked", [True, False], ids=["asked", "not-asked"])
def test_version_always_sent(asked: bool) -> None:
    # smbd and Windows set NTLMSSP_NEGOTIATE_VERSION and send a VERSION (MS-NLMP 2.2.1.2) either way.
    challenge = challenge_for(TargetInfo(), ASKS | (NegotiateFlags.NTLMSSP_NEGOTIATE_VERSION if asked else 0))
    assert challenge.flags & NegotiateFlags.NTLMSSP_NEGOTIATE_VERSION
    assert challenge.version == Version()


ESS = int(NegotiateFlags.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY)


@pytest.mark.parametrize(
    ("user", "lm", "nt", "flags", "kind"),
    [
        ("", 0, 0, 0, ResponseKind.ANONYMOUS),
        ("", 1, 0, 0, ResponseKind.ANONYMOUS),
        ("alice", 24, 0, 0, ResponseKind.LM),
        # Samba ntlm_password_check: an NT response under 24 bytes is ignored, the LM response checked.
        ("alice", 24, 16, 0, ResponseKind.LM),
        ("alice", 24, 24, 0, ResponseKind.NTLMV1),
        ("alice", 24, 24, ESS, ResponseKind.NTLMV1_ESS),
        ("alice", 0, 25, 0, ResponseKind.NTLMV2),
        ("alice", 24, 90, 0, ResponseKind.NTLMV2),
        # Neither response usable: smbd answers LOGON_FAILURE (tests/hardening/test_negative.py).
        ("alice", 0, 0, 0, None),
        ("alice", 1, 0, 0, None),
        ("alice", 0, 23, 0, None),
        ("", 0, 16, 0, None),
    ],
)
def test_classify_response(user: str, lm: int, nt: int, flags: int, kind: ResponseKind | None) -> None:
    assert classify_response(user, bytes(lm), bytes(nt), flags) is kind
