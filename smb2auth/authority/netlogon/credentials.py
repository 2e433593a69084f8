"""The Netlogon secure channel's keys (MS-NRPC 3.1.4): the AES session key, the credential computation,
the authenticator chain, the negotiate flags, and the AES-CFB8 encryption of the keys a DC returns."""

from __future__ import annotations

import enum
import hashlib
import hmac
import struct

from Crypto.Cipher import AES

from smb2auth.authority.netlogon.nrpc import Authenticator
from smb2auth.errors import Smb2AuthError
from smb2auth.ntlm import crypto

_LOW = struct.Struct("<I")


class NegotiateFlags(enum.IntFlag):
    """MS-NRPC 3.1.4.2, the bits we name."""

    NETLOGON_NEG_ACCOUNT_LOCKOUT = 0x00000001
    NETLOGON_NEG_PERSISTENT_SAMREPL = 0x00000002
    NETLOGON_NEG_ARCFOUR = 0x00000004
    NETLOGON_NEG_PROMOTION_COUNT = 0x00000008
    NETLOGON_NEG_CHANGELOG_BDC = 0x00000010
    NETLOGON_NEG_FULL_SYNC_REPL = 0x00000020
    NETLOGON_NEG_MULTIPLE_SIDS = 0x00000040
    NETLOGON_NEG_REDO = 0x00000080
    NETLOGON_NEG_PASSWORD_CHANGE_REFUSAL = 0x00000100
    NETLOGON_NEG_SEND_PASSWORD_INFO_PDC = 0x00000200
    NETLOGON_NEG_GENERIC_PASSTHROUGH = 0x00000400
    NETLOGON_NEG_CONCURRENT_RPC = 0x00000800
    NETLOGON_NEG_AVOID_ACCOUNT_DB_REPL = 0x00001000
    NETLOGON_NEG_AVOID_SECURITYAUTH_DB_REPL = 0x00002000
    NETLOGON_NEG_STRONG_KEYS = 0x00004000
    NETLOGON_NEG_TRANSITIVE_TRUSTS = 0x00008000
    NETLOGON_NEG_DNS_DOMAIN_TRUSTS = 0x00010000
    NETLOGON_NEG_PASSWORD_SET2 = 0x00020000
    NETLOGON_NEG_GETDOMAININFO = 0x00040000
    NETLOGON_NEG_CROSS_FOREST_TRUSTS = 0x00080000
    NETLOGON_NEG_NEUTRALIZE_NT4_EMULATION = 0x00100000
    NETLOGON_NEG_RODC_PASSTHROUGH = 0x00200000
    NETLOGON_NEG_SUPPORTS_AES_SHA2 = 0x00400000
    NETLOGON_NEG_SUPPORTS_AES = 0x01000000
    NETLOGON_NEG_AUTHENTICATED_RPC_LSASS = 0x20000000
    NETLOGON_NEG_AUTHENTICATED_RPC = 0x40000000


# What a member server asks for: AES channel, schannel-protected RPC, the generic pass-through and
# transitive network logons (MS-NRPC 3.1.4.2; Windows members send 0x612FFFFF).
CLIENT_FLAGS = NegotiateFlags(0x612FFFFF)


def compute_session_key_aes(nt_hash: bytes, client_challenge: bytes, server_challenge: bytes) -> bytes:
    """MS-NRPC 3.1.4.3.1: HMAC-SHA256(NT hash of the secret, ClientChallenge + ServerChallenge)[:16]."""
    return hmac.new(nt_hash, client_challenge + server_challenge, hashlib.sha256).digest()[:16]


def machine_nt_hash(password: str) -> bytes:
    """The shared secret's MD4 (MS-NRPC 3.1.4.3.1 uses the NT hash of the machine password)."""
    return crypto.ntowfv1(password)


def aes_cfb8_encrypt(key: bytes, data: bytes, iv: bytes = b"\x00" * 16) -> bytes:
    return bytes(AES.new(key, AES.MODE_CFB, iv=iv, segment_size=8).encrypt(data))


