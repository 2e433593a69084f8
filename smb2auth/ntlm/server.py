"""The NTLM acceptor (MS-NLMP 3.2): NEGOTIATE in, CHALLENGE out, AUTHENTICATE in. Sans-IO.

`receive(token)` returns an event (smb2auth.ntlm.events): the CHALLENGE to send, the `ValidationNeeded` the
transport answers by calling the authority and handing the result to `validation_done(ticket, result)`,
`Complete` or `Failed`. `step(token)` does all of that inline for a synchronous authority.
"""

from __future__ import annotations

import codecs
import enum
import functools
import hmac
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from smb2auth.errors import AuthenticationError, MalformedMessage, ProtocolStateError
from smb2auth.ntlm import crypto
from smb2auth.ntlm._session import SecurityContext, SessionSecurity
from smb2auth.ntlm._state import ServerEvent, ServerState, server_next
from smb2auth.ntlm.authority import (
    Account,
    AnyAuthority,
    ResponseKind,
    ValidationRequest,
    ValidationResult,
    validate_sync,
)
from smb2auth.ntlm.events import Complete, Failed, HandshakeError, HandshakeEvent, Send, ValidationNeeded
from smb2auth.ntlm.messages import (
    NTLMSSP_NEGOTIATE_56,
    NTLMSSP_NEGOTIATE_128,
    NTLMSSP_NEGOTIATE_ALWAYS_SIGN,
    NTLMSSP_NEGOTIATE_ANONYMOUS,
    NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY,
    NTLMSSP_NEGOTIATE_IDENTIFY,
    NTLMSSP_NEGOTIATE_KEY_EXCH,
    NTLMSSP_NEGOTIATE_NTLM,
    NTLMSSP_NEGOTIATE_OEM,
    NTLMSSP_NEGOTIATE_SEAL,
    NTLMSSP_NEGOTIATE_SIGN,
    NTLMSSP_NEGOTIATE_TARGET_INFO,
    NTLMSSP_NEGOTIATE_UNICODE,
    NTLMSSP_NEGOTIATE_VERSION,
    NTLMSSP_REQUEST_TARGET,
    NTLMSSP_TARGET_TYPE_SERVER,
    AuthenticateMessage,
    AvFlags,
    AvId,
    AvPair,
    MessageType,
    NegotiateFlags,
    NtlmV2Response,
    Version,
    encode_string,
    encode_unicode,
    message_type,
    negotiate_flags,
    pack_challenge,
    pack_filetime,
    unix_to_filetime,
    unpack_u32,
    zero_mic,
)
from smb2auth.status import NtStatus

ANONYMOUS_ACCOUNT = Account("ANONYMOUS LOGON", "NT AUTHORITY", sid="S-1-5-7")

# How a login event words the authority's status (the wire may carry STATUS_LOGON_FAILURE instead).
_AUTHORITY_PHRASES = {
    NtStatus.STATUS_WRONG_PASSWORD: "wrong password",
    NtStatus.STATUS_NO_SUCH_USER: "unknown user",
    NtStatus.STATUS_ACCOUNT_DISABLED: "account disabled",
    NtStatus.STATUS_ACCOUNT_LOCKED_OUT: "account locked out",
    NtStatus.STATUS_PASSWORD_EXPIRED: "password expired",
    NtStatus.STATUS_NO_LOGON_SERVERS: "no logon servers",
}

# Flags the server echoes when the client asks for them (MS-NLMP 3.2.5.1.1).
_ECHOED = (
    NTLMSSP_NEGOTIATE_SIGN
    | NTLMSSP_NEGOTIATE_SEAL
    | NTLMSSP_NEGOTIATE_ALWAYS_SIGN
    | NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY
    | NTLMSSP_NEGOTIATE_128
    | NTLMSSP_NEGOTIATE_56
    | NTLMSSP_NEGOTIATE_KEY_EXCH
    | NTLMSSP_NEGOTIATE_IDENTIFY
    | NTLMSSP_REQUEST_TARGET
    | NTLMSSP_NEGOTIATE_VERSION
)


