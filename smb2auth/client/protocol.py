"""The sans-IO SMB2 client: one connection carrying one session (MS-SMB2 3.2).

`ClientConnection` builds requests (whole Direct TCP frames, ready to send) and consumes responses (one
frame payload at a time). It never touches a socket, a clock or the OS RNG on its own; `rng` and `clock`
are injected. The shells in `smb2auth.client.sync` and `smb2auth.client.aio` only move bytes.

    core = ClientConnection(username="alice", password="...", server_name="srv")
    send(core.negotiate())
    while not core.established:
        if core.receive(read_frame()) is not None and (out := core.data_to_send()):
            send(out)
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from smb2auth.authority.base import ResponseKind
from smb2auth.client._state import ClientEvent, ClientState, advance
from smb2auth.errors import MalformedMessage, ProtocolStateError, Smb2AuthError
from smb2auth.ntlm.client import NtlmClient
from smb2auth.smb2.crypto import (
    KeyUse,
    PreauthIntegrity,
    TransformHeader,
    decrypt,
    derive_key,
    encrypt,
    sign,
    signing_algorithm_for,
    verify,
)
from smb2auth.smb2.framing import frame
from smb2auth.smb2.header import (
    HEADER_SIZE,
    SIGNATURE_SIZE,
    SMB2_PROTOCOL_ID,
    TRANSFORM_PROTOCOL_ID,
    Command,
    Smb2Header,
)
from smb2auth.smb2.messages import (
    DIALECT_NAMES,
    FSCTL_VALIDATE_NEGOTIATE_INFO,
    SMB2_DIALECTS,
    Capabilities,
    Cipher,
    Dialect,
    EchoRequest,
    EncryptionCapabilities,
    ErrorResponse,
    HashAlgorithm,
    IoctlRequest,
    IoctlResponse,
    LogoffRequest,
    Message,
    NegotiateContext,
    NegotiateRequest,
    NegotiateResponse,
    NetnameNegotiateContextId,
    PreauthIntegrityCapabilities,
    SecurityMode,
    SessionFlags,
    SessionSetupRequest,
    SessionSetupResponse,
    ShareFlags,
    SigningAlgorithm,
    SigningCapabilities,
    TreeConnectRequest,
    TreeConnectResponse,
    TreeDisconnectRequest,
    ValidateNegotiateInfoRequest,
    ValidateNegotiateInfoResponse,
    dialect_name,
    parse_body,
    parse_dialect,
)
from smb2auth.spnego.context import MechContext, SpnegoClient
from smb2auth.status import NtStatus

__all__ = [
    "ALL_DIALECTS",
    "DIALECT_NAMES",
    "ClientConnection",
    "NegotiateDowngradeError",
    "Response",
    "SigningError",
    "Smb2ClientError",
    "TreeConnect",
    "parse_dialect",
]

ALL_DIALECTS: tuple[Dialect, ...] = SMB2_DIALECTS

DEFAULT_CIPHERS: tuple[Cipher, ...] = (
    Cipher.AES_128_GCM,
    Cipher.AES_128_CCM,
    Cipher.AES_256_GCM,
    Cipher.AES_256_CCM,
)
DEFAULT_SIGNING: tuple[SigningAlgorithm, ...] = (
    SigningAlgorithm.AES_GMAC,
    SigningAlgorithm.AES_CMAC,
    SigningAlgorithm.HMAC_SHA256,
)
_NONCE_SIZE = {
    Cipher.AES_128_CCM: 11,
    Cipher.AES_256_CCM: 11,
    Cipher.AES_128_GCM: 12,
    Cipher.AES_256_GCM: 12,
}
_UNSOLICITED = 0xFFFFFFFFFFFFFFFF
_REQUEST_HEADER = struct.Struct("<4sHHIHHIIQQQ16s")
_NO_SIGNATURE = bytes(SIGNATURE_SIZE)
_CLIENT_CAPABILITIES = Capabilities.DFS | Capabilities.LARGE_MTU | Capabilities.ENCRYPTION
# MS-SMB2 3.2.5.5: the dialects whose NEGOTIATE is validated (3.1.1 has preauth integrity instead).
_VALIDATED_DIALECTS = (Dialect.SMB3_0, Dialect.SMB3_0_2)
# Signed answers meaning "not supported" (older Windows and Samba, per Samba's
# smb2cli_validate_negotiate_info_done; NOT_SUPPORTED from NAS servers): accepted, not validated.
_VALIDATE_UNSUPPORTED = frozenset(
    {
        NtStatus.STATUS_NOT_SUPPORTED,
        NtStatus.STATUS_FILE_CLOSED,
        NtStatus.STATUS_INVALID_DEVICE_REQUEST,
        NtStatus.STATUS_FS_DRIVER_REQUIRED,
    }
)


class Smb2ClientError(Smb2AuthError):
    """A request the server refused, or a response we refuse; `status` is the NTSTATUS."""

    def __init__(self, status: int, reason: str, *, command: Command | None = None) -> None:
        self.status = NtStatus(status) if status in NtStatus._value2member_map_ else status
        self.command = command
        self.reason = reason
        super().__init__(f"{NtStatus.name_of(status)}: {reason}")


class SigningError(Smb2ClientError):
    """A response that is unsigned where a signature is required, or whose signature does not verify."""

    def __init__(self, reason: str, *, command: Command | None = None) -> None:
        super().__init__(NtStatus.STATUS_ACCESS_DENIED, reason, command=command)


class NegotiateDowngradeError(SigningError):
    """FSCTL_VALIDATE_NEGOTIATE_INFO failed (MS-SMB2 3.2.5.14.12): the NEGOTIATE may have been tampered with,
    so the connection is terminated."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"negotiate downgrade: {reason}", command=Command.IOCTL)


