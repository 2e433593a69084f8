"""SPNEGO cases (RFC 4178, MS-SPNG; MS-SMB2 3.3.5.5.3): the server's NegTokenInit2, NTLM picked from a
Kerberos-first list with its optimistic token ignored, the mechListMIC exchange (required, missing,
tampered), and tokens the server must refuse without dropping the connection."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from smb2auth.client.hooks import Hooks
from smb2auth.conformance._common import attempt, edit_resp, on_leg, refusal
from smb2auth.conformance.probe import Probe
from smb2auth.conformance.registry import Group, Outcome, Verdict, failed, passed, skipped
from smb2auth.errors import Smb2AuthError
from smb2auth.ntlm.client import NtlmClient
from smb2auth.smb2.header import Command
from smb2auth.smb2.session import SessionSetupRequest, SessionSetupResponse
from smb2auth.spnego import tokens
from smb2auth.spnego.asn1 import KRB5, MS_KRB5, NTLMSSP, mech_name
from smb2auth.spnego.context import SpnegoClient
from smb2auth.status import NtStatus

GROUP = Group("spnego")
# RFC 1964 1.1 / RFC 2743 3.1: an InitialContextToken for Kerberos 5 (OID 1.2.840.113554.1.2.2, TOK_ID
# 0x0100 for KRB_AP_REQ) around a stub APPLICATION 14 body: the shape of a Windows client's optimistic token.
_KRB5_OID_TLV = bytes.fromhex("06092a864886f712010202")
_AP_REQ_STUB = bytes.fromhex("6e053003020105")
_KRB5_BODY = _KRB5_OID_TLV + b"\x01\x00" + _AP_REQ_STUB
KRB5_OPTIMISTIC = b"\x60" + bytes([len(_KRB5_BODY)]) + _KRB5_BODY
_GARBAGE = b"\x00conformance: not a GSS token\xff"


def _hint(p: Probe) -> tuple[str, ...] | None:
    """The mechanisms the server's NegTokenInit2 lists; None when its NEGOTIATE response carries none."""
    response = p.profile.negotiate(p.profile.top)
    if response is None or not response.security_buffer:
        return None
    hint = tokens.decode(response.security_buffer)
    return hint.mech_types if isinstance(hint, tokens.NegTokenInit) else ()


def _speaks_kerberos(p: Probe) -> bool:
    return bool(set(_hint(p) or ()) & {KRB5, MS_KRB5})


def _ntlm(p: Probe) -> NtlmClient:
    t = p.target
    return NtlmClient(t.user, t.password, domain=t.domain, workstation="CONFORMANCE")


def _kerberos_first(p: Probe) -> SpnegoClient:
    """NTLM behind the Kerberos mechanisms a Windows client lists first, with their optimistic token."""
    return SpnegoClient(_ntlm(p), mech_types=(MS_KRB5, KRB5, NTLMSSP), optimistic=KRB5_OPTIMISTIC)


@GROUP.case("negtokeninit2", "MS-SPNG 3.2.5.2, MS-SMB2 3.3.5.4",
            "the NEGOTIATE response's security buffer: a NegTokenInit2 listing NTLMSSP (or empty)")
def negtokeninit2(p: Probe) -> Outcome:
    mechs = _hint(p)
    if mechs is None:
        return passed("empty: the client starts SPNEGO")
    if NTLMSSP not in mechs:
        return failed(f"mechTypes [{', '.join(mech_name(m) for m in mechs)}] without NTLMSSP")
    return passed(f"mechTypes [{', '.join(mech_name(m) for m in mechs)}]")


@GROUP.case("kerberos-first", "RFC 4178 3.2, 5; MS-SPNG 3.3.5.1",
            "[MS Kerberos 5, Kerberos 5, NTLMSSP] with an optimistic Kerberos token: NTLMSSP picked,"
            " request-mic, mechListMIC both ways")
def kerberos_first(p: Probe) -> Outcome:
    if _speaks_kerberos(p):
        return skipped("the server offers Kerberos, so it would take the optimistic token")
    spnego = _kerberos_first(p)
    link = p.link(hooks=Hooks(spnego=spnego))
    link.negotiate()
    first = link.exchange(link.core.data_to_send())
    assert isinstance(first.body, SessionSetupResponse)
    resp = tokens.decode(first.body.security_buffer)
    if not isinstance(resp, tokens.NegTokenResp):
        return failed("the first answer is not a NegTokenResp")
    if resp.supported_mech != NTLMSSP:
        return failed(f"supportedMech {mech_name(resp.supported_mech or '')}")
    state = resp.neg_state.name.lower().replace("_", "-") if resp.neg_state is not None else "no negState"
    try:
        link.establish()
    except Smb2AuthError as exc:
        return failed(f"NTLMSSP picked ({state}), then {exc}")
    if not spnego.mic_exchanged:
        return failed(f"NTLMSSP picked ({state}), no mechListMIC exchanged")
    return passed(f"NTLMSSP picked, {state}, mechListMIC exchanged")


