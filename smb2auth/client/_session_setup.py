"""The client's SESSION_SETUP (MS-SMB2 3.2.4.2.3, 3.2.5.3): the SPNEGO legs, the 3.1.1 preauth integrity
chain they extend, and the session the final response establishes (keys, signing, encryption)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from smb2auth.client.errors import SigningError, Smb2ClientError
from smb2auth.smb2.crypto import PreauthIntegrity, SessionKeys, derive_session_keys
from smb2auth.smb2.header import Smb2Header
from smb2auth.smb2.negotiate import Capabilities, Dialect, SecurityMode
from smb2auth.smb2.negotiate_contexts import Cipher, SigningAlgorithm
from smb2auth.smb2.session import SessionFlags, SessionSetupRequest, SessionSetupResponse
from smb2auth.spnego.context import SpnegoClient
from smb2auth.status import NtStatus

# SessionFlags bits as plain ints (IntFlag & IntFlag dispatches into Python; every login tests them).
_ANONYMOUS = int(SessionFlags.IS_GUEST | SessionFlags.IS_NULL)
_ENCRYPT_DATA = int(SessionFlags.ENCRYPT_DATA)


@dataclass(frozen=True)
class Established:
    """What the final SESSION_SETUP response settled (MS-SMB2 3.2.5.3.1)."""

    keys: SessionKeys = field(repr=False)
    flags: SessionFlags
    signing_required: bool
    encrypt_data: bool
    response_signed: bool


class SessionSetup:
    """One SESSION_SETUP exchange on a negotiated connection."""

    def __init__(
        self,
        spnego: SpnegoClient,
        require_signing: bool,
        *,
        anonymous_logon: bool = False,
        edit: Callable[[int, SessionSetupRequest], SessionSetupRequest] | None = None,
    ) -> None:
        self.spnego = spnego
        self.require_signing = require_signing
        # MS-NLMP 3.1.5.1.2: an anonymous logon has no session key, whatever SessionFlags the server sets
        # (smbd sets neither IS_NULL nor IS_GUEST), so it is treated as a null session.
        self.anonymous_logon = anonymous_logon
        self.dialect: Dialect | None = None
        self._preauth = PreauthIntegrity()
        self._edit = edit  # smb2auth.client.hooks: what to send instead
        self._legs = 0

    def start(self, dialect: Dialect, negotiate_request: bytes, negotiate_response: bytes) -> None:
        self.dialect = dialect
        if dialect == Dialect.SMB3_1_1:
            # MS-SMB2 3.2.5.2: PreauthIntegrityHashValue over the NEGOTIATE request and response.
            self._preauth = self._preauth.add(negotiate_request).add(negotiate_response)

    def request(self, header: bytes, token: bytes | None, *, previous_session_id: int = 0) -> bytes:
        """The SESSION_SETUP request after `header` (MS-SMB2 3.2.4.2.3); `previous_session_id` names the
        session a reconnecting client replaces."""
        mode = SecurityMode.SIGNING_REQUIRED if self.require_signing else SecurityMode.SIGNING_ENABLED
        body = SessionSetupRequest(
            token or b"",
            security_mode=mode,
            capabilities=Capabilities.DFS,
            previous_session_id=previous_session_id,
        )
        if self._edit is not None:
            body = self._edit(self._legs, body)
            self._legs += 1
        message = header + body.pack()
        if self.dialect == Dialect.SMB3_1_1:
            # MS-SMB2 3.2.4.2.3: the session's preauth hash covers every SESSION_SETUP request.
            self._preauth = self._preauth.add(message)
        return message

    def more_processing(self, raw: bytes, response: SessionSetupResponse) -> bytes | None:
        """The next token, after a STATUS_MORE_PROCESSING_REQUIRED response."""
        if self.dialect == Dialect.SMB3_1_1:
            # MS-SMB2 3.2.5.3: ... and every response but the final success.
            self._preauth = self._preauth.add(raw)
        return self.spnego.step(response.security_buffer)

    def established(
        self,
        header: Smb2Header,
        raw: bytes,
        response: SessionSetupResponse,
        *,
        cipher: Cipher | None,
        signing_algorithm: SigningAlgorithm | None,
        server_signing_required: bool,
        can_encrypt: bool,
        require_encryption: bool,
    ) -> Established:
        """The session the final (STATUS_SUCCESS) response establishes, or the error that refuses it."""
        bits = int(response.session_flags)
        if bits & _ANONYMOUS:
            self.spnego.accept_guest()
        if response.security_buffer or not self.spnego.complete:
            out = self.spnego.step(response.security_buffer or None)
            if out is not None or not self.spnego.complete:
                raise Smb2ClientError(
                    NtStatus.STATUS_INVALID_NETWORK_RESPONSE, "server finished before authentication did"
                )
        flags = response.session_flags
        anonymous = bool(bits & _ANONYMOUS) or self.anonymous_logon
        if anonymous and self.require_signing:
            # MS-SMB2 3.2.5.3.1: a guest or null session cannot sign; refused when signing is required.
            raise SigningError("the server made this a guest/null session, which cannot sign")
        assert self.dialect is not None
        # MS-SMB2 3.2.5.3.1: the session's keys (3.1.1: over the preauth hash so far).
        keys = derive_session_keys(self.dialect, self.spnego.session_key, self._preauth.value, cipher or 0)
        self._preauth = PreauthIntegrity()
        signed = False
        if header.is_signed:
            # MS-SMB2 3.2.5.3.1: verify the final SESSION_SETUP response with the new signing key.
            assert signing_algorithm is not None
            if not keys.signer(signing_algorithm).verify(raw):
                raise SigningError("final SESSION_SETUP response signature does not verify")
            signed = True
        elif self.dialect == Dialect.SMB3_1_1 and not anonymous:
            # MS-SMB2 3.2.5.3.1: a 3.1.1 final SESSION_SETUP response must be signed.
            raise SigningError("final SESSION_SETUP response of a 3.1.1 session is not signed")
        encrypt_data = require_encryption
        if bits & _ENCRYPT_DATA:
            # MS-SMB2 3.2.5.3.1: SMB2_SESSION_FLAG_ENCRYPT_DATA makes every request encrypted.
            if not can_encrypt:
                raise Smb2ClientError(NtStatus.STATUS_ACCESS_DENIED, "server demands encryption we cannot do")
            encrypt_data = True
        return Established(
            keys,
            flags,
            # MS-SMB2 3.2.5.3.1: Session.SigningRequired when either side requires signing (not guest/null).
            signing_required=not anonymous and (self.require_signing or server_signing_required),
            encrypt_data=encrypt_data,
            response_signed=signed,
        )