@dataclass(frozen=True)
class Response:
    """One final response: its header, its parsed body, whether its signature verified, whether it came
    encrypted."""

    header: Smb2Header
    body: Message
    signed: bool = False
    encrypted: bool = False


@dataclass(frozen=True)
class TreeConnect:
    """A connected tree: its id, the share path asked for, the server's answer, and whether requests on it
    are encrypted (MS-SMB2 3.2.5.5: Share.EncryptData)."""

    tree_id: int
    path: str
    response: TreeConnectResponse
    encrypt: bool = False


@dataclass
class _Outstanding:
    command: Command
    path: str = ""
    tree_id: int = 0
    encrypted: bool = False
    async_id: int = 0
    session_id: int = 0
    validate: bool = False


@dataclass
class _Keys:
    """Session keys, the signing key eagerly, the others on first use (most sessions only sign)."""

    dialect: int
    session_key: bytes = field(repr=False)
    full_key: bytes = field(repr=False)
    preauth: bytes = field(repr=False)
    cipher: int = 0
    signing_key: bytes = field(default=b"", repr=False)
    _cache: dict[str, bytes] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.signing_key = self._derive("signing")

    def _derive(self, which: KeyUse) -> bytes:
        return derive_key(self.dialect, self.full_key, which, self.preauth, self.cipher)

    def get(self, which: KeyUse) -> bytes:
        value = self._cache.get(which)
        if value is None:
            value = self._cache[which] = self._derive(which)
        return value


