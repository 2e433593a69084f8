"""What the two peers of an SMB2 NEGOTIATE agree on: the dialect, the signing algorithm, the cipher and
preauth integrity (MS-SMB2 3.2.4.2.2.2, 3.2.5.2, 3.3.5.3.1, 3.3.5.4).

The client builds its offer with `check_offer` and `request_contexts`, the server answers it with `choose`,
`server_capabilities` and `response_contexts`, and the client checks that answer with `check_response`. Both
sides run the same rules, so what the server refuses in a request the client never offers, and what the client
refuses in a response the server never sends. A refusal is data: the NTSTATUS and why.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from smb2auth.smb2.negotiate import (
    DIALECT_NAMES,
    SMB2_DIALECTS,
    Capabilities,
    Dialect,
    NegotiateRequest,
    NegotiateResponse,
    Smb1NegotiateRequest,
)
from smb2auth.smb2.negotiate_contexts import (
    Cipher,
    EncryptionCapabilities,
    HashAlgorithm,
    NegotiateContext,
    NetnameNegotiateContextId,
    PreauthIntegrityCapabilities,
    SigningAlgorithm,
    SigningCapabilities,
    find_context,
)
from smb2auth.status import NtStatus

__all__ = [
    "CIPHER_PREFERENCE",
    "PREAUTH_SALT_SIZE",
    "SIGNING_PREFERENCE",
    "Negotiated",
    "Refusal",
    "check_dialect",
    "check_offer",
    "check_response",
    "choose",
    "choose_cipher",
    "choose_dialect",
    "choose_signing_algorithm",
    "legacy_cipher",
    "request_contexts",
    "response_contexts",
    "select_smb1_upgrade_dialect",
    "server_capabilities",
    "signing_algorithm_for",
]

# MS-SMB2 3.3.5.4 / 3.2.4.2.2.2: the order in which both peers prefer signing algorithms and ciphers.
SIGNING_PREFERENCE: tuple[SigningAlgorithm, ...] = (
    SigningAlgorithm.AES_GMAC,
    SigningAlgorithm.AES_CMAC,
    SigningAlgorithm.HMAC_SHA256,
)
CIPHER_PREFERENCE: tuple[Cipher, ...] = (
    Cipher.AES_128_GCM,
    Cipher.AES_128_CCM,
    Cipher.AES_256_GCM,
    Cipher.AES_256_CCM,
)
# MS-SMB2 3.2.4.2.2.2 / 3.3.5.4: the salt of PREAUTH_INTEGRITY_CAPABILITIES (Windows sends 32 bytes).
PREAUTH_SALT_SIZE = 32
_SHA_512_ONLY = (HashAlgorithm.SHA_512,)
_CIPHERS = frozenset(Cipher)
_SIGNING_ALGORITHMS = frozenset(SigningAlgorithm)
_LEGACY_3X = (Dialect.SMB3_0, Dialect.SMB3_0_2)


@dataclass(frozen=True)
class Refusal:
    """A NEGOTIATE refused: the NTSTATUS (what a server answers, what a client raises) and why."""

    status: NtStatus
    reason: str


@dataclass(frozen=True)
class Negotiated:
    """What a NEGOTIATE settled: Connection.Dialect, Connection.SigningAlgorithmId and Connection.CipherId
    (MS-SMB2 3.2.1.2 / 3.3.1.7); `cipher` is 0 when the connection cannot encrypt."""

    dialect: Dialect
    signing_algorithm: SigningAlgorithm
    cipher: int = 0


# --- dialect ---------------------------------------------------------------------------------------------


def choose_dialect(supported: Iterable[int], offered: Iterable[int]) -> Dialect | None:
    """The server's dialect, or None when there is none in common."""
    common = set(supported) & set(offered) & set(SMB2_DIALECTS)
    # MS-SMB2 3.3.5.4: the greatest common dialect.
    return Dialect(max(common)) if common else None


