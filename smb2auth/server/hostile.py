"""The hostile harness (`smb2auth serve --hostile SCENARIO`): each connection misbehaves once, on purpose, and
the harness records whether the client refused what it was sent.

A connection of a server whose ServerConfig names a `hostile` scenario gets a `Hostile`; the connection core
calls its hooks at the few places a scenario changes (the NEGOTIATE's dialect, the CHALLENGE, the final
SESSION_SETUP response, the FSCTL_VALIDATE_NEGOTIATE_INFO answer) and hands it every request that follows.
Without a scenario none of this is consulted. Like the core it reads no clock of its own: `now` comes from
the ServerContext's monotonic clock, through the connection.

The verdict is one login event: the attempt's own, held back until the client answered the hostile step,
with `hostile` (the scenario), `refused` (True: the client closed the connection or sent nothing more within
`ServerConfig.hostile_wait` seconds; False: it carried on; None: the scenario did not apply, `observed` says
why) and `observed` (what the client did).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from smb2auth.errors import MalformedMessage
from smb2auth.events import LoginEvent
from smb2auth.ntlm.messages import AvId, ChallengeMessage, MessageType, NegotiateFlags, message_type
from smb2auth.server._reply import Reply
from smb2auth.smb2.crypto import derive_session_keys
from smb2auth.smb2.header import Command, CompoundPart
from smb2auth.smb2.negotiate import Dialect, dialect_name
from smb2auth.spnego import tokens

__all__ = ["SCENARIOS", "SCENARIO_NAMES", "Hostile", "Scenario", "WrongSigner"]


@dataclass(frozen=True)
class Scenario:
    """One way to misbehave: its name, the spec section the client is held to, and what it must do."""

    name: str
    section: str
    expectation: str


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("setup-unsigned", "MS-SMB2 3.2.5.3.1",
             "final SESSION_SETUP response unsigned: refused on 3.1.1 (allowed, but unprotected, before)"),
    Scenario("setup-wrong-key", "MS-SMB2 3.2.5.3.1",
             "final SESSION_SETUP response signed with a wrong key: refused"),
    Scenario("setup-no-preauth", "MS-SMB2 3.2.5.3.1, 3.1.4.2",
             "3.1.1: final response signed with a key derived without the SESSION_SETUP preauth chain:"
             " refused"),
    Scenario("validate-negotiate-downgrade", "MS-SMB2 3.2.5.5, 3.2.5.14.12",
             "NEGOTIATE downgraded to 3.0/3.0.2, FSCTL_VALIDATE_NEGOTIATE_INFO names the real dialect:"
             " refused"),
    Scenario("mechlistmic-tampered", "RFC 4178 5, MS-SPNG 3.2.5.1",
             "the server's mechListMIC does not verify: refused"),
    Scenario("challenge-no-timestamp", "MS-NLMP 3.1.5.1.2",
             "CHALLENGE without MsvAvTimestamp: allowed (no MIC then protects the exchange)"),
    Scenario("challenge-ntlmv1", "MS-NLMP 3.1.5.1.2",
             "CHALLENGE with NTLMv1-only flags (no ESS, no target info): refused, no NTLMv1 fallback"),
    Scenario("session-id-other", "MS-SMB2 3.2.5.3",
             "final SESSION_SETUP response naming another SessionId: not taken for the session"),
    Scenario("credits-0", "MS-SMB2 3.2.4.1.3, 3.2.5.1.4",
             "final SESSION_SETUP response grants 0 credits (none left): no request outside the window"),
    Scenario("credits-65535", "MS-SMB2 3.2.5.1.4",
             "final SESSION_SETUP response grants 65535 credits: taken, the client carries on"),
    Scenario("negtokenresp-reject", "RFC 4178 4.2.2, MS-SPNG 3.2.5.1",
             "STATUS_SUCCESS carrying a NegTokenResp with negState reject: refused"),
)
SCENARIO_NAMES: tuple[str, ...] = tuple(s.name for s in SCENARIOS)

# Requests that wind a connection down rather than use what the hostile step set up.
_WINDING_DOWN = frozenset({Command.LOGOFF, Command.TREE_DISCONNECT, Command.ECHO, Command.CANCEL})
_FINAL_RESPONSE = frozenset({
    "setup-unsigned", "setup-wrong-key", "setup-no-preauth", "mechlistmic-tampered", "session-id-other",
    "credits-0", "credits-65535", "negtokenresp-reject",
})
_CHALLENGE = frozenset({"challenge-no-timestamp", "challenge-ntlmv1"})


@dataclass(slots=True)
class WrongSigner:
    """A signer with a key that is not the session's (MS-SMB2 3.3.4.1.1 done wrong on purpose)."""

    signing_key: bytes
    signing_algorithm: int


