"""The Netlogon SSP ("schannel") as the client of a secure channel (MS-NRPC 3.3.4): the NL_AUTH_MESSAGE of
the bind, and the AES NL_AUTH_SHA2_SIGNATURE that signs and seals each request and response."""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from smb2auth.authority.netlogon.credentials import aes_cfb8_decrypt, aes_cfb8_encrypt
from smb2auth.errors import MalformedMessage

NL_AUTH_MESSAGE_REQUEST = 0x00000000
NL_AUTH_MESSAGE_RESPONSE = 0x00000001
NL_AUTH_MESSAGE_NETBIOS_DOMAIN = 0x00000001
NL_AUTH_MESSAGE_NETBIOS_HOST = 0x00000002
NL_SIGNATURE_HMAC_SHA256 = 0x0013
NL_SEAL_AES128 = 0x001A
NL_SEAL_NOT_ENCRYPTED = 0xFFFF
SIGNATURE_SIZE = 56  # MS-NRPC 2.2.1.3.3: 32 bytes used, then 24 reserved (sent as zeros)
_SIGNATURE = struct.Struct("<HHHH8s8s8s")
_MESSAGE = struct.Struct("<II")


class SchannelError(Exception):
    """A response whose Netlogon signature does not verify (MS-NRPC 3.3.4.2.2)."""


def nl_auth_negotiate(domain: str, computer: str) -> bytes:
    """MS-NRPC 2.2.1.3.1: a request naming the NetBIOS domain and computer, OEM, each NUL-terminated."""
    flags = NL_AUTH_MESSAGE_NETBIOS_DOMAIN | NL_AUTH_MESSAGE_NETBIOS_HOST
    return (_MESSAGE.pack(NL_AUTH_MESSAGE_REQUEST, flags) + domain.encode("ascii") + b"\x00"
            + computer.encode("ascii") + b"\x00")


def check_nl_auth_response(value: bytes) -> None:
    """MS-NRPC 2.2.1.3.2: the server's answer in the bind_ack is a message of type 1."""
    if len(value) < _MESSAGE.size:
        raise MalformedMessage(f"NL_AUTH_MESSAGE of {len(value)} bytes", offset=0)
    kind, _ = _MESSAGE.unpack_from(value)
    if kind != NL_AUTH_MESSAGE_RESPONSE:
        raise MalformedMessage(f"NL_AUTH_MESSAGE type {kind} where the server answers 1", offset=0)


def copy_seq_number(seq: int, outbound_from_client: bool) -> bytes:
    """MS-NRPC 3.3.4.2.1 step 3: big-endian low then high 32 bits, the high bit set on the client's."""
    high = (seq >> 32) & 0x7FFFFFFF
    if outbound_from_client:
        high |= 0x80000000
    return struct.pack(">II", seq & 0xFFFFFFFF, high)


@dataclass
class SchannelContext:
    """One schannel security context (one bind): the session key and the message counter, which the
    client's request and the server's response each advance (as Samba's schannel_state does). The same
    rules serve both parties: `initiator` is the client's side."""

    session_key: bytes = field(repr=False)
    rng: Callable[[int], bytes] = field(repr=False)
    seal: bool = True
    sequence: int = 0
    initiator: bool = True

    def _checksum(self, header: bytes, confounder: bytes, message: bytes) -> bytes:
        # MS-NRPC 3.3.4.2.1 step 7 (AES): HMAC-SHA256 over the first 8 bytes, the confounder, the message
        return hmac.new(self.session_key, header + confounder + message, hashlib.sha256).digest()[:8]

    def _seal_key(self) -> bytes:
        # MS-NRPC 3.3.4.2.1 step 8: the sealing key is the session key XORed with 0xF0
        return bytes(b ^ 0xF0 for b in self.session_key)

    def wrap(self, message: bytes, around: tuple[bytes, bytes] = (b"", b"")) -> tuple[bytes, bytes]:
        """-> (the message, sealed when sealing, and the signature token) for the next outbound message.
        With header signing (PFC_SUPPORT_HEADER_SIGN, MS-RPCE 2.2.2.11) the checksum covers the whole PDU:
        `around` is what comes before and after the message in it (the auth_value left out)."""
        seq = copy_seq_number(self.sequence, outbound_from_client=self.initiator)
        self.sequence += 1
        header = struct.pack("<HHHH", NL_SIGNATURE_HMAC_SHA256,
                             NL_SEAL_AES128 if self.seal else NL_SEAL_NOT_ENCRYPTED, 0xFFFF, 0)
        confounder = self.rng(8) if self.seal else b""
        checksum = self._checksum(header, confounder, around[0] + message + around[1])
        if self.seal:
            # MS-NRPC 3.3.4.2.1 step 8: one AES-CFB8 stream, IV = CopySeqNumber twice, confounder then data
            stream = aes_cfb8_encrypt(self._seal_key(), confounder + message, seq + seq)
            confounder, message = stream[:8], stream[8:]
        # MS-NRPC 3.3.4.2.1 step 9: SequenceNumber encrypted with the session key, IV = Checksum twice
        enc_seq = aes_cfb8_encrypt(self.session_key, seq, checksum + checksum)
        token = header + enc_seq + checksum + (confounder or b"\x00" * 8) + b"\x00" * 24
        return message, token

    def unwrap(self, message: bytes, token: bytes, around: tuple[bytes, bytes] = (b"", b"")) -> bytes:
        """Check (and unseal) the next inbound message; -> the plaintext. MS-NRPC 3.3.4.2.2."""
        if len(token) < 32:
            raise SchannelError(f"Netlogon signature of {len(token)} bytes")
        algorithm, seal_algorithm, _, _, enc_seq, checksum, confounder = _SIGNATURE.unpack_from(token)
        if algorithm != NL_SIGNATURE_HMAC_SHA256:
            raise SchannelError(f"signature algorithm 0x{algorithm:04X} on an AES channel")
        if seal_algorithm != (NL_SEAL_AES128 if self.seal else NL_SEAL_NOT_ENCRYPTED):
            raise SchannelError(f"seal algorithm 0x{seal_algorithm:04X}")
        expected = copy_seq_number(self.sequence, outbound_from_client=not self.initiator)
        # MS-NRPC 3.3.4.2.2 steps 5-6: decrypt the SequenceNumber and compare with our own count
        sent_seq = aes_cfb8_decrypt(self.session_key, enc_seq, checksum + checksum)
        if not hmac.compare_digest(sent_seq, expected):
            raise SchannelError("sequence number out of step")
        self.sequence += 1
        if self.seal:
            stream = aes_cfb8_decrypt(self._seal_key(), confounder + message, expected + expected)
            confounder, message = stream[:8], stream[8:]
        else:
            confounder = b""
        signed = around[0] + message + around[1]
        if not hmac.compare_digest(self._checksum(token[:8], confounder, signed), checksum):
            raise SchannelError("checksum does not verify")
        return message
