"""The client's NEGOTIATE (MS-SMB2 3.2.4.2.2.2, 3.2.5.2) on smb2/policy.py, and the
FSCTL_VALIDATE_NEGOTIATE_INFO that confirms it on 3.0 / 3.0.2 (3.2.5.5, 3.2.5.14.12)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from smb2auth.client.errors import NegotiateDowngradeError, Smb2ClientError
from smb2auth.errors import MalformedMessage
from smb2auth.smb2 import policy
from smb2auth.smb2.header import Smb2Header
from smb2auth.smb2.ioctl import (
    FSCTL_VALIDATE_NEGOTIATE_INFO,
    IoctlRequest,
    IoctlResponse,
    ValidateNegotiateInfoRequest,
    ValidateNegotiateInfoResponse,
)
from smb2auth.smb2.negotiate import (
    Capabilities,
    Dialect,
    NegotiateRequest,
    NegotiateResponse,
    SecurityMode,
    dialect_name,
)
from smb2auth.smb2.negotiate_contexts import NegotiateContext
from smb2auth.status import NtStatus

CLIENT_CAPABILITIES = Capabilities.DFS | Capabilities.LARGE_MTU | Capabilities.ENCRYPTION
_SIGNING_REQUIRED_MODE = SecurityMode.SIGNING_ENABLED | SecurityMode.SIGNING_REQUIRED
# The bits read off a NEGOTIATE response, as plain ints (IntFlag & IntFlag dispatches into Python).
_SIGNING_REQUIRED = int(SecurityMode.SIGNING_REQUIRED)
_LARGE_MTU = int(Capabilities.LARGE_MTU)
# MS-SMB2 3.2.5.5: the dialects whose NEGOTIATE is validated (3.1.1 has preauth integrity instead).
VALIDATED_DIALECTS = (Dialect.SMB3_0, Dialect.SMB3_0_2)
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


@dataclass(frozen=True)
class Offer:
    """What the client offers in its NEGOTIATE (checked by policy.check_offer)."""

    dialects: tuple[int, ...]
    ciphers: tuple[int, ...]
    signing_algorithms: tuple[int, ...]
    require_signing: bool
    server_name: str = ""

    def __post_init__(self) -> None:
        _check_offer(self.dialects, self.ciphers, self.signing_algorithms)


# Every connection of a program offers the same: each offer is checked once (a refused one raises each time).
_check_offer = functools.lru_cache(maxsize=32)(policy.check_offer)


def negotiate_request(
    offer: Offer, rng: Callable[[int], bytes]
) -> tuple[NegotiateRequest, ValidateNegotiateInfoRequest]:
    """MS-SMB2 3.2.4.2.2.2: the NEGOTIATE request, and what VALIDATE_NEGOTIATE_INFO repeats of it
    (2.2.31.4)."""
    contexts: tuple[NegotiateContext, ...] = ()
    guid = bytes(16)
    if max(offer.dialects) >= Dialect.SMB2_1:
        guid = rng(16)  # MS-SMB2 3.2.4.2.2.2: ClientGuid for 2.1 and later
    if Dialect.SMB3_1_1 in offer.dialects:
        salt = rng(policy.PREAUTH_SALT_SIZE)
        contexts = policy.request_contexts(salt, offer.ciphers, offer.signing_algorithms, offer.server_name)
    mode = _SIGNING_REQUIRED_MODE if offer.require_signing else SecurityMode.SIGNING_ENABLED
    request = NegotiateRequest(offer.dialects, mode, CLIENT_CAPABILITIES, guid, contexts)
    return request, ValidateNegotiateInfoRequest(CLIENT_CAPABILITIES, guid, mode, offer.dialects)


@dataclass(frozen=True)
class NegotiateOutcome:
    """What the client takes from a NEGOTIATE response (MS-SMB2 3.2.5.2)."""

    negotiated: policy.Negotiated
    server_signing_required: bool
    multi_credit: bool


def read_negotiate_response(
    response: NegotiateResponse, offer: Offer, require_encryption: bool
) -> NegotiateOutcome:
    """The server's answer checked against our offer; Smb2ClientError for one we refuse."""
    choice = policy.check_response(response, offer.dialects, offer.ciphers, offer.signing_algorithms)
    if isinstance(choice, policy.Refusal):
        raise Smb2ClientError(choice.status, choice.reason)
    dialect = choice.dialect
    if require_encryption and not choice.cipher:
        name = dialect_name(dialect)
        what = name if dialect < Dialect.SMB3_0 else f"{name} without a cipher"
        raise Smb2ClientError(
            NtStatus.STATUS_NOT_SUPPORTED,
            f"encryption required but not available (negotiated {what}; MS-SMB2 3.1.4.3 needs 3.x)",
        )
    return NegotiateOutcome(
        choice,
        # MS-SMB2 3.2.5.2: SMB2_NEGOTIATE_SIGNING_REQUIRED sets Connection.RequireSigning.
        server_signing_required=bool(int(response.security_mode) & _SIGNING_REQUIRED),
        # MS-SMB2 3.2.5.2: SupportsMultiCredit for 2.1 and later with SMB2_GLOBAL_CAP_LARGE_MTU.
        multi_credit=dialect >= Dialect.SMB2_1 and bool(int(response.capabilities) & _LARGE_MTU),
    )


