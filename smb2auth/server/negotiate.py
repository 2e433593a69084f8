"""NEGOTIATE on the server (MS-SMB2 3.3.5.3, 3.3.5.4) and its check after the fact, the
FSCTL_VALIDATE_NEGOTIATE_INFO IOCTL (3.3.5.15.12): what a connection agreed on, chosen by smb2/policy.py."""

from __future__ import annotations

from dataclasses import dataclass, field

from smb2auth.errors import MalformedMessage
from smb2auth.ntlm.messages import unix_to_filetime
from smb2auth.server._reply import Disconnect, Reply
from smb2auth.server.context import ServerContext
from smb2auth.server.hostile import Hostile
from smb2auth.smb2 import policy
from smb2auth.smb2.crypto import PreauthIntegrity
from smb2auth.smb2.header import Command, CompoundPart, HeaderFlags, Smb2Header
from smb2auth.smb2.ioctl import (
    FSCTL_VALIDATE_NEGOTIATE_INFO,
    IoctlFlags,
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
    Smb1NegotiateRequest,
)
from smb2auth.smb2.negotiate_contexts import NegotiateContext, SigningAlgorithm
from smb2auth.status import NtStatus

__all__ = ["NegotiateState", "negotiate", "smb1_negotiate", "validate_negotiate_info"]


@dataclass(slots=True)
class NegotiateState:
    """MS-SMB2 3.3.1.7: what the connection's NEGOTIATE settled (Dialect 0 until then)."""

    dialect: int = 0
    client_guid: bytes = bytes(16)
    client_security_mode: SecurityMode = SecurityMode(0)
    client_capabilities: Capabilities = Capabilities(0)
    client_dialects: tuple[int, ...] = ()
    server_capabilities: Capabilities = Capabilities(0)
    signing_algorithm: int = SigningAlgorithm.AES_CMAC
    cipher: int = 0  # Connection.CipherId; 0: no encryption on this connection
    preauth: PreauthIntegrity | None = field(default=None)


def smb1_negotiate(ctx: ServerContext, negotiated: NegotiateState, data: bytes) -> tuple[bytes, bool]:
    """MS-SMB2 3.3.5.3.1: the SMB2 NEGOTIATE response to an SMB1 multi-protocol NEGOTIATE (MessageId 0, one
    credit), and whether 2.0.2 was chosen outright (else the 0x02FF wildcard: an SMB2 NEGOTIATE follows)."""
    try:
        request = Smb1NegotiateRequest.unpack(data)
    except MalformedMessage as exc:
        raise Disconnect(f"SMB1: {exc}") from None
    dialect = policy.select_smb1_upgrade_dialect(request, ctx.config.dialects)
    if dialect is None:
        # MS-SMB2 3.3.5.3.1: no SMB2 dialect offered and we do not speak SMB1.
        raise Disconnect("SMB1 NEGOTIATE offers no SMB2 dialect")
    chosen = dialect == Dialect.SMB2_0_2
    if chosen:
        negotiated.dialect = Dialect.SMB2_0_2
        negotiated.client_dialects = (Dialect.SMB2_0_2,)
        negotiated.signing_algorithm = policy.signing_algorithm_for(Dialect.SMB2_0_2)
    header = Smb2Header(Command.NEGOTIATE, HeaderFlags.SERVER_TO_REDIR, credit=1)
    cfg = ctx.config
    body = NegotiateResponse(
        dialect, ctx.security_mode, ctx.server_guid, Capabilities(0),
        *(cfg.max_transact_size,) * 3, unix_to_filetime(ctx.clock()), 0, ctx.initial_token,
    )
    return header.pack() + body.pack(), chosen


