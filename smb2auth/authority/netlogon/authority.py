"""NetlogonAuthority: NTLM network logons validated by an Active Directory DC (MS-APDS 3.1.5.1 through
MS-NRPC NetrLogonSamLogonEx or NetrLogonSamLogonWithFlags), the way a domain member's smbd passes them
through.

Each DC of the list that answers gets one secure channel (a DC keeps one per machine account, so a second
channel to the same DC would replace the first: channels spread over distinct DCs only). A logon goes to the
live channel with the fewest logons in flight, round robin among equals. A channel is shared by every logon
sent through it: NetrLogonSamLogonEx needs no authenticator chain and runs on up to `connections`
schannel-bound associations at once; NetrLogonSamLogonWithFlags steps the channel's authenticator chain, so
its calls on one channel go one at a time. A dead association is replaced, a channel the DC no longer knows
(ACCESS_DENIED, a broken chain) is established again, a DC that stops answering loses its channel and is
tried again in the background after `retry_interval`, and every logon is bounded by `call_timeout`: past it,
or with no DC reachable, the logon fails with STATUS_NO_LOGON_SERVERS, as smbd's does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
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
from smb2auth.authority.netlogon.credentials import (
    AuthenticatorChain,
    AuthenticatorChainError,
    decrypt_user_session_key,
    machine_nt_hash,
)
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
# faults of a DC that does not implement the opnum (C706 nca_s_op_rng_error, MS-RPCE 2.2.2.11)
_OPNUM_REFUSED = {0x1C010002, 0x000006D1, 0xC002002E}
LOGON_CALLS = ("auto", "ex", "with-flags")


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
    # "ex": NetrLogonSamLogonEx; "with-flags": NetrLogonSamLogonWithFlags and its authenticator chain;
    # "auto": Ex, and WithFlags on a DC that does not implement Ex
    logon_call: str = "auto"
    # how long a DC that did not answer is left alone before a channel to it is tried again
    retry_interval: float = 30.0

    def __post_init__(self) -> None:
        if not self.dcs:
            raise ValueError("at least one DC is needed")
        if self.machine.endswith("$"):
            raise ValueError("the machine account is named without its trailing $")
        if self.connections < 1:
            raise ValueError("at least one connection is needed")
        if self.logon_call not in LOGON_CALLS:
            raise ValueError(f"logon call {self.logon_call!r}: one of {', '.join(LOGON_CALLS)}")


def netlogon_target_info(config: NetlogonConfig) -> TargetInfo:
    """The CHALLENGE's names: the DC checks that MsvAvNbComputerName is the secure channel's machine and
    MsvAvNbDomainName the domain (MS-APDS 3.1.5.1.1 / Samba's NTLMv2 target check)."""
    dns_computer = f"{config.machine.lower()}.{config.dns_domain}" if config.dns_domain else ""
    return TargetInfo(nb_domain=config.domain.upper(), nb_computer=config.machine.upper(),
                      dns_domain=config.dns_domain, dns_computer=dns_computer, dns_tree=config.dns_domain)


class NoLogonServers(Exception):
    """No DC of the list could be reached or would give us a channel."""


class _DcLink:
    """One DC of the list: its secure channel when it has one, and what the logons through it share. The
    channel outlives an event loop; the associations, locks and the semaphore belong to one."""

    def __init__(self, index: int, endpoint: Endpoint, with_flags: bool) -> None:
        self.index = index
        self.endpoint = endpoint
        self.channel: SecureChannel | None = None
        self.chain: AuthenticatorChain | None = None
        self.with_flags = with_flags
        self.busy = 0
        self.retry_at = 0.0
        self.task: asyncio.Task[None] | None = None
        self.idle: list[tuple[int, RpcConnection]] = []
        self.slots = asyncio.Semaphore(1)
        self.chain_lock = asyncio.Lock()
        self.setup = asyncio.Lock()

    def new_loop(self, connections: int) -> None:
        self.close_idle()
        self.task = None
        self.slots = asyncio.Semaphore(connections)
        self.chain_lock = asyncio.Lock()
        self.setup = asyncio.Lock()

    def close_idle(self) -> None:
        for _, conn in self.idle:
            with contextlib.suppress(RuntimeError):  # its loop may be closed already
                conn.close()
        self.idle = []

    def take_idle(self, channel: SecureChannel) -> RpcConnection | None:
        while self.idle:
            generation, conn = self.idle.pop()
            if generation == channel.generation and not conn.closed:
                return conn
            conn.close()
        return None


class NetlogonAuthority(AsyncAuthority):
    def __init__(self, config: NetlogonConfig, rng: Callable[[int], bytes] = os.urandom) -> None:
        self.config = config
        self._nt_hash = machine_nt_hash(config.machine_password)
        self._rng = rng
        self._login = SmbLogin(f"{config.machine.upper()}$", config.machine_password, config.domain.upper())
        with_flags = config.logon_call == "with-flags"
        self._links = [_DcLink(i, dc, with_flags) for i, dc in enumerate(config.dcs)]
        self._generation = 0
        self._cursor = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._setup: asyncio.Lock | None = None
        self.stats = {"channels": 0, "associations": 0, "retries": 0}
        self.logons = {str(dc): 0 for dc in config.dcs}  # answered calls, per DC

    def __repr__(self) -> str:
        dcs = ",".join(map(str, self.config.dcs))
        return f"NetlogonAuthority(dcs={dcs}, machine={self.config.machine}$, domain={self.config.domain})"

    @property
    def channel(self) -> SecureChannel | None:
        """The first DC's channel of those that have one."""
        return next((link.channel for link in self._links if link.channel is not None), None)

    @property
    def channels(self) -> list[SecureChannel]:
        return [link.channel for link in self._links if link.channel is not None]

    def target_info(self) -> TargetInfo:
        return netlogon_target_info(self.config)

    def _bind_loop(self) -> None:
        """Associations and locks belong to one event loop; a new loop keeps the channels, not them."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            for link in self._links:
                link.new_loop(self.config.connections)
            self._loop = loop
            self._setup = asyncio.Lock()

    async def start(self) -> SecureChannel:
        """Set up a secure channel with every DC of the list now, at once; a wrong machine password or a
        DC without AES raises SecureChannelError, naming what the DC answered, as does a list of DCs none of
        which answers."""
        self._bind_loop()
        outcomes = await asyncio.gather(
            *(asyncio.wait_for(self._establish(link), self.config.call_timeout) for link in self._links),
            return_exceptions=True)
        unreachable = []
        for link, outcome in zip(self._links, outcomes, strict=True):
            if isinstance(outcome, SecureChannelError):
                raise outcome
            if isinstance(outcome, (*_BROKEN, asyncio.TimeoutError)):
                unreachable.append(f"{link.endpoint}: unreachable ({outcome!r})")
            elif isinstance(outcome, BaseException):
                raise outcome
        live = [link for link in self._links if link.channel is not None]
        if not live:
            raise SecureChannelError("; ".join(unreachable))
        link = live[0]
        assert link.channel is not None
        conn = await asyncio.wait_for(self._bind(link.channel), self.config.call_timeout)
        link.idle.append((link.channel.generation, conn))
        return link.channel

    def start_sync(self) -> SecureChannel:
        """`start` from synchronous code, in an event loop of its own: the channels stay, their
        associations are closed (the logons' loop binds its own)."""

        async def run() -> SecureChannel:
            try:
                return await self.start()
            finally:
                await self.close()

        return asyncio.run(run())

    async def close(self) -> None:
        for link in self._links:
            if link.task is not None:
                link.task.cancel()
                link.task = None
            link.close_idle()

    async def _establish(self, link: _DcLink, stale: SecureChannel | None = None) -> SecureChannel:
        """A new secure channel with this DC (MS-NRPC 3.1.4), unless another logon made one while we
        waited. SecureChannelError when the DC refuses; the transport's errors when it does not answer,
        after which the DC is left alone for `retry_interval`."""
        async with link.setup:
            if link.channel is not None and link.channel is not stale:
                return link.channel
            link.channel = None
            link.chain = None
            link.close_idle()
            self._generation += 1
            try:
                channel = await asyncio.wait_for(
                    establish(link.endpoint, f"\\\\{link.endpoint.host}", self.config.machine.upper(),
                              self._nt_hash, self._generation, self._login, self._rng),
                    self.config.connect_timeout * 2)
            except BaseException:
                link.retry_at = asyncio.get_running_loop().time() + self.config.retry_interval
                raise
            link.channel = channel
            link.chain = AuthenticatorChain(channel.session_key, channel.client_credential)
            self.stats["channels"] += 1
            return channel

    async def _establish_any(self) -> _DcLink:
        """No DC has a channel: try each in turn, from the one after the last used, until one gives one."""
        assert self._setup is not None
        async with self._setup:
            for link in self._links:
                if link.channel is not None:
                    return link  # another logon got one while we waited
            errors = []
            count = len(self._links)
            for step in range(count):
                link = self._links[(self._cursor + step) % count]
                try:
                    await self._establish(link)
                except SecureChannelError as exc:
                    errors.append(f"{link.endpoint}: {exc}")
                    log.warning("no secure channel with %s: %s", link.endpoint, exc)
                    continue
                except (*_BROKEN, asyncio.TimeoutError) as exc:
                    errors.append(f"{link.endpoint}: {exc!r}")
                    log.warning("DC %s unreachable: %r", link.endpoint, exc)
                    continue
                self._cursor = link.index
                return link
            raise NoLogonServers("; ".join(errors))

    def _spread(self, now: float) -> None:
        """DCs without a channel whose rest is over get one in the background (MS-NRPC 3.1.4: each DC
        keeps its own channel for our machine account)."""
        for link in self._links:
            if link.channel is None and link.task is None and link.retry_at <= now:
                link.task = asyncio.create_task(self._establish_in_background(link))

    async def _establish_in_background(self, link: _DcLink) -> None:
        try:
            await self._establish(link)
            log.info("secure channel with %s: logons spread over %d DCs", link.endpoint, len(self.channels))
        except (SecureChannelError, *_BROKEN, asyncio.TimeoutError) as exc:
            log.info("DC %s still without a channel: %r", link.endpoint, exc)
        finally:
            link.task = None

    async def _pick(self) -> _DcLink:
        """The live channel with the fewest logons in flight, round robin among equals."""
        live = [link for link in self._links if link.channel is not None]
        if len(live) < len(self._links):
            assert self._loop is not None
            self._spread(self._loop.time())
        if not live:
            return await self._establish_any()
        count = len(self._links)
        link = min(live, key=lambda lk: (lk.busy, (lk.index - self._cursor) % count))
        self._cursor = (link.index + 1) % count
        return link

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
        logon = nrpc.NetworkLogon(request.domain, request.username, request.workstation,
                                  request.server_challenge, request.nt_response, request.lm_response)
        last: Exception | None = None
        for _attempt in range(2 + len(self._links)):
            link = await self._pick()
            link.busy += 1
            try:
                async with link.slots:
                    outcome = await self._call_once(link, logon)
            finally:
                link.busy -= 1
            if isinstance(outcome, Exception):
                last = outcome
                self.stats["retries"] += 1
                continue
            answer, channel = outcome
            self.logons[str(link.endpoint)] += 1
            return self._result(request, answer, channel)
        raise NoLogonServers(f"logon failed after re-establishing the channel: {last!r}")

    async def _call_once(self, link: _DcLink, logon: nrpc.NetworkLogon
                         ) -> tuple[nrpc.SamLogonResult, SecureChannel] | Exception:
        """One try on this DC: the answer, or what went wrong after the link was put right for the next
        try (a new association, a new channel, or the DC marked down)."""
        channel = link.channel
        if channel is None:  # it lost its channel since it was picked
            try:
                channel = await self._establish(link)
            except (SecureChannelError, *_BROKEN, asyncio.TimeoutError) as exc:
                self._down(link, exc)
                return exc
        conn = link.take_idle(channel)
        try:
            if conn is None:
                conn = await self._bind(channel)
            if link.with_flags:
                answer = await self._with_flags(link, channel, conn, logon)
            else:
                answer = await self._ex(link, channel, conn, logon)
        except _OpnumRefused as exc:
            assert conn is not None
            link.idle.append((channel.generation, conn))
            return exc
        except (*_BROKEN, AuthenticatorChainError) as exc:
            fresh = conn is None
            if conn is not None:
                conn.close()
            link.close_idle()  # a DC that dropped one association dropped them all
            refused = isinstance(exc, (SchannelError, RpcError, AuthenticatorChainError))
            if refused:
                # the DC refused the bind or the call, or our chain is out of step: a new channel with it
                log.info("secure channel with %s dropped: %r", link.endpoint, exc)
                try:
                    await self._establish(link, channel)
                except (SecureChannelError, *_BROKEN, asyncio.TimeoutError) as again:
                    self._down(link, again)
            elif fresh:
                self._down(link, exc)  # a new association would not even open: the DC is gone
            return exc
        link.idle.append((channel.generation, conn))
        if answer.status == NtStatus.STATUS_ACCESS_DENIED:
            # MS-NRPC 3.5.4.5.1: the DC no longer knows our channel (it was replaced): set it up again
            try:
                await self._establish(link, channel)
            except (SecureChannelError, *_BROKEN, asyncio.TimeoutError) as again:
                self._down(link, again)
            return RpcError("NetrLogonSamLogon: STATUS_ACCESS_DENIED", answer.status)
        return answer, channel

    def _down(self, link: _DcLink, exc: BaseException) -> None:
        log.warning("DC %s lost: %r", link.endpoint, exc)
        assert self._loop is not None
        link.channel = None
        link.chain = None
        link.close_idle()
        link.retry_at = self._loop.time() + self.config.retry_interval

    async def _ex(self, link: _DcLink, channel: SecureChannel, conn: RpcConnection,
                  logon: nrpc.NetworkLogon) -> nrpc.SamLogonResult:
        level = self.config.validation_level
        try:
            stub = await conn.call(
                nrpc.NETR_LOGON_SAM_LOGON_EX,
                nrpc.logon_sam_logon_ex(f"\\\\{channel.endpoint.host}", self.config.machine.upper(), logon,
                                        level))
        except RpcError as exc:
            if exc.status in _OPNUM_REFUSED and self.config.logon_call == "auto":
                # MS-NRPC 3.5.4.5.1: a DC without Ex still takes WithFlags, with the authenticator chain
                log.info("%s does not take NetrLogonSamLogonEx (%s): NetrLogonSamLogonWithFlags from now on",
                         link.endpoint, exc)
                link.with_flags = True
                raise _OpnumRefused(str(exc)) from exc
            raise
        return nrpc.logon_sam_logon_ex_response(stub, level)

    async def _with_flags(self, link: _DcLink, channel: SecureChannel, conn: RpcConnection,
                          logon: nrpc.NetworkLogon) -> nrpc.SamLogonResult:
        """MS-NRPC 3.5.4.5.2 with the authenticator of 3.1.4.5: one call at a time per channel."""
        level = self.config.validation_level
        async with link.chain_lock:
            chain = link.chain
            if chain is None or link.channel is not channel:
                raise AuthenticatorChainError("the channel changed while the call waited for its turn")
            authenticator = chain.next(int(time.time()))
            try:
                stub = await conn.call(
                    nrpc.NETR_LOGON_SAM_LOGON_WITH_FLAGS,
                    nrpc.logon_sam_logon_with_flags(f"\\\\{channel.endpoint.host}",
                                                    self.config.machine.upper(), authenticator, logon, level))
                returned, answer = nrpc.logon_sam_logon_with_flags_response(stub, level)
            except BaseException:
                chain.lost()  # the DC may have stepped its side: the chain can no longer be trusted
                raise
            if answer.status == NtStatus.STATUS_ACCESS_DENIED:
                chain.lost()
                return answer  # MS-NRPC 3.5.4.5.1: the DC refused our authenticator or no longer knows us
            chain.check(returned)
            return answer

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


class _OpnumRefused(Exception):
    """The DC does not implement the call we made: try again with the other one."""


def netlogon_authority(
    dcs: Sequence[str], machine: str, machine_password: str, domain: str, dns_domain: str = "",
    transport: str = "tcp", **options: object,
) -> NetlogonAuthority:
    """Build an authority from DC_HOST[:PORT] strings; `transport` "tcp" (ncacn_ip_tcp) or "np"."""
    config = NetlogonConfig(tuple(parse_endpoint(d, transport) for d in dcs), machine.rstrip("$"),
                            machine_password, domain, dns_domain, **options)  # type: ignore[arg-type]
    return NetlogonAuthority(config)