def validate_negotiate_request(info: ValidateNegotiateInfoRequest) -> IoctlRequest:
    """MS-SMB2 2.2.31 / 2.2.31.4: FSCTL on no open, input = our NEGOTIATE, room for the 24-byte answer."""
    return IoctlRequest(
        FSCTL_VALIDATE_NEGOTIATE_INFO,
        info.pack(),
        max_output_response=ValidateNegotiateInfoResponse.SIZE,
    )


def check_validate_negotiate(
    header: Smb2Header,
    raw: bytes,
    body: bytes,
    encrypted: bool,
    verify: Callable[[bytes], bool],
    negotiate_response: NegotiateResponse,
) -> IoctlResponse | None:
    """MS-SMB2 3.2.5.14.12: the FSCTL_VALIDATE_NEGOTIATE_INFO answer; its IOCTL response when it confirms the
    NEGOTIATE, None when the server (signed) does not support it; NegotiateDowngradeError otherwise."""
    if not encrypted:
        if not header.is_signed:
            # MS-SMB2 3.2.5.14.12: neither signed nor encrypted -> terminate, whatever the status.
            raise NegotiateDowngradeError(
                f"unsigned FSCTL_VALIDATE_NEGOTIATE_INFO response ({NtStatus.name_of(header.status)})"
            )
        if not verify(raw):
            raise NegotiateDowngradeError("the response's signature does not verify")
    status = header.status
    if status in _VALIDATE_UNSUPPORTED:
        return None
    if status != NtStatus.STATUS_SUCCESS:
        # MS-SMB2 3.2.5.14.12: STATUS_ACCESS_DENIED terminates; so does any answer that does not confirm.
        raise NegotiateDowngradeError(f"server answered {NtStatus.name_of(status)}")
    try:
        ioctl = IoctlResponse.unpack(body)
        got = ValidateNegotiateInfoResponse.unpack(ioctl.output)
    except MalformedMessage as exc:
        raise NegotiateDowngradeError(f"malformed answer: {exc}") from None
    sent = negotiate_response
    # MS-SMB2 3.2.5.14.12: Capabilities, Guid, SecurityMode and Dialect as the NEGOTIATE response said.
    fields: Sequence[tuple[str, object, object]] = (
        ("Capabilities", int(got.capabilities), int(sent.capabilities)),
        ("ServerGuid", got.server_guid.hex(), sent.server_guid.hex()),
        ("SecurityMode", int(got.security_mode), int(sent.security_mode)),
        ("Dialect", got.dialect, sent.dialect_revision),
    )
    for name, answered, negotiated in fields:
        if answered != negotiated:
            raise NegotiateDowngradeError(
                f"{name} {answered!r} differs from the NEGOTIATE response's {negotiated!r}"
            )
    return ioctl
