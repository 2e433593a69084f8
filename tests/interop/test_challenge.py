"""A default harness's CHALLENGE carries what smbd's carries: the same flags, the same AV pairs in the same
order (NetBIOS and DNS domain and computer names, timestamp), the host's DNS names, and a VERSION. Both are
asked over TCP with the same NEGOTIATE, with and without NTLMSSP_NEGOTIATE_VERSION."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from smb2auth.ntlm.messages import AvId, ChallengeMessage, NegotiateFlags, NegotiateMessage, av_get
from smb2auth.server.config import host_dns_names
from smb2auth.smb2.header import Command
from smb2auth.smb2.negotiate import Dialect
from smb2auth.smb2.session import SessionSetupRequest, SessionSetupResponse
from smb2auth.testing import RunningServer, running_server
from tests.hardening.raw import SocketDriver
from tests.peers import Smbd

pytestmark = pytest.mark.interop

CLIENT_FLAGS = (
    NegotiateFlags.NTLMSSP_NEGOTIATE_UNICODE
    | NegotiateFlags.NTLMSSP_REQUEST_TARGET
    | NegotiateFlags.NTLMSSP_NEGOTIATE_SIGN
    | NegotiateFlags.NTLMSSP_NEGOTIATE_NTLM
    | NegotiateFlags.NTLMSSP_NEGOTIATE_ALWAYS_SIGN
    | NegotiateFlags.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY
    | NegotiateFlags.NTLMSSP_NEGOTIATE_TARGET_INFO
    | NegotiateFlags.NTLMSSP_NEGOTIATE_128
    | NegotiateFlags.NTLMSSP_NEGOTIATE_KEY_EXCH
    | NegotiateFlags.NTLMSSP_NEGOTIATE_56
)
NAME_ORDER = [
    AvId.MsvAvNbDomainName,
    AvId.MsvAvNbComputerName,
    AvId.MsvAvDnsDomainName,
    AvId.MsvAvDnsComputerName,
    AvId.MsvAvTimestamp,
]


@pytest.fixture(scope="module")
def harness() -> Iterator[RunningServer]:
    with running_server() as server:
        yield server


def challenge(port: int, flags: int) -> ChallengeMessage:
    """The CHALLENGE for a raw NTLMSSP NEGOTIATE (MS-SMB2 3.3.5.5.3: both accept one without SPNEGO)."""
    driver = SocketDriver("127.0.0.1", port)
    try:
        driver.negotiate((Dialect.SMB2_1,))
        answer = driver.request(Command.SESSION_SETUP, SessionSetupRequest(NegotiateMessage(flags).pack()))
        assert answer.status == "STATUS_MORE_PROCESSING_REQUIRED"
        return ChallengeMessage.unpack(SessionSetupResponse.unpack(answer.body).security_buffer)
    finally:
        driver.close()


@pytest.mark.parametrize("version", [True, False], ids=["version-asked", "version-not-asked"])
def test_challenge_as_smbds(harness: RunningServer, smbd: Smbd, version: bool) -> None:
    flags = CLIENT_FLAGS | (NegotiateFlags.NTLMSSP_NEGOTIATE_VERSION if version else 0)
    ours, theirs = challenge(harness.port, flags), challenge(smbd.port, flags)
    assert ours.flags == theirs.flags
    assert ours.flags & NegotiateFlags.NTLMSSP_NEGOTIATE_VERSION
    assert ours.version is not None and theirs.version is not None
    assert [p.id for p in ours.target_info] == [p.id for p in theirs.target_info] == NAME_ORDER
    # Samba get_mydnsfullname / get_mydnsdomname: the host's names, lower-cased, from either server.
    for av_id in (AvId.MsvAvDnsComputerName, AvId.MsvAvDnsDomainName):
        assert av_get(ours.target_info, av_id) == av_get(theirs.target_info, av_id)
    computer, domain = host_dns_names()
    assert av_get(ours.target_info, AvId.MsvAvDnsComputerName) == computer.encode("utf-16-le")
    assert av_get(ours.target_info, AvId.MsvAvDnsDomainName) == domain.encode("utf-16-le")
