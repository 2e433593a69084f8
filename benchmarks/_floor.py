"""The primitives a handshake cannot avoid, each called directly on the library that provides it, with
inputs of the sizes the real handshake hashes or encrypts. The benchmarks sum them into their floor.

MD4 comes from pycryptodome (as smb2auth uses it; OpenSSL 3 has no MD4 by default), AES from the backend
smb2auth uses (smb2auth/smb2/crypto.py: cryptography when installed), MD5, HMAC and SHA-512 from
hashlib/hmac (OpenSSL). Where two ways to the same bytes exist, the cheaper one, timed when the floor is
built: RC4 from pycryptodome or cryptography, MD5 (and HMAC-MD5 over it) from OpenSSL or CPython's own
`_md5`, as smb2auth/ntlm/crypto.py picks them.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import importlib
import os
import time
from collections.abc import Callable
from typing import Any

from _harness import Primitive
from Crypto.Cipher import ARC4
from Crypto.Hash import MD4

from smb2auth.smb2 import crypto as smb2_crypto

KEY = bytes(range(16))
NONCE = bytes(12)


def _data(size: int) -> bytes:
    return bytes(i & 0xFF for i in range(size))


def md4(size: int) -> Primitive:
    data = _data(size)
    return Primitive("MD4", lambda: MD4.MD4Hash(data).digest())  # noqa: S303 -- NTOWFv1 is MD4


def _md5_ways() -> list[Callable[[bytes], Any]]:
    """hashlib's MD5 (OpenSSL) and CPython's own (`_md5`, when the build has it)."""
    ways: list[Callable[[bytes], Any]] = [hashlib.md5]
    with contextlib.suppress(ImportError):
        ways.append(importlib.import_module("_md5").md5)
    return ways


def md5(size: int) -> Primitive:
    data = _data(size)

    def way(new: Callable[[bytes], Any]) -> Callable[[], bytes]:
        return lambda: bytes(new(data).digest())

    return Primitive("MD5", _cheapest([way(new) for new in _md5_ways()]))


_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


def hmac_md5(size: int) -> Primitive:
    """RFC 2104 over the cheaper MD5, cheaper here than hmac.digest(key, data, "md5") (OpenSSL 3 dispatches
    a MAC on each hmac.digest call): the floor takes the cheapest way to the bytes."""
    data = _data(size)
    key = KEY.ljust(64, b"\x00")

    def way(new: Callable[[bytes], Any]) -> Callable[[], bytes]:
        def call() -> bytes:
            inner = new(key.translate(_IPAD) + data).digest()
            return bytes(new(key.translate(_OPAD) + inner).digest())

        return call

    calls = [way(new) for new in _md5_ways()]
    assert calls[0]() == hmac.digest(KEY, data, "md5")
    return Primitive("HMAC-MD5", _cheapest(calls))


def _cost(call: Callable[[], object]) -> float:
    """CPU seconds per call, the best of three short runs."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for _ in range(500):
            call()
        best = min(best, (time.process_time() - start) / 500)
    return best


def _cheapest(calls: list[Callable[[], bytes]]) -> Callable[[], bytes]:
    """Of calls that give the same bytes, the one that costs least CPU here."""
    assert len({call() for call in calls}) == 1
    return min(calls, key=_cost)


def _rc4_ways(data: bytes) -> list[Callable[[], bytes]]:
    ways: list[Callable[[], bytes]] = [lambda: ARC4.new(KEY).encrypt(data)]
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher
    except ImportError:
        return ways
    try:
        from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4 as OpenSslArc4  # >= 43
    except ImportError:
        from cryptography.hazmat.primitives.ciphers.algorithms import ARC4 as OpenSslArc4
    ways.append(lambda: Cipher(OpenSslArc4(KEY), None).encryptor().update(data))  # noqa: S304
    return ways


def rc4(size: int) -> Primitive:
    """A fresh RC4 key schedule and `size` bytes through it (RC4K, or RC4Init and one RC4), from the
    cheaper of pycryptodome and cryptography (smb2auth takes cryptography's when it is installed)."""
    return Primitive("RC4 set-up + use", _cheapest(_rc4_ways(_data(size))))


def urandom(size: int) -> Primitive:
    return Primitive("os.urandom", lambda: os.urandom(size))


def sha512(size: int) -> Primitive:
    data = _data(size)
    return Primitive("SHA-512", lambda: hashlib.sha512(data).digest())


def hmac_sha256(size: int) -> Primitive:
    data = _data(size)
    return Primitive("HMAC-SHA256", lambda: hmac.digest(KEY, data, "sha256"))


def aes_gmac(size: int) -> Primitive:
    """From the AES backend smb2auth uses (cryptography when installed: the cheaper of the two)."""
    data = _data(size)
    backend = smb2_crypto.AES_BACKENDS[smb2_crypto.aes_backend()]
    return Primitive("AES-GMAC", lambda: backend.gmac(KEY, NONCE, data))


def aes_cmac(size: int) -> Primitive:
    data = _data(size)
    backend = smb2_crypto.AES_BACKENDS[smb2_crypto.aes_backend()]
    return Primitive("AES-CMAC", lambda: backend.cmac(KEY, data))


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le"))


def ntlm_client(
    password: str | None, user: str, domain: str, blob: int, mic_input: int
) -> list[Primitive]:
    """MS-NLMP 3.1.5.1.2 / 3.3.2 for the initiator: NTOWFv1 (when given the password), NTOWFv2,
    NTProofStr over ServerChallenge || blob, SessionBaseKey, RC4K of the random session key, the MIC
    over the three messages; the client challenge and the random session key. (The LMv2 response is
    not sent when the server sent a timestamp, so its HMAC is not in the floor.)"""
    out = [md4(utf16_len(password))] if password is not None else []
    return out + [
        hmac_md5(utf16_len(user.upper() + domain)),
        hmac_md5(8 + blob),
        hmac_md5(16),
        rc4(16),
        hmac_md5(mic_input),
        urandom(8),
        urandom(16),
    ]


def ntlm_server(user: str, domain: str, blob: int, mic_input: int) -> list[Primitive]:
    """MS-NLMP 3.2.5.1.2 for the acceptor holding the NT hash: the server challenge, NTOWFv2,
    NTProofStr, SessionBaseKey, RC4K to recover the session key, the MIC."""
    return [
        urandom(8),
        hmac_md5(utf16_len(user.upper() + domain)),
        hmac_md5(8 + blob),
        hmac_md5(16),
        rc4(16),
        hmac_md5(mic_input),
    ]


def mech_list_mic(mech_types: int) -> list[Primitive]:
    """MS-SPNG 3.3.5.1 / MS-NLMP 3.4.4.2 for one side: its signature over the DER MechTypeList and the
    check of the peer's. Each direction needs SIGNKEY and SEALKEY (MD5), an RC4 handle on the sealing
    key and HMAC-MD5 over SeqNum || message, whose checksum goes through RC4 (KEY_EXCH)."""
    one_direction = [md5(16 + 59), md5(16 + 59), rc4(8), hmac_md5(4 + mech_types)]
    return one_direction + one_direction
