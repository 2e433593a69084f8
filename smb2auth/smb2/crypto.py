"""SMB2/SMB3 message security: preauth integrity (MS-SMB2 3.2.5.2, 3.3.5.4), key derivation (3.1.4.2,
3.2.5.3.1, 3.3.5.5.3), signing (3.1.4.1) and encryption with the transform header (2.2.41, 3.1.4.3)."""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal

from Crypto.Cipher import AES
from Crypto.Hash import CMAC

from smb2auth._frozen import quick_init
from smb2auth.errors import MalformedMessage
from smb2auth.smb2.header import (
    HEADER_SIZE,
    SIGNATURE_OFFSET,
    SIGNATURE_SIZE,
    SMB2_PROTOCOL_ID,
    TRANSFORM_PROTOCOL_ID,
    Command,
    HeaderFlags,
)
from smb2auth.smb2.negotiate import Dialect
from smb2auth.smb2.negotiate_contexts import Cipher, SigningAlgorithm
from smb2auth.status import NtStatus

PREAUTH_HASH_SIZE = 64


@dataclass(frozen=True)
class PreauthIntegrity:
    """MS-SMB2 3.2.5.2 / 3.3.5.4: the 3.1.1 SHA-512 chain H(i) = SHA-512(H(i-1) || message), H(0) = 64 zeros.

    Immutable: `add` returns the next value, so a session can start from a copy of the connection's.
    """

    value: bytes = bytes(PREAUTH_HASH_SIZE)

    def add(self, message: bytes) -> PreauthIntegrity:
        """The chain after `message` (its exact bytes, SMB2 header included, Direct TCP header excluded)."""
        return PreauthIntegrity(hashlib.sha512(self.value + message).digest())


_U32_BE = struct.Struct(">I")
_FIRST_BLOCK = _U32_BE.pack(1)


def kdf(key: bytes, label: bytes, context: bytes, length: int = 16) -> bytes:
    """MS-SMB2 3.1.4.2: SP800-108 counter mode, PRF HMAC-SHA256, r = 32, L = 8 * `length`.

    `label` includes its terminating NUL as MS-SMB2 writes it ("SMBSigningKey\\0"); the KDF input is
    i || Label || 0x00 || Context || L, i and L 32-bit big-endian, i counting blocks from 1.
    """
    tail = b"\x00" + context + _U32_BE.pack(8 * length)
    if length <= 32:
        # One block, i = 1: every key SMB2 derives (16 or 32 bytes).
        return hmac.digest(key, _FIRST_BLOCK + label + tail, "sha256")[:length]
    blocks = (length + 31) // 32
    derived = b"".join(
        hmac.digest(key, _U32_BE.pack(i) + label + tail, "sha256") for i in range(1, blocks + 1)
    )
    return derived[:length]


_LABELS_30 = {
    "signing": (b"SMB2AESCMAC\x00", b"SmbSign\x00"),
    "application": (b"SMB2APP\x00", b"SmbRpc\x00"),
    "c2s": (b"SMB2AESCCM\x00", b"ServerIn \x00"),
    "s2c": (b"SMB2AESCCM\x00", b"ServerOut\x00"),
}
_LABELS_311 = {
    "signing": b"SMBSigningKey\x00",
    "application": b"SMBAppKey\x00",
    "c2s": b"SMBC2SCipherKey\x00",
    "s2c": b"SMBS2CCipherKey\x00",
}


_CIPHER_KEY_SIZE: dict[int, int] = {
    Cipher.AES_128_CCM: 16,
    Cipher.AES_128_GCM: 16,
    Cipher.AES_256_CCM: 32,
    Cipher.AES_256_GCM: 32,
}


KeyUse = Literal["signing", "application", "c2s", "s2c"]


def _derive_key(
    dialect: int, session_key: bytes, use: KeyUse, preauth_hash: bytes | None, cipher: int
) -> bytes:
    """MS-SMB2 3.2.5.3.1 / 3.3.5.5.3: one key of a session (`use`) from the GSS session key.

    `session_key` is the full key GSS gives (NTLM's ExportedSessionKey); Session.SessionKey is its first
    16 bytes, zero-padded. 256-bit ciphers derive 32-byte cipher keys from the full key (L = 256).
    """
    short = session_key[:16].ljust(16, b"\x00")
    if dialect in (Dialect.SMB2_0_2, Dialect.SMB2_1):
        # MS-SMB2 3.3.5.5.3: for 2.0.2 and 2.1 the signing key is the session key.
        return short if use in ("signing", "application") else b""
    if dialect in (Dialect.SMB3_0, Dialect.SMB3_0_2):
        return kdf(short, *_LABELS_30[use])
    if dialect == Dialect.SMB3_1_1:
        if preauth_hash is None or len(preauth_hash) != PREAUTH_HASH_SIZE:
            raise ValueError("3.1.1 key derivation needs the 64-byte preauth integrity hash")
        if use in ("signing", "application"):
            return kdf(short, _LABELS_311[use], preauth_hash)
        size = _CIPHER_KEY_SIZE.get(cipher, 16)
        return kdf(session_key if size == 32 else short, _LABELS_311[use], preauth_hash, size)
    raise ValueError(f"no session keys for dialect 0x{dialect:04x}")


