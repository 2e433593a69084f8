"""The differential fuzzer (fuzz/differential) with smbd as the oracle: a fixed-seed pass against a private
smbd and our harness, every mutation kind run, no disagreement outside fuzz/differential/known.py and none
where we complete a step smbd refuses. Below it, the in-memory tests that pin each difference known.py keeps
and the smbd readings the fuzzer made us adopt."""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterator

import pytest

from fuzz.differential import known, peers
from fuzz.differential.cases import FAMILIES, make_case
from fuzz.differential.compare import OURS_ACCEPTS, run_campaign
from fuzz.differential.script import REGISTRY, Edit, run
from smb2auth.smb2.header import Command
from smb2auth.smb2.negotiate import Dialect, NegotiateRequest, SecurityMode
from smb2auth.smb2.negotiate_contexts import (
    EncryptionCapabilities,
    PreauthIntegrityCapabilities,
    SigningAlgorithm,
    SigningCapabilities,
)
from smb2auth.smb2.session import SessionSetupFlags, SessionSetupRequest
from smb2auth.testing import running_server
from tests.peers import Smbd
from tests.server.driver import NO_CAPABILITIES, Driver, preauth_contexts

SEED = 17
CASES = 3000


@pytest.fixture(scope="module")
def harness() -> Iterator[tuple[str, int]]:
    with running_server(username=peers.ACCOUNT.user, password=peers.ACCOUNT.password,
                        domain=peers.ACCOUNT.domain, target=peers.TARGET) as server:
        yield server.host, server.port


@pytest.mark.interop
def test_no_difference_outside_known(harness: tuple[str, int], smbd_factory: Callable[[str], Smbd]) -> None:
    smbd = smbd_factory(peers.SMBD_GLOBAL)
    logging.disable(logging.CRITICAL)  # our server logs every refused login
    try:
        campaign = run_campaign(SEED, CASES, harness, ("127.0.0.1", smbd.port), account=peers.ACCOUNT,
                                timeout=2.0, jobs=48)
    finally:
        logging.disable(logging.NOTSET)
    # Only havoc cases may fail to build (an edit that needs well-formed DER after another broke it).
    assert [e for e in campaign.errors if " + " not in e.split(":")[0]] == []
    assert campaign.cases + len(campaign.errors) == CASES
    kinds = {e.kind for i in range(CASES) for e in make_case(SEED, i).edits}
    assert kinds == set(REGISTRY), f"kinds never run: {sorted(set(REGISTRY) - kinds)}"
    assert {make_case(SEED, i).family for i in range(CASES)} == {*FAMILIES, "havoc"}
    accepted = [f"{d.name}: ours {d.ours} / smbd {d.smbd}" for d in campaign.disagreements
                if d.category == OURS_ACCEPTS]  # known.py's one such class shows against an AD DC only
    unknown = [f"{d.name} ({d.category}): ours {d.ours} / smbd {d.smbd}" for d in campaign.disagreements
               if known.explain(d) is None]
    assert (accepted, unknown) == ([], [])
    # A second run that does not show a disagreement again is timing, not behaviour; a few at most.
    assert len(campaign.unstable) <= CASES // 20, [str(u) for u in campaign.unstable]


def _negotiate(contexts: tuple[object, ...]) -> list[str]:
    d = Driver()
    request = d.message(Command.NEGOTIATE, NegotiateRequest(
        (Dialect.SMB3_1_1,), SecurityMode.SIGNING_ENABLED, NO_CAPABILITIES, b"G" * 16, contexts))  # type: ignore[arg-type]
    return [a.status for a in d.send_raw(request)]


@pytest.mark.parametrize("twice", [PreauthIntegrityCapabilities, EncryptionCapabilities])
def test_known_duplicate_preauth_or_encryption_fails(twice: type) -> None:
    # known.py: MS-SMB2 3.3.5.4 fails a second PREAUTH_INTEGRITY / ENCRYPTION context (smbd uses the first).
    contexts = (*preauth_contexts(), EncryptionCapabilities((2, 1)))
    extra = next(c for c in contexts if isinstance(c, twice))
    assert _negotiate((*contexts, extra)) == ["STATUS_INVALID_PARAMETER"]


def test_a_later_signing_context_is_left_unread_as_smbd_does() -> None:
    # Samba smb2_negotiate_context_find: the first SIGNING_CAPABILITIES counts, a second is left unread.
    contexts = preauth_contexts((SigningAlgorithm.AES_CMAC,))
    d = Driver()
    d.negotiate((Dialect.SMB3_1_1,), contexts=(*contexts, SigningCapabilities((SigningAlgorithm.AES_GMAC,))))
    assert d.login().final.status == "STATUS_SUCCESS"


