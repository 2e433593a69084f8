"""Negotiate cases (MS-SMB2 3.3.5.3, 3.3.5.4; WPTS Negotiate, smbtorture smb2.negprot): each dialect, the
choice among several, the SMB1 upgrade, the 3.1.1 negotiate contexts, malformed and repeated NEGOTIATEs."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from smb2auth.client.hooks import Hooks
from smb2auth.conformance.probe import Closed, Probe
from smb2auth.conformance.registry import Group, Outcome, failed, passed, skipped, warned
from smb2auth.errors import Smb2AuthError
from smb2auth.smb2.framing import frame
from smb2auth.smb2.header import HEADER_SIZE, SMB2_PROTOCOL_ID, Command, Smb1Flags2, Smb1Header, Smb2Header
from smb2auth.smb2.negotiate import (
    SMB1_DIALECT_NT_LM,
    SMB1_DIALECT_SMB2_002,
    SMB1_DIALECT_SMB2_WILDCARD,
    SMB2_DIALECTS,
    Dialect,
    NegotiateRequest,
    NegotiateResponse,
    SecurityMode,
    Smb1NegotiateRequest,
    dialect_name,
)
from smb2auth.smb2.negotiate_contexts import (
    EncryptionCapabilities,
    NegotiateContext,
    PreauthIntegrityCapabilities,
    SigningAlgorithm,
    SigningCapabilities,
    find_context,
)
from smb2auth.status import NtStatus

GROUP = Group("negotiate")
_SMB311 = (Dialect.SMB3_1_1,)


Body = Callable[[NegotiateRequest], bytes]


def _answer(p: Probe, body: Body, dialects: tuple[int, ...] = _SMB311) -> int | None:
    """The status of the NEGOTIATE response to `body` (of the request the core builds offering `dialects`);
    None when the server closes the connection."""
    link = p.link(dialects, hooks=Hooks(negotiate=body))
    try:
        link.negotiate()
    except Closed:
        return None
    except Smb2AuthError:
        pass
    return link.last[0].status if link.last is not None else None


def _status_case(name: str, section: str, expected: NtStatus, why: str,
                 body: Body, needs: Dialect | None = Dialect.SMB3_1_1) -> None:
    def check(p: Probe) -> Outcome:
        if needs is not None and not p.profile.speaks(needs):
            return skipped(f"dialect {dialect_name(needs)} not offered")
        status = _answer(p, body, (needs,) if needs is not None else SMB2_DIALECTS)
        if status is None:
            return failed("no answer: the connection closed")
        if status == expected:
            return passed(NtStatus.name_of(status))
        return failed(NtStatus.name_of(status))

    GROUP.add(name, section, f"{NtStatus.name_of(expected)} ({why})", check)


def _one_dialect(dialect: Dialect) -> None:
    label = dialect_name(dialect)

    def check(p: Probe) -> Outcome:
        link = p.link((dialect,))
        try:
            link.negotiate()
        except Smb2AuthError as exc:
            status = getattr(exc, "status", None)
            if status == NtStatus.STATUS_NOT_SUPPORTED:
                return skipped(f"dialect not offered ({NtStatus.name_of(status)})")
            return failed(str(exc))
        try:
            link.establish()
        except Smb2AuthError as exc:
            status = getattr(exc, "status", None)
            if dialect < Dialect.SMB3_0 and status == NtStatus.STATUS_ACCESS_DENIED:
                # MS-SMB2 3.3.5.5: a server that requires encryption refuses 2.x sessions.
                return passed(f"{label} negotiated; SESSION_SETUP STATUS_ACCESS_DENIED (encryption required)")
            return failed(f"{label} negotiated; {exc}")
        seen = f"{label} negotiated, logged in"
        if dialect == Dialect.SMB2_0_2:
            # MS-SMB2 3.3.5.4 allows it; 2.0.2 has neither VALIDATE_NEGOTIATE_INFO nor preauth integrity.
            return warned(f"{seen}: SMB 2.0.2 offered, without downgrade protection")
        return passed(seen)

    GROUP.add(f"dialect-{label}", "MS-SMB2 3.3.5.4",
              f"{label} alone: DialectRevision 0x{dialect:04x} and a session, or STATUS_NOT_SUPPORTED", check)


for _dialect in SMB2_DIALECTS:
    _one_dialect(_dialect)


@GROUP.case("highest-common", "MS-SMB2 3.3.5.4", "every dialect offered: the greatest the server speaks")
def highest_common(p: Probe) -> Outcome:
    spoken = p.profile.dialects
    response = p.link(SMB2_DIALECTS).negotiate()
    chosen = dialect_name(response.dialect_revision)
    if response.dialect_revision == max(spoken):
        return passed(f"{chosen} of {', '.join(dialect_name(d) for d in spoken)}")
    return failed(f"{chosen}, though it speaks {dialect_name(max(spoken))} alone")


_SMB1_DIALECTS = (SMB1_DIALECT_NT_LM, SMB1_DIALECT_SMB2_002, SMB1_DIALECT_SMB2_WILDCARD)


@GROUP.case("smb1-upgrade", "MS-SMB2 3.3.5.3.1, 3.2.5.2",
            'SMB1 NEGOTIATE with "SMB 2.???": DialectRevision 0x02FF, then an SMB2 NEGOTIATE (MessageId 1)'
            " logs in")
def smb1_upgrade(p: Probe) -> Outcome:
    link = p.link(SMB2_DIALECTS, hooks=Hooks(first_message_id=1))
    flags2 = Smb1Flags2.EXTENDED_SECURITY | Smb1Flags2.NT_STATUS | Smb1Flags2.UNICODE | Smb1Flags2.LONG_NAMES
    request = Smb1NegotiateRequest(_SMB1_DIALECTS, Smb1Header(Smb1Header.SMB_COM_NEGOTIATE, flags2=flags2))
    link.send(frame(request.pack()))
    payload = link.frame()
    if payload is None:
        return failed("no answer: the connection closed")
    if payload[:4] != SMB2_PROTOCOL_ID:
        return failed("answered in SMB1, not with an SMB2 NEGOTIATE response")
    header = Smb2Header.unpack(payload)
    if header.command is not Command.NEGOTIATE or header.status != NtStatus.STATUS_SUCCESS:
        return failed(f"{header.command.name} {NtStatus.name_of(header.status)}")
    revision = NegotiateResponse.unpack(payload[HEADER_SIZE:]).dialect_revision
    if revision == Dialect.SMB2_0_2 and p.profile.dialects == (Dialect.SMB2_0_2,):
        return passed("0x0202 (the server speaks 2.0.2 only, MS-SMB2 3.3.5.3.2)")
    if revision != Dialect.SMB2_WILDCARD:
        return failed(f"DialectRevision 0x{revision:04x}, not 0x02FF")
    link.login()
    return passed(f"0x02FF, then {link.core.dialect_name} negotiated and logged in")


def _without_preauth(request: NegotiateRequest) -> bytes:
    contexts = tuple(c for c in request.negotiate_contexts if not isinstance(c, PreauthIntegrityCapabilities))
    return dataclasses.replace(request, negotiate_contexts=contexts).pack()


def _unknown_hash(request: NegotiateRequest) -> bytes:
    contexts = tuple(
        PreauthIntegrityCapabilities((0x0002,), c.salt) if isinstance(c, PreauthIntegrityCapabilities) else c
        for c in request.negotiate_contexts
    )
    return dataclasses.replace(request, negotiate_contexts=contexts).pack()


def _twice(kind: type[NegotiateContext]) -> Callable[[NegotiateRequest], bytes]:
    def body(request: NegotiateRequest) -> bytes:
        context = find_context(request.negotiate_contexts, kind)
        assert context is not None
        return dataclasses.replace(request, negotiate_contexts=(*request.negotiate_contexts, context)).pack()

    return body


def _dialects(*dialects: int) -> Callable[[NegotiateRequest], bytes]:
    return lambda request: dataclasses.replace(request, dialects=dialects, negotiate_contexts=()).pack()


_status_case("311-no-preauth", "MS-SMB2 3.3.5.4", NtStatus.STATUS_INVALID_PARAMETER,
             "3.1.1 without PREAUTH_INTEGRITY_CAPABILITIES", _without_preauth)
_status_case("311-unknown-hash", "MS-SMB2 3.3.5.4", NtStatus.STATUS_SMB_NO_PREAUTH_INTEGRITY_HASH_OVERLAP,
             "PREAUTH_INTEGRITY_CAPABILITIES with hash 0x0002 only", _unknown_hash)
_status_case("311-duplicate-preauth", "MS-SMB2 3.3.5.4", NtStatus.STATUS_INVALID_PARAMETER,
             "PREAUTH_INTEGRITY_CAPABILITIES twice", _twice(PreauthIntegrityCapabilities))
_status_case("311-duplicate-encryption", "MS-SMB2 3.3.5.4", NtStatus.STATUS_INVALID_PARAMETER,
             "ENCRYPTION_CAPABILITIES twice", _twice(EncryptionCapabilities))
_status_case("dialect-count-0", "MS-SMB2 3.3.5.4", NtStatus.STATUS_INVALID_PARAMETER, "DialectCount 0",
             _dialects(), None)
_status_case("no-common-dialect", "MS-SMB2 3.3.5.4", NtStatus.STATUS_NOT_SUPPORTED, "only dialect 0x0222",
             _dialects(0x0222), None)
_status_case("wildcard-dialect", "MS-SMB2 3.3.5.4", NtStatus.STATUS_NOT_SUPPORTED,
             "only 0x02FF, which an SMB2 NEGOTIATE cannot select", _dialects(Dialect.SMB2_WILDCARD), None)


def _unknown_ciphers(request: NegotiateRequest) -> bytes:
    contexts = tuple(
        EncryptionCapabilities((0x0010, 0x0011)) if isinstance(c, EncryptionCapabilities) else c
        for c in request.negotiate_contexts
    )
    return dataclasses.replace(request, negotiate_contexts=contexts).pack()


@GROUP.case("311-no-common-cipher", "MS-SMB2 3.3.5.4",
            "ENCRYPTION_CAPABILITIES with unknown ciphers only: success, cipher 0 (none in common)")
def no_common_cipher(p: Probe) -> Outcome:
    if not p.profile.speaks(Dialect.SMB3_1_1):
        return skipped("dialect 3.1.1 not offered")
    link = p.link(_SMB311, hooks=Hooks(negotiate=_unknown_ciphers))
    try:
        response = link.negotiate()
    except Smb2AuthError as exc:
        return failed(str(exc))
    chosen = find_context(response.negotiate_contexts, EncryptionCapabilities)
    if chosen is None:
        return passed("success, no ENCRYPTION_CAPABILITIES in the response")
    if isinstance(chosen, EncryptionCapabilities) and chosen.ciphers == (0,):
        return passed("success, cipher 0")
    return failed(f"success, ciphers {chosen}")


@GROUP.case("311-signing-algorithm", "MS-SMB2 3.3.5.4",
            "SIGNING_CAPABILITIES with AES-CMAC only: AES-CMAC chosen (or the context ignored), the session"
            " signs")
def signing_algorithm(p: Probe) -> Outcome:
    if not p.profile.speaks(Dialect.SMB3_1_1):
        return skipped("dialect 3.1.1 not offered")
    link = p.link(_SMB311, signing_algorithms=(SigningAlgorithm.AES_CMAC,))
    response = link.negotiate()
    link.establish()
    answered = find_context(response.negotiate_contexts, SigningCapabilities)
    seen = "AES_CMAC chosen" if answered is not None else "no SIGNING_CAPABILITIES answered (AES-CMAC)"
    if not link.core.setup_response_signed:
        return failed(f"{seen}, final SESSION_SETUP response unsigned")
    return passed(f"{seen}, session signed")


@GROUP.case("second-negotiate", "MS-SMB2 3.3.5.4",
            "a NEGOTIATE on a connection with a session: disconnected without a reply")
def second_negotiate(p: Probe) -> Outcome:
    link = p.login()
    request = NegotiateRequest(SMB2_DIALECTS, SecurityMode.SIGNING_ENABLED)
    answer = link.answer(link.core.raw_request(Command.NEGOTIATE, request.pack(), sign=False, encrypt=False))
    return passed("disconnected, no reply") if answer.closed else failed(f"answered {answer.name}")


@GROUP.case("signing-required", "MS-SMB2 3.3.5.4",
            "SecurityMode SIGNING_ENABLED, and SIGNING_REQUIRED (RequireMessageSigning)")
def signing_required(p: Probe) -> Outcome:
    response = p.profile.negotiate(p.profile.top)
    assert response is not None
    mode = response.security_mode
    if not mode & SecurityMode.SIGNING_ENABLED:
        return failed(f"SecurityMode 0x{int(mode):04x} without SIGNING_ENABLED")
    if not mode & SecurityMode.SIGNING_REQUIRED:
        return warned("signing enabled, not required")
    return passed("signing required")


CASES = GROUP.cases