@dataclass(frozen=True)
class SessionKeys:
    """A session's keys (MS-SMB2 3.2.5.3.1 / 3.3.5.5.3), from the GSS session key and, for 3.1.1, the preauth
    integrity hash. The signing key is derived at once, the others on first use (most sessions only sign).

    `encryption_key` protects client->server messages and `decryption_key` server->client ones (the client's
    view, as in MS-SMB2 3.2.5.3.1); a server decrypts with the first.
    """

    dialect: int
    gss_key: bytes = field(repr=False)
    preauth_hash: bytes | None = field(default=None, repr=False)
    cipher: int = Cipher.AES_128_CCM
    _derived: dict[str, bytes] = field(default_factory=dict, init=False, repr=False, compare=False)
    _signers: dict[int, Signer] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._derived["signing"] = _derive_key(
            self.dialect, self.gss_key, "signing", self.preauth_hash, self.cipher
        )

    def _get(self, use: KeyUse) -> bytes:
        key = self._derived.get(use)
        if key is None:
            key = self._derived[use] = _derive_key(
                self.dialect, self.gss_key, use, self.preauth_hash, self.cipher
            )
        return key

    @property
    def session_key(self) -> bytes:
        """MS-SMB2 3.2.5.3.1: Session.SessionKey, the first 16 bytes of the GSS key, zero-padded."""
        return self.gss_key[:16].ljust(16, b"\x00")

    @property
    def signing_key(self) -> bytes:
        return self._derived["signing"]

    def signer(self, algorithm: int) -> Signer:
        """Signing and verifying under Session.SigningKey with `algorithm`, set up on first use."""
        signer = self._signers.get(algorithm)
        if signer is None:
            signer = self._signers[algorithm] = Signer(self._derived["signing"], algorithm)
        return signer

    @property
    def application_key(self) -> bytes:
        return self._get("application")

    @property
    def encryption_key(self) -> bytes:
        return self._get("c2s")

    @property
    def decryption_key(self) -> bytes:
        return self._get("s2c")

    @property
    def client_to_server_key(self) -> bytes:
        return self._get("c2s")

    @property
    def server_to_client_key(self) -> bytes:
        return self._get("s2c")


def derive_session_keys(
    dialect: int,
    session_key: bytes,
    preauth_hash: bytes | None = None,
    cipher: int = Cipher.AES_128_CCM,
) -> SessionKeys:
    """The keys of a session (see `SessionKeys`); `session_key` is the full GSS session key."""
    return SessionKeys(dialect, session_key, preauth_hash, cipher)


# Header fields as plain ints: IntFlag arithmetic dispatches into Python, and every message is signed.
_SIGNED: Final = int(HeaderFlags.SIGNED)
_SERVER_TO_REDIR: Final = int(HeaderFlags.SERVER_TO_REDIR)
_CANCEL: Final = int(Command.CANCEL)
_FLAGS = struct.Struct("<I")  # at offset 16
_COMMAND_FLAGS_MESSAGE_ID = struct.Struct("<12xH2xI4xQ")
_GMAC_NONCE = struct.Struct("<QI")
_ZERO_SIGNATURE = bytes(SIGNATURE_SIZE)


def gmac_nonce(message: bytes) -> bytes:
    """MS-SMB2 3.1.4.1: MessageId (8 bytes LE) then 4 bytes: bit 0 set for a response, bit 1 for a CANCEL."""
    command, flags, message_id = _COMMAND_FLAGS_MESSAGE_ID.unpack_from(message)
    role = (1 if flags & _SERVER_TO_REDIR else 0) | (2 if command == _CANCEL else 0)
    return _GMAC_NONCE.pack(message_id, role)


# --- the AES primitives: one key API over two libraries ---
#
# pycryptodome is required; cryptography (OpenSSL), when importable, is used instead for the same bytes
# (tests/smb2/test_aes_backends.py checks each primitive both ways). pycryptodome sets up every new key in
# Python (the GHASH table of GCM, the CMAC subkeys): benchmarks/bench_client.py measures ~100 µs per
# AES-GMAC or AES-CMAC signature with it and ~5 µs with cryptography, and SMB3 signs each message under
# its session's key.


