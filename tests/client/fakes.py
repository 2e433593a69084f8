"""An in-memory SMB2 server for the client's unit tests, assembled from the package's own server-side
pieces (NtlmServer, SpnegoServer, the smb2 codec and crypto). It answers canned-shape responses to whatever
the client sends, with knobs to misbehave (unsigned or badly signed responses, interim STATUS_PENDING, a
tampered FSCTL_VALIDATE_NEGOTIATE_INFO answer)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from smb2auth.authority.local import LocalAuthority
from smb2auth.errors import AuthenticationError
from smb2auth.ntlm.server import NtlmServer, TargetInfo
from smb2auth.smb2.body import Message, parse_body
from smb2auth.smb2.crypto import (
    PreauthIntegrity,
    SessionKeys,
    decrypt,
    derive_session_keys,
    encrypt,
    sign,
    verify,
)
from smb2auth.smb2.framing import FrameReader
from smb2auth.smb2.header import TRANSFORM_PROTOCOL_ID, Command, HeaderFlags, Smb2Header, split_compound
from smb2auth.smb2.ioctl import (
    IoctlRequest,
    IoctlResponse,
    ValidateNegotiateInfoRequest,
    ValidateNegotiateInfoResponse,
)
from smb2auth.smb2.negotiate import Capabilities, Dialect, NegotiateRequest, NegotiateResponse, SecurityMode
from smb2auth.smb2.negotiate_contexts import (
    Cipher,
    EncryptionCapabilities,
    HashAlgorithm,
    NegotiateContext,
    PreauthIntegrityCapabilities,
    SigningAlgorithm,
    SigningCapabilities,
    find_context,
)
from smb2auth.smb2.policy import signing_algorithm_for
from smb2auth.smb2.session import LogoffResponse, SessionFlags, SessionSetupRequest, SessionSetupResponse
from smb2auth.smb2.simple import EchoResponse, ErrorResponse
from smb2auth.smb2.tree import (
    ShareFlags,
    ShareType,
    TreeConnectRequest,
    TreeConnectResponse,
    TreeDisconnectResponse,
)
from smb2auth.spnego.context import SpnegoServer
from smb2auth.status import NtStatus

USER = "alice"
PASSWORD = "Passw0rd!"


@dataclass
class FakeServer:
    dialects: tuple[int, ...] = (
        Dialect.SMB2_0_2,
        Dialect.SMB2_1,
        Dialect.SMB3_0,
        Dialect.SMB3_0_2,
        Dialect.SMB3_1_1,
    )
    signing_required: bool = False
    encrypt_data: bool = False
    encrypt_share: bool = False
    cipher: int = Cipher.AES_128_GCM
    signing: int = SigningAlgorithm.AES_GMAC
    sign_final: bool = True
    corrupt_signatures: bool = False
    unsigned_after_setup: bool = False
    pending_for: tuple[Command, ...] = ()
    dialect_override: int | None = None
    # FSCTL_VALIDATE_NEGOTIATE_INFO: the status to answer, fields of the answer to change, unsigned answers.
    validate_status: int = 0
    validate_tamper: dict[str, object] = field(default_factory=dict)
    validate_unsigned: bool = False
    # Responses after SESSION_SETUP unsigned and with SessionId 0 (a stripped signature).
    zero_session_id: bool = False
    credit_grant: int = 0
    negotiated: NegotiateResponse | None = None
    validate_requests: list[ValidateNegotiateInfoRequest] = field(default_factory=list)
    rng: object = os.urandom
    session_id: int = 0x0000_1234_5678_9ABC
    tree_id: int = 7
    dialect: int = 0
    received: list[Smb2Header] = field(default_factory=list)
    requests_signed: list[bool] = field(default_factory=list)
    requests_encrypted: list[bool] = field(default_factory=list)
    keys: SessionKeys | None = None

    def __post_init__(self) -> None:
        authority = LocalAuthority("TESTGRP")
        authority.add_user(USER, PASSWORD)
        self._spnego = SpnegoServer(NtlmServer(authority, target=TargetInfo(nb_domain="TESTGRP")))
        self._preauth = PreauthIntegrity()
        self._reader = FrameReader()
        self._algorithm: int = SigningAlgorithm.HMAC_SHA256
        self._cipher: int = 0

    # The client sends whole frames; answer with payloads (what the client's `receive` takes).
    def handle(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        for payload in self._reader.feed(data):
            out.extend(self._handle(payload))
        return out

    def _handle(self, payload: bytes) -> list[bytes]:
        encrypted = payload[:4] == TRANSFORM_PROTOCOL_ID
        if encrypted:
            assert self.keys is not None
            _, payload = decrypt(payload, self.keys.encryption_key, self._cipher)
        part = split_compound(payload)[0]
        header = part.header
        self.received.append(header)
        self.requests_encrypted.append(encrypted)
        self.requests_signed.append(header.is_signed)
        if header.is_signed:
            assert self.keys is not None
            assert verify(part.raw, self.keys.signing_key, self._algorithm), "client signature"
        body = parse_body(header, part.body)
        out: list[bytes] = []
        if header.command in self.pending_for:
            interim = Smb2Header(
                header.command,
                HeaderFlags.SERVER_TO_REDIR | HeaderFlags.ASYNC_COMMAND,
                header.message_id,
                self.session_id,
                async_id=99,
                credit=1,
                status=NtStatus.STATUS_PENDING,
            )
            out.append(interim.pack() + ErrorResponse().pack())
        response = self._respond(header, body, part.raw)
        if encrypted:
            assert self.keys is not None
            response = encrypt(
                response,
                self.keys.decryption_key,
                self._cipher,
                self.session_id,
                bytes(11 if self._cipher in (Cipher.AES_128_CCM, Cipher.AES_256_CCM) else 12),
            )
        out.append(response)
        return out

    def _reply(
        self,
        request: Smb2Header,
        status: int,
        body: Message,
        *,
        tree_id: int = 0,
        session_id: int | None = None,
    ) -> bytes:
        header = Smb2Header(
            request.command,
            HeaderFlags.SERVER_TO_REDIR,
            request.message_id,
            self.session_id if session_id is None else session_id,
            tree_id,
            credit=self.credit_grant or request.credit or 1,
            status=status,
        )
        return header.pack() + body.pack()

    def _signed(self, message: bytes) -> bytes:
        assert self.keys is not None
        signed = sign(message, self.keys.signing_key, self._algorithm)
        if self.corrupt_signatures:
            signed = signed[:48] + bytes(b ^ 0xFF for b in signed[48:64]) + signed[64:]
        return signed

    def _respond(self, header: Smb2Header, body: Message, raw: bytes) -> bytes:
        if isinstance(body, NegotiateRequest):
            return self._negotiate(header, body, raw)
        if isinstance(body, SessionSetupRequest):
            return self._session_setup(header, body, raw)
        if header.command is Command.TREE_CONNECT:
            assert isinstance(body, TreeConnectRequest)
            if not body.path.endswith("\\share"):
                message = self._reply(header, NtStatus.STATUS_BAD_NETWORK_NAME, ErrorResponse())
            else:
                flags = ShareFlags.ENCRYPT_DATA if self.encrypt_share else ShareFlags(0)
                message = self._reply(
                    header, 0, TreeConnectResponse(ShareType.DISK, flags), tree_id=self.tree_id
                )
        elif header.command is Command.TREE_DISCONNECT:
            message = self._reply(header, 0, TreeDisconnectResponse(), tree_id=header.tree_id)
        elif header.command is Command.ECHO:
            message = self._reply(header, 0, EchoResponse())
        elif header.command is Command.IOCTL:
            assert isinstance(body, IoctlRequest)
            message = self._validate(header, body)
            if self.validate_unsigned:
                return message
        else:
            assert header.command is Command.LOGOFF
            message = self._reply(header, 0, LogoffResponse())
        if self.zero_session_id:
            return message[:40] + bytes(8) + message[48:]
        if self.unsigned_after_setup or not header.is_signed:
            return message
        return self._signed(message)

    def _validate(self, header: Smb2Header, request: IoctlRequest) -> bytes:
        self.validate_requests.append(ValidateNegotiateInfoRequest.unpack(request.input))
        if self.validate_status:
            return self._reply(header, self.validate_status, ErrorResponse(), tree_id=header.tree_id)
        assert self.negotiated is not None
        answer = ValidateNegotiateInfoResponse(
            self.negotiated.capabilities,
            self.negotiated.server_guid,
            self.negotiated.security_mode,
            self.negotiated.dialect_revision,
        )
        answer = dataclasses.replace(answer, **self.validate_tamper)  # type: ignore[arg-type]
        body = IoctlResponse(request.ctl_code, answer.pack(), request.file_id)
        return self._reply(header, 0, body, tree_id=header.tree_id)

    def _negotiate(self, header: Smb2Header, request: NegotiateRequest, raw: bytes) -> bytes:
        common = [d for d in request.dialects if d in self.dialects]
        self.dialect = self.dialect_override or max(common)
        contexts: tuple[NegotiateContext, ...] = ()
        if self.dialect == Dialect.SMB3_1_1:
            offered = find_context(request.negotiate_contexts, EncryptionCapabilities)
            assert isinstance(offered, EncryptionCapabilities)
            self._cipher = self.cipher if self.cipher in offered.ciphers else 0
            contexts = (
                PreauthIntegrityCapabilities((HashAlgorithm.SHA_512,), bytes(32)),
                EncryptionCapabilities((self._cipher,)),
                SigningCapabilities((self.signing,)),
            )
            self._algorithm = self.signing
        else:
            self._algorithm = signing_algorithm_for(self.dialect)
            self._cipher = Cipher.AES_128_CCM if self.dialect >= Dialect.SMB3_0 else 0
        mode = SecurityMode.SIGNING_ENABLED | (
            SecurityMode.SIGNING_REQUIRED if self.signing_required else 0
        )
        caps = Capabilities.LARGE_MTU | (
            Capabilities.ENCRYPTION if self.dialect >= Dialect.SMB3_0 else 0
        )
        response = NegotiateResponse(
            self.dialect,
            mode,
            bytes(range(16)),
            caps,
            security_buffer=self._spnego.initial_token(),
            negotiate_contexts=contexts,
        )
        self.negotiated = response
        message = self._reply(header, 0, response, session_id=0)
        self._preauth = self._preauth.add(raw).add(message)
        return message

    def _session_setup(self, header: Smb2Header, request: SessionSetupRequest, raw: bytes) -> bytes:
        if self.dialect == Dialect.SMB3_1_1:
            self._preauth = self._preauth.add(raw)
        try:
            token = self._spnego.step(request.security_buffer)
        except AuthenticationError as exc:
            return self._reply(header, exc.status, ErrorResponse())
        if not self._spnego.complete:
            message = self._reply(
                header, NtStatus.STATUS_MORE_PROCESSING_REQUIRED, SessionSetupResponse(token or b"")
            )
            if self.dialect == Dialect.SMB3_1_1:
                self._preauth = self._preauth.add(message)
            return message
        self.keys = derive_session_keys(
            self.dialect,
            self._spnego.session_key,
            self._preauth.value,
            self._cipher or Cipher.AES_128_CCM,
        )
        flags = SessionFlags.ENCRYPT_DATA if self.encrypt_data else SessionFlags(0)
        message = self._reply(header, 0, SessionSetupResponse(token or b"", flags))
        return self._signed(message) if self.sign_final else message