def check_dialect(offered: Iterable[int], chosen: int) -> Refusal | None:
    """The client's check of the server's DialectRevision."""
    if chosen not in set(offered):
        # MS-SMB2 3.2.5.2: a DialectRevision the client did not offer fails the connection.
        reason = f"server chose dialect 0x{chosen:04x}, which we did not offer"
        return Refusal(NtStatus.STATUS_NOT_SUPPORTED, reason)
    return None


def select_smb1_upgrade_dialect(request: Smb1NegotiateRequest, supported: Iterable[int]) -> Dialect | None:
    """MS-SMB2 3.3.5.3.1: the DialectRevision of the SMB2 NEGOTIATE response to an SMB1 NEGOTIATE.

    0x02FF when the client offers "SMB 2.???" and the server supports a dialect after 2.0.2, 0x0202 when it
    offers "SMB 2.002" and the server supports 2.0.2, else None (no SMB2 dialect in common).
    """
    supported_set = set(supported)
    offered = request.smb2_dialects()
    if Dialect.SMB2_WILDCARD in offered and any(d > Dialect.SMB2_0_2 for d in supported_set):
        return Dialect.SMB2_WILDCARD
    if Dialect.SMB2_0_2 in offered and Dialect.SMB2_0_2 in supported_set:
        return Dialect.SMB2_0_2
    return None


def signing_algorithm_for(dialect: int, negotiated: int | None = None) -> SigningAlgorithm:
    """The signing algorithm of a connection of `dialect`, given the SIGNING_CAPABILITIES choice if any."""
    if dialect in (Dialect.SMB2_0_2, Dialect.SMB2_1):
        # MS-SMB2 3.1.4.1: HMAC-SHA256 for 2.0.2 and 2.1.
        return SigningAlgorithm.HMAC_SHA256
    if dialect == Dialect.SMB3_1_1 and negotiated is not None:
        # MS-SMB2 3.1.4.1: 3.1.1 uses Connection.SigningAlgorithmId when one was negotiated.
        return SigningAlgorithm(negotiated)
    # MS-SMB2 3.1.4.1: AES-CMAC for the rest of 3.x.
    return SigningAlgorithm.AES_CMAC


# --- signing algorithm and cipher -------------------------------------------------------------------------


def choose_signing_algorithm(offered: Iterable[int]) -> SigningAlgorithm:
    """The server's signing algorithm for a 3.1.1 client's SIGNING_CAPABILITIES."""
    offered_set = set(offered)
    # MS-SMB2 3.3.5.4: the server's preferred among the client's; AES-CMAC when none of them is known.
    return next((a for a in SIGNING_PREFERENCE if a in offered_set), SigningAlgorithm.AES_CMAC)


def choose_cipher(preference: Iterable[int], offered: Iterable[int]) -> int:
    """The server's cipher for a 3.1.1 client's ENCRYPTION_CAPABILITIES; 0 when none is common."""
    offered_set = set(offered)
    # MS-SMB2 3.3.5.4: the server's preferred cipher among the client's, 0 when there is none in common.
    return next((c for c in preference if c in offered_set), 0)


def legacy_cipher(dialect: int, capabilities: Capabilities) -> Cipher | None:
    """The cipher of a 3.0 / 3.0.2 connection whose NEGOTIATE carried `capabilities`."""
    if dialect in _LEGACY_3X and capabilities & Capabilities.ENCRYPTION:
        # MS-SMB2 3.2.5.2 / 3.3.5.4: 3.0 and 3.0.2 encrypt with AES-128-CCM, announced by
        # SMB2_GLOBAL_CAP_ENCRYPTION.
        return Cipher.AES_128_CCM
    return None


# --- the client's offer -----------------------------------------------------------------------------------


