"""The Netlogon calls a member server makes (MS-NRPC 3.5.4.4.1, 3.5.4.4.2, 3.5.4.5.1), marshalled in
NDR: NetrServerReqChallenge, NetrServerAuthenticate3, and NetrLogonSamLogonEx or NetrLogonSamLogonWithFlags
with a network logon."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field

from smb2auth.authority.netlogon.ndr import NdrReader, NdrWriter
from smb2auth.errors import MalformedMessage

NETLOGON_INTERFACE = (uuid.UUID("12345678-1234-abcd-ef00-01234567cffb"), 1, 0)
NETR_SERVER_REQ_CHALLENGE = 4
NETR_SERVER_AUTHENTICATE3 = 26
NETR_LOGON_SAM_LOGON_EX = 39
NETR_LOGON_SAM_LOGON_WITH_FLAGS = 45
WORKSTATION_SECURE_CHANNEL = 2  # MS-NRPC 2.2.1.3.13
NETLOGON_NETWORK_TRANSITIVE_INFORMATION = 6  # MS-NRPC 2.2.1.4.16
# MS-NRPC 2.2.1.4.15: the ParameterControl a member server sets for a pass-through network logon
MSV1_0_ALLOW_SERVER_TRUST_ACCOUNT = 0x00000020
MSV1_0_ALLOW_WORKSTATION_TRUST_ACCOUNT = 0x00000800
MAX_GROUPS = 1024


class ValidationLevel(enum.IntEnum):
    """MS-NRPC 2.2.1.4.17."""

    NETLOGON_VALIDATION_SAM_INFO = 2
    NETLOGON_VALIDATION_SAM_INFO2 = 3
    NETLOGON_VALIDATION_SAM_INFO4 = 6


def server_req_challenge(primary: str, computer: str, client_challenge: bytes) -> bytes:
    """MS-NRPC 3.5.4.4.1: PrimaryName (unique), ComputerName, ClientChallenge."""
    w = NdrWriter()
    w.unique_string(primary)
    w.conformant_varying_string(computer)
    w.raw(client_challenge)
    return w.getvalue()


def server_req_challenge_response(stub: bytes) -> tuple[int, bytes]:
    """-> (status, ServerChallenge)."""
    r = NdrReader(stub)
    challenge = r.take(8)
    status = r.u32()
    r.done()
    return status, challenge


def server_authenticate3(
    primary: str, account: str, computer: str, client_credential: bytes, flags: int
) -> bytes:
    """MS-NRPC 3.5.4.4.2: PrimaryName, AccountName, SecureChannelType, ComputerName, ClientCredential,
    NegotiateFlags."""
    w = NdrWriter()
    w.unique_string(primary)
    w.conformant_varying_string(account)
    w.u16(WORKSTATION_SECURE_CHANNEL)
    w.conformant_varying_string(computer)
    w.raw(client_credential)
    w.u32(flags)
    return w.getvalue()


@dataclass(frozen=True)
class Authenticate3Result:
    status: int
    server_credential: bytes = field(repr=False)
    flags: int
    account_rid: int


def server_authenticate3_response(stub: bytes) -> Authenticate3Result:
    r = NdrReader(stub)
    credential = r.take(8)
    flags = r.u32()
    rid = r.u32()
    status = r.u32()
    r.done()
    return Authenticate3Result(status, credential, flags, rid)


@dataclass(frozen=True)
class NetworkLogon:
    """NETLOGON_NETWORK_INFO (MS-NRPC 2.2.1.4.6): the identity and the responses as the client sent them."""

    domain: str
    username: str
    workstation: str
    challenge: bytes
    nt_response: bytes = field(repr=False)
    lm_response: bytes = field(repr=False)
    parameter_control: int = MSV1_0_ALLOW_SERVER_TRUST_ACCOUNT | MSV1_0_ALLOW_WORKSTATION_TRUST_ACCOUNT


@dataclass(frozen=True)
class Authenticator:
    """NETLOGON_AUTHENTICATOR (MS-NRPC 2.2.1.1.5): a Netlogon credential and the timestamp it was made of."""

    credential: bytes = field(repr=False)
    timestamp: int

    def write(self, w: NdrWriter) -> None:
        w.align(4)
        w.raw(self.credential)
        w.u32(self.timestamp)

    @classmethod
    def read(cls, r: NdrReader) -> Authenticator:
        r.align(4)
        return cls(r.take(8), r.u32())


def logon_sam_logon_ex(
    logon_server: str, computer: str, logon: NetworkLogon, level: ValidationLevel, extra_flags: int = 0
) -> bytes:
    """MS-NRPC 3.5.4.5.1: NetrLogonSamLogonEx with LogonLevel NetlogonNetworkTransitiveInformation."""
    w = NdrWriter()
    w.unique_string(logon_server)
    w.unique_string(computer)
    _network_logon(w, logon, level, extra_flags)
    return w.getvalue()


def logon_sam_logon_with_flags(
    logon_server: str, computer: str, authenticator: Authenticator, logon: NetworkLogon,
    level: ValidationLevel, extra_flags: int = 0,
) -> bytes:
    """MS-NRPC 3.5.4.5.2: NetrLogonSamLogonWithFlags, the same logon after an Authenticator and an empty
    ReturnAuthenticator (both unique pointers)."""
    w = NdrWriter()
    w.unique_string(logon_server)
    w.unique_string(computer)
    w.referent(True)
    authenticator.write(w)
    w.referent(True)
    Authenticator(b"\x00" * 8, 0).write(w)
    _network_logon(w, logon, level, extra_flags)
    return w.getvalue()


def _network_logon(w: NdrWriter, logon: NetworkLogon, level: ValidationLevel, extra_flags: int) -> None:
    w.u16(NETLOGON_NETWORK_TRANSITIVE_INFORMATION)
    w.u16(NETLOGON_NETWORK_TRANSITIVE_INFORMATION)  # NETLOGON_LEVEL's discriminant
    w.referent(True)
    strings = [logon.domain.encode("utf-16-le"), logon.username.encode("utf-16-le"),
               logon.workstation.encode("utf-16-le")]
    # NETLOGON_LOGON_IDENTITY_INFO (2.2.1.4.15): LogonDomainName, ParameterControl, Reserved, UserName,
    # Workstation; then LmChallenge and the two STRINGs of NETLOGON_NETWORK_INFO
    w.counted_header(len(strings[0]), bool(strings[0]))
    w.u32(logon.parameter_control)
    w.u32(0)
    w.u32(0)
    w.counted_header(len(strings[1]), bool(strings[1]))
    w.counted_header(len(strings[2]), bool(strings[2]))
    w.raw(logon.challenge)
    w.counted_header(len(logon.nt_response), bool(logon.nt_response))
    w.counted_header(len(logon.lm_response), bool(logon.lm_response))
    for text in strings:
        if text:
            w.counted_buffer(text, 2)
    for blob in (logon.nt_response, logon.lm_response):
        if blob:
            w.counted_buffer(blob, 1)
    w.u16(level)
    w.u32(extra_flags)


@dataclass(frozen=True)
class Validation:
    """The NETLOGON_VALIDATION_SAM_INFO/2/4 fields a server uses (MS-NRPC 2.2.1.4.11-13)."""

    effective_name: str
    full_name: str
    user_id: int
    primary_group_id: int
    group_ids: tuple[tuple[int, int], ...]
    user_flags: int
    user_session_key: bytes = field(repr=False)
    logon_server: str
    logon_domain_name: str
    logon_domain_id: str | None
    extra_sids: tuple[tuple[str, int], ...] = ()
    dns_domain_name: str = ""
    upn: str = ""


@dataclass(frozen=True)
class SamLogonResult:
    status: int
    validation: Validation | None
    authoritative: int
    extra_flags: int


def _validation(r: NdrReader, level: int) -> Validation:
    for _ in range(6):  # LogonTime .. PasswordMustChange
        r.u64_pair()
    names = [r.counted_header() for _ in range(6)]
    r.u16()  # LogonCount
    r.u16()  # BadPasswordCount
    user_id = r.u32()
    primary_group = r.u32()
    group_count = r.count(MAX_GROUPS)
    groups_ref = r.u32() != 0
    user_flags = r.u32()
    session_key = r.take(16)
    logon_server = r.counted_header()
    logon_domain = r.counted_header()
    domain_sid_ref = r.u32() != 0
    r.take(40)  # ExpansionRoom (SAM_INFO, SAM_INFO2), or LMKey .. Reserved4 (SAM_INFO4)
    sid_count, sids_ref = 0, False
    if level != ValidationLevel.NETLOGON_VALIDATION_SAM_INFO:
        sid_count = r.count(MAX_GROUPS)
        sids_ref = r.u32() != 0
    extra_names = [r.counted_header() for _ in range(12)] if level == 6 else []
    # the pointees, in the order of their pointers (NDR deferral)
    texts = [r.counted_string(h) for h in names]
    groups: list[tuple[int, int]] = []
    if groups_ref:
        if r.count(MAX_GROUPS) != group_count:
            raise MalformedMessage("GroupIds conformance differs from GroupCount", offset=r.pos)
        groups = [(r.u32(), r.u32()) for _ in range(group_count)]
    server = r.counted_string(logon_server)
    domain = r.counted_string(logon_domain)
    domain_sid = r.sid() if domain_sid_ref else None
    extra: list[tuple[str, int]] = []
    if sids_ref:
        if r.count(MAX_GROUPS) != sid_count:
            raise MalformedMessage("ExtraSids conformance differs from SidCount", offset=r.pos)
        entries = [(r.u32() != 0, r.u32()) for _ in range(sid_count)]
        extra = [(r.sid() if present else "", attributes) for present, attributes in entries]
    more = [r.counted_string(h) for h in extra_names]
    return Validation(
        texts[0], texts[1], user_id, primary_group, tuple(groups), user_flags, session_key, server, domain,
        domain_sid, tuple(extra), more[0] if more else "", more[1] if more else "",
    )


def logon_sam_logon_ex_response(stub: bytes, level: int) -> SamLogonResult:
    """ValidationInformation (a NETLOGON_VALIDATION union), Authoritative, ExtraFlags, the status."""
    r = NdrReader(stub)
    return _sam_logon_result(r, level)


def logon_sam_logon_with_flags_response(
    stub: bytes, level: int
) -> tuple[Authenticator | None, SamLogonResult]:
    """The ReturnAuthenticator (a unique pointer), then what NetrLogonSamLogonEx returns."""
    r = NdrReader(stub)
    returned = Authenticator.read(r) if r.u32() != 0 else None
    return returned, _sam_logon_result(r, level)


def _sam_logon_result(r: NdrReader, level: int) -> SamLogonResult:
    tag = r.u16()
    present = r.u32() != 0
    validation = None
    if present:
        if tag != level:
            raise MalformedMessage(f"validation level {tag} where {level} was asked", offset=0)
        validation = _validation(r, level)
    authoritative = r.u8()
    extra_flags = r.u32()
    status = r.u32()
    r.done()
    return SamLogonResult(status, validation, authoritative, extra_flags)