def aes_cfb8_decrypt(key: bytes, data: bytes, iv: bytes = b"\x00" * 16) -> bytes:
    return bytes(AES.new(key, AES.MODE_CFB, iv=iv, segment_size=8).decrypt(data))


def compute_netlogon_credential_aes(data: bytes, session_key: bytes) -> bytes:
    """MS-NRPC 3.1.4.4.1: AES-128 in CFB8 mode, zero IV, over the 8-byte input."""
    return aes_cfb8_encrypt(session_key, data)


def decrypt_user_session_key(session_key: bytes, encrypted: bytes) -> bytes:
    """MS-NRPC 3.2.4.1 / 2.2.1.4.11: with AES negotiated, the DC encrypts the UserSessionKey of the
    SAM_INFO and SAM_INFO2 validations with the channel's session key, AES-CFB8, zero IV; an all-zero key
    is sent as it is."""
    if not any(encrypted):
        return encrypted
    return aes_cfb8_decrypt(session_key, encrypted)


class AuthenticatorChainError(Smb2AuthError):
    """The chain is out of step: the DC's ReturnAuthenticator did not verify, or a call was lost midway."""


def _add(credential: bytes, value: int) -> bytes:
    # MS-NRPC 3.1.4.5: the stored credential plus a number, added to its first 32-bit little-endian word
    # with wrap-around, as Samba's netlogon_creds_step does
    return _LOW.pack((_LOW.unpack_from(credential)[0] + value) & 0xFFFFFFFF) + credential[4:]


class AuthenticatorChain:
    """The client side of MS-NRPC 3.1.4.5, for the calls that carry an Authenticator (SamLogonWithFlags):
    ClientStoredCredential starts as the credential sent in NetrServerAuthenticate3; each call adds its
    timestamp to it and sends its Netlogon credential, the DC answers with the credential of the stored one
    plus 1, which becomes the stored one. The chain is sequential: one call at a time, each checked before
    the next; a ReturnAuthenticator that does not verify, or a call that never got its answer, breaks it."""

    def __init__(self, session_key: bytes, client_credential: bytes) -> None:
        self._key = session_key
        self._stored = client_credential
        self._timestamp = 0
        self._expected: bytes | None = None
        self.broken = False

    def __repr__(self) -> str:
        state = "broken" if self.broken else "waiting" if self._expected is not None else "ready"
        return f"AuthenticatorChain({state}, timestamp={self._timestamp})"

    def next(self, now: int) -> Authenticator:
        """The Authenticator for the next call, `now` the time in seconds since 1970 (TimeNow)."""
        if self.broken:
            raise AuthenticatorChainError("the authenticator chain is broken: a new secure channel is needed")
        if self._expected is not None:
            self.broken = True
            raise AuthenticatorChainError("an authenticator was sent without its answer being checked")
        # Samba's client keeps the timestamp increasing even within one second; the DC only adds it
        self._timestamp = max(now & 0xFFFFFFFF, self._timestamp + 1) & 0xFFFFFFFF
        self._stored = _add(self._stored, self._timestamp)
        credential = compute_netlogon_credential_aes(self._stored, self._key)
        self._stored = _add(self._stored, 1)
        self._expected = compute_netlogon_credential_aes(self._stored, self._key)
        return Authenticator(credential, self._timestamp)

    def check(self, returned: Authenticator | None) -> None:
        """MS-NRPC 3.1.4.5: the DC's ReturnAuthenticator is the credential of ClientStoredCredential + 1."""
        expected, self._expected = self._expected, None
        if expected is None:
            self.broken = True
            raise AuthenticatorChainError("a ReturnAuthenticator with no authenticator sent")
        if returned is None or not hmac.compare_digest(returned.credential, expected):
            self.broken = True
            raise AuthenticatorChainError("the DC's ReturnAuthenticator does not verify")

    def lost(self) -> None:
        """The call's answer will never be checked (the association died, the call timed out)."""
        if self._expected is not None:
            self.broken = True
            self._expected = None