def check_offer(dialects: Sequence[int], ciphers: Sequence[int], signing_algorithms: Sequence[int]) -> None:
    """ValueError unless a client may offer these (what a server would refuse, the client never sends)."""
    if not dialects or any(d not in SMB2_DIALECTS for d in dialects):
        # MS-SMB2 3.3.5.4: DialectCount 0 is refused; only the dialects of MS-SMB2 2.2.3 can be chosen.
        names = ", ".join(DIALECT_NAMES[d] for d in SMB2_DIALECTS)
        raise ValueError(f"dialects must be a non-empty selection of {names}")
    unknown_ciphers = [c for c in ciphers if c not in _CIPHERS]
    if unknown_ciphers:
        # MS-SMB2 2.2.3.1.2: the Ciphers a client can offer.
        raise ValueError(f"unknown ciphers {unknown_ciphers}")
    unknown_signing = [a for a in signing_algorithms if a not in _SIGNING_ALGORITHMS]
    if unknown_signing:
        # MS-SMB2 2.2.3.1.7: the SigningAlgorithms a client can offer.
        raise ValueError(f"unknown signing algorithms {unknown_signing}")


def request_contexts(
    salt: bytes, ciphers: Sequence[int], signing_algorithms: Sequence[int], server_name: str = ""
) -> tuple[NegotiateContext, ...]:
    """The negotiate contexts of a client's 3.1.1 NEGOTIATE request."""
    # MS-SMB2 3.2.4.2.2.2: PREAUTH_INTEGRITY_CAPABILITIES with SHA-512 and a salt, always.
    contexts: tuple[NegotiateContext, ...] = (PreauthIntegrityCapabilities(_SHA_512_ONLY, salt),)
    if ciphers:
        # MS-SMB2 3.2.4.2.2.2: ENCRYPTION_CAPABILITIES when the client has ciphers (count 0 is refused).
        contexts += (EncryptionCapabilities(tuple(ciphers)),)
    if signing_algorithms:
        # MS-SMB2 3.2.4.2.2.2: SIGNING_CAPABILITIES when the client has algorithms (count 0 is refused).
        contexts += (SigningCapabilities(tuple(signing_algorithms)),)
    if server_name:
        # MS-SMB2 3.2.4.2.2.2: NETNAME_NEGOTIATE_CONTEXT_ID names the server the client connects to.
        contexts += (NetnameNegotiateContextId(server_name),)
    return contexts


# --- the server's answer ----------------------------------------------------------------------------------


def choose(
    request: NegotiateRequest, dialects: Iterable[int], ciphers: Sequence[int]
) -> Negotiated | Refusal:
    """The server's answer to `request`, speaking `dialects` and encrypting with `ciphers` (most preferred
    first), or why it refuses."""
    dialect = choose_dialect(dialects, request.dialects)
    if dialect is None:
        # MS-SMB2 3.3.5.4: no common dialect -> STATUS_NOT_SUPPORTED.
        return Refusal(NtStatus.STATUS_NOT_SUPPORTED, "no dialect in common")
    if dialect != Dialect.SMB3_1_1:
        legacy = legacy_cipher(dialect, request.capabilities)
        cipher = legacy if legacy is not None and legacy in ciphers else 0
        return Negotiated(dialect, signing_algorithm_for(dialect), cipher)
    contexts = request.negotiate_contexts
    preauth = find_context(contexts, PreauthIntegrityCapabilities)
    if not isinstance(preauth, PreauthIntegrityCapabilities):
        # MS-SMB2 3.3.5.4: 3.1.1 needs exactly one PREAUTH_INTEGRITY_CAPABILITIES (the codec refuses two).
        return Refusal(NtStatus.STATUS_INVALID_PARAMETER, "no PREAUTH_INTEGRITY_CAPABILITIES context")
    if HashAlgorithm.SHA_512 not in preauth.hash_algorithms:
        # MS-SMB2 3.3.5.4: no common preauth integrity hash algorithm.
        reason = "no common preauth integrity hash algorithm"
        return Refusal(NtStatus.STATUS_SMB_NO_PREAUTH_INTEGRITY_HASH_OVERLAP, reason)
    signing = find_context(contexts, SigningCapabilities)
    algorithm = signing_algorithm_for(dialect)
    if isinstance(signing, SigningCapabilities):
        algorithm = choose_signing_algorithm(signing.signing_algorithms)
    offered = find_context(contexts, EncryptionCapabilities)
    cipher = choose_cipher(ciphers, offered.ciphers) if isinstance(offered, EncryptionCapabilities) else 0
    return Negotiated(dialect, algorithm, cipher)


