"""SPNEGO contexts (RFC 4178, MS-SPNG) around one mechanism context, sans-IO.

The mechanism (NTLM) is passed in: anything with the `MechContext` shape works, so the negotiation,
the mechListMIC exchange and the state machine are independent of the NTLM engine.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Protocol

from smb2auth.errors import AuthenticationError, MalformedMessage, ProtocolStateError
from smb2auth.ntlm.authority import AnyAuthority, ValidationResult, validate_sync
from smb2auth.ntlm.events import Complete, Failed, HandshakeError, HandshakeEvent, Send, ValidationNeeded
from smb2auth.spnego._state import ClientState, Event, ServerState, advance_client, advance_server
from smb2auth.spnego.asn1 import IGNORE_PRINCIPAL, NTLMSSP, mech_name
from smb2auth.spnego.received import Reassembly, read
from smb2auth.spnego.tokens import (
    NegHints,
    NegState,
    NegTokenInit,
    NegTokenResp,
    NotSpnego,
    decode,
    mech_types_der,
)
from smb2auth.status import NtStatus

__all__ = [
    "AcceptorMech",
    "MechContext",
    "SpnegoClient",
    "SpnegoServer",
    "server_initial_token",
]

_INVALID = NtStatus.STATUS_INVALID_PARAMETER
_DENIED = NtStatus.STATUS_ACCESS_DENIED

# MS-NLMP 2.2.2.5 flag G: NTLMSSP_NEGOTIATE_SIGN.
_NTLMSSP_NEGOTIATE_SIGN = 0x00000010


class _MechSecurity(Protocol):
    """The parts of a mechanism context SPNEGO needs once it is complete."""

    @property
    def complete(self) -> bool: ...

    @property
    def session_key(self) -> bytes | None: ...

    @property
    def negotiated_flags(self) -> int: ...

    def sign(self, data: bytes) -> bytes: ...

    def verify(self, data: bytes, signature: bytes) -> None: ...

    def reset_crypto_state(self, outgoing: bool | None = None) -> None: ...


class MechContext(_MechSecurity, Protocol):
    """An initiator mechanism (NtlmClient has this shape): `step(None)` gives its first token."""

    def step(self, token: bytes | None) -> bytes | None: ...


class AcceptorMech(_MechSecurity, Protocol):
    """An acceptor mechanism (NtlmServer has this shape): `receive` returns an event, and a
    `ValidationNeeded` is answered through `validation_done`.

    `mic_present`: the client protected the mechanism exchange itself (NTLM: MsvAvFlags 0x2 and a MIC).
    """

    mic_present: bool
    authority: AnyAuthority

    def receive(self, token: bytes) -> HandshakeEvent: ...

    def validation_done(self, ticket: int, result: ValidationResult) -> Complete | Failed: ...


@functools.lru_cache(maxsize=16)
def server_initial_token(mech_types: tuple[str, ...] = (NTLMSSP,)) -> bytes:
    """The NegTokenInit2 an SMB2 server puts in its NEGOTIATE response (constant per configuration).

    MS-SPNG 3.2.5.2: mechTypes lists what the server offers, negHints carries the hintName
    "not_defined_in_RFC4178@please_ignore" and no hintAddress."""
    return NegTokenInit(mech_types, neg_hints=NegHints(hint_name=IGNORE_PRINCIPAL)).encode()


def _has_integrity(mech: _MechSecurity) -> bool:
    """Samba gensec_ntlmssp_have_feature(SIGN): a session key and NTLMSSP_NEGOTIATE_SIGN."""
    key = mech.session_key or b""
    return bool(key) and any(key) and bool(int(mech.negotiated_flags) & _NTLMSSP_NEGOTIATE_SIGN)


def _verify_mic(mech: _MechSecurity, mech_types: bytes, mic: bytes) -> None:
    """RFC 4178 5: check the peer's mechListMIC over the DER of the initiator's mechTypes.

    Samba ntlmssp_check_packet answers NT_STATUS_ACCESS_DENIED for a bad or short signature, and
    gensec spnego passes that status on, so we do too."""
    try:
        mech.verify(mech_types, mic)
    except (AuthenticationError, MalformedMessage, ValueError) as exc:
        raise AuthenticationError(_DENIED, f"mechListMIC does not verify: {exc}") from None
    # MS-SPNG 3.3.5.1: the RC4 state after the mechListMIC is that of before it.
    mech.reset_crypto_state(outgoing=False)


def _sign_mic(mech: _MechSecurity, mech_types: bytes) -> bytes:
    mic = mech.sign(mech_types)
    # MS-SPNG 3.3.5.1: the first application message uses the same RC4 state as the mechListMIC.
    mech.reset_crypto_state(outgoing=True)
    return mic


@dataclass
class _Step:
    """What a server step decided before the mechanism runs; kept while the mechanism waits for its
    authority."""

    feed: bool
    mech_token: bytes = b""
    client_mic: bytes | None = None
    raw: bool = False
    fragment: bool = False


class SpnegoServer:
    """The acceptor. `step(token)` returns the token to send back, or None when there is none.

    `require_mic` (default True): when the mechanism has integrity and the client protected the
    mechanism exchange (NTLM's MIC, as Samba and Windows clients always send), it must also send a
    mechListMIC, as Samba requires; after a downgrade it is required regardless (RFC 4178 5).
    `allow_raw_ntlm`: accept a bare NTLM message instead of SPNEGO, as
    Samba's gensec fallback and Windows do (HTTP clients send `Negotiate <NTLM>`).
    """

    def __init__(
        self,
        mech: AcceptorMech,
        *,
        mech_oid: str = NTLMSSP,
        advertise: tuple[str, ...] = (NTLMSSP,),
        require_mic: bool = True,
        allow_raw_ntlm: bool = True,
    ) -> None:
        self._mech = mech
        self._mech_oid = mech_oid
        self._advertise = advertise
        self._require_mic = require_mic
        self._allow_raw = allow_raw_ntlm and mech_oid == NTLMSSP
        self._state = ServerState.START
        self._mech_types = b""
        self._downgraded = False
        self._replied = False
        self._pending: _Step | None = None
        self._reassembly = Reassembly()
        self.mic_exchanged = False
        self.raw = False

    @property
    def state(self) -> ServerState:
        return self._state

    @property
    def complete(self) -> bool:
        return self._state is ServerState.COMPLETE

    @property
    def mech(self) -> AcceptorMech:
        return self._mech

    @property
    def authority(self) -> AnyAuthority:
        """The mechanism's authority, which the transport consults on a ValidationNeeded."""
        return self._mech.authority

    @property
    def session_key(self) -> bytes:
        if self._state is not ServerState.COMPLETE:
            raise ProtocolStateError(f"SPNEGO server in state {self._state.value}: no session key yet")
        return self._mech.session_key or b""

    def initial_token(self) -> bytes:
        """MS-SPNG 3.2.5.2: the server-initiated NegTokenInit2 (same bytes for every session)."""
        return server_initial_token(self._advertise)

    def receive(self, token: bytes | None) -> HandshakeEvent:
        """One client token: Send(NegTokenResp) to go on, ValidationNeeded while the mechanism waits for its
        authority, Complete(accept-completed) or Failed (the context is then FAILED)."""
        try:
            pending = self._begin(token)
            if not pending.feed:
                return self._answer(pending, None)
            event = self._mech.receive(pending.mech_token)
        except (AuthenticationError, MalformedMessage, ProtocolStateError) as exc:
            return self._failed(exc)
        return self._after_mech(pending, event)

    def validation_done(self, ticket: int, result: ValidationResult) -> HandshakeEvent:
        """The authority's answer for the mechanism's pending ValidationNeeded."""
        pending = self._pending
        if pending is None or self._state is ServerState.FAILED:
            state = self._state.value
            return self._failed(ProtocolStateError(f"SPNEGO server in state {state}: no validation pending"))
        self._pending = None
        return self._after_mech(pending, self._mech.validation_done(ticket, result))

    def step(self, token: bytes | None) -> bytes | None:
        """`receive` for a synchronous authority, called inline: the token to send back (or None); a failure
        raises its error."""
        event = self.receive(token)
        if isinstance(event, ValidationNeeded):
            event = self.validation_done(event.ticket, validate_sync(self._mech.authority, event.request))
        if isinstance(event, Failed):
            raise event.error
        assert not isinstance(event, ValidationNeeded)
        return event.token

    def _after_mech(self, pending: _Step, event: HandshakeEvent) -> HandshakeEvent:
        if isinstance(event, ValidationNeeded):
            self._pending = pending
            return event
        if isinstance(event, Failed):
            return self._failed(event.error)
        try:
            return self._answer(pending, event.token)
        except (AuthenticationError, MalformedMessage, ProtocolStateError) as exc:
            return self._failed(exc)

    def _answer(self, pending: _Step, out: bytes | None) -> Send | Complete:
        token = self._finish(pending, out)
        if self._state is ServerState.COMPLETE:
            return Complete(token)
        assert token is not None
        return Send(token)

    def _failed(self, exc: HandshakeError) -> Failed:
        self._pending = None
        self._state = advance_server(self._state, Event.FAIL)
        return Failed(exc)

    def _begin(self, token: bytes | None) -> _Step:
        if self._state in (ServerState.COMPLETE, ServerState.FAILED) or self._pending is not None:
            raise ProtocolStateError(f"SPNEGO server in state {self._state.value}: no more tokens expected")
        if not token and not self._reassembly.pending:
            raise MalformedMessage(f"SPNEGO server in state {self._state.value}: empty security token")
        whole = self._reassembly.add(token or b"")
        if whole is None:
            return _Step(feed=False, fragment=True)
        try:
            received = read(whole)
        except NotSpnego as exc:
            if not (self._allow_raw and exc.raw_mech == NTLMSSP):
                raise
            self._state = advance_server(self._state, Event.RECV_RAW)
            self.raw = True
            return _Step(feed=True, mech_token=whole, raw=True)
        parsed = received.token
        if isinstance(parsed, NegTokenInit):
            self._state = advance_server(self._state, Event.RECV_INIT)
            return self._begin_init(parsed, received.mech_list)
        self._state = advance_server(self._state, Event.RECV_RESP)
        return self._begin_resp(parsed)

    def _begin_init(self, init: NegTokenInit, mech_list: bytes) -> _Step:
        if self._mech_oid not in init.mech_types:
            offered = ", ".join(mech_name(m) for m in init.mech_types)
            # Samba gensec_spnego_parse_negTokenInit: no suitable mechType -> NT_STATUS_INVALID_PARAMETER.
            raise AuthenticationError(_INVALID, f"no supported mechanism in [{offered}]")
        self._mech_types = mech_list
        if init.mech_types[0] != self._mech_oid:
            # RFC 4178 5: not the initiator's preferred mechanism -> ignore its optimistic token,
            # answer request-mic, and the mechListMIC exchange becomes mandatory.
            self._downgraded = True
            return _Step(feed=False)
        if not init.mech_token:
            return _Step(feed=False)
        return _Step(feed=True, mech_token=init.mech_token)

    def _begin_resp(self, resp: NegTokenResp) -> _Step:
        # RFC 4178 4.2.2: negState is the acceptor's; Samba ignores the initiator's, whatever its value.
        if self._state is ServerState.MIC_CHECK:
            if resp.response_token:
                # Samba gensec_spnego_server_negTokenTarg_start: only the mechListMIC is owed now.
                raise MalformedMessage("a mechanism token after the mechanism completed")
            return _Step(feed=False, client_mic=resp.mech_list_mic or b"")
        if not resp.response_token:
            raise MalformedMessage("NegTokenResp without the mechanism's responseToken")
        return _Step(feed=True, mech_token=resp.response_token, client_mic=resp.mech_list_mic)

    def _finish(self, pending: _Step, out: bytes | None) -> bytes | None:
        mech = self._mech
        if pending.raw:
            self._state = advance_server(self._state, Event.DONE if mech.complete else Event.CONTINUE)
            return out
        if pending.fragment:
            return b""  # Samba gensec_spnego_update_in: MORE_PROCESSING_REQUIRED with nothing in it
        if self._state is ServerState.MIC_CHECK:
            _verify_mic(mech, self._mech_types, pending.client_mic or b"")
            self.mic_exchanged = True
            self._state = advance_server(self._state, Event.DONE)
            return NegTokenResp(NegState.ACCEPT_COMPLETED).encode()
        first = not self._replied
        self._replied = True
        supported = self._mech_oid if first else None
        if not mech.complete:
            if pending.client_mic is not None:
                # RFC 4178 5: the mechListMIC follows the completion of the mechanism context.
                raise AuthenticationError(_INVALID, "mechListMIC before completion")
            self._state = advance_server(self._state, Event.CONTINUE)
            state = NegState.REQUEST_MIC if first and self._downgraded else NegState.ACCEPT_INCOMPLETE
            return NegTokenResp(state, supported, out, None).encode()
        mic_out = None
        if _has_integrity(mech):
            client_mic = pending.client_mic
            # Samba gensec_spnego "new_spnego": a mechListMIC is owed once the client sent the NTLM MIC
            # (MS-NLMP 3.1.5.1.2), or when the mechanism is not its first choice (RFC 4178 5).
            required = self._downgraded or (self._require_mic and mech.mic_present)
            if not client_mic:
                if required:
                    # RFC 4178 5 / Samba gensec_spnego_server_negTokenTarg_finish: without the client's
                    # mechListMIC, send ours with accept-incomplete; the client's comes in the next token.
                    self._state = advance_server(self._state, Event.MIC_OWED)
                    state = NegState.ACCEPT_INCOMPLETE
                    return NegTokenResp(state, supported, out, _sign_mic(mech, self._mech_types)).encode()
            else:
                _verify_mic(mech, self._mech_types, client_mic)
            if client_mic or required:
                mic_out = _sign_mic(mech, self._mech_types)
                self.mic_exchanged = True
        self._state = advance_server(self._state, Event.DONE)
        return NegTokenResp(NegState.ACCEPT_COMPLETED, supported, out, mic_out).encode()


class SpnegoClient:
    """The initiator. `step(None)` or `step(server_hint)` gives the NegTokenInit; then feed each
    server token until `complete`.

    `mech_types` is the list offered, in preference order; the mechanism context implements
    `mech_oid`, which must be in it. Listing another mechanism first sends no optimistic token and
    lets the server pick ours (a negotiated downgrade, protected by the mechListMIC). `optimistic` is sent as
    that first mechanism's token and the whole list offered whatever the server hints, as Windows clients
    send their Kerberos AP-REQ (a conformance test's stand-in).
    """

    def __init__(
        self,
        mech: MechContext,
        *,
        mech_types: tuple[str, ...] = (NTLMSSP,),
        mech_oid: str = NTLMSSP,
        require_mic: bool = True,
        optimistic: bytes | None = None,
    ) -> None:
        if mech_oid not in mech_types:
            raise ValueError(f"{mech_name(mech_oid)} is not in mech_types")
        self._mech = mech
        self._offer = mech_types
        self._mech_oid = mech_oid
        self._require_mic = require_mic
        self._optimistic = optimistic
        self._guest = False
        self._state = ClientState.START
        self._mech_types = b""
        self._sent_types: tuple[str, ...] = ()
        self._started = False
        self._mic_required = False
        self._mic_sent = False
        self._mic_received = False

    @property
    def state(self) -> ClientState:
        return self._state

    @property
    def complete(self) -> bool:
        return self._state is ClientState.COMPLETE

    @property
    def mech(self) -> MechContext:
        return self._mech

    @property
    def mic_exchanged(self) -> bool:
        return self._mic_sent and self._mic_received

    @property
    def session_key(self) -> bytes:
        if self._state is not ClientState.COMPLETE:
            raise ProtocolStateError(f"SPNEGO client in state {self._state.value}: no session key yet")
        return self._mech.session_key or b""

    def accept_guest(self) -> None:
        """The transport says the server made this a guest or null session (MS-SMB2 2.2.6:
        SMB2_SESSION_FLAG_IS_GUEST / IS_NULL): its key is not the client's, so its mechListMIC is absent."""
        self._guest = True

    def step(self, token: bytes | None) -> bytes | None:
        try:
            if self._state is ClientState.START:
                return self._initial(token)
            return self._continue(token)
        except BaseException:
            self._state = advance_client(self._state, Event.FAIL)
            raise

    def _initial(self, token: bytes | None) -> bytes:
        offer = self._offer
        if token and self._optimistic is None:
            hint = decode(token)
            if not isinstance(hint, NegTokenInit):
                raise ProtocolStateError(f"SPNEGO client in state {self._state.value}: got a NegTokenResp")
            if hint.mech_types:
                # MS-SPNG 3.2.5.2: offer only what the server lists, keeping our order.
                offer = tuple(m for m in offer if m in hint.mech_types)
                if self._mech_oid not in offer:
                    offered = ", ".join(mech_name(m) for m in hint.mech_types)
                    raise AuthenticationError(
                        _INVALID, f"the server offers none of our mechanisms: [{offered}]"
                    )
        self._sent_types = offer
        self._mech_types = mech_types_der(offer)
        mech_token = self._optimistic
        if offer[0] == self._mech_oid:
            # RFC 4178 3.1: the optimistic token of the preferred mechanism.
            mech_token = self._mech.step(None)
            self._started = True
        self._state = advance_client(self._state, Event.SEND_INIT)
        return NegTokenInit(offer, mech_token=mech_token).encode()

    def _continue(self, token: bytes | None) -> bytes | None:
        state_name = self._state.value
        if not token:
            raise ProtocolStateError(f"SPNEGO client in state {state_name}: a server token is required")
        resp = decode(token)
        if not isinstance(resp, NegTokenResp):
            raise ProtocolStateError(f"SPNEGO client in state {state_name}: unexpected NegTokenInit")
        first = self._state is ClientState.INIT_SENT
        self._state = advance_client(self._state, Event.RECV_RESP)
        if resp.neg_state is NegState.REJECT:
            raise AuthenticationError(NtStatus.STATUS_LOGON_FAILURE, "the server rejected the negotiation")
        if first:
            self._first_reply(resp)
        mech = self._mech
        out = None
        if not mech.complete:
            if resp.response_token is None and self._started:
                if resp.neg_state is NegState.ACCEPT_COMPLETED:
                    raise AuthenticationError(_INVALID, "the server completed before the mechanism did")
                raise MalformedMessage("NegTokenResp without the mechanism's responseToken")
            out = mech.step(resp.response_token)
            self._started = True
        elif resp.response_token is not None:
            raise AuthenticationError(_INVALID, "a mechanism token after completion")
        mic_out = None
        if resp.mech_list_mic is not None:
            if not mech.complete:
                raise AuthenticationError(_INVALID, "mechListMIC before completion")
            if _has_integrity(mech):
                _verify_mic(mech, self._mech_types, resp.mech_list_mic)
                self._mic_received = True
        wants_mic = self._require_mic or self._mic_required or self._mic_received
        if mech.complete and not self._mic_sent and wants_mic and _has_integrity(mech):
            mic_out = _sign_mic(mech, self._mech_types)
            self._mic_sent = True
        if resp.neg_state is NegState.ACCEPT_COMPLETED:
            if not mech.complete or out is not None or mic_out is not None:
                raise AuthenticationError(_INVALID, "the server completed before the mechanism did")
            if self._mic_sent and not self._mic_received and not self._guest:
                # Samba gensec spnego client: a required mechListMIC that is absent fails the check.
                raise AuthenticationError(_DENIED, "the server sent no mechListMIC")
            self._state = advance_client(self._state, Event.DONE)
            return None
        if out is None and mic_out is None:
            raise AuthenticationError(_INVALID, "the server expects more than we have")
        self._state = advance_client(self._state, Event.CONTINUE)
        return NegTokenResp(None, None, out, mic_out).encode()

    def _first_reply(self, resp: NegTokenResp) -> None:
        supported = resp.supported_mech if resp.supported_mech is not None else self._sent_types[0]
        if supported != self._mech_oid:
            name = mech_name(supported)
            raise AuthenticationError(NtStatus.STATUS_NOT_SUPPORTED, f"the server selected {name}, not ours")
        # RFC 4178 5: a mechanism other than our first choice, or request-mic, makes the MIC mandatory.
        if supported != self._sent_types[0] or resp.neg_state is NegState.REQUEST_MIC:
            self._mic_required = True
