"""The NTLM initiator (MS-NLMP 3.1): NEGOTIATE out, CHALLENGE in, AUTHENTICATE out. Sans-IO."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import Final

from smb2auth.errors import AuthenticationError, MalformedMessage, ProtocolStateError
from smb2auth.ntlm import crypto
from smb2auth.ntlm._session import SecurityContext, SessionSecurity
from smb2auth.ntlm._state import ClientEvent, ClientState, client_next
from smb2auth.ntlm.authority import ResponseKind
from smb2auth.ntlm.messages import (
    NTLMSSP_NEGOTIATE_56,
    NTLMSSP_NEGOTIATE_128,
    NTLMSSP_NEGOTIATE_ALWAYS_SIGN,
    NTLMSSP_NEGOTIATE_ANONYMOUS,
    NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY,
    NTLMSSP_NEGOTIATE_KEY_EXCH,
    NTLMSSP_NEGOTIATE_NTLM,
    NTLMSSP_NEGOTIATE_OEM,
    NTLMSSP_NEGOTIATE_SEAL,
    NTLMSSP_NEGOTIATE_SIGN,
    NTLMSSP_NEGOTIATE_UNICODE,
    NTLMSSP_NEGOTIATE_VERSION,
    NTLMSSP_REQUEST_TARGET,
    AuthenticateMessage,
    AvFlags,
    AvId,
    AvPair,
    ChallengeMessage,
    NegotiateFlags,
    NegotiateMessage,
    Version,
    encode_unicode,
    pack_u32,
    unix_to_filetime,
    unpack_filetime,
    unpack_u32,
)
from smb2auth.status import NtStatus

_VERSION = Version()
# MS-NLMP 3.1.5.1.2: the pairs the client sets itself in the blob, whatever the server sent.
_CLIENT_SETS = frozenset((AvId.MsvAvChannelBindings, AvId.MsvAvTargetName))
# MS-NLMP 3.1.5.1.2: what NTLMv2 with integrity needs in the CHALLENGE's TargetInfo.
_NETBIOS_NAMES = frozenset((AvId.MsvAvNbComputerName, AvId.MsvAvNbDomainName))
# The AvIds and flag read per pair, bound once: on CPython 3.11 each `AvId.X` in a function goes through
# EnumType's __getattr__ hook, some 600 instructions.
_MSV_AV_TIMESTAMP: Final = AvId.MsvAvTimestamp
_MSV_AV_FLAGS: Final = AvId.MsvAvFlags
_MSV_AV_CHANNEL_BINDINGS: Final = AvId.MsvAvChannelBindings
_MSV_AV_TARGET_NAME: Final = AvId.MsvAvTargetName
_MIC_PRESENT: Final = int(AvFlags.MIC_PRESENT)


@functools.lru_cache(maxsize=64)
def _flags(kind: ResponseKind, oem: bool, key_exchange: bool, negotiate_128: bool) -> tuple[int, int]:
    """The flags a client asks for, and those it refuses to see dropped (MS-NLMP 3.1.5.1.2 lets the client
    require a minimum); the same for every context of one configuration."""
    anonymous = kind is ResponseKind.ANONYMOUS
    flags = (
        NTLMSSP_REQUEST_TARGET
        | NTLMSSP_NEGOTIATE_NTLM
        | NTLMSSP_NEGOTIATE_ALWAYS_SIGN
        | NTLMSSP_NEGOTIATE_56
        | NTLMSSP_NEGOTIATE_VERSION
    )
    if negotiate_128:
        flags |= NTLMSSP_NEGOTIATE_128
    flags |= NTLMSSP_NEGOTIATE_OEM if oem else NTLMSSP_NEGOTIATE_UNICODE
    if not anonymous:
        flags |= NTLMSSP_NEGOTIATE_SIGN | NTLMSSP_NEGOTIATE_SEAL
        if key_exchange:
            flags |= NTLMSSP_NEGOTIATE_KEY_EXCH
    if kind in (ResponseKind.NTLMV2, ResponseKind.NTLMV1_ESS, ResponseKind.ANONYMOUS):
        flags |= NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY
    required = NTLMSSP_NEGOTIATE_128 if negotiate_128 else 0
    if kind in (ResponseKind.NTLMV2, ResponseKind.NTLMV1_ESS):
        required |= NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY
    return flags, required


@functools.lru_cache(maxsize=64)
def _negotiate_message(flags: int) -> bytes:
    """The NEGOTIATE (MS-NLMP 2.2.1.1) of a flag set: no domain or workstation, our VERSION."""
    return NegotiateMessage(flags, version=_VERSION).pack()


class NtlmClient(SecurityContext):
    """One NTLM handshake as the client. `step(None)` gives NEGOTIATE, `step(challenge)` AUTHENTICATE.

    `negotiate_128=False` asks for 56-bit keys only and accepts a CHALLENGE without NTLMSSP_NEGOTIATE_128 (the
    downgrade a conformance test offers a server)."""

    def __init__(
        self,
        username: str = "",
        password: str | None = None,
        *,
        nt_hash: bytes | None = None,
        domain: str = "",
        workstation: str = "",
        target_name: str | None = None,
        channel_bindings: bytes | None = None,
        version: ResponseKind = ResponseKind.NTLMV2,
        send_mic: bool = True,
        key_exchange: bool = True,
        oem: bool = False,
        anonymous: bool = False,
        negotiate_128: bool = True,
        rng: Callable[[int], bytes] = os.urandom,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if anonymous or version == ResponseKind.ANONYMOUS:
            anonymous = True
        elif nt_hash is None and password is None:
            raise ValueError("a password or an NT hash is needed (or anonymous=True)")
        if version == ResponseKind.LM and password is None and not anonymous:
            raise ValueError("LM responses need the password (the LM hash derives from it)")
        self.username = username
        self.domain = domain
        self.workstation = workstation
        self.target_name = target_name
        self.channel_bindings = channel_bindings
        self.response_kind = ResponseKind.ANONYMOUS if anonymous else version
        self.send_mic = send_mic
        self.oem = oem
        self._password = password
        self._nt_hash = nt_hash if nt_hash is not None else crypto.ntowfv1(password or "")
        self._rng = rng
        self._clock = clock
        self._state = ClientState.INITIAL
        self._negotiate = b""
        self._session: SessionSecurity | None = None
        self.session_key: bytes | None = None
        self.negotiated_flags = 0
        self.mic_present = False
        self._requested, self._required = _flags(self.response_kind, oem, key_exchange, negotiate_128)

    @property
    def complete(self) -> bool:
        return self._state == ClientState.COMPLETE

    @property
    def state(self) -> ClientState:
        return self._state

    def step(self, token: bytes | None) -> bytes | None:
        if token is None:
            self._state = client_next(self._state, ClientEvent.SEND_NEGOTIATE)
            self._negotiate = _negotiate_message(self._requested)
            return self._negotiate
        if self._state != ClientState.NEGOTIATE_SENT:
            client_next(self._state, ClientEvent.RECEIVE_CHALLENGE)
        try:
            out = self._authenticate(token)
        except (MalformedMessage, AuthenticationError, ProtocolStateError):
            self._state = client_next(self._state, ClientEvent.FAIL)
            raise
        self._state = client_next(self._state, ClientEvent.RECEIVE_CHALLENGE)
        return out

    def _authenticate(self, token: bytes) -> bytes:
        challenge = ChallengeMessage.unpack(token)
        sflags = challenge.flags
        missing = self._required & ~sflags
        if missing:
            # What we refuse from a peer we never send: no silent drop of a flag we require.
            raise AuthenticationError(
                NtStatus.STATUS_DOWNGRADE_DETECTED,
                f"server dropped required flags {NegotiateFlags(missing)!r}",
            )
        flags = self._requested & sflags
        # MS-NLMP 2.2.2.5: the server picks the character set.
        if sflags & NTLMSSP_NEGOTIATE_UNICODE and not self.oem:
            flags = (flags & ~NTLMSSP_NEGOTIATE_OEM) | NTLMSSP_NEGOTIATE_UNICODE
        else:
            flags = (flags & ~NTLMSSP_NEGOTIATE_UNICODE) | NTLMSSP_NEGOTIATE_OEM
        sc = challenge.server_challenge
        kind = self.response_kind
        lm_hash = (
            crypto.lmowfv1(self._password or "") if kind in (ResponseKind.LM, ResponseKind.NTLMV1) else b""
        )
        mic_wanted = False
        if kind == ResponseKind.ANONYMOUS:
            flags |= NTLMSSP_NEGOTIATE_ANONYMOUS
            # MS-NLMP 3.1.5.1.2: anonymous sends an empty NT response and Z(1) as LM response.
            nt, lm, user, domain = b"", b"\x00", "", ""
            kx = b"\x00" * 16
        elif kind == ResponseKind.NTLMV2:
            names = {p.id for p in challenge.target_info or ()}
            if not names >= _NETBIOS_NAMES and self._requested & (
                NTLMSSP_NEGOTIATE_SIGN | NTLMSSP_NEGOTIATE_SEAL
            ):
                # MS-NLMP 3.1.5.1.2: NTLMv2 with integrity or confidentiality needs both NetBIOS names in
                # the CHALLENGE's TargetInfo, else STATUS_LOGON_FAILURE.
                raise AuthenticationError(
                    NtStatus.STATUS_LOGON_FAILURE,
                    "CHALLENGE without the server's NetBIOS names in TargetInfo",
                )
            nt, lm, kx, mic_wanted = self._ntlmv2(challenge)
            user, domain = self.username, self.domain
        else:
            if kind == ResponseKind.NTLMV1_ESS:
                flags |= NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY
            else:
                flags &= ~NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY
            cc = self._rng(8)
            nt, lm, sbk = crypto.compute_response_v1(flags, self._nt_hash, lm_hash, sc, cc)
            if kind == ResponseKind.LM:
                nt = b""
                sbk = lm_hash[:8] + b"\x00" * 8
            kx = crypto.kxkey(flags, sbk, lm_hash, lm, sc, ntlmv2=False)
            user, domain = self.username, self.domain
        encrypted = b""
        if flags & NTLMSSP_NEGOTIATE_KEY_EXCH and kind != ResponseKind.ANONYMOUS:
            exported = self._rng(16)
            encrypted = crypto.rc4k(kx, exported)
        else:
            flags &= ~NTLMSSP_NEGOTIATE_KEY_EXCH
            exported = kx
        message = AuthenticateMessage(
            flags,
            lm,
            nt,
            domain,
            user,
            self.workstation,
            encrypted,
            _VERSION,
            b"\x00" * 16 if mic_wanted else None,
        )
        out = message.pack()
        if mic_wanted:
            mic = crypto.mic(exported, self._negotiate, token, out)
            out = out[:72] + mic + out[88:]
        self.mic_present = mic_wanted
        self.negotiated_flags = flags
        self.session_key = exported
        self._session = SessionSecurity(flags, exported, client=True)
        return out

    def _ntlmv2(self, challenge: ChallengeMessage) -> tuple[bytes, bytes, bytes, bool]:
        # One pass over the server's pairs: keep them but the ones the client sets itself, and find the
        # first MsvAvTimestamp and MsvAvFlags.
        pairs: list[AvPair] = []
        stamp = None
        flags_at = -1
        for pair in challenge.target_info or ():
            av_id = pair.id
            if av_id in _CLIENT_SETS:
                continue
            if av_id == _MSV_AV_TIMESTAMP and stamp is None:
                stamp = pair.value
            elif av_id == _MSV_AV_FLAGS and flags_at < 0:
                flags_at = len(pairs)
            pairs.append(pair)
        mic_wanted = stamp is not None and self.send_mic
        # MS-NLMP 3.1.5.1.2: use the server's timestamp when it sent one.
        timestamp = unpack_filetime(stamp) if stamp is not None else unix_to_filetime(self._clock())
        if mic_wanted:
            # MS-NLMP 3.1.5.1.2: MsvAvFlags 0x2 says the MIC is there.
            if flags_at >= 0:
                value = unpack_u32(pairs[flags_at].value, "MsvAvFlags") | _MIC_PRESENT
                pairs[flags_at] = AvPair(_MSV_AV_FLAGS, pack_u32(value))
            else:
                pairs.append(AvPair(_MSV_AV_FLAGS, pack_u32(_MIC_PRESENT)))
        bindings = crypto.channel_bindings_hash(self.channel_bindings)
        pairs.append(AvPair(_MSV_AV_CHANNEL_BINDINGS, bindings))
        if self.target_name is not None:
            pairs.append(AvPair(_MSV_AV_TARGET_NAME, encode_unicode(self.target_name)))
        cc = self._rng(8)
        temp = crypto.ntlmv2_temp(timestamp, cc, AvPair.pack_all(pairs))
        key = crypto.ntowfv2(self._nt_hash, self.username, self.domain)
        # MS-NLMP 3.1.5.1.2: with a server timestamp the LMv2 response is not sent (Z(24)).
        sc = challenge.server_challenge
        nt, lm, sbk = crypto.compute_response_v2(key, sc, cc, temp, lmv2=stamp is None)
        return nt, lm, sbk, mic_wanted
