"""smb2/policy.py: the NEGOTIATE rules both peers run (MS-SMB2 3.2.4.2.2.2, 3.2.5.2, 3.3.5.4).

Properties (hypothesis): for any offer and any server configuration the client's request passes the server's
checks unless no dialect is common, and the server's answer passes the client's checks with both peers
settling the same dialect, signing algorithm and cipher; the client refuses exactly the choices no server
could make for its offer. Vectors: Samba 4.17 smbclient <-> smbd captures (fixtures/smb2/README.md)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smb2auth.client._negotiate import Offer, negotiate_request
from smb2auth.smb2 import policy
from smb2auth.smb2.negotiate import SMB2_DIALECTS, Capabilities, Dialect, NegotiateRequest, NegotiateResponse
from smb2auth.smb2.negotiate_contexts import (
    Cipher,
    EncryptionCapabilities,
    NegotiateContext,
    NetnameNegotiateContextId,
    PreauthIntegrityCapabilities,
    SigningAlgorithm,
    SigningCapabilities,
    UnknownNegotiateContext,
    find_context,
)
from smb2auth.status import NtStatus
from tests.smb2.test_fixtures import load, smb2_negotiation

SALT = bytes(range(32))
SHA_512 = PreauthIntegrityCapabilities((1,), SALT)


def ordered_subsets(values: list[int], min_size: int = 0) -> st.SearchStrategy[tuple[int, ...]]:
    return st.lists(st.sampled_from(values), unique=True, min_size=min_size).map(tuple)


DIALECTS = ordered_subsets(list(SMB2_DIALECTS), min_size=1)
CIPHERS = ordered_subsets(list(Cipher))
SIGNING = ordered_subsets(list(SigningAlgorithm))


def client_request(
    dialects: tuple[int, ...], ciphers: tuple[int, ...], signing: tuple[int, ...]
) -> NegotiateRequest:
    """What our client sends for this offer (smb2auth.client._negotiate), through the wire codec."""
    request, _ = negotiate_request(Offer(dialects, ciphers, signing, True, "server"), bytes)
    return NegotiateRequest.unpack(request.pack())


def server_response(request: NegotiateRequest, choice: policy.Negotiated) -> NegotiateResponse:
    """What our server answers with this choice, through the wire codec."""
    contexts: tuple[NegotiateContext, ...] = ()
    if choice.dialect == Dialect.SMB3_1_1:
        contexts = policy.response_contexts(request, choice, SALT)
    response = NegotiateResponse(
        choice.dialect, capabilities=policy.server_capabilities(choice), negotiate_contexts=contexts
    )
    return NegotiateResponse.unpack(response.pack())


def response_311(*contexts: NegotiateContext) -> NegotiateResponse:
    return NegotiateResponse(Dialect.SMB3_1_1, negotiate_contexts=contexts)


# --- properties ------------------------------------------------------------------------------------------


@given(DIALECTS, CIPHERS, SIGNING, DIALECTS, CIPHERS)
def test_the_server_choice_passes_the_client_check(
    offered: tuple[int, ...],
    ciphers: tuple[int, ...],
    signing: tuple[int, ...],
    supported: tuple[int, ...],
    preference: tuple[int, ...],
) -> None:
    request = client_request(offered, ciphers, signing)
    choice = policy.choose(request, supported, preference)
    if not set(offered) & set(supported):
        # MS-SMB2 3.3.5.4: the one refusal an offer of ours can meet.
        assert choice == policy.Refusal(NtStatus.STATUS_NOT_SUPPORTED, "no dialect in common")
        return
    assert isinstance(choice, policy.Negotiated)
    assert choice.dialect == max(set(offered) & set(supported))
    seen = policy.check_response(server_response(request, choice), offered, ciphers, signing)
    assert seen == choice


@given(CIPHERS, st.integers(0, 0xFFFF))
def test_the_client_refuses_exactly_the_ciphers_no_server_could_choose(
    ciphers: tuple[int, ...], chosen: int
) -> None:
    possible = {policy.choose_cipher(preference, ciphers) for preference in [(), *((c,) for c in Cipher)]}
    seen = policy.check_response(
        response_311(SHA_512, EncryptionCapabilities((chosen,))), (Dialect.SMB3_1_1,), ciphers, ()
    )
    if chosen in possible:
        assert seen == policy.Negotiated(Dialect.SMB3_1_1, SigningAlgorithm.AES_CMAC, chosen)
    else:
        assert seen == policy.Refusal(
            NtStatus.STATUS_INVALID_NETWORK_RESPONSE, f"bad cipher choice {(chosen,)}"
        )


@given(DIALECTS, st.integers(0, 0xFFFF))
def test_the_client_refuses_exactly_the_dialects_no_server_could_choose(
    offered: tuple[int, ...], chosen: int
) -> None:
    possible = {policy.choose_dialect((d,), offered) for d in SMB2_DIALECTS} - {None}
    refusal = policy.check_dialect(offered, chosen)
    assert (refusal is None) == (chosen in possible)
    if refusal is not None:
        assert refusal.status == NtStatus.STATUS_NOT_SUPPORTED


@given(SIGNING.filter(bool), st.integers(0, 0xFFFF))
def test_the_client_accepts_any_signing_algorithm_it_offered_and_no_other(
    signing: tuple[int, ...], chosen: int
) -> None:
    seen = policy.check_response(
        response_311(SHA_512, SigningCapabilities((chosen,))), (Dialect.SMB3_1_1,), (), signing
    )
    if chosen in signing:
        assert seen == policy.Negotiated(Dialect.SMB3_1_1, SigningAlgorithm(chosen), 0)
    else:
        reason = f"bad signing algorithm choice {(chosen,)}"
        assert seen == policy.Refusal(NtStatus.STATUS_INVALID_NETWORK_RESPONSE, reason)
    assert policy.choose_signing_algorithm(signing) in signing


# --- the server's choice (MS-SMB2 3.3.5.4) ---------------------------------------------------------------


def test_greatest_common_dialect_whatever_the_order() -> None:
    offered = (Dialect.SMB3_1_1, Dialect.SMB2_0_2, Dialect.SMB3_0)
    assert policy.choose_dialect((Dialect.SMB2_0_2, Dialect.SMB3_0), offered) == Dialect.SMB3_0
    assert policy.choose_dialect((Dialect.SMB2_1,), offered) is None
    assert policy.choose_dialect(SMB2_DIALECTS, (Dialect.SMB2_WILDCARD, 0x0400)) is None


def test_311_without_preauth_context_is_invalid_parameter() -> None:
    request = NegotiateRequest((Dialect.SMB3_1_1,), negotiate_contexts=(SigningCapabilities((1,)),))
    choice = policy.choose(request, SMB2_DIALECTS, policy.CIPHER_PREFERENCE)
    assert choice == policy.Refusal(
        NtStatus.STATUS_INVALID_PARAMETER, "no PREAUTH_INTEGRITY_CAPABILITIES context"
    )


def test_311_without_sha512_is_no_preauth_overlap() -> None:
    request = NegotiateRequest(
        (Dialect.SMB3_1_1,), negotiate_contexts=(PreauthIntegrityCapabilities((2,), SALT),)
    )
    choice = policy.choose(request, SMB2_DIALECTS, policy.CIPHER_PREFERENCE)
    assert isinstance(choice, policy.Refusal)
    assert choice.status == NtStatus.STATUS_SMB_NO_PREAUTH_INTEGRITY_HASH_OVERLAP


def test_311_preauth_may_list_other_algorithms_beside_sha512() -> None:
    contexts = (PreauthIntegrityCapabilities((7, 1), SALT),)
    choice = policy.choose(
        NegotiateRequest((Dialect.SMB3_1_1,), negotiate_contexts=contexts), SMB2_DIALECTS, ()
    )
    assert choice == policy.Negotiated(Dialect.SMB3_1_1, SigningAlgorithm.AES_CMAC, 0)


def test_signing_preference_and_the_aes_cmac_default() -> None:
    assert policy.choose_signing_algorithm((0, 1, 2)) == SigningAlgorithm.AES_GMAC
    assert policy.choose_signing_algorithm((0, 1)) == SigningAlgorithm.AES_CMAC
    assert policy.choose_signing_algorithm((0,)) == SigningAlgorithm.HMAC_SHA256
    assert policy.choose_signing_algorithm((9,)) == SigningAlgorithm.AES_CMAC


def test_cipher_is_the_server_preference_among_the_client_offer() -> None:
    offered = (Cipher.AES_256_CCM, Cipher.AES_128_CCM)
    assert policy.choose_cipher(policy.CIPHER_PREFERENCE, offered) == Cipher.AES_128_CCM
    assert policy.choose_cipher((Cipher.AES_256_CCM, Cipher.AES_128_CCM), offered) == Cipher.AES_256_CCM
    assert policy.choose_cipher((Cipher.AES_128_GCM,), offered) == 0


def test_response_contexts_answer_only_what_was_asked() -> None:
    request = NegotiateRequest(
        (Dialect.SMB3_1_1,), negotiate_contexts=(SHA_512, NetnameNegotiateContextId("x"))
    )
    choice = policy.choose(request, SMB2_DIALECTS, policy.CIPHER_PREFERENCE)
    assert isinstance(choice, policy.Negotiated)
    assert policy.response_contexts(request, choice, SALT) == (PreauthIntegrityCapabilities((1,), SALT),)
    asked = NegotiateRequest(
        (Dialect.SMB3_1_1,),
        negotiate_contexts=(
            SHA_512,
            EncryptionCapabilities((Cipher.AES_256_GCM,)),
            SigningCapabilities((0, 1)),
        ),
    )
    choice = policy.choose(asked, SMB2_DIALECTS, policy.CIPHER_PREFERENCE)
    assert choice == policy.Negotiated(Dialect.SMB3_1_1, SigningAlgorithm.AES_CMAC, Cipher.AES_256_GCM)
    assert policy.response_contexts(asked, choice, SALT) == (
        PreauthIntegrityCapabilities((1,), SALT),
        SigningCapabilities((SigningAlgorithm.AES_CMAC,)),
        EncryptionCapabilities((Cipher.AES_256_GCM,)),
    )


@pytest.mark.parametrize(
    ("capabilities", "preference", "cipher"),
    [
        (Capabilities.ENCRYPTION, policy.CIPHER_PREFERENCE, Cipher.AES_128_CCM),
        (Capabilities(0), policy.CIPHER_PREFERENCE, 0),
        (Capabilities.ENCRYPTION, (Cipher.AES_128_GCM,), 0),
    ],
)
def test_30_encrypts_with_aes128ccm_announced_by_the_capability(
    capabilities: Capabilities, preference: tuple[int, ...], cipher: int
) -> None:
    request = NegotiateRequest((Dialect.SMB3_0, Dialect.SMB3_0_2), capabilities=capabilities)
    choice = policy.choose(request, (Dialect.SMB3_0,), preference)
    assert choice == policy.Negotiated(Dialect.SMB3_0, SigningAlgorithm.AES_CMAC, cipher)
    announced = Capabilities.ENCRYPTION if cipher else Capabilities(0)
    assert policy.server_capabilities(choice) == announced


@pytest.mark.parametrize(
    ("dialect", "negotiated", "algorithm"),
    [
        (Dialect.SMB2_0_2, None, SigningAlgorithm.HMAC_SHA256),
        (Dialect.SMB2_1, SigningAlgorithm.AES_GMAC, SigningAlgorithm.HMAC_SHA256),
        (Dialect.SMB3_0, None, SigningAlgorithm.AES_CMAC),
        (Dialect.SMB3_0_2, SigningAlgorithm.AES_GMAC, SigningAlgorithm.AES_CMAC),
        (Dialect.SMB3_1_1, None, SigningAlgorithm.AES_CMAC),
        (Dialect.SMB3_1_1, SigningAlgorithm.AES_GMAC, SigningAlgorithm.AES_GMAC),
        (Dialect.SMB3_1_1, SigningAlgorithm.HMAC_SHA256, SigningAlgorithm.HMAC_SHA256),
    ],
)
def test_signing_algorithm_for(dialect: Dialect, negotiated: int | None, algorithm: SigningAlgorithm) -> None:
    # MS-SMB2 3.1.4.1
    assert policy.signing_algorithm_for(dialect, negotiated) == algorithm


# --- the client's offer and check (MS-SMB2 3.2.4.2.2.2, 3.2.5.2) ----------------------------------------


@pytest.mark.parametrize(
    ("dialects", "ciphers", "signing", "message"),
    [
        ((), (), (), "non-empty selection of 2.0.2, 2.1, 3.0, 3.0.2, 3.1.1"),
        ((Dialect.SMB2_WILDCARD,), (), (), "non-empty selection"),
        ((Dialect.SMB3_1_1,), (5,), (), r"unknown ciphers \[5\]"),
        ((Dialect.SMB3_1_1,), (), (3,), r"unknown signing algorithms \[3\]"),
    ],
)
def test_the_client_never_offers_what_a_server_refuses(
    dialects: tuple[int, ...], ciphers: tuple[int, ...], signing: tuple[int, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        policy.check_offer(dialects, ciphers, signing)


def test_request_contexts_leave_out_empty_lists() -> None:
    # MS-SMB2 2.2.3.1.2 / 2.2.3.1.7: CipherCount and SigningAlgorithmCount MUST be greater than zero.
    assert policy.request_contexts(SALT, (), ()) == (PreauthIntegrityCapabilities((1,), SALT),)
    assert policy.request_contexts(SALT, (2,), (1,), "srv") == (
        PreauthIntegrityCapabilities((1,), SALT),
        EncryptionCapabilities((2,)),
        SigningCapabilities((1,)),
        NetnameNegotiateContextId("srv"),
    )


@pytest.mark.parametrize(
    ("contexts", "reason"),
    [
        ((), "no SHA-512 preauth context"),
        ((PreauthIntegrityCapabilities((1, 2), SALT),), "no SHA-512 preauth context"),
        ((PreauthIntegrityCapabilities((2,), SALT),), "no SHA-512 preauth context"),
        ((SHA_512, EncryptionCapabilities((1, 2))), "bad cipher choice (1, 2)"),
        ((SHA_512, EncryptionCapabilities((4,))), "bad cipher choice (4,)"),  # AES-256-GCM, not offered
        ((SHA_512, SigningCapabilities((1, 2))), "bad signing algorithm choice (1, 2)"),
        (
            (SHA_512, SigningCapabilities((0,))),
            "bad signing algorithm choice (0,)",
        ),  # HMAC-SHA256, not offered
    ],
)
def test_the_client_refuses_a_311_answer_no_server_of_ours_sends(
    contexts: tuple[NegotiateContext, ...], reason: str
) -> None:
    seen = policy.check_response(response_311(*contexts), (Dialect.SMB3_1_1,), (1, 2), (2, 1))
    assert seen == policy.Refusal(NtStatus.STATUS_INVALID_NETWORK_RESPONSE, reason)


def test_the_client_takes_cipher_zero_as_no_encryption_and_ignores_unknown_contexts() -> None:
    contexts = (SHA_512, EncryptionCapabilities((0,)), UnknownNegotiateContext(0x0100, b"x"))
    seen = policy.check_response(response_311(*contexts), (Dialect.SMB3_1_1,), (1,), (2,))
    assert seen == policy.Negotiated(Dialect.SMB3_1_1, SigningAlgorithm.AES_CMAC, 0)


@pytest.mark.parametrize("chosen", [Dialect.SMB2_WILDCARD, Dialect.SMB3_1_1, 0x0400])
def test_the_client_refuses_a_dialect_it_did_not_offer(chosen: int) -> None:
    seen = policy.check_response(NegotiateResponse(chosen), (Dialect.SMB2_0_2, Dialect.SMB3_0), (), ())
    reason = f"server chose dialect 0x{chosen:04x}, which we did not offer"
    assert seen == policy.Refusal(NtStatus.STATUS_NOT_SUPPORTED, reason)


def test_the_client_reads_30_encryption_from_the_capability() -> None:
    offered = (Dialect.SMB3_0,)
    with_cap = NegotiateResponse(Dialect.SMB3_0, capabilities=Capabilities.ENCRYPTION)
    assert policy.check_response(with_cap, offered, (), ()) == policy.Negotiated(
        Dialect.SMB3_0, SigningAlgorithm.AES_CMAC, Cipher.AES_128_CCM
    )
    without = NegotiateResponse(Dialect.SMB3_0)
    assert policy.check_response(without, offered, (), ()) == policy.Negotiated(
        Dialect.SMB3_0, SigningAlgorithm.AES_CMAC, 0
    )


# --- against Samba (fixtures/smb2: smbclient <-> smbd 4.17 on loopback) -----------------------------------


@pytest.mark.parametrize(
    "name", ["smb202", "smb210", "smb300", "smb302", "smb311", "smb1neg", "reference_smb311"]
)
def test_we_accept_what_smbd_answered_smbclient_and_choose_as_it_did(name: str) -> None:
    _, _, request, response = smb2_negotiation(load(name))
    offered_ciphers: tuple[int, ...] = ()
    offered_signing: tuple[int, ...] = ()
    ciphers = find_context(request.negotiate_contexts, EncryptionCapabilities)
    if isinstance(ciphers, EncryptionCapabilities):
        offered_ciphers = ciphers.ciphers
    signing = find_context(request.negotiate_contexts, SigningCapabilities)
    if isinstance(signing, SigningCapabilities):
        offered_signing = signing.signing_algorithms
    seen = policy.check_response(response, request.dialects, offered_ciphers, offered_signing)
    ours = policy.choose(request, SMB2_DIALECTS, policy.CIPHER_PREFERENCE)
    assert isinstance(seen, policy.Negotiated)
    assert ours == seen