def _drop_mic(resp: tokens.NegTokenResp) -> tokens.NegTokenResp:
    return dataclasses.replace(resp, mech_list_mic=None)


def _flip_mic(resp: tokens.NegTokenResp) -> tokens.NegTokenResp:
    mic = resp.mech_list_mic or b""
    return dataclasses.replace(resp, mech_list_mic=bytes([mic[0] ^ 1]) + mic[1:] if mic else mic)


@GROUP.case("downgrade-without-mechlistmic", "RFC 4178 5",
            "Kerberos first, NTLMSSP picked, the client's mechListMIC left out: no session without it")
def downgrade_without_mic(p: Probe) -> Outcome:
    if _speaks_kerberos(p):
        return skipped("the server offers Kerberos, so it would take the optimistic token")
    hooks = Hooks(spnego=_kerberos_first(p), session_setup=on_leg(2, edit_resp(_drop_mic)))
    link = p.link(hooks=hooks)
    result = attempt(link)
    if result.status != NtStatus.STATUS_MORE_PROCESSING_REQUIRED or link.last is None:
        return refusal(link, result.status)
    # Samba answers with its own mechListMIC and waits for the client's: a last leg without one must fail.
    session_id = link.last[0].session_id
    empty = SessionSetupRequest(tokens.NegTokenResp().encode()).pack()
    raw = link.core.raw_request(Command.SESSION_SETUP, empty, session_id=session_id, sign=False,
                                encrypt=False)
    outcome = refusal(link, link.answer(raw).status)
    if outcome.verdict is Verdict.PASS:
        return passed(f"asked for it in another leg (with its own mechListMIC), then {outcome.observed}",
                      "Samba")
    return outcome


@GROUP.case("no-mechlistmic", "RFC 4178 5",
            "NTLMSSP first with the NTLM MIC, no mechListMIC from the client: accepted (optional when NTLMSSP"
            " was the first choice), asked for in another leg, or refused; never a session left unprotected")
def no_mechlistmic(p: Probe) -> Outcome:
    spnego = SpnegoClient(_ntlm(p), require_mic=False)
    link = p.link(hooks=Hooks(spnego=spnego))
    result = attempt(link)
    if not result.succeeded:
        outcome = refusal(link, result.status)
        return passed(f"refused at once: {outcome.observed}") if outcome.verdict is Verdict.PASS else outcome
    if spnego.mic_exchanged:
        # Samba gensec_spnego: once the NTLM MIC is present it sends its mechListMIC and waits for ours.
        return passed("asked for in another leg (the server's mechListMIC first), then accepted", "Samba")
    return passed("accepted without a mechListMIC")


@GROUP.case("mechlistmic-tampered", "RFC 4178 5, MS-SPNG 3.3.5.1",
            "one bit of the client's mechListMIC flipped: refused, connection kept")
def mechlistmic_tampered(p: Probe) -> Outcome:
    link = p.link(hooks=Hooks(session_setup=on_leg(1, edit_resp(_flip_mic))))
    return refusal(link, attempt(link).status)


@GROUP.case("server-mechlistmic", "RFC 4178 5, MS-SPNG 3.3.5.1",
            "the server answers the client's mechListMIC with its own, which verifies")
def server_mechlistmic(p: Probe) -> Outcome:
    link = p.login()
    if not link.core.spnego.mic_exchanged:
        return failed("no mechListMIC from the server")
    return passed("mechListMIC exchanged and verified")


def _refused_token(name: str, section: str, what: str, leg: int, token: Callable[[bytes], bytes]) -> None:
    def check(p: Probe) -> Outcome:
        link = p.link(hooks=Hooks(session_setup=on_leg(leg, token)))
        return refusal(link, attempt(link).status)

    GROUP.add(name, section, f"{what}: refused, connection kept", check)


_refused_token("garbage-token", "MS-SMB2 3.3.5.5.3, RFC 4178 4.2", "a first security buffer that is not a GSS"
               " token", 0, lambda _: _GARBAGE)
_refused_token("garbage-second-leg", "MS-SMB2 3.3.5.5.3, RFC 4178 4.2", "a second security buffer that is not"
               " SPNEGO", 1, lambda _: _GARBAGE)
_refused_token("client-reject", "RFC 4178 4.2.2", "a NegTokenResp with negState reject", 1,
               lambda _: tokens.NegTokenResp(tokens.NegState.REJECT).encode())


@GROUP.case("no-common-mech", "RFC 4178 3.2",
            "a NegTokenInit listing only Kerberos 5: refused, connection kept")
def no_common_mech(p: Probe) -> Outcome:
    if _speaks_kerberos(p):
        return skipped("the server offers Kerberos")
    only_krb5 = tokens.NegTokenInit((KRB5,)).encode()
    link = p.link(hooks=Hooks(session_setup=on_leg(0, lambda _: only_krb5)))
    return refusal(link, attempt(link).status)


CASES = GROUP.cases