def test_known_binding_flag_on_a_session_in_progress() -> None:
    # known.py: MS-SMB2 3.3.5.5, binding without multichannel -> REQUEST_NOT_ACCEPTED (smbd: NOT_SUPPORTED).
    d2 = Driver()
    d2.negotiate((Dialect.SMB3_1_1,))
    login = d2.login()
    bind = d2.request(Command.SESSION_SETUP, SessionSetupRequest(b"x", SessionSetupFlags.BINDING),
                      session_id=login.session_id, key=login.signing_key)
    assert bind.status == "STATUS_REQUEST_NOT_ACCEPTED"


def test_known_kerberos_only_offer_is_refused(harness: tuple[str, int]) -> None:
    # known.py: no Kerberos here; a NegTokenInit offering only krb5 fails at once (a standalone smbd agrees).
    make_case(SEED, 0)  # the mutation modules register their kinds on first use
    outcome = run((Edit("spnego.mech-list", "spnego.init", ("krb5 only",)),), harness, peers.ACCOUNT, 5.0)
    assert outcome.steps == (("STATUS_SUCCESS",), ("STATUS_INVALID_PARAMETER",))


def test_known_kerberos_first_offer_goes_on_with_ntlm(harness: tuple[str, int]) -> None:
    # known.py: krb5 then NTLM offered, no Kerberos here: NTLM picked, its first token asked for, logged in.
    make_case(SEED, 0)
    outcome = run((Edit("spnego.mech-list", "spnego.init", ("krb5 first",)),), harness, peers.ACCOUNT, 5.0)
    assert outcome.steps == (("STATUS_SUCCESS",), ("STATUS_MORE_PROCESSING_REQUIRED",),
                             ("STATUS_MORE_PROCESSING_REQUIRED",), ("STATUS_SUCCESS",))


@pytest.mark.parametrize("structure_size", [0, 1])
def test_a_body_without_a_structure_size_drops_the_connection(structure_size: int) -> None:
    # Samba smbd_smb2_request_validate: a body shorter than two bytes (StructureSize & ~1) drops unanswered.
    d = Driver()
    body = struct.pack("<H", structure_size) + bytes(34)
    assert d.send_raw(d.message(Command.NEGOTIATE, body)) == [] and d.conn.closed


def test_a_next_command_past_the_chain_drops_the_connection() -> None:
    # Samba smbd_smb2_inbuf_parse_compound: NextCommand beyond the frame cannot be split -> drop.
    d = Driver()
    d.negotiate((Dialect.SMB3_1_1,))
    echo = bytearray(d.message(Command.ECHO, struct.pack("<HH", 4, 0)))
    struct.pack_into("<I", echo, 20, 72)
    assert d.send_raw(bytes(echo)) == [] and d.conn.closed


def test_a_related_negotiate_is_refused() -> None:
    # MS-SMB2 3.3.5.2.7.2: the first request of a chain cannot be related; smbd fails a NEGOTIATE so flagged.
    d = Driver()
    request = bytearray(d.message(Command.NEGOTIATE, NegotiateRequest(
        (Dialect.SMB3_1_1,), SecurityMode.SIGNING_ENABLED, NO_CAPABILITIES, b"G" * 16, preauth_contexts())))
    struct.pack_into("<I", request, 16, struct.unpack_from("<I", request, 16)[0] | 0x4)
    assert [a.status for a in d.send_raw(bytes(request))] == ["STATUS_INVALID_PARAMETER"]


@pytest.mark.parametrize(("edit", "status"), [
    # DomainName's offset moved into the header: the MIC seems absent, the domain is garbage; smbd reads
    # LOGON_FAILURE, since Samba checks the MIC only after the password (ntlmssp_server_postauth).
    (Edit("ntlm.raw-field", "auth.bytes", (28, "offset", 0)), "STATUS_LOGON_FAILURE"),
    # The right password with a zeroed MIC: MS-NLMP 3.2.5.1.2 -> INVALID_PARAMETER, as smbd answers.
    (Edit("ntlm.mic", "auth", ("zero",)), "STATUS_INVALID_PARAMETER"),
])
def test_a_missing_mic_fails_after_the_password(harness: tuple[str, int], edit: Edit, status: str) -> None:
    make_case(SEED, 0)  # the mutation modules register their kinds on first use
    outcome = run((edit,), harness, peers.ACCOUNT, 5.0)
    assert outcome.steps[-1] == (status,)
