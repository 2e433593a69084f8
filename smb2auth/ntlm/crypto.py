"""MS-NLMP 3.3 / 3.4 functions under their spec names (snake case).

Primitives come from CPython (MD5, and HMAC-MD5 built on it: see _md5_constructor), pycryptodome (MD4,
DES) and, for RC4, cryptography (OpenSSL) when it is installed with its legacy provider, else pycryptodome:
the same bytes, and an RC4 key set-up (RC4K, each RC4Init) costs less than half as much in OpenSSL.
"""

from __future__ import annotations

import codecs
import hashlib
import hmac
import importlib
import struct
import zlib
from collections.abc import Callable

from Crypto.Cipher import ARC4, DES
from Crypto.Hash import MD4

from smb2auth.ntlm.messages import (
    NTLMSSP_NEGOTIATE_56,
    NTLMSSP_NEGOTIATE_128,
    NTLMSSP_NEGOTIATE_DATAGRAM,
    NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY,
    NTLMSSP_NEGOTIATE_KEY_EXCH,
    NTLMSSP_NEGOTIATE_LM_KEY,
    NTLMSSP_REQUEST_NON_NT_SESSION_KEY,
)

_U32 = struct.Struct("<I")
_LM_MAGIC = b"KGS!@#$%"
_CLIENT_SIGN = b"session key to client-to-server signing key magic constant\x00"
_SERVER_SIGN = b"session key to server-to-client signing key magic constant\x00"
_CLIENT_SEAL = b"session key to client-to-server sealing key magic constant\x00"
_SERVER_SEAL = b"session key to server-to-client sealing key magic constant\x00"



def _md5_constructor() -> Callable[[bytes], hashlib._Hash]:
    """CPython's own MD5 (the `_md5` module hashlib falls back on) when the build has it, else hashlib's:
    the same digest, and for NTLM's short inputs about half the instructions, because OpenSSL 3 looks the
    algorithm up again (EVP_MD_fetch) for every new hash object."""
    try:
        builtin = importlib.import_module("_md5")
    except ImportError:
        return hashlib.md5
    constructor: Callable[[bytes], hashlib._Hash] = builtin.md5
    return constructor


_MD5 = _md5_constructor()


def md5_backend() -> str:
    """Where MD5 comes from: "_md5" (CPython's own) or "hashlib" (OpenSSL)."""
    return "hashlib" if _MD5 is hashlib.md5 else "_md5"
# UNICODE() of MS-NLMP: the codec function itself (str.encode looks "utf-16-le" up on every call).
_utf_16_le = codecs.utf_16_le_encode
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))

Rc4 = Callable[[bytes], bytes]


def _pycryptodome_rc4(key: bytes) -> Rc4:
    return ARC4.new(key).encrypt


