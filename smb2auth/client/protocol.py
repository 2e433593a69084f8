"""The sans-IO SMB2 client: one connection carrying one session (MS-SMB2 3.2).

`ClientConnection` builds requests (whole Direct TCP frames, ready to send) and consumes responses (one
frame payload at a time). It never touches a socket, a clock or the OS RNG on its own; `rng` and `clock`
are injected. The shells in `smb2auth.client.sync` and `smb2auth.client.aio` only move bytes.

    core = ClientConnection(username="alice", password="...", server_name="srv")
    send(core.negotiate())
    while not core.established:
        if core.receive(read_frame()) is not None and (out := core.data_to_send()):
            send(out)

The NEGOTIATE lives in `_negotiate` (on smb2/policy.py), the SESSION_SETUP in `_session_setup`, message ids,
credits, signing and sealing in `_channel`; this module routes requests and responses between them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from smb2auth.client._channel import Channel
from smb2auth.client._negotiate import (
    VALIDATED_DIALECTS,
    Offer,
    check_validate_negotiate,
    negotiate_request,
    read_negotiate_response,
    validate_negotiate_request,
)
from smb2auth.client._session_setup import SessionSetup
from smb2auth.client._state import ClientEvent, ClientState, advance
from smb2auth.client.errors import NegotiateDowngradeError, SigningError, Smb2ClientError
from smb2auth.client.hooks import Hooks, raw_answer, raw_message
from smb2auth.errors import MalformedMessage, ProtocolStateError, Smb2AuthError
from smb2auth.ntlm.authority import ResponseKind
from smb2auth.ntlm.client import NtlmClient
from smb2auth.smb2 import policy
from smb2auth.smb2.body import Message, parse_body
from smb2auth.smb2.crypto import SessionKeys
from smb2auth.smb2.file import CloseRequest, CreateRequest, ReadRequest
from smb2auth.smb2.framing import frame
from smb2auth.smb2.header import HEADER_SIZE, TRANSFORM_PROTOCOL_ID, Command, Smb2Header
from smb2auth.smb2.ioctl import IoctlRequest, ValidateNegotiateInfoRequest
from smb2auth.smb2.negotiate import (
    DIALECT_NAMES,
    SMB2_DIALECTS,
    Dialect,
    NegotiateResponse,
    dialect_name,
    parse_dialect,
)
from smb2auth.smb2.negotiate_contexts import Cipher, SigningAlgorithm
from smb2auth.smb2.session import LogoffRequest, SessionFlags, SessionSetupResponse
from smb2auth.smb2.simple import EchoRequest, ErrorResponse
from smb2auth.smb2.tree import ShareFlags, TreeConnectRequest, TreeConnectResponse, TreeDisconnectRequest
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
_NO_SESSION_FLAGS = SessionFlags(0)
_CIPHERS = {int(cipher): cipher for cipher in Cipher}  # by wire value, without the enum's call
_UNSOLICITED = 0xFFFFFFFFFFFFFFFF


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
    raw: bool = False


class ClientConnection:
    """One SMB2 connection and its session, as the client. See the module docstring for the loop.

    `mech` replaces the default SPNEGO-wrapped NtlmClient built from the credentials (tests use it); `hooks`
    make it misbehave on purpose (smb2auth.client.hooks, for conformance tests).
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
        ciphers: Sequence[int] = policy.CIPHER_PREFERENCE,
        signing_algorithms: Sequence[int] = policy.SIGNING_PREFERENCE,
        ntlm_version: ResponseKind = ResponseKind.NTLMV2,
        credit_request: int = 32,
        validate_negotiate: bool = True,
        mech: MechContext | None = None,
        hooks: Hooks | None = None,
        rng: Callable[[int], bytes] = os.urandom,
        clock: Callable[[], float] = time.time,
    ) -> None:
        offer = Offer(
            tuple(dialects), tuple(ciphers), tuple(signing_algorithms), require_signing, server_name
        )
        if require_encryption and max(offer.dialects) < Dialect.SMB3_0:
            raise Smb2ClientError(
                NtStatus.STATUS_NOT_SUPPORTED,
                "encryption is not available before SMB 3.0 (MS-SMB2 3.1.4.3)",
            )
        anonymous_logon = mech is None and ntlm_version == ResponseKind.ANONYMOUS
        spnego = hooks.spnego if hooks is not None else None
        if spnego is not None:
            mech = spnego.mech
        elif mech is None:
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
        self._offer = offer
        self._rng = rng
        self._hooks = hooks
        self._spnego = spnego if spnego is not None else SpnegoClient(mech)
        self._setup = SessionSetup(
            self._spnego,
            require_signing,
            anonymous_logon=anonymous_logon,
            edit=hooks.session_setup if hooks is not None else None,
        )
        self._channel = Channel(rng, credit_request)
        if hooks is not None:
            self._channel.next_mid = hooks.first_message_id
        self._state = ClientState.IDLE
        self._outstanding: dict[int, _Outstanding] = {}
        self._out = b""
        self._negotiate_request = b""
        self.negotiate_response: NegotiateResponse | None = None
        self.server_signing_required = False
        self.session_flags = _NO_SESSION_FLAGS
        self.signing_required = False
        self.encrypt_data = False
        self.signed = False
        self.setup_response_signed = False
        self.trees: dict[int, TreeConnect] = {}
        self._keys: SessionKeys | None = None
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
    def dialect(self) -> Dialect | None:
        return self._channel.dialect

    @property
    def dialect_name(self) -> str:
        return dialect_name(self.dialect) if self.dialect is not None else ""

    @property
    def cipher(self) -> Cipher | None:
        return self._channel.cipher

    @property
    def signing_algorithm(self) -> SigningAlgorithm | None:
        return self._channel.signing_algorithm

    @property
    def multi_credit(self) -> bool:
        return self._channel.multi_credit

    @property
    def session_id(self) -> int:
        return self._channel.session_id

    @property
    def credits(self) -> int:
        """Credits granted and not yet spent (MS-SMB2 3.2.5.1.4)."""
        return self._channel.credits

    @property
    def spnego(self) -> SpnegoClient:
        return self._spnego

    @property
    def negotiate_info(self) -> ValidateNegotiateInfoRequest | None:
        """What FSCTL_VALIDATE_NEGOTIATE_INFO repeats of our NEGOTIATE (MS-SMB2 2.2.31.4), once it is sent."""
        return self._negotiate_info

    def _session_keys(self) -> SessionKeys:
        if self._keys is None:
            raise ProtocolStateError(f"SMB2 client in state {self._state.value}: no session keys yet")
        return self._keys

    @property
    def session_key(self) -> bytes:
        """MS-SMB2 3.2.5.3.1: Session.SessionKey, the first 16 bytes of the GSS session key."""
        return self._session_keys().session_key

    @property
    def signing_key(self) -> bytes:
        return self._session_keys().signing_key

    @property
    def application_key(self) -> bytes:
        return self._session_keys().application_key

    @property
    def encryption_key(self) -> bytes:
        """Session.EncryptionKey: protects client-to-server messages (3.x)."""
        return self._session_keys().encryption_key

    @property
    def decryption_key(self) -> bytes:
        """Session.DecryptionKey: protects server-to-client messages (3.x)."""
        return self._session_keys().decryption_key

    def data_to_send(self) -> bytes:
        """The frame the last `receive` queued (the next SESSION_SETUP leg), or b""."""
        out, self._out = self._out, b""
        return out

    # --- requests -----------------------------------------------------------------------------------------

    def negotiate(self) -> bytes:
        """The NEGOTIATE request frame (MS-SMB2 3.2.4.2.2.2)."""
        self._state = advance(self._state, ClientEvent.SEND_NEGOTIATE)
        body, self._negotiate_info = negotiate_request(self._offer, self._rng)
        mid, header = self._channel.header(Command.NEGOTIATE, 0, self._state)
        hook = self._hooks.negotiate if self._hooks is not None else None
        message = header + (body.pack() if hook is None else hook(body))
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
        mid, header = self._channel.header(command, tree_id, self._state)
        message = header + body
        if encrypted:
            # MS-SMB2 3.2.4.1.8: encrypted requests go in a TRANSFORM_HEADER and are not signed.
            message = self._channel.seal(message)
        elif self.signing_required or force_sign:
            # MS-SMB2 3.2.4.1.1: with Session.SigningRequired every request is signed.
            message = self._channel.sign(message)
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

    def _tree(self, tree_id: int) -> int:
        if tree_id not in self.trees:
            raise ProtocolStateError(f"SMB2 client in state {self._state.value}: no tree {tree_id}")
        return tree_id

    def create(self, tree_id: int, name: str) -> bytes:
        """MS-SMB2 3.2.4.3: CREATE `name` on a tree, opened as an RPC client opens a named pipe."""
        return self._request(Command.CREATE, CreateRequest(name).pack(), self._tree(tree_id))

    def ioctl(self, tree_id: int, file_id: bytes, ctl_code: int, data: bytes, max_output: int) -> bytes:
        """MS-SMB2 3.2.4.20: an FSCTL on an open (FSCTL_PIPE_TRANSCEIVE for a pipe)."""
        request = IoctlRequest(ctl_code, data, file_id, max_output_response=max_output)
        return self._request(Command.IOCTL, request.pack(), self._tree(tree_id))

    def read(self, tree_id: int, file_id: bytes, length: int) -> bytes:
        """MS-SMB2 3.2.4.6: READ up to `length` bytes (a pipe's next message)."""
        return self._request(Command.READ, ReadRequest(file_id, length).pack(), self._tree(tree_id))

    def close_file(self, tree_id: int, file_id: bytes) -> bytes:
        """MS-SMB2 3.2.4.5: CLOSE an open."""
        return self._request(Command.CLOSE, CloseRequest(file_id).pack(), self._tree(tree_id))

    def logoff(self) -> bytes:
        """MS-SMB2 3.2.4.2.5: the LOGOFF request frame."""
        out = self._request(Command.LOGOFF, LogoffRequest().pack())
        self._state = advance(self._state, ClientEvent.SEND_LOGOFF)
        return out

    def raw_request(
        self,
        command: Command,
        body: bytes,
        *,
        tree_id: int = 0,
        session_id: int | None = None,
        sign: bool | None = None,
        encrypt: bool | None = None,
        edit: Callable[[bytes], bytes] | None = None,
    ) -> bytes:
        """A request the core sends without interpreting it, in any state (conformance tests; see
        smb2auth.client.hooks.raw_message). Its response comes back from `receive`, an error status returned,
        not raised."""
        mid, header = self._channel.header(command, tree_id, self._state)
        sid = self.session_id if session_id is None else session_id
        encrypted = self.encrypt_data if encrypt is None else encrypt
        signed = self.signing_required if sign is None else sign
        message = raw_message(self._channel, header + body, sid, encrypted, signed, edit)
        self._outstanding[mid] = _Outstanding(command, tree_id=tree_id, encrypted=encrypted, session_id=sid,
                                              raw=True)
        return frame(message)

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
            payload = self._channel.unseal(payload)
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
            self._channel.grant(header)
            pending.async_id = header.async_id
            return None
        del self._outstanding[header.message_id]
        if pending.raw:
            return self._on_raw(header, raw, body, encrypted)
        if pending.encrypted and not encrypted:
            # MS-SMB2 3.2.5.1.1: an encrypted request gets an encrypted response.
            raise SigningError("unencrypted response to an encrypted request", command=header.command)
        command = header.command
        if command is Command.NEGOTIATE or (
            command is Command.SESSION_SETUP and header.status != NtStatus.STATUS_SUCCESS
        ):
            # Not signed (MS-SMB2 3.2.5.1.3: no session yet); the next leg needs these credits.
            self._channel.grant(header)
            if command is Command.NEGOTIATE:
                return self._on_negotiate(header, raw, body)
            return self._on_session_setup(header, raw, body)
        if command is Command.SESSION_SETUP:
            final = self._on_session_setup(header, raw, body)
            # MS-SMB2 3.2.5.1.4: credits counted once the final response's signature verified.
            self._channel.grant(header)
            return final
        if pending.validate:
            result = self._on_validate_negotiate(header, raw, body, encrypted)
            self._channel.grant(header)
            return result
        signed = False
        if not encrypted and self._channel.check_signature(
            header, raw, self.signing_required, pending.session_id
        ):
            signed = True
            self.signed = self.signing_required or self.encrypt_data
        # MS-SMB2 3.2.5.1.4: CreditResponse is honoured only from a response that passed 3.2.5.1.3.
        self._channel.grant(header)
        if header.status != NtStatus.STATUS_SUCCESS:
            raise self._error(header, body)
        parsed = parse_body(header, body)
        if command is Command.TREE_CONNECT:
            assert isinstance(parsed, TreeConnectResponse)
            # MS-SMB2 3.2.5.5: SMB2_SHAREFLAG_ENCRYPT_DATA makes every request on the tree encrypted.
            encrypt_tree = bool(parsed.share_flags & ShareFlags.ENCRYPT_DATA) and self._channel.can_encrypt
            self.trees[header.tree_id] = TreeConnect(header.tree_id, pending.path, parsed, encrypt_tree)
            self._after_first_tree_connect(header.tree_id)
        elif command is Command.TREE_DISCONNECT:
            self.trees.pop(pending.tree_id, None)
        elif command is Command.LOGOFF:
            self._state = advance(self._state, ClientEvent.RECV_LOGOFF)
        return Response(header, parsed, signed, encrypted)

    def _on_raw(self, header: Smb2Header, raw: bytes, body: bytes, encrypted: bool) -> Response:
        parsed, signed = raw_answer(self._channel, header, raw, body, encrypted)
        self._channel.grant(header)
        return Response(header, parsed, signed, encrypted)

    def _error(self, header: Smb2Header, body: bytes) -> Smb2ClientError:
        reason = f"{header.command.name} failed"
        try:
            err = ErrorResponse.unpack(body)
            if err.error_data.strip(b"\x00"):
                reason += f" ({len(err.error_data)} bytes of error data)"
        except MalformedMessage:
            pass
        return Smb2ClientError(header.status, reason, command=header.command)

    # --- NEGOTIATE and FSCTL_VALIDATE_NEGOTIATE_INFO ------------------------------------------------------

    def _on_negotiate(self, header: Smb2Header, raw: bytes, body: bytes) -> Response:
        if header.status != NtStatus.STATUS_SUCCESS:
            raise self._error(header, body)
        response = NegotiateResponse.unpack(body)
        self._state = advance(self._state, ClientEvent.RECV_NEGOTIATE)
        outcome = read_negotiate_response(response, self._offer, self.require_encryption)
        negotiated = outcome.negotiated
        self._channel.dialect = negotiated.dialect
        self._channel.signing_algorithm = negotiated.signing_algorithm
        # policy.check_response let through only a cipher we offered (or 0, none).
        self._channel.cipher = _CIPHERS.get(negotiated.cipher)
        self._channel.multi_credit = outcome.multi_credit
        self.negotiate_response = response
        self.server_signing_required = outcome.server_signing_required
        self._setup.start(negotiated.dialect, self._negotiate_request, raw)
        self._negotiate_request = b""
        if self._hooks is None or not self._hooks.hold_session_setup:
            self._send_session_setup(self._spnego.step(response.security_buffer or None))
        return Response(header, response)

    def _after_first_tree_connect(self, tree_id: int) -> None:
        """MS-SMB2 3.2.5.5: after the first TREE_CONNECT of a 3.0/3.0.2 session, validate the NEGOTIATE."""
        if self._validation_sent or self.dialect not in VALIDATED_DIALECTS:
            return
        self._validation_sent = True
        if self._setup.anonymous_logon or self.session_flags & (SessionFlags.IS_GUEST | SessionFlags.IS_NULL):
            return  # MS-SMB2 3.2.5.5: not for anonymous or guest sessions, which cannot sign
        if not self.validate_negotiate:
            self.validated_negotiate = False
            return
        assert self._negotiate_info is not None
        request = validate_negotiate_request(self._negotiate_info)
        # MS-SMB2 3.2.5.14.12: the exchange must be signed (or encrypted) even where signing is optional.
        self._out = self._request(
            Command.IOCTL, request.pack(), tree_id, force_sign=True, validate=True
        )

    def _on_validate_negotiate(
        self, header: Smb2Header, raw: bytes, body: bytes, encrypted: bool
    ) -> Response:
        assert self.negotiate_response is not None
        ioctl = check_validate_negotiate(
            header, raw, body, encrypted, self._channel.verify, self.negotiate_response
        )
        self.validated_negotiate = ioctl is not None
        parsed = ioctl if ioctl is not None else parse_body(header, body)
        return Response(header, parsed, not encrypted, encrypted)

    # --- SESSION_SETUP ------------------------------------------------------------------------------------

    def _send_session_setup(self, token: bytes | None) -> None:
        mid, header = self._channel.header(Command.SESSION_SETUP, 0, self._state)
        message = self._setup.request(header, token)
        self._outstanding[mid] = _Outstanding(Command.SESSION_SETUP)
        self._out = frame(message)

    def _on_session_setup(self, header: Smb2Header, raw: bytes, body: bytes) -> Response:
        status = header.status
        if status == NtStatus.STATUS_MORE_PROCESSING_REQUIRED:
            self._state = advance(self._state, ClientEvent.RECV_MORE_PROCESSING)
            response = SessionSetupResponse.unpack(body)
            if not self.session_id:
                self._channel.session_id = header.session_id
            elif header.session_id != self.session_id:
                raise MalformedMessage("SESSION_SETUP response for another SessionId", offset=40)
            self._send_session_setup(self._setup.more_processing(raw, response))
            return Response(header, response)
        if status != NtStatus.STATUS_SUCCESS:
            raise self._error(header, body)
        response = SessionSetupResponse.unpack(body)
        if self.session_id and header.session_id != self.session_id:
            raise MalformedMessage("SESSION_SETUP response for another SessionId", offset=40)
        self._channel.session_id = header.session_id
        session = self._setup.established(
            header,
            raw,
            response,
            cipher=self.cipher,
            signing_algorithm=self.signing_algorithm,
            server_signing_required=self.server_signing_required,
            can_encrypt=self._channel.can_encrypt,
            require_encryption=self.require_encryption,
        )
        self._keys = self._channel.keys = session.keys
        self.session_flags = session.flags
        self.signing_required = session.signing_required
        self.encrypt_data = session.encrypt_data
        self.setup_response_signed = session.response_signed
        self.signed = session.response_signed and (self.signing_required or self.encrypt_data)
        self._state = advance(self._state, ClientEvent.RECV_SESSION_SUCCESS)
        return Response(header, response, session.response_signed)
