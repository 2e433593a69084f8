"""The AES primitives from pycryptodome and from cryptography give the same bytes (smb2auth/smb2/crypto.py
AES_BACKENDS); the MS-SMB2 vectors run through both in test_vectors.py."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from typing import TypeVar

import pytest

from smb2auth.errors import MalformedMessage
from smb2auth.smb2 import crypto
from smb2auth.smb2.negotiate_contexts import Cipher, SigningAlgorithm

T = TypeVar("T")
pytestmark = pytest.mark.skipif(
    "cryptography" not in crypto.AES_BACKENDS, reason="cryptography not installed: one AES backend only"
)


def _message(rng: random.Random, size: int, flags: int) -> bytes:
    header = b"\xfeSMB" + bytes([64, 0]) + bytes(6) + bytes([rng.randrange(20), 0]) + bytes(2)
    header += flags.to_bytes(4, "little") + bytes(4) + rng.randbytes(8) + bytes(4) + rng.randbytes(4)
    header += rng.randbytes(8) + bytes(16)
    return header + rng.randbytes(size)


def _both(call: Callable[[], T]) -> tuple[T, T]:
    out: dict[str, T] = {}
    previous = crypto.aes_backend()
    try:
        for name in ("pycryptodome", "cryptography"):
            crypto.use_aes_backend(name)
            out[name] = call()
    finally:
        crypto.use_aes_backend(previous)
    return out["pycryptodome"], out["cryptography"]


@pytest.mark.parametrize("algorithm", [SigningAlgorithm.AES_CMAC, SigningAlgorithm.AES_GMAC])
def test_signatures_are_the_same_bytes(algorithm: SigningAlgorithm) -> None:
    rng = random.Random(f"sign {algorithm}")
    for size in (0, 1, 15, 16, 17, 100, 4096):
        for flags in (0, 1):  # a request and a response: GMAC's nonce role bit differs
            message, key = _message(rng, size, flags), rng.randbytes(16)
            mine, theirs = _both(functools.partial(crypto.sign, message, key, algorithm))
            assert mine == theirs
            assert _both(functools.partial(crypto.verify, mine, key, algorithm)) == (True, True)


@pytest.mark.parametrize("algorithm", list(SigningAlgorithm))
def test_a_sessions_signer_signs_many_messages_as_sign_does_each(algorithm: SigningAlgorithm) -> None:
    # SessionKeys.signer sets the key up once (the GMAC key schedule with cryptography) and signs every
    # message of the session: each signature is the one crypto.sign gives that message alone.
    rng = random.Random(f"signer {algorithm}")
    keys = crypto.derive_session_keys(0x0311, rng.randbytes(16), rng.randbytes(64), Cipher.AES_128_GCM)
    for name in ("pycryptodome", "cryptography"):
        previous = crypto.aes_backend()
        crypto.use_aes_backend(name)
        try:
            signer = crypto.Signer(keys.signing_key, algorithm)
            for size, flags in ((0, 0), (17, 1), (100, 0), (100, 1)):
                message = _message(rng, size, flags)
                signed = signer.sign(message)
                assert signed == crypto.sign(message, keys.signing_key, algorithm)
                assert signer.verify(signed)
                assert keys.signer(algorithm).verify(signed)
                assert not signer.verify(signed[:8] + bytes([signed[8] ^ 1]) + signed[9:])  # the Status
        finally:
            crypto.use_aes_backend(previous)
    assert repr(keys.signer(algorithm)) == f"<Signer {algorithm.name}>"


@pytest.mark.parametrize("cipher", list(Cipher))
def test_encryption_is_the_same_bytes_and_each_opens_the_others(cipher: Cipher) -> None:
    rng = random.Random(f"seal {cipher}")
    key = rng.randbytes(32 if cipher in (Cipher.AES_256_CCM, Cipher.AES_256_GCM) else 16)
    nonce = rng.randbytes(crypto.nonce_size(cipher))
    message = _message(rng, 300, 0)
    sealed_a, sealed_b = _both(lambda: crypto.encrypt(message, key, cipher, 0x1234, nonce))
    assert sealed_a == sealed_b
    opened = _both(lambda: crypto.decrypt(sealed_a, key, cipher)[1])
    assert opened == (message, message)


@pytest.mark.parametrize("backend", ["pycryptodome", "cryptography"])
def test_a_tampered_message_does_not_decrypt(backend: str) -> None:
    rng = random.Random("tamper")
    key, nonce = rng.randbytes(16), rng.randbytes(12)
    previous = crypto.aes_backend()
    crypto.use_aes_backend(backend)
    try:
        sealed = bytearray(crypto.encrypt(_message(rng, 64, 0), key, Cipher.AES_128_GCM, 7, nonce))
        sealed[-1] ^= 1
        with pytest.raises(MalformedMessage, match="decryption failed"):
            crypto.decrypt(bytes(sealed), key, Cipher.AES_128_GCM)
    finally:
        crypto.use_aes_backend(previous)


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="not available"):
        crypto.use_aes_backend("nettle")
