"""What a session tells, shared by the synchronous and the asyncio shells: read off the sans-IO core."""

from __future__ import annotations

from smb2auth.client.protocol import ClientConnection, Smb2ClientError
from smb2auth.smb2.negotiate import Dialect
from smb2auth.smb2.negotiate_contexts import Cipher, SigningAlgorithm
from smb2auth.smb2.session import SessionFlags
from smb2auth.status import NtStatus

DEFAULT_TIMEOUT = 30.0


class SessionView:
    """Properties of an established session. Keys are properties, never in repr."""

    _core: ClientConnection
    host: str
    port: int

    @property
    def core(self) -> ClientConnection:
        return self._core

    @property
    def dialect(self) -> Dialect:
        if self._core.dialect is None:
            raise Smb2ClientError(NtStatus.STATUS_INVALID_PARAMETER, "no dialect negotiated")
        return self._core.dialect

    @property
    def dialect_name(self) -> str:
        """ "2.0.2", "2.1", "3.0", "3.0.2" or "3.1.1"."""
        return self._core.dialect_name

    @property
    def session_id(self) -> int:
        return self._core.session_id

    @property
    def session_flags(self) -> SessionFlags:
        return self._core.session_flags

    @property
    def signing_algorithm(self) -> SigningAlgorithm | None:
        return self._core.signing_algorithm

    @property
    def cipher(self) -> Cipher | None:
        return self._core.cipher

    @property
    def encrypted(self) -> bool:
        """Whether every request of the session goes encrypted (Session.EncryptData)."""
        return self._core.encrypt_data

    @property
    def signed(self) -> bool:
        """True when the session signs its requests (or encrypts them) and a server signature verified."""
        return self._core.signed

    @property
    def validated_negotiate(self) -> bool | None:
        """MS-SMB2 3.2.5.14.12: True once FSCTL_VALIDATE_NEGOTIATE_INFO confirmed the NEGOTIATE (3.0/3.0.2,
        after the first tree connect); False when turned off or the server signed "not supported"; None when
        it does not apply (2.x, 3.1.1, guest/null sessions, no tree connected yet)."""
        return self._core.validated_negotiate

    @property
    def signing_key(self) -> bytes:
        return self._core.signing_key

    @property
    def application_key(self) -> bytes:
        return self._core.application_key

    @property
    def session_key(self) -> bytes:
        return self._core.session_key

    @property
    def encryption_key(self) -> bytes:
        return self._core.encryption_key

    @property
    def decryption_key(self) -> bytes:
        return self._core.decryption_key

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.host}:{self.port} dialect={self.dialect_name or '?'}"
            f" session_id=0x{self.session_id:016x} signed={self.signed} state={self._core.state.value}>"
        )