def classify_response(user: str, lm: bytes, nt: bytes, flags: int) -> ResponseKind | None:
    """Which response an AUTHENTICATE carries (MS-NLMP 3.3.1 / 3.3.2), None when it is none of them."""
    # MS-NLMP 3.2.5.1.2: anonymous is an empty user, empty NT response and empty or Z(1) LM.
    if not user and not nt and lm in (b"", b"\x00"):
        return ResponseKind.ANONYMOUS
    if len(nt) > 24:
        return ResponseKind.NTLMV2
    if len(nt) == 24:
        ess = flags & NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY
        return ResponseKind.NTLMV1_ESS if ess else ResponseKind.NTLMV1
    # Samba ntlm_password_check: an NT response shorter than 24 bytes is ignored, the LM response checked.
    if len(lm) == 24:
        return ResponseKind.LM
    return None


_AV_STRINGS = frozenset((AvId.MsvAvNbComputerName, AvId.MsvAvNbDomainName, AvId.MsvAvDnsComputerName,
                         AvId.MsvAvDnsDomainName, AvId.MsvAvDnsTreeName, AvId.MsvAvTargetName))
# MS-NLMP 2.2.2.1 / 2.2.2.2: the fixed part of the values that have one.
_AV_MINIMUM: dict[int, int] = {AvId.MsvAvFlags: 4, AvId.MsvAvTimestamp: 8, AvId.MsvAvSingleHost: 48,
               AvId.MsvAvChannelBindings: 16}


_MSV_AV_FLAGS: Final = int(AvId.MsvAvFlags)
_MSV_AV_TIMESTAMP: Final = AvId.MsvAvTimestamp
_AV_EOL_PAIR: Final = b"\x00\x00\x00\x00"  # MS-NLMP 2.2.2.1: MsvAvEOL, length 0
_MSV_AV_CHANNEL_BINDINGS: Final = int(AvId.MsvAvChannelBindings)
_MIC_PRESENT: Final = int(AvFlags.MIC_PRESENT)
_utf_16_le_decode = codecs.utf_16_le_decode


def _check_av_value(pair: AvPair) -> None:
    """Samba ndr_pull_AV_PAIR: a value that does not parse as its MS-NLMP 2.2.2.1 type is INVALID_PARAMETER
    (a name must be UTF-16, a fixed-size value at least its size). `_check_ntlmv2` runs the same test
    inline and calls this for the error."""
    if pair.id in _AV_STRINGS:
        try:
            _utf_16_le_decode(pair.value, "strict", True)
        except UnicodeDecodeError:
            raise MalformedMessage(f"{AvId(pair.id).name} is not UTF-16") from None
    elif len(pair.value) < _AV_MINIMUM.get(pair.id, 0):
        raise MalformedMessage(f"{AvId(pair.id).name} of {len(pair.value)} bytes is too short")


class ChannelBindingPolicy(enum.Enum):
    """Extended Protection: ignore, check when the client sent a hash, or demand one."""

    OFF = "off"
    IF_PRESENT = "if present"
    REQUIRED = "required"


@dataclass(frozen=True)
class TargetInfo:
    """The names the server announces in the CHALLENGE TargetInfo (MS-NLMP 2.2.2.1), in smbd's order: NetBIOS
    domain and computer, DNS domain and computer (both always sent, as smbd and Windows do, empty if ""),
    the DNS tree only when set. The DNS names are the host's by default in ServerConfig; this core never
    looks a host name up."""

    nb_domain: str = "WORKGROUP"
    nb_computer: str = "SMB2AUTH"
    dns_domain: str = ""
    dns_computer: str = ""
    dns_tree: str = ""

    @functools.cached_property
    def name_pairs(self) -> tuple[AvPair, ...]:
        """The names as AV pairs, encoded once. Samba ntlmssp_server_negotiate: the four names always, in
        this order (impacket reads MsvAvDnsComputerName unchecked)."""
        pairs = [
            AvPair(AvId.MsvAvNbDomainName, encode_unicode(self.nb_domain)),
            AvPair(AvId.MsvAvNbComputerName, encode_unicode(self.nb_computer)),
            AvPair(AvId.MsvAvDnsDomainName, encode_unicode(self.dns_domain)),
            AvPair(AvId.MsvAvDnsComputerName, encode_unicode(self.dns_computer)),
        ]
        if self.dns_tree:
            pairs.append(AvPair(AvId.MsvAvDnsTreeName, encode_unicode(self.dns_tree)))
        return tuple(pairs)

    @functools.cached_property
    def packed_name_pairs(self) -> bytes:
        """`name_pairs` as on the wire, without the MsvAvEOL (a CHALLENGE appends its timestamp)."""
        return AvPair.pack_all(self.name_pairs)[:-4]