def negotiate(
    ctx: ServerContext,
    negotiated: NegotiateState,
    part: CompoundPart,
    reply: Reply,
    hostile: Hostile | None = None,
) -> bool:
    """MS-SMB2 3.3.5.4: answer an SMB2 NEGOTIATE into `reply`; True when a dialect was chosen."""
    if part.header.is_signed:
        # MS-SMB2 3.3.5.2.4: a signed NEGOTIATE fails with STATUS_INVALID_PARAMETER.
        reply.fail(NtStatus.STATUS_INVALID_PARAMETER)
        return False
    try:
        request = NegotiateRequest.unpack(part.body)
    except MalformedMessage as exc:
        reply.fail(exc.status)
        return False
    cfg = ctx.config
    dialects = cfg.dialects
    if hostile is not None:
        honest = policy.choose_dialect(dialects, request.dialects) or 0
        dialects = hostile.dialects(request.dialects, dialects, honest)
    choice = policy.choose(request, dialects, cfg.ciphers)
    if isinstance(choice, policy.Refusal):
        reply.fail(choice.status)
        return False
    dialect = choice.dialect
    contexts: tuple[NegotiateContext, ...] = ()
    if dialect == Dialect.SMB3_1_1:
        contexts = policy.response_contexts(request, choice, ctx.rng(policy.PREAUTH_SALT_SIZE))
    negotiated.dialect = dialect
    negotiated.signing_algorithm = choice.signing_algorithm
    negotiated.cipher = choice.cipher
    negotiated.server_capabilities = policy.server_capabilities(choice)
    negotiated.client_guid = request.client_guid
    negotiated.client_security_mode = request.security_mode
    negotiated.client_capabilities = request.capabilities
    negotiated.client_dialects = request.dialects
    response = NegotiateResponse(
        dialect, ctx.security_mode, ctx.server_guid, negotiated.server_capabilities,
        cfg.max_transact_size, cfg.max_transact_size, cfg.max_transact_size,
        unix_to_filetime(ctx.clock()), 0, ctx.initial_token, contexts,
    )
    reply.body = response.pack()
    if dialect == Dialect.SMB3_1_1:
        request_bytes = part.raw

        def chain(message: bytes) -> None:
            # MS-SMB2 3.3.5.4: the connection's preauth hash covers NEGOTIATE request and response.
            negotiated.preauth = PreauthIntegrity().add(request_bytes).add(message)

        reply.after = chain
    return True


def validate_negotiate_info(
    ctx: ServerContext,
    negotiated: NegotiateState,
    part: CompoundPart,
    reply: Reply,
    hostile: Hostile | None = None,
) -> Reply:
    """MS-SMB2 3.3.5.15.12: FSCTL_VALIDATE_NEGOTIATE_INFO, the one IOCTL the harness serves."""
    # MS-SMB2 3.3.5.15: StructureSize and buffer bounds first (STATUS_INVALID_PARAMETER, via the caller).
    request = IoctlRequest.unpack(part.body)
    if request.ctl_code != FSCTL_VALIDATE_NEGOTIATE_INFO or request.flags != IoctlFlags.IS_FSCTL:
        # The harness has no files or pipes: other IOCTLs are not supported.
        return reply.fail(NtStatus.STATUS_NOT_SUPPORTED)
    if negotiated.dialect == Dialect.SMB3_1_1:
        # MS-SMB2 3.3.5.15.12: on 3.1.1 (preauth integrity instead) the server terminates the connection.
        raise Disconnect("FSCTL_VALIDATE_NEGOTIATE_INFO on a 3.1.1 connection")
    info = ValidateNegotiateInfoRequest.unpack(request.input)
    if request.max_output_response < ValidateNegotiateInfoResponse.SIZE:
        # MS-SMB2 3.3.5.15.12: output buffer too small.
        return reply.fail(NtStatus.STATUS_INVALID_PARAMETER)
    # server/hostile.py's downgrade: the answer names the dialect the NEGOTIATE should have chosen.
    answered = hostile.validate_negotiate(ctx.monotonic()) if hostile is not None else None
    chosen = policy.choose_dialect(ctx.config.dialects, info.dialects)
    if (
        info.capabilities != negotiated.client_capabilities
        or info.client_guid != negotiated.client_guid
        or info.security_mode != negotiated.client_security_mode
        or (answered is None and chosen != negotiated.dialect)
    ):
        # MS-SMB2 3.3.5.15.12: anything differing from the NEGOTIATE drops the connection.
        raise Disconnect("FSCTL_VALIDATE_NEGOTIATE_INFO does not match the NEGOTIATE")
    output = ValidateNegotiateInfoResponse(
        Capabilities(negotiated.server_capabilities),
        ctx.server_guid,
        SecurityMode(ctx.security_mode),
        negotiated.dialect if answered is None else answered,
    )
    reply.body = IoctlResponse(request.ctl_code, output.pack(), request.file_id).pack()
    return reply
