"""NetlogonAuthority: NTLM network logons validated by an Active Directory DC (MS-APDS 3.1.5.1 through
MS-NRPC NetrLogonSamLogonEx), the way a domain member's smbd passes them through.

One secure channel is shared by every logon (NetrLogonSamLogonEx needs no authenticator chain); it is
carried by up to `connections` schannel-bound associations, one call at a time each. A dead association
is replaced, a channel the DC no longer knows (ACCESS_DENIED) is established again, the next DC of the
list is tried when one does not answer, and every logon is bounded by `call_timeout`: past it, or with no
DC reachable, the logon fails with STATUS_NO_LOGON_SERVERS, as smbd's does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from smb2auth.authority.netlogon import nrpc
from smb2auth.authority.netlogon.channel import (
    Endpoint,
    SecureChannel,
    SecureChannelError,
    SmbLogin,
    bind_schannel,
    establish,
)
from smb2auth.authority.netlogon.credentials import decrypt_user_session_key, machine_nt_hash
from smb2auth.authority.netlogon.rpc import RpcConnection, RpcError
from smb2auth.authority.netlogon.schannel import SchannelError
from smb2auth.errors import MalformedMessage
from smb2auth.ntlm.authority import Account, AsyncAuthority, ValidationRequest, ValidationResult
from smb2auth.ntlm.server import TargetInfo
from smb2auth.status import NtStatus

log = logging.getLogger("smb2auth.authority.netlogon")

_UNREACHABLE = (OSError, asyncio.IncompleteReadError, EOFError)
_BROKEN = (*_UNREACHABLE, RpcError, SchannelError, MalformedMessage)
# RPC faults that mean the DC no longer accepts our channel (MS-RPCE 2.2.2.11 / MS-NRPC 3.3.4.2.2)
_CHANNEL_REFUSED = {NtStatus.STATUS_ACCESS_DENIED, 0x00000005, 0x00000721}


def parse_endpoint(text: str, transport: str = "tcp") -> Endpoint:
    """DC_HOST[:PORT] (an IPv6 address in brackets)."""
    host, sep, port = text.rpartition(":") if not text.endswith("]") else (text, "", "")
    if not sep or "]" in port:
        host, port = text, ""
    host = host.strip("[]")
    if not host:
        raise ValueError(f"no DC host in {text!r}")
    return Endpoint(host, int(port) if port else None, transport)


@dataclass(frozen=True)
class NetlogonConfig:
    """Where the DCs are and who we are to them: the machine account NAME$ and its password."""

    dcs: tuple[Endpoint, ...]
    machine: str
    machine_password: str = field(repr=False)
    domain: str
    dns_domain: str = ""
    # SAM_INFO4: the DC sends the UserSessionKey inside the sealed PDU alone. At levels 2/3 it encrypts it
    # with the account's *current* channel key, so on an association bound before another server replaced
    # our channel (Samba keeps serving it) the key decrypts to garbage without any error.
    validation_level: nrpc.ValidationLevel = nrpc.ValidationLevel.NETLOGON_VALIDATION_SAM_INFO4
    call_timeout: float = 10.0
    connect_timeout: float = 3.0
    connections: int = 4

    def __post_init__(self) -> None:
        if not self.dcs:
            raise ValueError("at least one DC is needed")
        if self.machine.endswith("$"):
            raise ValueError("the machine account is named without its trailing $")
        if self.connections < 1:
            raise ValueError("at least one connection is needed")


def netlogon_target_info(config: NetlogonConfig) -> TargetInfo:
    """The CHALLENGE's names: the DC checks that MsvAvNbComputerName is the secure channel's machine and
    MsvAvNbDomainName the domain (MS-APDS 3.1.5.1.1 / Samba's NTLMv2 target check)."""
    dns_computer = f"{config.machine.lower()}.{config.dns_domain}" if config.dns_domain else ""
    return TargetInfo(nb_domain=config.domain.upper(), nb_computer=config.machine.upper(),
                      dns_domain=config.dns_domain, dns_computer=dns_computer, dns_tree=config.dns_domain)


class NoLogonServers(Exception):
    """No DC of the list could be reached or would give us a channel."""


class NetlogonAuthority(AsyncAuthority):
    def __init__(self, config: NetlogonConfig, rng: Callable[[int], bytes] = os.urandom) -> None:
        self.config = config
        self._nt_hash = machine_nt_hash(config.machine_password)
        self._rng = rng
        self._login = SmbLogin(f"{config.machine.upper()}$", config.machine_password, config.domain.upper())
        self._channel: SecureChannel | None = None
        self._generation = 0
        self._dc_index = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: list[tuple[int, RpcConnection]] = []
        self._slots: asyncio.Semaphore | None = None
        self._setup: asyncio.Lock | None = None
        self.stats = {"channels": 0, "associations": 0, "retries": 0}

    def __repr__(self) -> str:
        dcs = ",".join(map(str, self.config.dcs))
        return f"NetlogonAuthority(dcs={dcs}, machine={self.config.machine}$, domain={self.config.domain})"

    @property
    def channel(self) -> SecureChannel | None:
        return self._channel

    def target_info(self) -> TargetInfo:
        return netlogon_target_info(self.config)

    def _bind_loop(self) -> None:
        """Associations and locks belong to one event loop; a new loop keeps the channel, not them."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            for _, conn in self._idle:
                with contextlib.suppress(RuntimeError):  # its loop may be closed already
                    conn.close()
            self._idle = []
            self._loop = loop
            self._slots = asyncio.Semaphore(self.config.connections)
            self._setup = asyncio.Lock()

    async def start(self) -> SecureChannel:
        """Set up the secure channel now; a wrong machine password or a DC without AES raises
        SecureChannelError, naming what the DC answered."""
        self._bind_loop()
        channel = await asyncio.wait_for(self._establish(None, strict=True), self.config.call_timeout)
        conn = await asyncio.wait_for(self._bind(channel), self.config.call_timeout)
        self._idle.append((channel.generation, conn))
        return channel

    def start_sync(self) -> SecureChannel:
        """`start` from synchronous code, in an event loop of its own: the channel stays, its association
        is closed (the logons' loop binds its own)."""

        async def run() -> SecureChannel:
            try:
                return await self.start()
            finally:
                await self.close()

        return asyncio.run(run())

    async def close(self) -> None:
        for _, conn in self._idle:
            conn.close()
        self._idle = []

    async def _establish(self, stale: SecureChannel | None, strict: bool = False) -> SecureChannel:
        assert self._setup is not None
        async with self._setup:
            if self._channel is not None and self._channel is not stale:
                return self._channel  # another logon re-established it while we waited
            errors = []
            dcs = self.config.dcs
            for step in range(len(dcs)):
                index = (self._dc_index + step) % len(dcs)
                endpoint = dcs[index]
                try:
                    self._generation += 1
                    channel = await asyncio.wait_for(
                        establish(endpoint, f"\\\\{endpoint.host}", self.config.machine.upper(),
                                  self._nt_hash, self._generation, self._login, self._rng),
                        self.config.connect_timeout * 2)
                except SecureChannelError as exc:
                    if strict:
                        raise
                    errors.append(f"{endpoint}: {exc}")
                    log.warning("no secure channel with %s: %s", endpoint, exc)
                    continue
                except (*_BROKEN, asyncio.TimeoutError) as exc:
                    if strict and len(dcs) == 1:
                        raise SecureChannelError(f"{endpoint}: unreachable ({exc!r})") from exc
                    errors.append(f"{endpoint}: {exc!r}")
                    log.warning("DC %s unreachable: %r", endpoint, exc)
                    continue
                self._dc_index = index
                self._channel = channel
                self.stats["channels"] += 1
                return channel
            self._channel = None
            raise NoLogonServers("; ".join(errors))

    async def _bind(self, channel: SecureChannel) -> RpcConnection:
        conn = await asyncio.wait_for(bind_schannel(channel, self.config.domain.upper(),
                                                    self.config.machine.upper(), self._rng),
                                      self.config.connect_timeout)
        self.stats["associations"] += 1
        return conn

    async def validate(self, request: ValidationRequest) -> ValidationResult:
        self._bind_loop()
        try:
            return await asyncio.wait_for(self._validate(request), self.config.call_timeout)
        except asyncio.TimeoutError:
            log.warning("logon of %s\\%s: no DC answered within %.1fs", request.domain, request.username,
                        self.config.call_timeout)
            return ValidationResult.failure(NtStatus.STATUS_NO_LOGON_SERVERS,
                                            f"no DC answered within {self.config.call_timeout}s")
        except NoLogonServers as exc:
            return ValidationResult.failure(NtStatus.STATUS_NO_LOGON_SERVERS, f"no DC reachable: {exc}")

    async def _validate(self, request: ValidationRequest) -> ValidationResult:
        level = self.config.validation_level
        logon = nrpc.NetworkLogon(request.domain, request.username, request.workstation,
                                  request.server_challenge, request.nt_response, request.lm_response)
        assert self._slots is not None
        last: Exception | None = None
        async with self._slots:
            for _attempt in range(3):
                channel = self._channel or await self._establish(None)
                conn = self._take_idle(channel)
                try:
                    if conn is None:
                        conn = await self._bind(channel)
                    stub = await conn.call(
                        nrpc.NETR_LOGON_SAM_LOGON_EX,
                        nrpc.logon_sam_logon_ex(f"\\\\{channel.endpoint.host}", self.config.machine.upper(),
                                                logon, level))
                    answer = nrpc.logon_sam_logon_ex_response(stub, level)
                except _BROKEN as exc:
                    if conn is not None:
                        conn.close()
                    for _, idle in self._idle:  # a DC that dropped one association dropped them all
                        idle.close()
                    self._idle = []
                    last = exc
                    self.stats["retries"] += 1
                    refused = isinstance(exc, RpcError) and exc.status in _CHANNEL_REFUSED
                    if refused or isinstance(exc, (SchannelError, RpcError)) or conn is None:
                        # the DC refused the bind or the call, or is gone: a new channel (next DC if need be)
                        log.info("secure channel with %s dropped: %r", channel.endpoint, exc)
                        await self._establish(channel)
                    continue
                self._idle.append((channel.generation, conn))
                if answer.status == NtStatus.STATUS_ACCESS_DENIED:
                    # MS-NRPC 3.5.4.5.1: the DC no longer knows our channel (it was replaced): set it up again
                    last = RpcError("NetrLogonSamLogonEx: STATUS_ACCESS_DENIED", answer.status)
                    self.stats["retries"] += 1
                    await self._establish(channel)
                    continue
                return self._result(request, answer, channel)
        raise NoLogonServers(f"logon failed after re-establishing the channel: {last!r}")

    def _take_idle(self, channel: SecureChannel) -> RpcConnection | None:
        while self._idle:
            generation, conn = self._idle.pop()
            if generation == channel.generation and not conn.closed:
                return conn
            conn.close()
        return None

    def _result(self, request: ValidationRequest, answer: nrpc.SamLogonResult,
                channel: SecureChannel) -> ValidationResult:
        if answer.status != NtStatus.STATUS_SUCCESS:
            try:
                status = NtStatus(answer.status)
            except ValueError:
                status = NtStatus.STATUS_LOGON_FAILURE
            return ValidationResult.failure(
                status, f"DC {channel.endpoint}: {NtStatus.name_of(answer.status)} for "
                        f"{request.domain}\\{request.username}")
        v = answer.validation
        if v is None:
            return ValidationResult.failure(NtStatus.STATUS_INTERNAL_ERROR, "DC succeeded without validation")
        key = v.user_session_key
        if self.config.validation_level != nrpc.ValidationLevel.NETLOGON_VALIDATION_SAM_INFO4:
            key = decrypt_user_session_key(channel.session_key, key)
        domain_sid = v.logon_domain_id
        groups: list[str] = []
        if domain_sid:
            groups += [f"{domain_sid}-{rid}" for rid, _ in v.group_ids]
        groups += [sid for sid, _ in v.extra_sids if sid and sid not in groups]
        account = Account(
            username=v.effective_name or request.username,
            domain=v.logon_domain_name or self.config.domain,
            sid=f"{domain_sid}-{v.user_id}" if domain_sid else None,
            groups=tuple(groups),
        )
        return ValidationResult.success(account, key)


def netlogon_authority(
    dcs: Sequence[str], machine: str, machine_password: str, domain: str, dns_domain: str = "",
    transport: str = "tcp", **options: object,
) -> NetlogonAuthority:
    """Build an authority from DC_HOST[:PORT] strings; `transport` "tcp" (ncacn_ip_tcp) or "np"."""
    config = NetlogonConfig(tuple(parse_endpoint(d, transport) for d in dcs), machine.rstrip("$"),
                            machine_password, domain, dns_domain, **options)  # type: ignore[arg-type]
    return NetlogonAuthority(config)
