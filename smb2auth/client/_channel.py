"""What the client's connection does to every message: MessageIds and credits (MS-SMB2 3.2.4.1.3, 3.2.4.1.5,
3.2.5.1.4), signing (3.2.4.1.1, 3.2.5.1.3) and sealing (3.2.4.1.8, 3.2.5.1.1)."""

from __future__ import annotations

from collections.abc import Callable

from smb2auth.client._state import ClientState
from smb2auth.client.errors import SigningError
from smb2auth.errors import MalformedMessage, ProtocolStateError
from smb2auth.smb2.crypto import SessionKeys, TransformHeader, decrypt, encrypt, nonce_size
from smb2auth.smb2.header import (
    HEADER_SIZE,
    HEADER_STRUCT,
    SIGNATURE_SIZE,
    SMB2_PROTOCOL_ID,
    Command,
    Smb2Header,
)
from smb2auth.smb2.negotiate import Dialect
from smb2auth.smb2.negotiate_contexts import Cipher, SigningAlgorithm
from smb2auth.status import NtStatus

_NO_SIGNATURE = bytes(SIGNATURE_SIZE)


class Channel:
    """The sequence window, the session's keys and the algorithms the NEGOTIATE settled."""

    def __init__(self, rng: Callable[[int], bytes], credit_request: int) -> None:
        self._rng = rng
        self._credit_request = credit_request
        self.next_mid = 0
        self.credits = 1  # MS-SMB2 3.2.3: the sequence window starts as {0}
        self.multi_credit = False
        self.session_id = 0
        self.dialect: Dialect | None = None
        self.signing_algorithm: SigningAlgorithm | None = None
        self.cipher: Cipher | None = None
        self.keys: SessionKeys | None = None

    # --- MessageIds and credits ---------------------------------------------------------------------------

    def header(self, command: Command, tree_id: int, state: ClientState) -> tuple[int, bytes]:
        """(MessageId, packed sync header) of the next request."""
        # MS-SMB2 3.2.4.1.5: CreditCharge is 0 without multi-credit support (2.0.2, NEGOTIATE), else 1.
        charge = 1 if self.multi_credit else 0
        need = charge or 1
        if self.credits < need:
            raise ProtocolStateError(f"SMB2 client in state {state.value}: no credits left")
        mid = self.next_mid
        # MS-SMB2 3.2.4.1.3: MessageIds follow the sequence window, one per credit charged.
        self.next_mid += need
        self.credits -= need
        # MS-SMB2 2.2.1.2: the sync header, packed straight (hot path; Smb2Header.pack gives the same bytes).
        header = HEADER_STRUCT.pack(
            SMB2_PROTOCOL_ID,
            HEADER_SIZE,
            charge,
            0,
            command,
            self._credit_request,
            0,
            0,
            mid,
            tree_id << 32,
            self.session_id,
            _NO_SIGNATURE,
        )
        return mid, header

    def grant(self, header: Smb2Header) -> None:
        """MS-SMB2 3.2.5.1.4: add the credits a response granted (once it passed 3.2.5.1.3)."""
        self.credits += header.credit

    # --- signing and sealing ------------------------------------------------------------------------------

    def _keys(self) -> SessionKeys:
        if self.keys is None:
            raise ProtocolStateError("SMB2 client: no session keys yet")
        return self.keys

    @property
    def can_encrypt(self) -> bool:
        return self.dialect is not None and self.dialect >= Dialect.SMB3_0 and self.cipher is not None

    def seal(self, message: bytes) -> bytes:
        """MS-SMB2 3.2.4.1.8: `message` in a TRANSFORM_HEADER, under Session.EncryptionKey."""
        cipher = self.cipher or Cipher.AES_128_CCM
        nonce = self._rng(nonce_size(cipher))
        return encrypt(message, self._keys().encryption_key, cipher, self.session_id, nonce)

    def sign(self, message: bytes) -> bytes:
        """MS-SMB2 3.2.4.1.1: `message` signed with Session.SigningKey."""
        assert self.signing_algorithm is not None
        return self._keys().signer(self.signing_algorithm).sign(message)

    def verify(self, raw: bytes) -> bool:
        """Whether `raw` carries a valid signature under Session.SigningKey."""
        assert self.signing_algorithm is not None
        return self._keys().signer(self.signing_algorithm).verify(raw)

    def unseal(self, payload: bytes) -> bytes:
        """MS-SMB2 3.2.5.1.1: the message inside a TRANSFORM_HEADER, decrypted with Session.DecryptionKey."""
        if self.keys is None or self.dialect is None or self.dialect < Dialect.SMB3_0:
            raise MalformedMessage("an encrypted message before a 3.x session exists")
        transform = TransformHeader.unpack(payload)
        if transform.session_id != self.session_id:
            # MS-SMB2 3.2.5.1.1: the TRANSFORM_HEADER's SessionId must name our session.
            raise MalformedMessage("TRANSFORM_HEADER for another session", offset=44)
        _, plaintext = decrypt(payload, self.keys.decryption_key, self.cipher or Cipher.AES_128_CCM)
        return plaintext

    def check_signature(
        self, header: Smb2Header, raw: bytes, signing_required: bool, session_id: int
    ) -> bool:
        """MS-SMB2 3.2.5.1.3: verify a signed response; refuse an unsigned one when signing is required.

        `session_id` is the request's: 3.2.5.1.3 finds the session from the request, not from the response
        header, so a response whose SessionId was zeroed is still held to the session's signing."""
        if header.is_signed:
            if not self.verify(raw):
                name = header.command.name
                raise SigningError(f"{name} response signature does not verify", command=header.command)
            return True
        if signing_required and session_id:
            got = NtStatus.name_of(header.status)
            raise SigningError(f"unsigned {header.command.name} response ({got})", command=header.command)
        return False