@dataclass(frozen=True)
class NtlmPolicy:
    """What the server accepts. The defaults are NTLMv2 only, no anonymous, no guest."""

    allow_ntlmv1: bool = False
    allow_lm: bool = False
    allow_anonymous: bool = False
    allow_guest: bool = False
    channel_bindings: ChannelBindingPolicy = ChannelBindingPolicy.IF_PRESENT
    expected_channel_bindings: bytes | None = None
    challenge_lifetime: float = 300.0
    require_128bit: bool = False
    required_flags: int = 0

    @property
    def must_keep(self) -> int:
        return self.required_flags | (int(NTLMSSP_NEGOTIATE_128) if self.require_128bit else 0)


_DEFAULT_POLICY = NtlmPolicy()
_VERSION = Version()


class NtlmServer(SecurityContext):
    """One NTLM handshake as the server."""

    def __init__(
        self,
        authority: AnyAuthority,
        *,
        target: TargetInfo | None = None,
        policy: NtlmPolicy | None = None,
        rng: Callable[[int], bytes] = os.urandom,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.authority = authority
        self.target = target if target is not None else TargetInfo()
        self.policy = policy if policy is not None else _DEFAULT_POLICY
        self._rng = rng
        self._clock = clock
        self._state = ServerState.INITIAL
        self._negotiate = b""
        self._challenge = b""
        self._server_challenge = b""
        self._target_info: tuple[AvPair, ...] = ()
        self._issued_at = 0.0
        self._offered = 0
        self._auth: AuthenticateMessage | None = None
        self._auth_bytes = b""
        self._request: ValidationRequest | None = None
        self._ticket = 0
        self._session: SessionSecurity | None = None
        self.negotiated_flags = 0
        self.session_key: bytes | None = None
        self.account: Account | None = None
        self.response_kind: ResponseKind | None = None
        self.is_guest = False
        self.is_anonymous = False
        self.user = ""
        self.domain = ""
        self.workstation = ""
        self.mic_present = False

    @property
    def complete(self) -> bool:
        return self._state == ServerState.COMPLETE

    @property
    def state(self) -> ServerState:
        return self._state

    @property
    def server_challenge(self) -> bytes:
        return self._server_challenge

    # -- the exchange ---------------------------------------------------------------------------

    def receive(self, token: bytes) -> HandshakeEvent:
        """NEGOTIATE -> Send(CHALLENGE); AUTHENTICATE -> ValidationNeeded, or Complete (anonymous); any
        failure -> Failed, and the context is FAILED."""
        state = self._state
        try:
            if state is ServerState.INITIAL:
                if message_type(token) != MessageType.NtLmNegotiate:
                    raise ProtocolStateError(
                        f"NTLM server: message type {message_type(token)} in state {state.value!r}"
                    )
                return Send(self._on_negotiate(token))
            server_next(state, ServerEvent.RECEIVE_AUTHENTICATE)
            request = self._begin(AuthenticateMessage.unpack(token, self._offered, strict=True), bytes(token))
        except (MalformedMessage, AuthenticationError, ProtocolStateError) as exc:
            return self._failed(exc)
        if request is None:
            return Complete()
        self._ticket += 1
        return ValidationNeeded(self._ticket, request)

    def validation_done(self, ticket: int, result: ValidationResult) -> Complete | Failed:
        """The authority's answer to the ValidationNeeded with this `ticket`."""
        try:
            server_next(self._state, ServerEvent.VALIDATION_RESULT)
            if ticket != self._ticket:
                raise ProtocolStateError(f"NTLM server: ticket {ticket}, but {self._ticket} is pending")
            self._on_result(result)
        except (AuthenticationError, ProtocolStateError) as exc:
            return self._failed(exc)
        return Complete()

    def step(self, token: bytes) -> bytes | None:
        """`receive` for a synchronous authority, called inline: the CHALLENGE bytes, or None once complete;
        a failure raises its error."""
        event = self.receive(token)
        if isinstance(event, ValidationNeeded):
            event = self.validation_done(event.ticket, validate_sync(self.authority, event.request))
        if isinstance(event, Failed):
            raise event.error
        return event.token

    def _failed(self, exc: HandshakeError) -> Failed:
        if self._state not in (ServerState.COMPLETE, ServerState.FAILED):
            self._state = server_next(self._state, ServerEvent.FAIL)
        return Failed(exc)

    def _fail(self, status: NtStatus, reason: str, cause: NtStatus | None = None) -> AuthenticationError:
        return AuthenticationError(status, reason, cause=cause)

    def _on_negotiate(self, token: bytes) -> bytes:
        cflags = negotiate_flags(token)
        after = server_next(self._state, ServerEvent.RECEIVE_NEGOTIATE)
        missing = self.policy.must_keep & ~cflags
        if missing:
            raise AuthenticationError(
                NtStatus.STATUS_DOWNGRADE_DETECTED,
                f"client does not offer required flags {NegotiateFlags(missing)!r}",
            )
        flags = (cflags & _ECHOED) | NTLMSSP_NEGOTIATE_NTLM | NTLMSSP_NEGOTIATE_TARGET_INFO
        # smbd and Windows set NEGOTIATE_VERSION and send a VERSION whether the client asked or not.
        flags |= NTLMSSP_NEGOTIATE_VERSION
        # MS-NLMP 3.2.5.1.1: UNICODE when the client offers it, OEM otherwise.
        flags |= (
            NTLMSSP_NEGOTIATE_UNICODE if cflags & NTLMSSP_NEGOTIATE_UNICODE else NTLMSSP_NEGOTIATE_OEM
        )
        if flags & NTLMSSP_REQUEST_TARGET:
            flags |= NTLMSSP_TARGET_TYPE_SERVER
        self._server_challenge = self._rng(8)
        now = self._clock()
        self._issued_at = now
        t = self.target
        # MS-NLMP 3.2.5.1.1: the names, then MsvAvTimestamp for NTLMv2.
        stamp = AvPair(_MSV_AV_TIMESTAMP, pack_filetime(unix_to_filetime(now)))
        self._target_info = (*t.name_pairs, stamp)
        self._offered = flags
        self._negotiate = bytes(token)
        self._challenge = pack_challenge(
            flags,
            self._server_challenge,
            encode_string(t.nb_computer, flags) if flags & NTLMSSP_REQUEST_TARGET else b"",
            t.packed_name_pairs + stamp.pack() + _AV_EOL_PAIR,
            _VERSION.pack(),
        )
        self._state = after
        return self._challenge

    def _begin(self, auth: AuthenticateMessage, token: bytes) -> ValidationRequest | None:
        policy = self.policy
        if self._clock() - self._issued_at > policy.challenge_lifetime:
            # Samba ntlmssp_server_preauth: an expired challenge -> INVALID_PARAMETER.
            raise self._fail(NtStatus.STATUS_INVALID_PARAMETER, "server challenge expired")
        # Samba msrpc_parse reads each name as a C string: it ends at its first NUL.
        user = auth.user.partition("\0")[0]
        domain = auth.domain.partition("\0")[0]
        workstation = auth.workstation.partition("\0")[0]
        self.user, self.domain, self.workstation = user, domain, workstation
        missing = policy.must_keep & ~auth.flags
        if missing:
            raise self._fail(
                NtStatus.STATUS_DOWNGRADE_DETECTED,
                f"client dropped required flags {NegotiateFlags(missing)!r}",
            )
        # MS-NLMP 3.2.5.1.2: the negotiated set is what both sides agree on.
        flags = (auth.flags & self._offered) | (auth.flags & NTLMSSP_NEGOTIATE_ANONYMOUS)
        key_exch = bool(flags & NTLMSSP_NEGOTIATE_KEY_EXCH)
        bad_key_exch = key_exch and len(auth.encrypted_random_session_key) != 16
        if bad_key_exch:
            flags &= ~NTLMSSP_NEGOTIATE_KEY_EXCH
        self.negotiated_flags = int(flags)
        self._auth = auth
        self._auth_bytes = token
        nt, lm = auth.nt_response, auth.lm_response
        self._state = server_next(self._state, ServerEvent.RECEIVE_AUTHENTICATE)

        kind = classify_response(user, lm, nt, flags)
        self.response_kind = kind
        if kind is None:
            # Samba ntlm_password_check: no NT or LM response of a usable length is a wrong password, which
            # smbd answers LOGON_FAILURE (before its KEY_EXCH check in ntlmssp_server_postauth).
            reason = f"no usable response: NT {len(nt)} bytes, LM {len(lm)} bytes"
            raise self._fail(NtStatus.STATUS_LOGON_FAILURE, reason)
        if kind is ResponseKind.ANONYMOUS:
            if not policy.allow_anonymous:
                raise self._fail(NtStatus.STATUS_LOGON_FAILURE, "anonymous logon not permitted by policy")
            self._finish(ANONYMOUS_ACCOUNT, b"\x00" * 16, anonymous=True)
            return None
        if kind is ResponseKind.NTLMV2:
            self._check_ntlmv2(auth, NtlmV2Response.unpack(nt))
        elif kind in (ResponseKind.NTLMV1, ResponseKind.NTLMV1_ESS):
            if not policy.allow_ntlmv1:
                # Samba "ntlm auth = ntlmv2-only": LOGON_FAILURE on the wire.
                raise self._fail(NtStatus.STATUS_LOGON_FAILURE, f"{kind.value} not permitted by policy")
        elif kind is ResponseKind.LM and not policy.allow_lm:
            raise self._fail(NtStatus.STATUS_LOGON_FAILURE, "LM response not permitted by policy")
        self._request = ValidationRequest(
            user, domain, workstation, self._server_challenge, lm, nt, int(flags), kind
        )
        return self._request

    def _check_ntlmv2(self, auth: AuthenticateMessage, response: NtlmV2Response) -> None:
        pairs = response.client_challenge.av_pairs
        strings, minimum = _AV_STRINGS, _AV_MINIMUM
        for pair in pairs:
            av_id, value = pair
            if av_id in strings:
                try:
                    _utf_16_le_decode(value, "strict", True)
                except UnicodeDecodeError:
                    _check_av_value(pair)
            elif len(value) < minimum.get(av_id, 0):
                _check_av_value(pair)
        # Samba ntlmssp_server_preauth: every AV pair the server sent must come back unchanged, else
        # INVALID_PARAMETER (before the password is checked).
        sent = dict(reversed(pairs))  # the first of an id counts, as in av_get
        for av_id, value in self._target_info:
            if sent.get(av_id) != value:
                name = AvId(av_id).name
                raise self._fail(
                    NtStatus.STATUS_INVALID_PARAMETER, f"{name} changed or missing in the NTLMv2 blob"
                )
        av_flags = sent.get(_MSV_AV_FLAGS)
        flags_value = unpack_u32(av_flags, "MsvAvFlags") if av_flags is not None else 0
        # MS-NLMP 3.2.5.1.2: MsvAvFlags 0x2 promises a MIC; a zero or wrong one fails once the password has
        # been checked (Samba ntlmssp_server_postauth), so a wrong password still reads LOGON_FAILURE.
        self.mic_present = bool(flags_value & _MIC_PRESENT)
        if self.mic_present and auth.mic is None:
            # Samba ntlmssp_server_preauth: a MIC promised where the message has no MIC field (shorter than
            # 88 bytes, or a session key field that does not parse) fails before the password check.
            raise self._fail(NtStatus.STATUS_INVALID_PARAMETER, "MIC promised by MsvAvFlags but no MIC field")
        self._check_channel_bindings(sent.get(_MSV_AV_CHANNEL_BINDINGS))

    def _check_channel_bindings(self, sent: bytes | None) -> None:
        mode = self.policy.channel_bindings
        if mode == ChannelBindingPolicy.OFF:
            return
        unspecified = sent is None or sent == b"\x00" * 16
        if unspecified:
            if mode == ChannelBindingPolicy.REQUIRED:
                raise self._fail(NtStatus.STATUS_BAD_BINDINGS, "channel bindings required but not sent")
            return
        if self.policy.expected_channel_bindings is None and mode is ChannelBindingPolicy.IF_PRESENT:
            # Samba 4.17 (smbd): a server without channel bindings of its own, as on SMB, checks nothing.
            return
        expected = crypto.channel_bindings_hash(self.policy.expected_channel_bindings)
        # MS-NLMP 3.2.5.1.2: a sent MsvAvChannelBindings must match the server's own.
        if not hmac.compare_digest(expected, sent or b""):
            raise self._fail(NtStatus.STATUS_BAD_BINDINGS, "channel bindings mismatch")

    def _on_result(self, result: ValidationResult) -> None:
        request, auth = self._request, self._auth
        assert request is not None and auth is not None
        if not result.ok:
            status = result.status
            if status == NtStatus.STATUS_NO_SUCH_USER and self.policy.allow_guest:
                self._check_key_exch(auth)
                if self.mic_present and not any(auth.mic or b""):
                    missing = "MIC promised by MsvAvFlags but missing"
                    raise self._fail(NtStatus.STATUS_INVALID_PARAMETER, missing)
                guest = Account("Guest", self.target.nb_domain, guest=True)
                self.is_guest = True
                self._finish(guest, b"\x00" * 16, anonymous=False, verify_mic=False)
                return
            phrase = _AUTHORITY_PHRASES.get(status, status.name)
            reason = f"{phrase}: {result.reason}" if result.reason else phrase
            wire = status
            if status in (NtStatus.STATUS_NO_SUCH_USER, NtStatus.STATUS_WRONG_PASSWORD):
                # Samba squashes unknown user and bad password into LOGON_FAILURE on the wire.
                wire = NtStatus.STATUS_LOGON_FAILURE
            raise self._fail(wire, reason, cause=status)
        if result.account is None or result.session_base_key is None or len(result.session_base_key) != 16:
            raise self._fail(NtStatus.STATUS_INTERNAL_ERROR, "authority succeeded without account or key")
        self._check_key_exch(auth)
        sbk = result.session_base_key
        flags = self.negotiated_flags
        if request.kind == ResponseKind.NTLMV1_ESS:
            kx = crypto.hmac_md5(sbk, self._server_challenge + request.lm_response[:8])
        else:
            kx = sbk
        self._finish(result.account, kx, anonymous=False, flags=flags)

    def _check_key_exch(self, auth: AuthenticateMessage) -> None:
        """Samba ntlmssp_server_postauth (after the password check, so a wrong password reads LOGON_FAILURE):
        "Client-supplied KEY_EXCH session key was of invalid length" -> INVALID_PARAMETER."""
        key_exch = auth.flags & self._offered & NTLMSSP_NEGOTIATE_KEY_EXCH
        if key_exch and len(auth.encrypted_random_session_key) != 16:
            raise self._fail(NtStatus.STATUS_INVALID_PARAMETER, "KEY_EXCH without a 16-byte session key")

    def _finish(
        self,
        account: Account,
        key_exchange_key: bytes,
        *,
        anonymous: bool,
        verify_mic: bool = True,
        flags: int | None = None,
    ) -> None:
        auth = self._auth
        assert auth is not None
        flags = self.negotiated_flags if flags is None else flags
        if flags & NTLMSSP_NEGOTIATE_KEY_EXCH and not anonymous and verify_mic:
            # MS-NLMP 3.2.5.1.2: ExportedSessionKey = RC4K(KeyExchangeKey, EncryptedRandomSessionKey).
            exported = crypto.rc4k(key_exchange_key, auth.encrypted_random_session_key)
        else:
            exported = key_exchange_key
        if self.mic_present and verify_mic:
            expected = crypto.mic(exported, self._negotiate, self._challenge, zero_mic(self._auth_bytes))
            if not hmac.compare_digest(expected, auth.mic or b""):
                # Samba ntlmssp_server_postauth: a MIC that does not verify -> INVALID_PARAMETER.
                missing = not any(auth.mic or b"")
                reason = "MIC promised by MsvAvFlags but missing" if missing else "MIC mismatch"
                raise self._fail(NtStatus.STATUS_INVALID_PARAMETER, reason)
        self.account = account
        self.is_anonymous = anonymous
        self.session_key = exported
        self._session = SessionSecurity(flags, exported, client=False)
        self._state = server_next(self._state, ServerEvent.VALIDATION_RESULT)