class ClientConnection:
    """One SMB2 connection and its session, as the client. See the module docstring for the loop.

    `mech` replaces the default SPNEGO-wrapped NtlmClient built from the credentials (tests use it).
    """

    def __init__(
        self,
        *,
        username: str = "",
        password: str | None = None,
        nt_hash: bytes | None = None,
        domain: str = "",
        workstation: str = "",
        server_name: str = "",
        dialects: Sequence[int] = ALL_DIALECTS,
        require_signing: bool = True,
        require_encryption: bool = False,
        ciphers: Sequence[int] = DEFAULT_CIPHERS,
        signing_algorithms: Sequence[int] = DEFAULT_SIGNING,
        ntlm_version: ResponseKind = ResponseKind.NTLMV2,
        credit_request: int = 32,
        validate_negotiate: bool = True,
        mech: MechContext | None = None,
        rng: Callable[[int], bytes] = os.urandom,
        clock: Callable[[], float] = time.time,
    ) -> None:
        offered = tuple(Dialect(d) for d in dialects)
        if not offered or any(d not in ALL_DIALECTS for d in offered):
            raise ValueError("dialects must be a non-empty selection of 2.0.2, 2.1, 3.0, 3.0.2, 3.1.1")
        if require_encryption and max(offered) < Dialect.SMB3_0:
            raise Smb2ClientError(
                NtStatus.STATUS_NOT_SUPPORTED,
                "encryption is not available before SMB 3.0 (MS-SMB2 3.1.4.3)",
            )
        # MS-NLMP 3.1.5.1.2: an anonymous logon has no session key, whatever SessionFlags the server sets
        # (smbd sets neither IS_NULL nor IS_GUEST), so it is treated as a null session.
        self._anonymous_logon = mech is None and ntlm_version == ResponseKind.ANONYMOUS
        if mech is None:
            mech = NtlmClient(
                username,
                password,
                nt_hash=nt_hash,
                domain=domain,
                workstation=workstation,
                version=ntlm_version,
                rng=rng,
                clock=clock,
            )
        self.server_name = server_name
        self.require_signing = require_signing
        self.require_encryption = require_encryption
        self.validate_negotiate = validate_negotiate
        self._offered = offered
        self._ciphers = tuple(ciphers)
        self._signing_algorithms = tuple(signing_algorithms)
        self._credit_request = credit_request
        self._rng = rng
        self._spnego = SpnegoClient(mech)
        self._state = ClientState.IDLE
        self._next_mid = 0
        self._credits = 1  # MS-SMB2 3.2.3: the sequence window starts as {0}
        self._outstanding: dict[int, _Outstanding] = {}
        self._out = b""
        self._preauth = PreauthIntegrity()
        self._negotiate_request = b""
        self.negotiate_response: NegotiateResponse | None = None
        self.dialect: Dialect | None = None
        self.cipher: Cipher | None = None
        self.signing_algorithm: SigningAlgorithm | None = None
        self.server_signing_required = False
        self.multi_credit = False
        self.session_id = 0
        self.session_flags = SessionFlags(0)
        self.signing_required = False
        self.encrypt_data = False
        self.signed = False
        self.setup_response_signed = False
        self.trees: dict[int, TreeConnect] = {}
        self._keys: _Keys | None = None
        self._negotiate_info: ValidateNegotiateInfoRequest | None = None
        self._validation_sent = False
        # MS-SMB2 3.2.5.14.12: True once FSCTL_VALIDATE_NEGOTIATE_INFO verified; False when it applies but was
        # turned off or the server (signed) does not support it; None when it does not apply.
        self.validated_negotiate: bool | None = None

    # --- what the session tells -------------------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        return self._state

    @property
    def established(self) -> bool:
        return self._state is ClientState.ESTABLISHED

    @property
    def dialect_name(self) -> str:
        return dialect_name(self.dialect) if self.dialect is not None else ""

    @property
    def credits(self) -> int:
        """Credits granted and not yet spent (MS-SMB2 3.2.5.1.4)."""
        return self._credits

    @property
    def spnego(self) -> SpnegoClient:
        return self._spnego

    def _key(self, which: KeyUse) -> bytes:
        if self._keys is None:
            raise ProtocolStateError(f"SMB2 client in state {self._state.value}: no session keys yet")
        return self._keys.signing_key if which == "signing" else self._keys.get(which)

    @property
    def session_key(self) -> bytes:
        """MS-SMB2 3.2.5.3.1: Session.SessionKey, the first 16 bytes of the GSS session key."""
        if self._keys is None:
            raise ProtocolStateError(f"SMB2 client in state {self._state.value}: no session keys yet")
        return self._keys.session_key

    @property
    def signing_key(self) -> bytes:
        return self._key("signing")

    @property
    def application_key(self) -> bytes:
        return self._key("application")

    @property
    def encryption_key(self) -> bytes:
        """Session.EncryptionKey: protects client-to-server messages (3.x)."""
        return self._key("c2s")

    @property
    def decryption_key(self) -> bytes:
        """Session.DecryptionKey: protects server-to-client messages (3.x)."""
        return self._key("s2c")

    def data_to_send(self) -> bytes:
        """The frame the last `receive` queued (the next SESSION_SETUP leg), or b""."""
        out, self._out = self._out, b""
        return out

    # --- requests -----------------------------------------------------------------------------------------

    def _header(self, command: Command, tree_id: int = 0) -> tuple[int, bytes]:
        """(MessageId, packed sync header) of the next request."""
        # MS-SMB2 3.2.4.1.5: CreditCharge is 0 without multi-credit support (2.0.2, NEGOTIATE), else 1.
        charge = 1 if self.multi_credit else 0
        need = charge or 1
        if self._credits < need:
            raise ProtocolStateError(f"SMB2 client in state {self._state.value}: no credits left")
        mid = self._next_mid
        # MS-SMB2 3.2.4.1.3: MessageIds follow the sequence window, one per credit charged.
        self._next_mid += need
        self._credits -= need
        # MS-SMB2 2.2.1.2: the sync header, packed straight (hot path; Smb2Header.pack gives the same bytes).
        header = _REQUEST_HEADER.pack(
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

    def negotiate(self) -> bytes:
        """The NEGOTIATE request frame (MS-SMB2 3.2.4.2.2.2)."""
        self._state = advance(self._state, ClientEvent.SEND_NEGOTIATE)
        contexts: tuple[NegotiateContext, ...] = ()
        guid = bytes(16)
        if max(self._offered) >= Dialect.SMB2_1:
            guid = self._rng(16)  # MS-SMB2 3.2.4.2.2.2: ClientGuid for 2.1 and later
        if Dialect.SMB3_1_1 in self._offered:
            # MS-SMB2 3.2.4.2.2.2: 3.1.1 carries PREAUTH (SHA-512 and a salt), ENCRYPTION, SIGNING contexts.
            contexts = (
                PreauthIntegrityCapabilities((HashAlgorithm.SHA_512,), self._rng(32)),
                EncryptionCapabilities(tuple(self._ciphers)),
                SigningCapabilities(tuple(self._signing_algorithms)),
            )
            if self.server_name:
                contexts += (NetnameNegotiateContextId(self.server_name),)
        mode = SecurityMode.SIGNING_ENABLED
        if self.require_signing:
            mode |= SecurityMode.SIGNING_REQUIRED
        body = NegotiateRequest(self._offered, mode, _CLIENT_CAPABILITIES, guid, contexts)
        # MS-SMB2 2.2.31.4: what VALIDATE_NEGOTIATE_INFO repeats of this request.
        self._negotiate_info = ValidateNegotiateInfoRequest(_CLIENT_CAPABILITIES, guid, mode, self._offered)
        mid, header = self._header(Command.NEGOTIATE)
        message = header + body.pack()
        self._outstanding[mid] = _Outstanding(Command.NEGOTIATE)
        self._negotiate_request = message
        return frame(message)

    def _request(
        self,
        command: Command,
        body: bytes,
        tree_id: int = 0,
        path: str = "",
        *,
        force_sign: bool = False,
        validate: bool = False,
    ) -> bytes:
        if self._state is not ClientState.ESTABLISHED:
            raise ProtocolStateError(
                f"SMB2 client in state {self._state.value}: cannot send {command.name}"
            )
        tree = self.trees.get(tree_id)
        encrypted = self.encrypt_data or (tree is not None and tree.encrypt)
        mid, header = self._header(command, tree_id)
        message = header + body
        if encrypted:
            # MS-SMB2 3.2.4.1.8: encrypted requests go in a TRANSFORM_HEADER and are not signed.
            cipher = self.cipher or Cipher.AES_128_CCM
            nonce = self._rng(_NONCE_SIZE[Cipher(cipher)])
            message = encrypt(message, self._key("c2s"), cipher, self.session_id, nonce)
        elif self.signing_required or force_sign:
            # MS-SMB2 3.2.4.1.1: with Session.SigningRequired every request is signed.
            assert self.signing_algorithm is not None
            message = sign(message, self._key("signing"), self.signing_algorithm)
        self._outstanding[mid] = _Outstanding(
            command, path, tree_id, encrypted, session_id=self.session_id, validate=validate
        )
        return frame(message)

    def echo(self) -> bytes:
        """MS-SMB2 2.2.28: an ECHO request frame."""
        return self._request(Command.ECHO, EchoRequest().pack())

    def tree_connect(self, share: str) -> bytes:
        """MS-SMB2 3.2.4.2.4: TREE_CONNECT to `share` ("share" or "\\\\server\\share")."""
        path = share if share.startswith("\\\\") else f"\\\\{self.server_name or '*'}\\{share}"
        return self._request(Command.TREE_CONNECT, TreeConnectRequest(path).pack(), 0, path)

    def tree_disconnect(self, tree_id: int) -> bytes:
        if tree_id not in self.trees:
            raise ProtocolStateError(f"SMB2 client in state {self._state.value}: no tree {tree_id}")
        return self._request(Command.TREE_DISCONNECT, TreeDisconnectRequest().pack(), tree_id)

    def logoff(self) -> bytes:
        """MS-SMB2 3.2.4.2.5: the LOGOFF request frame."""
        out = self._request(Command.LOGOFF, LogoffRequest().pack())
        self._state = advance(self._state, ClientEvent.SEND_LOGOFF)
        return out

    def close(self) -> None:
        """The transport went away; nothing more is sent or accepted."""
        self._state = advance(self._state, ClientEvent.CLOSE)

    # --- responses --------------------------------------------------------------------------------------

    def receive(self, payload: bytes) -> Response | None:
        """Consume one frame payload. None for an interim (STATUS_PENDING) response or an oplock break;
        otherwise the final response. Raises Smb2ClientError for an error status or a bad signature."""
        try:
            return self._receive(payload)
        except Smb2AuthError as exc:
            if self._state is not ClientState.ESTABLISHED or isinstance(exc, NegotiateDowngradeError):
                self._state = advance(self._state, ClientEvent.FAIL)
            raise

    def _receive(self, payload: bytes) -> Response | None:
        encrypted = False
        if payload[:4] == TRANSFORM_PROTOCOL_ID:
            payload = self._decrypt(payload)
            encrypted = True
        header = Smb2Header.unpack(payload)
        if encrypted and header.session_id != self.session_id:
            # MS-SMB2 3.2.5.1.1.1: the decrypted message must name the session of the TRANSFORM_HEADER.
            raise MalformedMessage("decrypted response names another SessionId", offset=40)
        if header.next_command:
            # We never compound requests, so a compounded response is not ours (MS-SMB2 3.2.5.1.9).
            raise MalformedMessage("a compounded response to a single request", offset=20)
        raw, body = payload, payload[HEADER_SIZE:]
        if not header.is_response:
            # MS-SMB2 3.2.5.1: a client only accepts messages with SMB2_FLAGS_SERVER_TO_REDIR.
            raise MalformedMessage("a request where a response was expected", offset=16)
        if header.message_id == _UNSOLICITED:
            # MS-SMB2 3.2.5.19: MessageId 0xFFFFFFFFFFFFFFFF is an oplock/lease break notification.
            return None
        pending = self._outstanding.get(header.message_id)
        if pending is None:
            # MS-SMB2 3.2.5.1.2: a response whose MessageId is not outstanding is discarded as an error.
            raise ProtocolStateError(
                f"SMB2 client in state {self._state.value}: response to MessageId {header.message_id}"
                " that is not outstanding"
            )
        if header.command != pending.command:
            raise MalformedMessage(f"{header.command.name} response to a {pending.command.name} request")
        if header.is_async and header.status == NtStatus.STATUS_PENDING:
            # MS-SMB2 3.2.5.1.5: an interim response; the final one follows with the same MessageId.
            # MS-SMB2 3.2.5.1.3: interim responses are not verified; 3.2.5.1.4: their credits count.
            self._credits += header.credit
            pending.async_id = header.async_id
            return None
        del self._outstanding[header.message_id]
        if pending.encrypted and not encrypted:
            # MS-SMB2 3.2.5.1.1: an encrypted request gets an encrypted response.
            raise SigningError("unencrypted response to an encrypted request", command=header.command)
        command = header.command
        if command is Command.NEGOTIATE or (
            command is Command.SESSION_SETUP and header.status != NtStatus.STATUS_SUCCESS
        ):
            # Not signed (MS-SMB2 3.2.5.1.3: no session yet); the next leg needs these credits.
            self._credits += header.credit
            if command is Command.NEGOTIATE:
                return self._on_negotiate(header, raw, body)
            return self._on_session_setup(header, raw, body)
        if command is Command.SESSION_SETUP:
            final = self._on_session_setup(header, raw, body)
            # MS-SMB2 3.2.5.1.4: credits counted once the final response's signature verified.
            self._credits += header.credit
            return final
        if pending.validate:
            result = self._on_validate_negotiate(header, raw, body, encrypted)
            self._credits += header.credit
            return result
        signed = False if encrypted else self._check_signature(header, raw, pending.session_id)
        # MS-SMB2 3.2.5.1.4: CreditResponse is honoured only from a response that passed 3.2.5.1.3.
        self._credits += header.credit
        if header.status != NtStatus.STATUS_SUCCESS:
            raise self._error(header, body)
        parsed = parse_body(header, body)
        if command is Command.TREE_CONNECT:
            assert isinstance(parsed, TreeConnectResponse)
            # MS-SMB2 3.2.5.5: SMB2_SHAREFLAG_ENCRYPT_DATA makes every request on the tree encrypted.
            encrypt_tree = bool(parsed.share_flags & ShareFlags.ENCRYPT_DATA) and self._can_encrypt()
            self.trees[header.tree_id] = TreeConnect(header.tree_id, pending.path, parsed, encrypt_tree)
            self._after_first_tree_connect(header.tree_id)
        elif command is Command.TREE_DISCONNECT:
            self.trees.pop(pending.tree_id, None)
        elif command is Command.LOGOFF:
            self._state = advance(self._state, ClientEvent.RECV_LOGOFF)
        return Response(header, parsed, signed, encrypted)

    def _decrypt(self, payload: bytes) -> bytes:
        if self._keys is None or self.dialect is None or self.dialect < Dialect.SMB3_0:
            raise MalformedMessage("an encrypted message before a 3.x session exists")
        transform = TransformHeader.unpack(payload)
        if transform.session_id != self.session_id:
            # MS-SMB2 3.2.5.1.1: the TRANSFORM_HEADER's SessionId must name our session.
            raise MalformedMessage("TRANSFORM_HEADER for another session", offset=44)
        _, plaintext = decrypt(payload, self._key("s2c"), self.cipher or Cipher.AES_128_CCM)
        return plaintext

    def _check_signature(self, header: Smb2Header, raw: bytes, session_id: int) -> bool:
        """MS-SMB2 3.2.5.1.3: verify a signed response; refuse an unsigned one when signing is required.

        `session_id` is the request's: 3.2.5.1.3 finds the session from the request, not from the response
        header, so a response whose SessionId was zeroed is still held to the session's signing."""
        if header.is_signed:
            assert self.signing_algorithm is not None
            if not verify(raw, self._key("signing"), self.signing_algorithm):
                name = header.command.name
                raise SigningError(f"{name} response signature does not verify", command=header.command)
            self.signed = self.signing_required or self.encrypt_data
            return True
        if self.signing_required and session_id:
            got = NtStatus.name_of(header.status)
            raise SigningError(
                f"unsigned {header.command.name} response ({got})", command=header.command
            )
        return False

    @property
    def _null_session(self) -> bool:
        """A guest or null session (MS-SMB2 3.2.5.3.1), or our own anonymous logon: none of them can sign."""
        null = self.session_flags & (SessionFlags.IS_GUEST | SessionFlags.IS_NULL)
        return self._anonymous_logon or bool(null)

    # --- FSCTL_VALIDATE_NEGOTIATE_INFO ----------------------------------------------------------------------

    def _after_first_tree_connect(self, tree_id: int) -> None:
        """MS-SMB2 3.2.5.5: after the first TREE_CONNECT of a 3.0/3.0.2 session, validate the NEGOTIATE."""
        if self._validation_sent or self.dialect not in _VALIDATED_DIALECTS:
            return
        self._validation_sent = True
        if self._null_session:
            return  # MS-SMB2 3.2.5.5: not for anonymous or guest sessions, which cannot sign
        if not self.validate_negotiate:
            self.validated_negotiate = False
            return
        assert self._negotiate_info is not None
        # MS-SMB2 2.2.31 / 2.2.31.4: FSCTL on no open, input = our NEGOTIATE, room for the 24-byte answer.
        request = IoctlRequest(
            FSCTL_VALIDATE_NEGOTIATE_INFO,
            self._negotiate_info.pack(),
            max_output_response=ValidateNegotiateInfoResponse.SIZE,
        )
        # MS-SMB2 3.2.5.14.12: the exchange must be signed (or encrypted) even where signing is optional.
        self._out = self._request(
            Command.IOCTL, request.pack(), tree_id, force_sign=True, validate=True
        )

    def _on_validate_negotiate(
        self, header: Smb2Header, raw: bytes, body: bytes, encrypted: bool
    ) -> Response:
        if not encrypted:
            if not header.is_signed:
                # MS-SMB2 3.2.5.14.12: neither signed nor encrypted -> terminate, whatever the status.
                raise NegotiateDowngradeError(
                    f"unsigned FSCTL_VALIDATE_NEGOTIATE_INFO response ({NtStatus.name_of(header.status)})"
                )
            assert self.signing_algorithm is not None
            if not verify(raw, self._key("signing"), self.signing_algorithm):
                raise NegotiateDowngradeError("the response's signature does not verify")
        status = header.status
        if status in _VALIDATE_UNSUPPORTED:
            self.validated_negotiate = False
            return Response(header, parse_body(header, body), not encrypted, encrypted)
        if status != NtStatus.STATUS_SUCCESS:
            # MS-SMB2 3.2.5.14.12: STATUS_ACCESS_DENIED terminates; so does any answer that does not confirm.
            raise NegotiateDowngradeError(f"server answered {NtStatus.name_of(status)}")
        try:
            ioctl = IoctlResponse.unpack(body)
            got = ValidateNegotiateInfoResponse.unpack(ioctl.output)
        except MalformedMessage as exc:
            raise NegotiateDowngradeError(f"malformed answer: {exc}") from None
        sent = self.negotiate_response
        assert sent is not None
        # MS-SMB2 3.2.5.14.12: Capabilities, Guid, SecurityMode and Dialect as the NEGOTIATE response said.
        for name, answered, negotiated in (
            ("Capabilities", int(got.capabilities), int(sent.capabilities)),
            ("ServerGuid", got.server_guid.hex(), sent.server_guid.hex()),
            ("SecurityMode", int(got.security_mode), int(sent.security_mode)),
            ("Dialect", got.dialect, sent.dialect_revision),
        ):
            if answered != negotiated:
                raise NegotiateDowngradeError(
                    f"{name} {answered!r} differs from the NEGOTIATE response's {negotiated!r}"
                )
        self.validated_negotiate = True
        return Response(header, ioctl, not encrypted, encrypted)

    def _error(self, header: Smb2Header, body: bytes) -> Smb2ClientError:
        reason = f"{header.command.name} failed"
        try:
            err = ErrorResponse.unpack(body)
            if err.error_data.strip(b"\x00"):
                reason += f" ({len(err.error_data)} bytes of error data)"
        except MalformedMessage:
            pass
        return Smb2ClientError(header.status, reason, command=header.command)

    def _can_encrypt(self) -> bool:
        return self.dialect is not None and self.dialect >= Dialect.SMB3_0 and self.cipher is not None

    # --- NEGOTIATE ----------------------------------------------------------------------------------------

    def _on_negotiate(self, header: Smb2Header, raw: bytes, body: bytes) -> Response:
        if header.status != NtStatus.STATUS_SUCCESS:
            raise self._error(header, body)
        response = NegotiateResponse.unpack(body)
        self._state = advance(self._state, ClientEvent.RECV_NEGOTIATE)
        dialect = response.dialect_revision
        if dialect not in self._offered:
            # MS-SMB2 3.2.5.2: a DialectRevision the client did not offer fails the connection.
            raise Smb2ClientError(
                NtStatus.STATUS_NOT_SUPPORTED,
                f"server chose dialect 0x{dialect:04x}, which we did not offer",
            )
        self.dialect = Dialect(dialect)
        self.negotiate_response = response
        self.server_signing_required = bool(response.security_mode & SecurityMode.SIGNING_REQUIRED)
        # MS-SMB2 3.2.5.2: SupportsMultiCredit for 2.1 and later with SMB2_GLOBAL_CAP_LARGE_MTU.
        self.multi_credit = dialect >= Dialect.SMB2_1 and bool(
            response.capabilities & Capabilities.LARGE_MTU
        )
        if dialect == Dialect.SMB3_1_1:
            self._negotiate_contexts_311(response)
            # MS-SMB2 3.2.5.2: PreauthIntegrityHashValue over the NEGOTIATE request and response.
            self._preauth = self._preauth.add(self._negotiate_request).add(raw)
        else:
            self.signing_algorithm = signing_algorithm_for(dialect)
            if dialect >= Dialect.SMB3_0 and response.capabilities & Capabilities.ENCRYPTION:
                # MS-SMB2 3.2.5.2: 3.0/3.0.2 with SMB2_GLOBAL_CAP_ENCRYPTION use AES-128-CCM.
                self.cipher = Cipher.AES_128_CCM
        self._negotiate_request = b""
        if self.require_encryption and self.cipher is None:
            what = (
                self.dialect_name
                if dialect < Dialect.SMB3_0
                else f"{self.dialect_name} without a cipher"
            )
            raise Smb2ClientError(
                NtStatus.STATUS_NOT_SUPPORTED,
                f"encryption required but not available (negotiated {what}; MS-SMB2 3.1.4.3 needs 3.x)",
            )
        self._send_session_setup(self._spnego.step(response.security_buffer or None))
        return Response(header, response)

    def _negotiate_contexts_311(self, response: NegotiateResponse) -> None:
        preauth = encryption = signing = None
        for context in response.negotiate_contexts:
            if isinstance(context, PreauthIntegrityCapabilities):
                preauth = context
            elif isinstance(context, EncryptionCapabilities):
                encryption = context
            elif isinstance(context, SigningCapabilities):
                signing = context
        # MS-SMB2 3.2.5.2: exactly one PREAUTH hash algorithm, one we offered (SHA-512).
        if preauth is None or preauth.hash_algorithms != (HashAlgorithm.SHA_512,):
            raise Smb2ClientError(NtStatus.STATUS_INVALID_NETWORK_RESPONSE, "no SHA-512 preauth context")
        if encryption is not None:
            # MS-SMB2 3.2.5.2: one cipher, one we offered, or 0 for none in common.
            chosen = encryption.ciphers
            if len(chosen) != 1 or (chosen[0] and chosen[0] not in self._ciphers):
                raise Smb2ClientError(
                    NtStatus.STATUS_INVALID_NETWORK_RESPONSE, f"bad cipher choice {chosen}"
                )
            self.cipher = Cipher(chosen[0]) if chosen[0] else None
        algorithm: int | None = None
        if signing is not None:
            # MS-SMB2 3.2.5.2: one signing algorithm, one we offered.
            picked = signing.signing_algorithms
            if len(picked) != 1 or picked[0] not in self._signing_algorithms:
                raise Smb2ClientError(
                    NtStatus.STATUS_INVALID_NETWORK_RESPONSE, f"bad signing algorithm choice {picked}"
                )
            algorithm = picked[0]
        self.signing_algorithm = signing_algorithm_for(Dialect.SMB3_1_1, algorithm)

    # --- SESSION_SETUP ------------------------------------------------------------------------------------

    def _send_session_setup(self, token: bytes | None) -> None:
        mode = SecurityMode.SIGNING_REQUIRED if self.require_signing else SecurityMode.SIGNING_ENABLED
        body = SessionSetupRequest(token or b"", security_mode=mode, capabilities=Capabilities.DFS)
        mid, header = self._header(Command.SESSION_SETUP)
        message = header + body.pack()
        self._outstanding[mid] = _Outstanding(Command.SESSION_SETUP)
        if self.dialect == Dialect.SMB3_1_1:
            # MS-SMB2 3.2.4.2.3: the session's preauth hash covers every SESSION_SETUP request.
            self._preauth = self._preauth.add(message)
        self._out = frame(message)

    def _on_session_setup(self, header: Smb2Header, raw: bytes, body: bytes) -> Response:
        status = header.status
        if status == NtStatus.STATUS_MORE_PROCESSING_REQUIRED:
            self._state = advance(self._state, ClientEvent.RECV_MORE_PROCESSING)
            response = SessionSetupResponse.unpack(body)
            if not self.session_id:
                self.session_id = header.session_id
            elif header.session_id != self.session_id:
                raise MalformedMessage("SESSION_SETUP response for another SessionId", offset=40)
            if self.dialect == Dialect.SMB3_1_1:
                # MS-SMB2 3.2.5.3: ... and every response but the final success.
                self._preauth = self._preauth.add(raw)
            self._send_session_setup(self._spnego.step(response.security_buffer))
            return Response(header, response)
        if status != NtStatus.STATUS_SUCCESS:
            raise self._error(header, body)
        response = SessionSetupResponse.unpack(body)
        if self.session_id and header.session_id != self.session_id:
            raise MalformedMessage("SESSION_SETUP response for another SessionId", offset=40)
        self.session_id = header.session_id
        if response.session_flags & (SessionFlags.IS_GUEST | SessionFlags.IS_NULL):
            self._spnego.accept_guest()
        if response.security_buffer or not self._spnego.complete:
            out = self._spnego.step(response.security_buffer or None)
            if out is not None or not self._spnego.complete:
                raise Smb2ClientError(
                    NtStatus.STATUS_INVALID_NETWORK_RESPONSE, "server finished before authentication did"
                )
        self.session_flags = response.session_flags
        anonymous = self._null_session
        if anonymous and self.require_signing:
            # MS-SMB2 3.2.5.3.1: a guest or null session cannot sign; refused when signing is required.
            raise SigningError("the server made this a guest/null session, which cannot sign")
        assert self.dialect is not None
        key = self._spnego.session_key
        short = key[:16].ljust(16, b"\x00")
        self._keys = _Keys(self.dialect, short, key, self._preauth.value, self.cipher or 0)
        self._preauth = PreauthIntegrity()
        # MS-SMB2 3.2.5.3.1: Session.SigningRequired when either side requires signing (not for guest/null).
        self.signing_required = not anonymous and (self.require_signing or self.server_signing_required)
        signed = False
        if header.is_signed:
            # MS-SMB2 3.2.5.3.1: verify the final SESSION_SETUP response with the new signing key.
            assert self.signing_algorithm is not None
            if not verify(raw, self._keys.signing_key, self.signing_algorithm):
                raise SigningError("final SESSION_SETUP response signature does not verify")
            signed = self.setup_response_signed = True
        elif self.dialect == Dialect.SMB3_1_1 and not anonymous:
            # MS-SMB2 3.2.5.3.1: a 3.1.1 final SESSION_SETUP response must be signed.
            raise SigningError("final SESSION_SETUP response of a 3.1.1 session is not signed")
        if self.session_flags & SessionFlags.ENCRYPT_DATA:
            # MS-SMB2 3.2.5.3.1: SMB2_SESSION_FLAG_ENCRYPT_DATA makes every request encrypted.
            if not self._can_encrypt():
                raise Smb2ClientError(
                    NtStatus.STATUS_ACCESS_DENIED, "server demands encryption we cannot do"
                )
            self.encrypt_data = True
        elif self.require_encryption:
            self.encrypt_data = True
        self.signed = signed and (self.signing_required or self.encrypt_data)
        self._state = advance(self._state, ClientEvent.RECV_SESSION_SUCCESS)
        return Response(header, response, signed)