@dataclass(frozen=True)
class AesBackend:
    """AES-CMAC, AES-GMAC (MS-SMB2 3.1.4.1) and the AEAD of the transform header (3.1.4.3) from one library.
    `seal` returns (ciphertext, 16-byte tag); `open` the plaintext, or raises ValueError if the tag fails."""

    name: str
    cmac: Callable[[bytes, bytes], bytes]  # (key, message) -> tag
    gmac: Callable[[bytes, bytes, bytes], bytes]  # (key, nonce, message) -> tag
    gmac_keyed: Callable[[bytes], Callable[[bytes, bytes], bytes]]  # key -> ((nonce, message) -> tag)
    seal: Callable[[bool, bytes, bytes, bytes, bytes], tuple[bytes, bytes]]  # (ccm, key, nonce, aad, data)
    open: Callable[[bool, bytes, bytes, bytes, bytes, bytes], bytes]  # (ccm, key, nonce, aad, data, tag)


def _pycryptodome_cmac(key: bytes, message: bytes) -> bytes:
    return CMAC.new(key, message, ciphermod=AES).digest()


def _pycryptodome_gmac(key: bytes, nonce: bytes, message: bytes) -> bytes:
    gmac = AES.new(key, AES.MODE_GCM, nonce=nonce)
    gmac.update(message)
    tag: bytes = gmac.digest()
    return tag


def _pycryptodome_gmac_keyed(key: bytes) -> Callable[[bytes, bytes], bytes]:
    return functools.partial(_pycryptodome_gmac, key)  # a GCM object takes one nonce: one per message


def _pycryptodome_aead(ccm: bool, key: bytes, nonce: bytes) -> Any:
    return AES.new(key, AES.MODE_CCM if ccm else AES.MODE_GCM, nonce=nonce, mac_len=16)


def _pycryptodome_seal(ccm: bool, key: bytes, nonce: bytes, aad: bytes, data: bytes) -> tuple[bytes, bytes]:
    aes = _pycryptodome_aead(ccm, key, nonce)
    aes.update(aad)
    ciphertext, tag = aes.encrypt_and_digest(data)
    return ciphertext, tag


def _pycryptodome_open(ccm: bool, key: bytes, nonce: bytes, aad: bytes, data: bytes, tag: bytes) -> bytes:
    aes = _pycryptodome_aead(ccm, key, nonce)
    aes.update(aad)
    plaintext: bytes = aes.decrypt_and_verify(data, tag)
    return plaintext


AES_BACKENDS: dict[str, AesBackend] = {
    "pycryptodome": AesBackend(
        "pycryptodome",
        _pycryptodome_cmac,
        _pycryptodome_gmac,
        _pycryptodome_gmac_keyed,
        _pycryptodome_seal,
        _pycryptodome_open,
    )
}

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM
    from cryptography.hazmat.primitives.ciphers.algorithms import AES as OpenSslAes
    from cryptography.hazmat.primitives.cmac import CMAC as OpenSslCmac
except ImportError:  # the optional backend is not installed
    pass
else:

    def _cryptography_cmac(key: bytes, message: bytes) -> bytes:
        cmac = OpenSslCmac(OpenSslAes(key))
        cmac.update(message)
        return cmac.finalize()

    def _cryptography_gmac(key: bytes, nonce: bytes, message: bytes) -> bytes:
        # GMAC is GCM with the message as associated data and nothing to encrypt: the output is the tag.
        return AESGCM(key).encrypt(nonce, b"", message)

    def _cryptography_gmac_keyed(key: bytes) -> Callable[[bytes, bytes], bytes]:
        # The key schedule once; each message then only passes its nonce and itself as associated data.
        encrypt = AESGCM(key).encrypt
        return lambda nonce, message: encrypt(nonce, b"", message)

    def _cryptography_seal(
        ccm: bool, key: bytes, nonce: bytes, aad: bytes, data: bytes
    ) -> tuple[bytes, bytes]:
        aead = AESCCM(key, tag_length=16) if ccm else AESGCM(key)
        sealed = aead.encrypt(nonce, data, aad)
        return sealed[:-16], sealed[-16:]

    def _cryptography_open(ccm: bool, key: bytes, nonce: bytes, aad: bytes, data: bytes, tag: bytes) -> bytes:
        aead = AESCCM(key, tag_length=16) if ccm else AESGCM(key)
        try:
            return aead.decrypt(nonce, data + tag, aad)
        except InvalidTag:
            raise ValueError("MAC check failed") from None

    AES_BACKENDS["cryptography"] = AesBackend(
        "cryptography",
        _cryptography_cmac,
        _cryptography_gmac,
        _cryptography_gmac_keyed,
        _cryptography_seal,
        _cryptography_open,
    )

