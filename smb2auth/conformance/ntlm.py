"""NTLM cases (MS-NLMP 3.2.5.1, 3.3; MS-SMB2 3.3.5.5.3): what the CHALLENGE carries; which responses the
server takes (NTLMv1, LM, anonymous, guest: WARN when accepted); and AUTHENTICATE messages it must refuse,
each changed on the way as a man in the middle would (the NTProofStr and the MIC then no longer match),
without dropping the connection."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from smb2auth.client.hooks import Hooks
from smb2auth.conformance._common import Attempt, attempt, edit_authenticate, on_leg, refusal
from smb2auth.conformance.probe import Link, Probe
from smb2auth.conformance.registry import Group, Outcome, failed, passed, warned
from smb2auth.ntlm.authority import ResponseKind
from smb2auth.ntlm.client import NtlmClient
from smb2auth.ntlm.messages import (
    NTLMSSP_NEGOTIATE_128,
    NTLMSSP_NEGOTIATE_KEY_EXCH,
    AuthenticateMessage,
    AvId,
    AvPair,
    ChallengeMessage,
    NtlmV2Response,
    pack_filetime,
    unpack_filetime,
)
from smb2auth.smb2.session import SessionSetupRequest, SessionSetupResponse
from smb2auth.spnego import tokens

GROUP = Group("ntlm")
# MS-NLMP 2.2.1.3: the MIC follows the 64-byte fixed part and the 8-byte Version.
_MIC = slice(72, 88)
_DAY = 24 * 3600 * 10_000_000  # FILETIME ticks


def _mech(p: Probe, *, send_mic: bool = True, negotiate_128: bool = True) -> NtlmClient:
    t = p.target
    return NtlmClient(t.user, t.password, domain=t.domain, workstation="CONFORMANCE", send_mic=send_mic,
                      negotiate_128=negotiate_128)


def _accepted(result: Attempt, what: str, why: str, platform: str = "") -> Outcome:
    """The verdict on a login the spec allows but that weakens security: WARN when the server took it."""
    if result.succeeded:
        kind = " as guest" if result.guest else (" as a null session" if result.null else "")
        return warned(f"{what} accepted{kind}: {why}", platform)
    if result.status is None:
        return failed("no answer: the connection closed")
    return passed(f"refused: {result.name}")


def _policy(name: str, section: str, expectation: str, what: str, why: str,
            link: Callable[[Probe], Link]) -> None:
    def check(p: Probe) -> Outcome:
        return _accepted(attempt(link(p)), what, why)

    GROUP.add(name, section, expectation, check)


@GROUP.case("ntlmv2", "MS-NLMP 3.2.5.1.2, 3.3.2", "NTLMv2 with MsvAvFlags MIC_PRESENT and a MIC: logged in")
def ntlmv2(p: Probe) -> Outcome:
    mech = _mech(p)
    link = p.login(mech=mech)
    mic = "with a MIC" if mech.mic_present else "without a MIC (the CHALLENGE has no MsvAvTimestamp)"
    return passed(f"logged in on {link.core.dialect_name}, {mic}")


@GROUP.case("challenge-target-info", "MS-NLMP 3.2.5.1.1, 2.2.2.1",
            "the CHALLENGE's TargetInfo names the NetBIOS computer and domain, and carries MsvAvTimestamp")
def challenge_target_info(p: Probe) -> Outcome:
    link = p.link()
    link.negotiate()
    first = link.exchange(link.core.data_to_send())
    assert isinstance(first.body, SessionSetupResponse)
    resp = tokens.decode(first.body.security_buffer)
    if not isinstance(resp, tokens.NegTokenResp) or not resp.response_token:
        return failed("the first SESSION_SETUP response carries no NTLM CHALLENGE")
    challenge = ChallengeMessage.unpack(resp.response_token)
    ids = {pair.id for pair in challenge.target_info or ()}
    missing = [a.name for a in (AvId.MsvAvNbComputerName, AvId.MsvAvNbDomainName) if a not in ids]
    if missing:
        return failed(f"TargetInfo without {', '.join(missing)}")
    if AvId.MsvAvTimestamp not in ids:
        # MS-NLMP 3.1.5.1.2: without the server's timestamp the client sends no MIC.
        return warned("no MsvAvTimestamp: the client cannot protect the exchange with a MIC")
    names = "NetBIOS and DNS names" if AvId.MsvAvDnsComputerName in ids else "NetBIOS names"
    return passed(f"{names}, MsvAvTimestamp")


_policy("ntlmv1", "MS-NLMP 3.3.1, 3.2.5.1.2", "NTLMv1 (no ESS): refused; WARN if accepted", "NTLMv1",
        "DES over the password hash, crackable",
        lambda p: p.link(ntlm_version=ResponseKind.NTLMV1))
_policy("ntlmv1-ess", "MS-NLMP 3.3.1, 3.2.5.1.2", "NTLMv1 with extended session security: refused; WARN"
        " if accepted", "NTLMv1-ESS", "DES over the password hash, crackable",
        lambda p: p.link(ntlm_version=ResponseKind.NTLMV1_ESS))
_policy("lm", "MS-NLMP 3.3.1, 3.2.5.1.2", "an LM response only: refused; WARN if accepted", "LM",
        "the LM hash is trivially cracked", lambda p: p.link(ntlm_version=ResponseKind.LM))
_policy("anonymous", "MS-NLMP 3.2.5.1.2, MS-SMB2 3.3.5.5.3", "an anonymous AUTHENTICATE: refused; WARN if"
        " accepted", "a null session", "anyone can connect",
        lambda p: p.link(user="", ntlm_version=ResponseKind.ANONYMOUS, require_signing=False))
_policy("unknown-user", "MS-NLMP 3.2.5.1.2, MS-SMB2 3.3.5.5.3", "an unknown user: STATUS_LOGON_FAILURE;"
        " WARN for a guest session", "an unknown user", "guest fallback",
        lambda p: p.link(user="conformance-nobody", require_signing=False))


@GROUP.case("wrong-password", "MS-NLMP 3.2.5.1.2, MS-SMB2 3.3.5.5.3",
            "the right user, a wrong password: STATUS_LOGON_FAILURE, connection kept")
def wrong_password(p: Probe) -> Outcome:
    link = p.link(password=p.target.password + "-wrong", require_signing=False)
    result = attempt(link)
    if result.succeeded and result.guest:
        return warned("a wrong password logged in as guest")
    return refusal(link, result.status)


@GROUP.case("no-mic", "MS-NLMP 3.1.5.1.2, 3.2.5.1.2",
            "NTLMv2 without MsvAvFlags MIC_PRESENT and without a MIC: accepted (the MIC is optional)")
def no_mic(p: Probe) -> Outcome:
    result = attempt(p.link(mech=_mech(p, send_mic=False)))
    if result.succeeded:
        return passed("accepted")
    if result.status is None:
        return failed("no answer: the connection closed")
    return passed(f"refused ({result.name}): the server requires a MIC")


Edit = Callable[[AuthenticateMessage, bytes], bytes]


def _must_fail(name: str, section: str, what: str, edit: Edit) -> None:
    def check(p: Probe) -> Outcome:
        link = p.link(hooks=Hooks(session_setup=edit_authenticate(edit)))
        result = attempt(link)
        # Samba compares the AV pairs before the password (STATUS_INVALID_PARAMETER); a server that checks
        # only the NTProofStr answers STATUS_LOGON_FAILURE.
        return refusal(link, result.status)

    GROUP.add(name, section, f"{what}: refused, connection kept", check)


def _flip_mic(auth: AuthenticateMessage, raw: bytes) -> bytes:
    return raw[: _MIC.start] + bytes([raw[_MIC.start] ^ 1]) + raw[_MIC.start + 1 :]


def _zero_mic(auth: AuthenticateMessage, raw: bytes) -> bytes:
    return raw[: _MIC.start] + bytes(16) + raw[_MIC.stop :]


Pairs = tuple[AvPair, ...]


def _edit_pairs(edit: Callable[[Pairs], Pairs]) -> Edit:
    def change(auth: AuthenticateMessage, raw: bytes) -> bytes:
        response = NtlmV2Response.unpack(auth.nt_response)
        blob = response.client_challenge
        blob = dataclasses.replace(blob, av_pairs=edit(blob.av_pairs))
        nt_response = dataclasses.replace(response, blob=blob.pack()).pack()
        return dataclasses.replace(auth, nt_response=nt_response).pack()

    return change


def _rename(pairs: tuple[AvPair, ...]) -> tuple[AvPair, ...]:
    return tuple(AvPair(p.id, "EVIL".encode("utf-16-le")) if p.id == AvId.MsvAvNbComputerName else p
                 for p in pairs)


def _drop_timestamp(pairs: tuple[AvPair, ...]) -> tuple[AvPair, ...]:
    return tuple(p for p in pairs if p.id != AvId.MsvAvTimestamp)


def _later(pairs: tuple[AvPair, ...]) -> tuple[AvPair, ...]:
    return tuple(AvPair(p.id, pack_filetime(unpack_filetime(p.value) + _DAY)) if p.id == AvId.MsvAvTimestamp
                 else p for p in pairs)


def _no_key(auth: AuthenticateMessage, raw: bytes) -> bytes:
    assert auth.flags & NTLMSSP_NEGOTIATE_KEY_EXCH
    return dataclasses.replace(auth, encrypted_random_session_key=b"").pack()


def _anonymous_shape(auth: AuthenticateMessage, raw: bytes) -> bytes:
    return dataclasses.replace(auth, nt_response=b"", lm_response=b"\x00").pack()


def _truncated(auth: AuthenticateMessage, raw: bytes) -> bytes:
    return dataclasses.replace(auth, nt_response=auth.nt_response[:25]).pack()


_must_fail("mic-tampered", "MS-NLMP 3.2.5.1.2", "one bit of the MIC flipped", _flip_mic)
_must_fail("mic-zeroed", "MS-NLMP 3.2.5.1.2", "MsvAvFlags MIC_PRESENT with the MIC zeroed", _zero_mic)
_must_fail("av-pair-changed", "MS-NLMP 3.2.5.1.2, 3.3.2", "the client's MsvAvNbComputerName changed",
           _edit_pairs(_rename))
_must_fail("av-pair-dropped", "MS-NLMP 3.2.5.1.2, 3.3.2", "the client's MsvAvTimestamp dropped",
           _edit_pairs(_drop_timestamp))
_must_fail("timestamp-changed", "MS-NLMP 3.2.5.1.2, 3.3.2", "the client's MsvAvTimestamp a day later",
           _edit_pairs(_later))
_must_fail("key-exch-without-key", "MS-NLMP 3.2.5.1.2",
           "NTLMSSP_NEGOTIATE_KEY_EXCH with no EncryptedRandomSessionKey", _no_key)
_must_fail("empty-nt-response", "MS-NLMP 3.2.5.1.2, 3.3.2",
           "the user's name with an empty NT response and LM Z(1)", _anonymous_shape)
_must_fail("nt-response-truncated", "MS-NLMP 2.2.2.8, 3.2.5.1.2", "the NTLMv2 response cut to 25 bytes",
           _truncated)


@GROUP.case("replayed", "MS-NLMP 3.2.5.1.2, 3.3.2",
            "an AUTHENTICATE that logged in, replayed on a new connection's handshake: refused")
def replayed(p: Probe) -> Outcome:
    saved: list[bytes] = []

    def keep(leg: int, request: SessionSetupRequest) -> SessionSetupRequest:
        if leg == 1:
            saved.append(request.security_buffer)
        return request

    p.login(hooks=Hooks(session_setup=keep))
    link = p.link(hooks=Hooks(session_setup=on_leg(1, lambda _: saved[0])))
    return refusal(link, attempt(link).status)


@GROUP.case("no-128bit", "MS-NLMP 2.2.2.5, 3.2.5.1.1",
            "a NEGOTIATE without NTLMSSP_NEGOTIATE_128: refused; WARN if 56-bit keys are accepted")
def no_128bit(p: Probe) -> Outcome:
    mech = _mech(p, negotiate_128=False)
    result = attempt(p.link(mech=mech))
    if result.succeeded and not mech.negotiated_flags & NTLMSSP_NEGOTIATE_128:
        return warned("56-bit NTLM keys accepted (NTLMSSP_NEGOTIATE_128 not negotiated)")
    if result.succeeded:
        return passed("logged in with 128-bit keys")
    if result.status is None:
        return failed("no answer: the connection closed")
    # Windows' default NTLMMinServerSec requires 128-bit keys.
    return passed(f"refused: {result.name}")


CASES = GROUP.cases
