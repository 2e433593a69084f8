"""SMB2/SMB3 message security: preauth integrity (MS-SMB2 3.2.5.2, 3.3.5.4), key derivation (3.1.4.2,
3.2.5.3.1, 3.3.5.5.3), signing (3.1.4.1) and encryption with the transform header (2.2.41, 3.1.4.3)."""

from __future__ import annotations

import enum
import hashlib
import hmac
import struct
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from Crypto.Cipher import AES
from Crypto.Cipher._mode_ccm import CcmMode
from Crypto.Cipher._mode_gcm import GcmMode
from Crypto.Hash import CMAC
from Crypto.Protocol.KDF import SP800_108_Counter

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


def _hmac_sha256(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha256")


def kdf(key: bytes, label: bytes, context: bytes, length: int = 16) -> bytes:
    """MS-SMB2 3.1.4.2: SP800-108 counter mode, PRF HMAC-SHA256, r = 32, L = 8 * `length`.

    `label` includes its terminating NUL as MS-SMB2 writes it ("SMBSigningKey\\0"); the KDF input is
    i || Label || 0x00 || Context || L.
    """
    if label.endswith(b"\x00"):
        # pycryptodome refuses a NUL inside the label; moving it to the context's front gives the same bytes.
        label, context = label[:-1], b"\x00" + context
    derived = SP800_108_Counter(key, length, _hmac_sha256, label=label, context=context)
    assert isinstance(derived, bytes)
    return derived


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


def gmac_nonce(message: bytes) -> bytes:
    """MS-SMB2 3.1.4.1: MessageId (8 bytes LE) then 4 bytes: bit 0 set for a response, bit 1 for a CANCEL."""
    (message_id,) = struct.unpack_from("<Q", message, 24)
    (flags,) = struct.unpack_from("<I", message, 16)
    (command,) = struct.unpack_from("<H", message, 12)
    role = (1 if flags & HeaderFlags.SERVER_TO_REDIR else 0) | (2 if command == Command.CANCEL else 0)
    return struct.pack("<QI", message_id, role)


def _signature(message: bytes, key: bytes, algorithm: int) -> bytes:
    if algorithm == SigningAlgorithm.HMAC_SHA256:
        return hmac.digest(key, message, "sha256")[:SIGNATURE_SIZE]
    if algorithm == SigningAlgorithm.AES_CMAC:
        return CMAC.new(key, message, ciphermod=AES).digest()
    if algorithm == SigningAlgorithm.AES_GMAC:
        gmac = AES.new(key, AES.MODE_GCM, nonce=gmac_nonce(message))
        gmac.update(message)
        return gmac.digest()
    raise ValueError(f"unknown signing algorithm {algorithm}")


def _check_message(message: bytes) -> None:
    if len(message) < HEADER_SIZE or message[:4] != SMB2_PROTOCOL_ID:
        raise MalformedMessage("signing needs a whole SMB2 message")


def _prepared(message: bytes) -> bytes:
    """The message with SMB2_FLAGS_SIGNED set and the signature zeroed: what the signature covers."""
    (flags,) = struct.unpack_from("<I", message, 16)
    flags |= HeaderFlags.SIGNED
    return (
        message[:16]
        + struct.pack("<I", flags)
        + message[20:SIGNATURE_OFFSET]
        + bytes(SIGNATURE_SIZE)
        + message[SIGNATURE_OFFSET + SIGNATURE_SIZE :]
    )


def sign(message: bytes, key: bytes, algorithm: int) -> bytes:
    """MS-SMB2 3.1.4.1: `message` (one whole message, compound padding included) signed with `key`.

    For AES-GMAC the nonce's role bits come from the message's own SERVER_TO_REDIR flag and command.
    """
    _check_message(message)
    prepared = _prepared(message)
    signature = _signature(prepared, key, algorithm)
    return prepared[:SIGNATURE_OFFSET] + signature + prepared[SIGNATURE_OFFSET + SIGNATURE_SIZE :]


def verify(message: bytes, key: bytes, algorithm: int) -> bool:
    """Whether `message` has SMB2_FLAGS_SIGNED and a valid signature under `key` (constant-time compare)."""
    _check_message(message)
    (flags,) = struct.unpack_from("<I", message, 16)
    if not flags & HeaderFlags.SIGNED:
        return False
    expected = _signature(_prepared(message), key, algorithm)
    return hmac.compare_digest(expected, message[SIGNATURE_OFFSET : SIGNATURE_OFFSET + SIGNATURE_SIZE])


# --- encryption (MS-SMB2 2.2.41, 3.1.4.3) ---


class TransformFlags(enum.IntFlag):
    """MS-SMB2 2.2.41: Flags (3.1.1) / EncryptionAlgorithm (3.0, 3.0.2: SMB2_ENCRYPTION_AES128_CCM = 1)."""

    ENCRYPTED = 0x0001


def nonce_size(cipher: int) -> int:
    """MS-SMB2 2.2.41: the nonce's length, 11 bytes for AES-CCM and 12 for AES-GCM (zero-padded to 16)."""
    return 11 if cipher in (Cipher.AES_128_CCM, Cipher.AES_256_CCM) else 12


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


def _aes(key: bytes, cipher: int, nonce: bytes) -> CcmMode | GcmMode:
    c = Cipher(cipher)
    if len(key) != _CIPHER_KEY_SIZE[c]:
        raise ValueError(f"{c.name} needs a {_CIPHER_KEY_SIZE[c]}-byte key")
    short = nonce[: nonce_size(c)]
    if c in (Cipher.AES_128_CCM, Cipher.AES_256_CCM):
        return AES.new(key, AES.MODE_CCM, nonce=short, mac_len=16)
    return AES.new(key, AES.MODE_GCM, nonce=short, mac_len=16)


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
    aes = _aes(key, cipher, header.nonce)
    aes.update(header.aad)
    ciphertext, tag = aes.encrypt_and_digest(message)
    return TransformHeader(header.nonce, len(message), session_id, tag).pack() + ciphertext


def decrypt(data: bytes, key: bytes, cipher: int) -> tuple[TransformHeader, bytes]:
    """MS-SMB2 3.3.5.2.1.1: the TRANSFORM_HEADER and the message it protects; MalformedMessage if the tag
    does not verify (the server then disconnects)."""
    header = TransformHeader.unpack(data)
    aes = _aes(key, cipher, header.nonce)
    aes.update(header.aad)
    try:
        plaintext: bytes = aes.decrypt_and_verify(data[TransformHeader.SIZE :], header.signature)
    except ValueError:
        raise MalformedMessage("decryption failed", status=NtStatus.STATUS_ACCESS_DENIED) from None
    return header, plaintext