def _openssl_rc4() -> Callable[[bytes], Rc4] | None:
    """RC4 from cryptography, None when it is not installed or its OpenSSL has no RC4 (the legacy
    provider is not loaded)."""
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher
    except ImportError:
        return None
    try:
        from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4 as Arc4  # cryptography >= 43
    except ImportError:
        from cryptography.hazmat.primitives.ciphers.algorithms import ARC4 as Arc4

    sizes = frozenset(bits // 8 for bits in Arc4.key_sizes)

    def init(key: bytes) -> Rc4:
        if len(key) not in sizes:
            # cryptography takes 5, 7, 8, 10, 16, 20, 24 or 32-byte keys; NTLM's are 8 or 16 bytes.
            return _pycryptodome_rc4(key)
        return Cipher(Arc4(key), None).encryptor().update  # noqa: S304 -- MS-NLMP 6: RC4

    try:
        init(b"\x00" * 16)
    except Exception:  # cryptography.exceptions.UnsupportedAlgorithm, or an OpenSSL that refuses RC4
        return None
    return init


RC4_BACKENDS: dict[str, Callable[[bytes], Rc4]] = {"pycryptodome": _pycryptodome_rc4}
_openssl = _openssl_rc4()
if _openssl is not None:
    RC4_BACKENDS["cryptography"] = _openssl
_rc4_backend = "cryptography" if "cryptography" in RC4_BACKENDS else "pycryptodome"
_rc4_new = RC4_BACKENDS[_rc4_backend]


def rc4_backend() -> str:
    """The library RC4 comes from: "cryptography" when it can do RC4, else "pycryptodome"."""
    return _rc4_backend


def use_rc4_backend(name: str) -> None:
    """Take RC4 from `name` (a key of RC4_BACKENDS) from now on, in this process."""
    global _rc4_backend, _rc4_new
    if name not in RC4_BACKENDS:
        raise ValueError(f"RC4 backend {name!r} is not available (have: {', '.join(RC4_BACKENDS)})")
    _rc4_backend, _rc4_new = name, RC4_BACKENDS[name]


def md4(data: bytes) -> bytes:
    # MD4Hash directly: MD4.new() builds a throw-away hash object first.
    return MD4.MD4Hash(data).digest()  # noqa: S303 -- MS-NLMP 3.3.1: NTOWF is MD4


def md5(data: bytes) -> bytes:
    return _MD5(data).digest()  # noqa: S324 -- MS-NLMP mandates MD5


def hmac_md5(key: bytes, data: bytes) -> bytes:
    """RFC 2104 HMAC over MD5: a third cheaper than hmac.digest() for NTLM's short inputs (that
    goes through OpenSSL's MAC dispatch on every call), and the same bytes."""
    if len(key) > 64:
        key = _MD5(key).digest()  # noqa: S324
    key = key.ljust(64, b"\x00")
    inner = _MD5(key.translate(_IPAD) + data).digest()  # noqa: S324
    return _MD5(key.translate(_OPAD) + inner).digest()  # noqa: S324


def _des_key(key7: bytes) -> bytes:
    """Spread 56 key bits over 8 bytes (MS-NLMP 6: DES with a 7-byte key)."""
    k = int.from_bytes(key7, "big")
    return bytes(((k >> (49 - 7 * i)) & 0x7F) << 1 for i in range(8))


def des(key7: bytes, data8: bytes) -> bytes:
    return DES.new(_des_key(key7), DES.MODE_ECB).encrypt(data8)  # noqa: S304 -- MS-NLMP 6: DES


def desl(key16: bytes, data8: bytes) -> bytes:
    """MS-NLMP 6: DESL(K, D)."""
    return des(key16[0:7], data8) + des(key16[7:14], data8) + des(key16[14:16] + b"\x00" * 5, data8)


def rc4k(key: bytes, data: bytes) -> bytes:
    """MS-NLMP 6: RC4K, a one-shot RC4 with a fresh key."""
    return _rc4_new(key)(data)


def rc4_init(key: bytes) -> Rc4:
    """MS-NLMP 6: RC4Init; the handle keeps its keystream position between calls."""
    return _rc4_new(key)


def ntowfv1(password: str) -> bytes:
    """MS-NLMP 3.3.1: NTOWFv1 = MD4(UNICODE(Passwd)), the NT hash."""
    return md4(_utf_16_le(password)[0])


def lmowfv1(password: str) -> bytes:
    """MS-NLMP 3.3.1: LMOWFv1 (DES of KGS!@#$% under the upper-cased, 14-byte OEM password)."""
    pw = password.upper().encode("cp437", "replace")[:14].ljust(14, b"\x00")
    return des(pw[:7], _LM_MAGIC) + des(pw[7:], _LM_MAGIC)


def ntowfv2(nt_hash: bytes, user: str, domain: str) -> bytes:
    """MS-NLMP 3.3.2: NTOWFv2 = HMAC_MD5(MD4(UNICODE(Passwd)), UNICODE(Uppercase(User) || UserDom))."""
    return hmac_md5(nt_hash, _utf_16_le(user.upper() + domain)[0])


lmowfv2 = ntowfv2


def compute_response_v1(
    flags: int, nt_hash: bytes, lm_hash: bytes, server_challenge: bytes, client_challenge: bytes
) -> tuple[bytes, bytes, bytes]:
    """MS-NLMP 3.3.1: returns (NtChallengeResponse, LmChallengeResponse, SessionBaseKey)."""
    if flags & NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY:
        nt = desl(nt_hash, md5(server_challenge + client_challenge)[:8])
        lm = client_challenge + b"\x00" * 16
    else:
        nt = desl(nt_hash, server_challenge)
        lm = desl(lm_hash, server_challenge)
    return nt, lm, md4(nt_hash)


def ntlmv2_temp(
    timestamp: int, client_challenge: bytes, av_pairs: bytes, trailer: bytes = b"\0" * 4
) -> bytes:
    """MS-NLMP 3.3.2: temp = RespType, HiRespType, Z(6), Time, ClientChallenge, Z(4), ServerName, Z(4)."""
    head = b"\x01\x01" + b"\x00" * 6 + struct.pack("<Q", timestamp) + client_challenge + b"\0" * 4
    return head + av_pairs + trailer


def compute_response_v2(
    response_key: bytes,
    server_challenge: bytes,
    client_challenge: bytes,
    temp: bytes,
    *,
    lmv2: bool = True,
) -> tuple[bytes, bytes, bytes]:
    """MS-NLMP 3.3.2: returns (NtChallengeResponse, LmChallengeResponse, SessionBaseKey).

    `lmv2=False` when the server sent MsvAvTimestamp: the LM response is then Z(24) (MS-NLMP 3.1.5.1.2).
    """
    nt_proof_str = hmac_md5(response_key, server_challenge + temp)
    lm = bytes(24)
    if lmv2:
        lm = hmac_md5(response_key, server_challenge + client_challenge) + client_challenge
    return nt_proof_str + temp, lm, hmac_md5(response_key, nt_proof_str)


def kxkey(
    flags: int,
    session_base_key: bytes,
    lm_hash: bytes,
    lm_response: bytes,
    server_challenge: bytes,
    *,
    ntlmv2: bool,
) -> bytes:
    """MS-NLMP 3.4.5.1: KXKEY."""
    if ntlmv2:
        return session_base_key
    if flags & NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY:
        return hmac_md5(session_base_key, server_challenge + lm_response[:8])
    if flags & NTLMSSP_NEGOTIATE_LM_KEY:
        return des(lm_hash[:7], lm_response[:8]) + des(lm_hash[7:8] + b"\xbd" * 6, lm_response[:8])
    if flags & NTLMSSP_REQUEST_NON_NT_SESSION_KEY:
        return lm_hash[:8] + b"\x00" * 8
    return session_base_key


def signkey(flags: int, exported_session_key: bytes, client: bool) -> bytes | None:
    """MS-NLMP 3.4.5.2: SIGNKEY; None without extended session security."""
    if not flags & NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY:
        return None
    return md5(exported_session_key + (_CLIENT_SIGN if client else _SERVER_SIGN))


def sealkey(flags: int, exported_session_key: bytes, client: bool) -> bytes:
    """MS-NLMP 3.4.5.3: SEALKEY."""
    if flags & NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY:
        if flags & NTLMSSP_NEGOTIATE_128:
            key = exported_session_key
        elif flags & NTLMSSP_NEGOTIATE_56:
            key = exported_session_key[:7]
        else:
            key = exported_session_key[:5]
        return md5(key + (_CLIENT_SEAL if client else _SERVER_SEAL))
    if flags & (NTLMSSP_NEGOTIATE_LM_KEY | NTLMSSP_NEGOTIATE_DATAGRAM):
        if flags & NTLMSSP_NEGOTIATE_56:
            return exported_session_key[:7] + b"\xa0"
        return exported_session_key[:5] + b"\xe5\x38\xb0"
    return exported_session_key


def mac(flags: int, handle: Rc4, signing_key: bytes | None, seq_num: int, message: bytes) -> bytes:
    """MS-NLMP 3.4.4: the 16-byte NTLMSSP_MESSAGE_SIGNATURE, with or without ESS."""
    seq = _U32.pack(seq_num)
    if flags & NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY:
        if signing_key is None:
            raise ValueError("extended session security needs a signing key")
        checksum = hmac_md5(signing_key, seq + message)[:8]
        if flags & NTLMSSP_NEGOTIATE_KEY_EXCH:
            checksum = handle(checksum)
        return b"\x01\x00\x00\x00" + checksum + seq
    # MS-NLMP 3.4.4.1: RandomPad, CRC32 and SeqNum are RC4-encrypted; the pad is then sent as zero.
    crc = _U32.pack(zlib.crc32(message) & 0xFFFFFFFF)
    handle(b"\x00" * 4)
    checksum = handle(crc)
    enc_seq = bytes(a ^ b for a, b in zip(handle(b"\x00" * 4), seq, strict=True))
    return b"\x01\x00\x00\x00" + b"\x00" * 4 + checksum + enc_seq


def seal(
    flags: int, handle: Rc4, signing_key: bytes | None, seq_num: int, message: bytes
) -> tuple[bytes, bytes]:
    """MS-NLMP 3.4.3: SEAL: the RC4 sealed message, then its signature from the same handle."""
    sealed = handle(message)
    return sealed, mac(flags, handle, signing_key, seq_num, message)


def mic(exported_session_key: bytes, negotiate: bytes, challenge: bytes, authenticate_zeroed: bytes) -> bytes:
    """MS-NLMP 3.1.5.1.2: HMAC_MD5(ExportedSessionKey, NEGOTIATE || CHALLENGE || AUTHENTICATE(MIC=0))."""
    return hmac_md5(exported_session_key, negotiate + challenge + authenticate_zeroed)


def _domains(domain: str) -> list[str]:
    # Samba libcli/auth/ntlm_check.c: try the domain as sent, upper-cased, then empty.
    out: list[str] = []
    for d in (domain, domain.upper(), ""):
        if d not in out:
            out.append(d)
    return out


def verify_ntlmv2(
    nt_hash: bytes, user: str, domain: str, server_challenge: bytes, nt_response: bytes
) -> bytes | None:
    """MS-NLMP 3.3.2: check NTProofStr over the blob exactly as received; SessionBaseKey or None."""
    if len(nt_response) < 16 + 28 + 4:
        return None
    proof = nt_response[:16]
    message = server_challenge + nt_response[16:]
    for d in _domains(domain):
        key = hmac_md5(nt_hash, _utf_16_le(user.upper() + d)[0])
        expected = hmac_md5(key, message)
        if hmac.compare_digest(expected, proof):
            return hmac_md5(key, expected)
    return None


def verify_lmv2(
    nt_hash: bytes, user: str, domain: str, server_challenge: bytes, lm_response: bytes
) -> bytes | None:
    """MS-NLMP 3.3.2: check an LMv2 response; returns the LMv2 session key or None."""
    if len(lm_response) != 24:
        return None
    for d in _domains(domain):
        key = hmac_md5(nt_hash, _utf_16_le(user.upper() + d)[0])
        expected = hmac_md5(key, server_challenge + lm_response[16:])
        if hmac.compare_digest(expected, lm_response[:16]):
            return hmac_md5(key, expected)
    return None


def verify_ntlmv1(
    nt_hash: bytes, server_challenge: bytes, nt_response: bytes, lm_response: bytes, *, ess: bool
) -> bytes | None:
    """MS-NLMP 3.3.1: check an NTLMv1 response (with client challenge when `ess`); SessionBaseKey or None."""
    if len(nt_response) != 24:
        return None
    if ess:
        if len(lm_response) < 8:
            return None
        challenge = md5(server_challenge + lm_response[:8])[:8]
    else:
        challenge = server_challenge
    if hmac.compare_digest(desl(nt_hash, challenge), nt_response):
        return md4(nt_hash)
    return None


def verify_lm(lm_hash: bytes, server_challenge: bytes, lm_response: bytes) -> bytes | None:
    """MS-NLMP 3.3.1: check an LM response; returns LMOWF[0..7] || Z(8) (Samba's LM session key) or None."""
    if len(lm_response) != 24:
        return None
    if hmac.compare_digest(desl(lm_hash, server_challenge), lm_response):
        return lm_hash[:8] + b"\x00" * 8
    return None


def gss_channel_bindings(
    application_data: bytes = b"",
    *,
    initiator_addrtype: int = 0,
    initiator_address: bytes = b"",
    acceptor_addrtype: int = 0,
    acceptor_address: bytes = b"",
) -> bytes:
    """RFC 2744 3.11: the flat gss_channel_bindings_struct that MS-NLMP 3.1.5.1.2 hashes."""
    return (
        struct.pack("<II", initiator_addrtype, len(initiator_address))
        + initiator_address
        + struct.pack("<II", acceptor_addrtype, len(acceptor_address))
        + acceptor_address
        + struct.pack("<I", len(application_data))
        + application_data
    )


def tls_server_end_point(certificate_hash: bytes) -> bytes:
    """RFC 5929 4: channel bindings struct whose application data is 'tls-server-end-point:' + hash."""
    return gss_channel_bindings(b"tls-server-end-point:" + certificate_hash)


def channel_bindings_hash(bindings: bytes | None) -> bytes:
    """MS-NLMP 2.2.2.1: MsvAvChannelBindings = MD5(gss_channel_bindings_struct), zeros when none."""
    if bindings is None:
        return b"\x00" * 16
    return md5(bindings)
