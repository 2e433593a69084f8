"""Real smbclient <-> smbd (Samba 4.17) exchanges captured on loopback: fixtures/smb2/README.md says how.

Every message parses, re-packs to its exact bytes, and the whole key chain checks out against the peers:
preauth hash over the captured NEGOTIATE/SESSION_SETUP bytes -> derived keys -> every captured signature
verifies and every captured encrypted message decrypts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from smb2auth.smb2 import (
    Cipher,
    Command,
    Dialect,
    EncryptionCapabilities,
    HeaderFlags,
    NegotiateRequest,
    NegotiateResponse,
    NetnameNegotiateContextId,
    NtStatus,
    PreauthIntegrity,
    PreauthIntegrityCapabilities,
    SessionKeys,
    SessionSetupRequest,
    SessionSetupResponse,
    SigningAlgorithm,
    SigningCapabilities,
    Smb1NegotiateRequest,
    Smb2Header,
    TreeConnectRequest,
    TreeConnectResponse,
    decrypt,
    derive_session_keys,
    find_context,
    pack_message,
    parse_message,
    select_smb1_upgrade_dialect,
    signing_algorithm_for,
    verify,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "smb2"
CAPTURES = sorted(p.name for p in FIXTURES.iterdir() if (p / "meta.json").exists())


@dataclass
class Capture:
    name: str
    frames: list[tuple[str, bytes]]  # (file name, bytes)
    session_key: bytes


def load(name: str) -> Capture:
    directory = FIXTURES / name
    meta = json.loads((directory / "meta.json").read_text())
    frames = [(p.name, bytes.fromhex(p.read_text())) for p in sorted(directory.glob("*.hex"))]
    return Capture(name, frames, bytes.fromhex(meta["exported_session_key"]))


def smb2_negotiation(capture: Capture) -> tuple[bytes, bytes, NegotiateRequest, NegotiateResponse]:
    """The SMB2 NEGOTIATE request/response pair that fixed the dialect (after an SMB1 start, the second)."""
    frames = [f for _, f in capture.frames if f[:4] == b"\xfeSMB"]
    pairs = []
    for raw in frames:
        header, body = parse_message(raw)
        assert isinstance(header, Smb2Header)
        if header.command == Command.NEGOTIATE:
            pairs.append((raw, body))
    requests = [p for p in pairs if isinstance(p[1], NegotiateRequest)]
    responses = [p for p in pairs if isinstance(p[1], NegotiateResponse)]
    request, response = requests[-1], responses[-1]
    assert isinstance(request[1], NegotiateRequest) and isinstance(response[1], NegotiateResponse)
    return request[0], response[0], request[1], response[1]


def test_all_captures_present() -> None:
    assert {"smb202", "smb210", "smb300", "smb302", "smb311", "smb1neg", "smb311_encrypt"} <= set(CAPTURES)


@pytest.mark.parametrize("name", CAPTURES)
def test_every_message_parses_and_repacks_exactly(name: str) -> None:
    capture = load(name)
    for file_name, raw in capture.frames:
        if "TRANSFORM" in file_name:
            continue
        header, body = parse_message(raw)
        assert pack_message(header, body) == raw, file_name
        if isinstance(header, Smb2Header):
            assert header.is_response == ("s2c" in file_name)
            assert header.command.name in file_name


@pytest.mark.parametrize(
    ("name", "dialect"),
    [
        ("smb202", Dialect.SMB2_0_2),
        ("smb210", Dialect.SMB2_1),
        ("smb300", Dialect.SMB3_0),
        ("smb302", Dialect.SMB3_0_2),
        ("smb311", Dialect.SMB3_1_1),
        ("reference_smb311", Dialect.SMB3_1_1),
        ("smb1neg", Dialect.SMB3_1_1),
    ],
)
def test_negotiated_dialect(name: str, dialect: Dialect) -> None:
    _, _, request, response = smb2_negotiation(load(name))
    assert response.dialect_revision == dialect
    assert dialect in request.dialects
    assert max(d for d in request.dialects) == dialect  # smbclient was capped at this dialect
    assert response.security_buffer.startswith(b"\x60")  # SPNEGO negTokenInit hint (RFC 4178 4.2.1)


def test_311_negotiate_contexts() -> None:
    _, _, request, response = smb2_negotiation(load("smb311"))
    preauth = find_context(request.negotiate_contexts, PreauthIntegrityCapabilities)
    assert isinstance(preauth, PreauthIntegrityCapabilities)
    assert preauth.hash_algorithms == (1,) and len(preauth.salt) == 32
    ciphers = find_context(request.negotiate_contexts, EncryptionCapabilities)
    assert isinstance(ciphers, EncryptionCapabilities)
    assert set(ciphers.ciphers) == set(Cipher)
    signing = find_context(request.negotiate_contexts, SigningCapabilities)
    assert isinstance(signing, SigningCapabilities)
    assert signing.signing_algorithms == (2, 1, 0)
    netname = find_context(request.negotiate_contexts, NetnameNegotiateContextId)
    assert isinstance(netname, NetnameNegotiateContextId) and netname.net_name == "127.0.0.1"
    chosen = find_context(response.negotiate_contexts, SigningCapabilities)
    assert isinstance(chosen, SigningCapabilities) and chosen.signing_algorithms == (
        SigningAlgorithm.AES_GMAC,
    )
    chosen_cipher = find_context(response.negotiate_contexts, EncryptionCapabilities)
    assert isinstance(chosen_cipher, EncryptionCapabilities) and chosen_cipher.ciphers == (
        Cipher.AES_128_GCM,
    )


def test_smb1_multi_protocol_negotiate() -> None:
    capture = load("smb1neg")
    name, raw = capture.frames[0]
    assert name.endswith("SMB1_NEGOTIATE.hex")
    _, request = parse_message(raw)
    assert isinstance(request, Smb1NegotiateRequest)
    assert request.dialects == ("NT LANMAN 1.0", "NT LM 0.12", "SMB 2.002", "SMB 2.???")
    assert request.smb2_dialects() == (Dialect.SMB2_0_2, Dialect.SMB2_WILDCARD)
    assert select_smb1_upgrade_dialect(request, list(Dialect)) == Dialect.SMB2_WILDCARD
    # smbd answered with an SMB2 NEGOTIATE response naming the wildcard (MS-SMB2 3.3.5.3.1)
    header, response = parse_message(capture.frames[1][1])
    assert isinstance(header, Smb2Header) and header.message_id == 0
    assert isinstance(response, NegotiateResponse) and response.dialect_revision == Dialect.SMB2_WILDCARD
    # the client then sends an SMB2 NEGOTIATE with MessageId 1
    header, _ = parse_message(capture.frames[2][1])
    assert isinstance(header, Smb2Header) and header.message_id == 1


def session_keys_for(capture: Capture) -> tuple[SessionKeys, SigningAlgorithm, Cipher]:
    """Walk the capture as a 3.1.1 server would: preauth hash over NEGOTIATE, then per session over
    SESSION_SETUP messages until the final (successful) response, which is excluded."""
    neg_req, neg_resp, _, response = smb2_negotiation(capture)
    dialect = response.dialect_revision
    preauth = PreauthIntegrity().add(neg_req).add(neg_resp)
    final_hash = None
    for _, raw in capture.frames:
        if raw[:4] != b"\xfeSMB":
            continue
        header, body = parse_message(raw)
        assert isinstance(header, Smb2Header)
        if header.command != Command.SESSION_SETUP:
            continue
        if isinstance(body, SessionSetupResponse) and header.status == NtStatus.STATUS_SUCCESS:
            final_hash = preauth.value
            break
        preauth = preauth.add(raw)
    assert final_hash is not None
    cipher = Cipher.AES_128_CCM
    negotiated_signing = None
    if dialect == Dialect.SMB3_1_1:
        ciphers = find_context(response.negotiate_contexts, EncryptionCapabilities)
        assert isinstance(ciphers, EncryptionCapabilities)
        cipher = Cipher(ciphers.ciphers[0])
        signing = find_context(response.negotiate_contexts, SigningCapabilities)
        negotiated_signing = (
            signing.signing_algorithms[0] if isinstance(signing, SigningCapabilities) else None
        )
    keys = derive_session_keys(dialect, capture.session_key, final_hash, cipher)
    return keys, signing_algorithm_for(dialect, negotiated_signing), cipher


@pytest.mark.parametrize("name", [n for n in CAPTURES if "encrypt" not in n])
def test_captured_signatures_verify(name: str) -> None:
    capture = load(name)
    keys, algorithm, _ = session_keys_for(capture)
    signed = 0
    for file_name, raw in capture.frames:
        if raw[:4] != b"\xfeSMB":
            continue
        header = Smb2Header.unpack(raw)
        if header.flags & HeaderFlags.SIGNED:
            assert verify(raw, keys.signing_key, algorithm), file_name
            tampered = raw[:-1] + bytes([raw[-1] ^ 1])
            assert not verify(tampered, keys.signing_key, algorithm)
            signed += 1
    # at least the final SESSION_SETUP response is signed (MS-SMB2 3.3.5.5.3)
    assert signed >= 1


def test_signed_capture_signs_tree_connect() -> None:
    capture = load("smb311_signed")
    keys, algorithm, _ = session_keys_for(capture)
    assert algorithm == SigningAlgorithm.AES_GMAC
    tree = [raw for name, raw in capture.frames if "TREE_CONNECT_REQUEST" in name][0]
    header, body = parse_message(tree)
    assert isinstance(header, Smb2Header) and header.is_signed
    assert isinstance(body, TreeConnectRequest) and body.path == "\\\\127.0.0.1\\IPC$"
    assert verify(tree, keys.signing_key, algorithm)


@pytest.mark.parametrize("name", [n for n in CAPTURES if "encrypt" in n])
def test_captured_encrypted_messages_decrypt(name: str) -> None:
    capture = load(name)
    keys, _, cipher = session_keys_for(capture)
    decrypted = []
    for file_name, raw in capture.frames:
        if "TRANSFORM" not in file_name:
            continue
        key = keys.encryption_key if "c2s" in file_name else keys.decryption_key
        transform, plain = decrypt(raw, key, cipher)
        header, body = parse_message(plain)
        assert isinstance(header, Smb2Header)
        assert header.session_id == transform.session_id
        decrypted.append(body)
    assert any(isinstance(b, TreeConnectRequest) and b.path.endswith("IPC$") for b in decrypted)
    assert any(isinstance(b, TreeConnectResponse) for b in decrypted)


def test_session_setup_requests_carry_spnego() -> None:
    capture = load("smb311")
    requests = [parse_message(raw)[1] for name, raw in capture.frames if "SESSION_SETUP_REQUEST" in name]
    assert len(requests) == 2
    for request in requests:
        assert isinstance(request, SessionSetupRequest)
    first, second = requests
    assert isinstance(first, SessionSetupRequest) and isinstance(second, SessionSetupRequest)
    assert first.security_buffer.startswith(b"\x60")  # GSS InitialContextToken
    assert b"NTLMSSP\x00\x01" in first.security_buffer
    assert second.security_buffer.startswith(b"\xa1")  # negTokenResp
    assert b"NTLMSSP\x00\x03" in second.security_buffer