_aes_backend = AES_BACKENDS.get("cryptography", AES_BACKENDS["pycryptodome"])


def aes_backend() -> str:
    """The library the AES primitives come from: "cryptography" when it is importable, else "pycryptodome"."""
    return _aes_backend.name


def use_aes_backend(name: str) -> None:
    """Take the AES primitives from `name` (a key of AES_BACKENDS) from now on, in this process."""
    global _aes_backend
    if name not in AES_BACKENDS:
        raise ValueError(f"AES backend {name!r} is not available (have: {', '.join(AES_BACKENDS)})")
    _aes_backend = AES_BACKENDS[name]


def _check_message(message: bytes) -> None:
    if len(message) < HEADER_SIZE or message[:4] != SMB2_PROTOCOL_ID:
        raise MalformedMessage("signing needs a whole SMB2 message")


def _split(message: bytes) -> tuple[bytes, bytes]:
    """The header up to the signature with SMB2_FLAGS_SIGNED set, and what follows the signature: with a
    zero signature between them, what the signature covers."""
    (flags,) = _FLAGS.unpack_from(message, 16)
    head = message[:16] + _FLAGS.pack(flags | _SIGNED) + message[20:SIGNATURE_OFFSET]
    return head, message[SIGNATURE_OFFSET + SIGNATURE_SIZE :]


class Signer:
    """MS-SMB2 3.1.4.1: signing and verifying under one key with one algorithm. A session signs every message
    under its one key: the AES-GMAC key schedule is set up once (with cryptography; pycryptodome's GCM object
    takes one nonce, so it is set up per message there). The key is never in its repr."""

    __slots__ = ("algorithm", "_mac")

    def __init__(self, key: bytes, algorithm: int) -> None:
        self.algorithm = algorithm
        if algorithm == SigningAlgorithm.HMAC_SHA256:
            self._mac: Callable[[bytes], bytes] = functools.partial(_hmac_sha256, key)
        elif algorithm == SigningAlgorithm.AES_CMAC:
            self._mac = functools.partial(_aes_backend.cmac, key)
        elif algorithm == SigningAlgorithm.AES_GMAC:
            gmac = _aes_backend.gmac_keyed(key)
            self._mac = lambda message: gmac(gmac_nonce(message), message)
        else:
            raise ValueError(f"unknown signing algorithm {algorithm}")

    def __repr__(self) -> str:
        return f"<Signer {SigningAlgorithm(self.algorithm).name}>"

    def sign(self, message: bytes) -> bytes:
        """`message` (one whole message, compound padding included) signed. For AES-GMAC the nonce's role
        bits come from the message's own SERVER_TO_REDIR flag and command."""
        _check_message(message)
        head, rest = _split(message)
        return head + self._mac(head + _ZERO_SIGNATURE + rest) + rest

    def verify(self, message: bytes) -> bool:
        """Whether `message` has SMB2_FLAGS_SIGNED and a valid signature (constant-time compare)."""
        _check_message(message)
        (flags,) = _FLAGS.unpack_from(message, 16)
        if not flags & _SIGNED:
            return False
        head, rest = _split(message)
        expected = self._mac(head + _ZERO_SIGNATURE + rest)
        return hmac.compare_digest(expected, message[SIGNATURE_OFFSET : SIGNATURE_OFFSET + SIGNATURE_SIZE])


def _hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.digest(key, message, "sha256")[:SIGNATURE_SIZE]


def sign(message: bytes, key: bytes, algorithm: int) -> bytes:
    """MS-SMB2 3.1.4.1: `message` (one whole message, compound padding included) signed with `key`."""
    return Signer(key, algorithm).sign(message)


def verify(message: bytes, key: bytes, algorithm: int) -> bool:
    """Whether `message` has SMB2_FLAGS_SIGNED and a valid signature under `key` (constant-time compare)."""
    return Signer(key, algorithm).verify(message)


# --- encryption (MS-SMB2 2.2.41, 3.1.4.3) ---


class TransformFlags(enum.IntFlag):
    """MS-SMB2 2.2.41: Flags (3.1.1) / EncryptionAlgorithm (3.0, 3.0.2: SMB2_ENCRYPTION_AES128_CCM = 1)."""

    ENCRYPTED = 0x0001


