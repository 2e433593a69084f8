"""The secure channel of a member server (MS-NRPC 3.1.4) and the schannel-bound RPC associations that
share it: established once with NetrServerReqChallenge + NetrServerAuthenticate3 (AES), then any number of
associations bound with the Netlogon SSP on its session key, each carrying one call at a time."""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from smb2auth.authority.netlogon import epm, nrpc
from smb2auth.authority.netlogon.credentials import (
    CLIENT_FLAGS,
    NegotiateFlags,
    compute_netlogon_credential_aes,
    compute_session_key_aes,
)
from smb2auth.authority.netlogon.pipe import PipeStream
from smb2auth.authority.netlogon.rpc import RpcConnection, RpcError
from smb2auth.authority.netlogon.schannel import SchannelContext
from smb2auth.errors import Smb2AuthError
from smb2auth.status import NtStatus

log = logging.getLogger("smb2auth.authority.netlogon")


class SecureChannelError(Smb2AuthError):
    """The DC would not set up a secure channel: `status` is its NTSTATUS, when it gave one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Endpoint:
    """A DC: its address and port. Over TCP the Netlogon port (None: ask its endpoint mapper); over a
    named pipe ("np") the SMB port (None: 445)."""

    host: str
    port: int | None = None
    transport: str = "tcp"

    def __post_init__(self) -> None:
        if self.transport not in ("tcp", "np"):
            raise ValueError(f"transport {self.transport!r}: tcp or np")

    def __str__(self) -> str:
        return f"{self.host}:{self.port}" if self.port else self.host


@dataclass
class SecureChannel:
    """An established channel: where, the session key and what the DC agreed to."""

    endpoint: Endpoint
    port: int
    session_key: bytes = field(repr=False)
    login: SmbLogin
    flags: NegotiateFlags = field(repr=False)
    account_rid: int
    generation: int
    # MS-NRPC 3.1.4.5: the credential sent in NetrServerAuthenticate3 seeds the authenticator chain
    client_credential: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class SmbLogin:
    """Who ncacn_np logs into the DC's IPC$ as: the machine account itself."""

    username: str
    password: str = field(repr=False)
    domain: str


async def open_association(endpoint: Endpoint, port: int, login: SmbLogin) -> RpcConnection:
    if endpoint.transport == "np":
        return RpcConnection(await PipeStream.open(endpoint.host, port, login.username, login.password,
                                                   login.domain))
    return await RpcConnection.open(endpoint.host, port)


def _status_name(status: int) -> str:
    return NtStatus.name_of(status)


async def netlogon_port(endpoint: Endpoint) -> int:
    """The Netlogon TCP port: given, or from the DC's endpoint mapper (ept_map on 135)."""
    if endpoint.port is not None:
        return endpoint.port
    if endpoint.transport == "np":
        return 445
    conn = await RpcConnection.open(endpoint.host, epm.EPM_PORT)
    try:
        await conn.bind(epm.EPM_INTERFACE)
        status, towers = epm.ept_map_response(
            await conn.call(epm.EPT_MAP, epm.ept_map_request(nrpc.NETLOGON_INTERFACE)))
    finally:
        conn.close()
    ports = [p for p in map(epm.tower_tcp_port, towers) if p]
    if status != 0 or not ports:
        raise SecureChannelError(f"{endpoint.host}'s endpoint mapper has no Netlogon port (0x{status:08X})")
    return ports[0]


async def establish(
    endpoint: Endpoint, primary: str, machine: str, nt_hash: bytes, generation: int, login: SmbLogin,
    rng: Callable[[int], bytes] = os.urandom,
) -> SecureChannel:
    """MS-NRPC 3.1.4.1: challenges, the AES session key, both credentials checked."""
    port = await netlogon_port(endpoint)
    conn = await open_association(endpoint, port, login)
    try:
        await conn.bind(nrpc.NETLOGON_INTERFACE)
        client_challenge = rng(8)
        status, server_challenge = nrpc.server_req_challenge_response(
            await conn.call(nrpc.NETR_SERVER_REQ_CHALLENGE,
                            nrpc.server_req_challenge(primary, machine, client_challenge)))
        if status != 0:
            raise SecureChannelError(f"NetrServerReqChallenge: {_status_name(status)}", status)
        session_key = compute_session_key_aes(nt_hash, client_challenge, server_challenge)
        credential = compute_netlogon_credential_aes(client_challenge, session_key)
        answer = nrpc.server_authenticate3_response(
            await conn.call(nrpc.NETR_SERVER_AUTHENTICATE3,
                            nrpc.server_authenticate3(primary, f"{machine}$", machine, credential,
                                                      CLIENT_FLAGS)))
    finally:
        conn.close()
    if answer.status == NtStatus.STATUS_ACCESS_DENIED:
        raise SecureChannelError(
            f"{endpoint}: NetrServerAuthenticate3 refused {machine}$ (STATUS_ACCESS_DENIED): the DC does not "
            "hold this machine password", answer.status)
    if answer.status == NtStatus.STATUS_DOWNGRADE_DETECTED:
        raise SecureChannelError(
            f"{endpoint}: the DC refused the channel's flags (STATUS_DOWNGRADE_DETECTED)", answer.status)
    if answer.status != 0:
        raise SecureChannelError(f"{endpoint}: NetrServerAuthenticate3: {_status_name(answer.status)}",
                                 answer.status)
    flags = NegotiateFlags(answer.flags)
    # MS-NRPC 3.1.4.2: we speak only AES; a DC that strips the bit gets no channel from us
    if not flags & NegotiateFlags.NETLOGON_NEG_SUPPORTS_AES:
        raise SecureChannelError(f"{endpoint}: the DC does not offer AES (flags 0x{answer.flags:08X})")
    # MS-NRPC 3.1.4.1 step 5: the server's credential proves it holds the same key
    if not hmac.compare_digest(answer.server_credential,
                               compute_netlogon_credential_aes(server_challenge, session_key)):
        raise SecureChannelError(f"{endpoint}: the DC's server credential does not verify")
    log.info("secure channel to %s port %d as %s$: flags 0x%08X, account RID %d", endpoint, port, machine,
             answer.flags, answer.account_rid)
    return SecureChannel(endpoint, port, session_key, login, flags, answer.account_rid, generation,
                         credential)


async def bind_schannel(
    channel: SecureChannel, domain: str, machine: str, rng: Callable[[int], bytes] = os.urandom
) -> RpcConnection:
    """MS-NRPC 3.3.4.2 / 3.3.4.1: a new association bound with the Netlogon SSP, AES, sealed."""
    conn = await open_association(channel.endpoint, channel.port, channel.login)
    try:
        context = SchannelContext(channel.session_key, rng)
        await conn.bind(nrpc.NETLOGON_INTERFACE, context, domain, machine)
    except BaseException:
        conn.close()
        raise
    return conn


__all__ = ["Endpoint", "RpcError", "SecureChannel", "SecureChannelError", "SmbLogin", "bind_schannel",
           "establish", "netlogon_port", "open_association"]