MakeEvent = Callable[[str, str], LoginEvent]
"""The connection's login event for (status name, reason) when no attempt produced one."""


class Hostile:
    """The scenario of one connection: whether its step happened, and the verdict once the client answered."""

    def __init__(self, name: str, wait: float) -> None:
        if name not in SCENARIO_NAMES:
            raise ValueError(f"unknown hostile scenario {name!r}")
        self.name = name
        self.wait = wait
        self.stepped_at: float | None = None  # when the hostile response went out
        self.step = ""  # what it was
        self.decided = False
        self.skip = ""  # why the scenario does not apply to this client
        self.carried = ""  # what the client sent after the step, while its login event is awaited
        self.session_id = 0  # the session the step concerns
        self.other_session_id = 0
        self.downgraded: int = 0  # the dialect the NEGOTIATE was downgraded to
        self.honest: int = 0  # the dialect it should have been
        self.tree_connected = False
        self._held: LoginEvent | None = None

    # -- hooks of the connection core -----------------------------------------------------------------

    def dialects(
        self, offered: Sequence[int], served: tuple[Dialect, ...], honest: int
    ) -> tuple[Dialect, ...]:
        """NEGOTIATE: the dialects the server may pick from (the downgrade picks 3.0 or 3.0.2 below the
        best common one)."""
        if self.name != "validate-negotiate-downgrade" or self.decided or self.downgraded:
            return served
        lower = [d for d in (Dialect.SMB3_0, Dialect.SMB3_0_2) if d in offered and d in served and d < honest]
        if not lower:
            self.skip = (f"the client offers no 3.0 or 3.0.2 below the dialect chosen"
                         f" ({dialect_name(honest) if honest else 'none'})")
            return served
        self.downgraded, self.honest = lower[0], honest
        return (lower[0],)

    def validate_negotiate(self, now: float) -> int | None:
        """FSCTL_VALIDATE_NEGOTIATE_INFO on the downgraded connection: the dialect to answer (the honest one,
        which the NEGOTIATE response did not say), or None to validate as usual."""
        if not self.downgraded or self.decided:
            return None
        self._stepped(now, f"FSCTL_VALIDATE_NEGOTIATE_INFO answered (signed) with dialect"
                      f" {dialect_name(self.honest)}, the NEGOTIATE said {dialect_name(self.downgraded)}")
        return self.honest

    def challenge(self, token: bytes, session_id: int, now: float) -> bytes:
        """The SESSION_SETUP response token carrying the CHALLENGE, edited by the CHALLENGE scenarios."""
        if self.name not in _CHALLENGE or self.stepped_at is not None or self.decided:
            return token
        try:
            resp = None if tokens.is_raw_ntlmssp(token) else tokens.decode(token)
            raw = token if resp is None else None
            if isinstance(resp, tokens.NegTokenResp):
                raw = resp.response_token
            if raw is None or message_type(raw) != MessageType.NtLmChallenge:
                return token
            challenge = ChallengeMessage.unpack(raw)
        except MalformedMessage:
            return token
        if self.name == "challenge-no-timestamp":
            info = tuple(p for p in challenge.target_info or () if p.id != AvId.MsvAvTimestamp)
            edited = dataclasses.replace(challenge, target_info=info)
            step = "CHALLENGE without MsvAvTimestamp"
        else:
            flags = challenge.flags & ~(NegotiateFlags.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY
                                        | NegotiateFlags.NTLMSSP_NEGOTIATE_TARGET_INFO)
            edited = dataclasses.replace(challenge, flags=int(flags), target_info=None)
            step = "CHALLENGE with NTLMv1-only flags (no ESS, no target info)"
        self.session_id = session_id
        self._stepped(now, step)
        if resp is None:
            return edited.pack()
        assert isinstance(resp, tokens.NegTokenResp)
        return dataclasses.replace(resp, response_token=edited.pack()).encode()

    def final_response(
        self,
        reply: Reply,
        out: bytes | None,
        *,
        signing_key: bytes,
        signing_algorithm: int,
        dialect: int,
        gss_session_key: bytes,
        negotiate_preauth: bytes | None,
        now: float,
    ) -> bytes | None:
        """The final (STATUS_SUCCESS) SESSION_SETUP response of the connection's first session, edited by the
        scenarios that act there; returns its security token."""
        name = self.name
        if name not in _FINAL_RESPONSE or self.stepped_at is not None or self.decided:
            return out
        session_id = reply.session_id
        if name in ("mechlistmic-tampered", "negtokenresp-reject") and not out:
            self.skip = "the client authenticates with raw NTLMSSP, not SPNEGO: no NegTokenResp to change"
            return out
        if name in ("setup-unsigned", "setup-wrong-key", "setup-no-preauth") and not signing_key:
            self.skip = "the session has no signing key (guest or anonymous)"
            return out
        if name == "setup-unsigned":
            reply.signer = None
            step = "final SESSION_SETUP response unsigned"
        elif name == "setup-wrong-key":
            # Not the session's key: every bit of it flipped.
            reply.signer = WrongSigner(bytes(b ^ 0xFF for b in signing_key), signing_algorithm)
            step = "final SESSION_SETUP response signed with a wrong key"
        elif name == "setup-no-preauth":
            if dialect != Dialect.SMB3_1_1:
                self.skip = f"negotiated {dialect_name(dialect)}: the scenario needs 3.1.1"
                return out
            # MS-SMB2 3.1.4.2: the 3.1.1 key over the preauth hash of the NEGOTIATE alone, as a server that
            # left the SESSION_SETUP messages out of the chain would derive it.
            keys = derive_session_keys(dialect, gss_session_key, negotiate_preauth)
            reply.signer = WrongSigner(keys.signing_key, signing_algorithm)
            step = "final SESSION_SETUP response signed without the SESSION_SETUP preauth chain"
        elif name == "session-id-other":
            other = session_id ^ 1 or 2
            reply.session_id = other
            self.other_session_id = other
            step = "final SESSION_SETUP response naming another SessionId"
        elif name == "mechlistmic-tampered":
            try:
                resp = tokens.decode(out) if out else None
            except MalformedMessage:
                resp = None
            if not isinstance(resp, tokens.NegTokenResp):
                self.skip = "the final response carries no NegTokenResp"
                return out
            mic = resp.mech_list_mic or bytes(16)
            out = dataclasses.replace(resp, mech_list_mic=mic[:-1] + bytes([mic[-1] ^ 0xFF])).encode()
            step = "final NegTokenResp with a tampered mechListMIC"
        elif name == "negtokenresp-reject":
            out = tokens.NegTokenResp(neg_state=tokens.NegState.REJECT).encode()
            step = "STATUS_SUCCESS with NegTokenResp negState reject"
        elif name == "credits-0":
            reply.grant = 0
            step = "final SESSION_SETUP response grants 0 credits"
        else:
            reply.grant = 65535
            step = "final SESSION_SETUP response grants 65535 credits"
        self.session_id = session_id
        self._stepped(now, step)
        return out

    def _stepped(self, now: float, step: str) -> None:
        self.stepped_at = now
        self.step = step

    # -- what the client did next ---------------------------------------------------------------------

    def observe(self, parts: Sequence[CompoundPart], make: MakeEvent) -> list[LoginEvent]:
        """A request frame arrived: the verdict, when it says the client carried on."""
        if self.decided:
            return []
        for part in parts:
            seen = self._carried_on(part)
            if seen:
                if self.name in _CHALLENGE:
                    self.carried = seen  # the AUTHENTICATE's own login event follows, and names its kind
                    return []
                return [self._verdict(False, seen, make)]
        return []

    def _carried_on(self, part: CompoundPart) -> str:
        h = part.header
        command = h.command
        if self.downgraded and self.stepped_at is None:
            # MS-SMB2 3.2.5.5: after the first TREE_CONNECT of a 3.0/3.0.2 session comes the validation.
            if command is Command.TREE_CONNECT and not self.tree_connected:
                self.tree_connected = True
                return ""
            if not self.tree_connected or command is Command.IOCTL:
                return ""
            return (f"never sent FSCTL_VALIDATE_NEGOTIATE_INFO: sent {command.name} after the TREE_CONNECT"
                    f" on the {dialect_name(self.downgraded)} session")
        if self.stepped_at is None:
            return ""
        if self.name in _CHALLENGE:
            if command is Command.SESSION_SETUP and h.session_id == self.session_id:
                return "sent the AUTHENTICATE"
            return ""
        if self.name == "credits-0":
            return f"sent {command.name} (MessageId {h.message_id}) holding no credits"
        if command in _WINDING_DOWN or (command is Command.SESSION_SETUP and not h.session_id):
            return ""
        if self.name == "session-id-other":
            which = ("the SessionId the response named" if h.session_id == self.other_session_id
                     else "its own SessionId")
            return f"carried on: {command.name} on {which}"
        if self.name == "credits-65535":
            return f"took the grant: {command.name} with MessageId {h.message_id}"
        if self.downgraded:
            return f"carried on after the mismatching answer: {command.name}"
        return f"carried on: {command.name}"

    def emit(self, event: LoginEvent, make: MakeEvent) -> list[LoginEvent]:
        """A login event of the connection: held until the verdict (which it then carries), or passed on."""
        if self.decided:
            return [event]
        if self.carried:
            kind = event.response_kind or "an"
            sent = f"sent an {kind} AUTHENTICATE (answered {event.status})"
            return [self._verdict(False, sent, make, event)]
        if self.skip:
            return [self._verdict(None, self.skip, make, event)]
        earlier, self._held = self._held, event
        return [earlier] if earlier is not None else []

    def expired(self, now: float) -> bool:
        """Whether the client has sent nothing for longer than the wait since the hostile step."""
        return not self.decided and self.stepped_at is not None and now - self.stepped_at > self.wait

    def close(self, reason: str, make: MakeEvent, abandoned: list[LoginEvent]) -> list[LoginEvent]:
        """The connection ends: the verdict, if none was given yet."""
        if self.decided:
            return abandoned
        base = abandoned[-1] if abandoned else None
        rest = abandoned[:-1]
        if base is not None and self._held is not None:
            rest.insert(0, self._held)  # an earlier attempt's event, passed on as it was
            self._held = None
        if self.carried:
            return [*rest, self._verdict(False, self.carried, make, base)]
        if self.skip:
            return [*rest, self._verdict(None, self.skip, make, base)]
        if self.stepped_at is None:
            if self.downgraded and self.tree_connected:
                what = (f"closed after a TREE_CONNECT on the {dialect_name(self.downgraded)} session, never"
                        " sending FSCTL_VALIDATE_NEGOTIATE_INFO")
                return [*rest, self._verdict(False, what, make, base)]
            if self.downgraded:
                what = f"stopped on the {dialect_name(self.downgraded)} session before any TREE_CONNECT"
                return [*rest, self._verdict(None, f"the client never reached the hostile step: {what}", make,
                                             base)]
            return [*rest, self._verdict(None, f"the client never reached the hostile step ({reason})", make,
                                         base)]
        if reason == "connection lost":
            what = f"closed the connection after the {self.step}"
        else:
            what = f"sent nothing more within {self.wait:g} s of the {self.step}"
        return [*rest, self._verdict(True, what, make, base)]

    def _verdict(
        self, refused: bool | None, observed: str, make: MakeEvent, event: LoginEvent | None = None
    ) -> LoginEvent:
        self.decided = True
        base = event or self._held or make("STATUS_CANCELLED", observed)
        self._held = None
        return dataclasses.replace(base, hostile=self.name, refused=refused, observed=observed)