def nonce_size(cipher: int) -> int:
    """MS-SMB2 2.2.41: the nonce's length, 11 bytes for AES-CCM and 12 for AES-GCM (zero-padded to 16)."""
    return 11 if cipher in (Cipher.AES_128_CCM, Cipher.AES_256_CCM) else 12


@quick_init
@dataclass(frozen=True)
class TransformHeader:
    """MS-SMB2 2.2.41: SMB2 TRANSFORM_HEADER (52 bytes)."""

    nonce: bytes
    original_message_size: int
    session_id: int
    signature: bytes = bytes(16)
    flags: TransformFlags = TransformFlags.ENCRYPTED

    SIZE: ClassVar[int] = 52
    _STRUCT: ClassVar[struct.Struct] = struct.Struct("<4s16s16sIHHQ")

    def pack(self) -> bytes:
        return self._STRUCT.pack(
            TRANSFORM_PROTOCOL_ID,
            self.signature,
            self.nonce,
            self.original_message_size,
            0,
            self.flags,
            self.session_id,
        )

    @property
    def aad(self) -> bytes:
        """MS-SMB2 3.1.4.3: the associated data is the header from Nonce on (32 bytes)."""
        return self.pack()[20:]

    @classmethod
    def unpack(cls, data: bytes) -> TransformHeader:
        if len(data) < cls.SIZE:
            raise MalformedMessage(f"TRANSFORM_HEADER needs 52 bytes, got {len(data)}")
        protocol, signature, nonce, size, _, flags, session_id = cls._STRUCT.unpack_from(data)
        if protocol != TRANSFORM_PROTOCOL_ID:
            raise MalformedMessage("not a TRANSFORM_HEADER (ProtocolId)", offset=0)
        if flags != TransformFlags.ENCRYPTED:
            # MS-SMB2 3.3.5.2.1.1 / 3.2.5.1.1.1: Flags (EncryptionAlgorithm in 3.0) must be 0x0001.
            raise MalformedMessage(f"TRANSFORM_HEADER Flags 0x{flags:04x}, not 0x0001", offset=42)
        if size != len(data) - cls.SIZE:
            # MS-SMB2 3.3.5.2.1.1: OriginalMessageSize must match what follows the header.
            raise MalformedMessage("OriginalMessageSize does not match the encrypted data", offset=36)
        return cls(nonce, size, session_id, signature, TransformFlags(flags))


def _aead(key: bytes, cipher: int, nonce: bytes) -> tuple[bool, bytes]:
    """Whether `cipher` is AES-CCM, and the nonce it takes from the 16-byte Nonce field."""
    c = Cipher(cipher)
    if len(key) != _CIPHER_KEY_SIZE[c]:
        raise ValueError(f"{c.name} needs a {_CIPHER_KEY_SIZE[c]}-byte key")
    return c in (Cipher.AES_128_CCM, Cipher.AES_256_CCM), nonce[: nonce_size(c)]


def encrypt(message: bytes, key: bytes, cipher: int, session_id: int, nonce: bytes) -> bytes:
    """MS-SMB2 3.1.4.3: `message` behind a TRANSFORM_HEADER.

    `nonce` is random, drawn by the caller and never reused under one key: 11 bytes for CCM, 12 for GCM,
    zero-padded to the 16-byte Nonce field (MS-SMB2 2.2.41); a full 16-byte field is taken as is (Windows 8
    filled all 16 bytes, and all 16 are covered by the AAD).
    """
    size = nonce_size(Cipher(cipher))
    if len(nonce) not in (size, 16):
        raise ValueError(f"{Cipher(cipher).name} needs an {size}-byte nonce")
    header = TransformHeader(nonce.ljust(16, b"\x00"), len(message), session_id)
    ccm, short = _aead(key, cipher, header.nonce)
    ciphertext, tag = _aes_backend.seal(ccm, key, short, header.aad, message)
    return TransformHeader(header.nonce, len(message), session_id, tag).pack() + ciphertext


def decrypt(data: bytes, key: bytes, cipher: int) -> tuple[TransformHeader, bytes]:
    """MS-SMB2 3.3.5.2.1.1: the TRANSFORM_HEADER and the message it protects; MalformedMessage if the tag
    does not verify (the server then disconnects)."""
    header = TransformHeader.unpack(data)
    ccm, short = _aead(key, cipher, header.nonce)
    try:
        plaintext = _aes_backend.open(
            ccm, key, short, header.aad, data[TransformHeader.SIZE :], header.signature
        )
    except ValueError:
        raise MalformedMessage("decryption failed", status=NtStatus.STATUS_ACCESS_DENIED) from None
    return header, plaintext