def server_capabilities(negotiated: Negotiated) -> Capabilities:
    """The Capabilities of the server's NEGOTIATE response."""
    if negotiated.dialect in _LEGACY_3X and negotiated.cipher:
        # MS-SMB2 3.3.5.4: SMB2_GLOBAL_CAP_ENCRYPTION announces 3.0 / 3.0.2 encryption (3.1.1 uses a context).
        return Capabilities.ENCRYPTION
    return Capabilities(0)


def response_contexts(
    request: NegotiateRequest, negotiated: Negotiated, salt: bytes
) -> tuple[NegotiateContext, ...]:
    """The negotiate contexts of the server's 3.1.1 NEGOTIATE response to `request`."""
    # MS-SMB2 3.3.5.4: PREAUTH_INTEGRITY_CAPABILITIES with the one hash algorithm chosen and a salt.
    contexts: tuple[NegotiateContext, ...] = (PreauthIntegrityCapabilities(_SHA_512_ONLY, salt),)
    if find_context(request.negotiate_contexts, SigningCapabilities) is not None:
        # MS-SMB2 3.3.5.4: SIGNING_CAPABILITIES with the one algorithm chosen, when the client sent one.
        contexts += (SigningCapabilities((negotiated.signing_algorithm,)),)
    if find_context(request.negotiate_contexts, EncryptionCapabilities) is not None:
        # MS-SMB2 3.3.5.4: ENCRYPTION_CAPABILITIES with the cipher chosen (0: none), when the client sent one.
        contexts += (EncryptionCapabilities((negotiated.cipher,)),)
    return contexts


# --- the client's check -----------------------------------------------------------------------------------


def check_response(
    response: NegotiateResponse,
    dialects: Sequence[int],
    ciphers: Sequence[int],
    signing_algorithms: Sequence[int],
) -> Negotiated | Refusal:
    """The client's reading of the server's NEGOTIATE response to its offer, or why it refuses it."""
    refusal = check_dialect(dialects, response.dialect_revision)
    if refusal is not None:
        return refusal
    dialect = Dialect(response.dialect_revision)
    if dialect != Dialect.SMB3_1_1:
        legacy = legacy_cipher(dialect, response.capabilities)
        return Negotiated(dialect, signing_algorithm_for(dialect), legacy or 0)
    contexts = response.negotiate_contexts
    preauth = find_context(contexts, PreauthIntegrityCapabilities)
    if not isinstance(preauth, PreauthIntegrityCapabilities) or preauth.hash_algorithms != _SHA_512_ONLY:
        # MS-SMB2 3.2.5.2: exactly one preauth hash algorithm, one the client offered (SHA-512).
        return Refusal(NtStatus.STATUS_INVALID_NETWORK_RESPONSE, "no SHA-512 preauth context")
    cipher = 0
    encryption = find_context(contexts, EncryptionCapabilities)
    if isinstance(encryption, EncryptionCapabilities):
        chosen = encryption.ciphers
        if len(chosen) != 1 or (chosen[0] and chosen[0] not in ciphers):
            # MS-SMB2 3.2.5.2: one cipher, one the client offered, or 0 for none in common.
            return Refusal(NtStatus.STATUS_INVALID_NETWORK_RESPONSE, f"bad cipher choice {chosen}")
        cipher = chosen[0]
    algorithm: int | None = None
    signing = find_context(contexts, SigningCapabilities)
    if isinstance(signing, SigningCapabilities):
        picked = signing.signing_algorithms
        if len(picked) != 1 or picked[0] not in signing_algorithms:
            # MS-SMB2 3.2.5.2: one signing algorithm, one the client offered.
            reason = f"bad signing algorithm choice {picked}"
            return Refusal(NtStatus.STATUS_INVALID_NETWORK_RESPONSE, reason)
        algorithm = picked[0]
    return Negotiated(dialect, signing_algorithm_for(dialect, algorithm), cipher)
