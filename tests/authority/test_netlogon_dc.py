"""NetlogonAuthority against a real Samba AD DC (tests/addc.py): the AES secure channel, sealed
NetrLogonSamLogonEx network logons from our NTLM client and from Debian's smbclient (signing keys from the
DC's UserSessionKey), the DC's refusals, a channel replaced under us, DCs that are dead, and concurrency."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from smb2auth.authority.consult import consult
from smb2auth.authority.groups import require_group
from smb2auth.authority.netlogon import (
    Endpoint,
    NetlogonAuthority,
    NetlogonConfig,
    SecureChannelError,
    ValidationLevel,
)
from smb2auth.authority.netlogon.credentials import AuthenticatorChain, NegotiateFlags
from smb2auth.authority.threaded import LoopThreadAuthority
from smb2auth.errors import AuthenticationError
from smb2auth.ntlm import NtlmClient, NtlmServer
from smb2auth.ntlm.authority import AsyncAuthority, ValidationRequest, ValidationResult
from smb2auth.ntlm.events import Complete, Failed, Send, ValidationNeeded
from smb2auth.status import NtStatus
from smb2auth.testing import RunningServer, running_server
from tests.addc import DomainController
from tests.peers import require_program

pytestmark = pytest.mark.interop

DIALECTS = {"SMB2_02": "2.0.2", "SMB2_10": "2.1", "SMB3_00": "3.0", "SMB3_02": "3.0.2", "SMB3_11": "3.1.1"}


def config(dc: DomainController, **kw: object) -> NetlogonConfig:
    values: dict[str, object] = dict(
        dcs=(Endpoint(dc.host),), machine=dc.machine, machine_password=dc.machine_password,
        domain=dc.domain, dns_domain=dc.dns_domain,
    )
    values.update(kw)
    return NetlogonConfig(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def authority(addc: DomainController) -> NetlogonAuthority:
    auth = NetlogonAuthority(config(addc))
    auth.start_sync()
    return auth


@pytest.fixture(scope="module")
def users(domain_accounts: dict[str, str]) -> dict[str, str]:
    return domain_accounts


def handshake(authority: AsyncAuthority, user: str, password: str, domain: str) -> tuple[
        NtlmClient, NtlmServer, ValidationRequest, ValidationResult, Complete | Failed]:
    """Our NTLM client against our NTLM server whose authority is the DC (the transport's part by hand)."""
    client = NtlmClient(user, password, domain=domain, workstation="CLIENTPC")
    names = getattr(authority, "inner", authority)
    server = NtlmServer(authority, target=names.target_info())

    async def run() -> tuple[ValidationRequest, ValidationResult, Complete | Failed]:
        sent = server.receive(client.step(None) or b"")
        assert isinstance(sent, Send)
        needed = server.receive(client.step(sent.token) or b"")
        assert isinstance(needed, ValidationNeeded)
        result = await consult(authority, needed.request)
        return needed.request, result, server.validation_done(needed.ticket, result)

    request, result, done = asyncio.run(run())
    return client, server, request, result, done


def test_secure_channel_is_aes(authority: NetlogonAuthority) -> None:
    channel = authority.channel
    assert channel is not None and channel.flags & NegotiateFlags.NETLOGON_NEG_SUPPORTS_AES
    assert channel.port != 135 and channel.account_rid > 1000
    assert "M4chine" not in repr(authority) + repr(channel) + repr(authority.config)
    assert channel.session_key.hex() not in repr(channel)


@pytest.mark.parametrize("level", list(ValidationLevel))
def test_network_logon_gives_the_session_key_and_groups(
    addc: DomainController, users: dict[str, str], level: ValidationLevel
) -> None:
    auth = NetlogonAuthority(config(addc, validation_level=level))
    client, server, _, result, done = handshake(auth, addc.user, addc.password, addc.domain)
    assert isinstance(done, Complete), done
    # the SessionBaseKey came from the DC (decrypted at levels 2/3): both ends derive the same session key
    assert server.session_key == client.session_key
    account = result.account
    assert account is not None and account.username == addc.user and account.domain == addc.domain
    assert account.sid == users[addc.user]
    assert users["Domain Users"] in account.groups and users["engineers"] in account.groups


def test_named_pipe_transport(addc: DomainController, users: dict[str, str]) -> None:
    # ncacn_np: \\PIPE\\netlogon on the DC's IPC$, our SMB2 client logged in as HARNESS$
    auth = NetlogonAuthority(config(addc, dcs=(Endpoint(addc.host, transport="np"),)))
    channel = auth.start_sync()
    assert channel.port == 445 and channel.flags & NegotiateFlags.NETLOGON_NEG_SUPPORTS_AES
    client, server, _, result, done = handshake(auth, addc.user, addc.password, addc.domain)
    assert isinstance(done, Complete) and server.session_key == client.session_key
    assert result.account is not None and result.account.sid == users[addc.user]
    *_, result, _ = handshake(auth, addc.user, "wrong", addc.domain)
    assert result.status == NtStatus.STATUS_WRONG_PASSWORD


def test_wrong_password_and_unknown_user(authority: NetlogonAuthority, addc: DomainController) -> None:
    *_, result, done = handshake(authority, addc.user, "not-her-password", addc.domain)
    assert result.status == NtStatus.STATUS_WRONG_PASSWORD
    assert isinstance(done, Failed) and done.status == NtStatus.STATUS_LOGON_FAILURE
    assert isinstance(done.error, AuthenticationError) and done.error.cause == NtStatus.STATUS_WRONG_PASSWORD
    *_, result, done = handshake(authority, "nosuchuser", "x", addc.domain)
    assert result.status == NtStatus.STATUS_NO_SUCH_USER
    assert isinstance(done, Failed) and done.status == NtStatus.STATUS_LOGON_FAILURE


def test_account_states_are_kept(authority: NetlogonAuthority, addc: DomainController,
                                 users: dict[str, str]) -> None:
    *_, done = handshake(authority, "bob", "B0b!Passw0rd", addc.domain)
    assert isinstance(done, Failed) and done.status == NtStatus.STATUS_ACCOUNT_DISABLED
    *_, done = handshake(authority, "carol", "C4rol!Passw0rd", addc.domain)
    assert isinstance(done, Failed) and done.status == NtStatus.STATUS_PASSWORD_MUST_CHANGE
    *_, done = handshake(authority, "erin", "E4rin!Passw0rd", addc.domain)
    assert isinstance(done, Failed) and done.status == NtStatus.STATUS_ACCOUNT_EXPIRED


def test_require_group(authority: NetlogonAuthority, addc: DomainController, users: dict[str, str]) -> None:
    gated = require_group(authority, [users["engineers"]])
    assert isinstance(gated, AsyncAuthority)  # the same kind as the authority it guards
    *_, result, done = handshake(gated, addc.user, addc.password, addc.domain)
    assert isinstance(done, Complete) and result.account is not None
    *_, result, done = handshake(gated, "dave", "D4ve!Passw0rd", addc.domain)
    assert isinstance(done, Failed) and done.status == NtStatus.STATUS_LOGON_TYPE_NOT_GRANTED
    assert "none of the groups" in done.reason


def test_challenge_must_name_the_channel_machine(
    authority: NetlogonAuthority, addc: DomainController
) -> None:
    # the DC checks MsvAvNbComputerName against the secure channel's machine name
    client = NtlmClient(addc.user, addc.password, domain=addc.domain)
    server = NtlmServer(authority)  # default TargetInfo: WORKGROUP / SMB2AUTH

    async def run() -> ValidationResult:
        sent = server.receive(client.step(None) or b"")
        assert isinstance(sent, Send)
        needed = server.receive(client.step(sent.token) or b"")
        assert isinstance(needed, ValidationNeeded)
        return await consult(authority, needed.request)

    assert asyncio.run(run()).status == NtStatus.STATUS_LOGON_FAILURE
    info = authority.target_info()
    assert (info.nb_computer, info.nb_domain, info.dns_domain) == ("HARNESS", "SMB2AUTH", "smb2auth.test")


def test_wrong_machine_password_fails_at_start(addc: DomainController) -> None:
    auth = NetlogonAuthority(config(addc, machine_password="not-the-machine-password"))
    with pytest.raises(SecureChannelError, match="STATUS_ACCESS_DENIED") as caught:
        auth.start_sync()
    assert caught.value.status == NtStatus.STATUS_ACCESS_DENIED
    assert "not-the-machine-password" not in str(caught.value) + repr(auth)


def test_unreachable_dc(addc: DomainController) -> None:
    dead = Endpoint("127.0.0.1", 9)  # discard: nothing listens there
    auth = NetlogonAuthority(config(addc, dcs=(dead,), call_timeout=5.0))
    with pytest.raises(SecureChannelError, match="unreachable"):
        auth.start_sync()
    *_, result, done = handshake(auth, addc.user, addc.password, addc.domain)
    assert result.status == NtStatus.STATUS_NO_LOGON_SERVERS
    assert isinstance(done, Failed) and done.status == NtStatus.STATUS_NO_LOGON_SERVERS


def test_with_flags_validates_the_logon_ex_validates(addc: DomainController, users: dict[str, str]) -> None:
    # the same AUTHENTICATE validated by both calls: the same account, groups and SessionBaseKey
    with_flags = NetlogonAuthority(config(addc, logon_call="with-flags"))
    client, server, request, result, done = handshake(with_flags, addc.user, addc.password, addc.domain)
    assert isinstance(done, Complete) and server.session_key == client.session_key
    ex = NetlogonAuthority(config(addc, logon_call="ex"))
    again = asyncio.run(ex.validate(request))
    assert again.ok and again.account == result.account and again.session_base_key == result.session_base_key
    assert result.account is not None and result.account.sid == users[addc.user]
    assert with_flags.logons == {addc.host: 1} and ex.logons == {addc.host: 1}


def test_with_flags_chain_over_many_logons(addc: DomainController) -> None:
    # the chain steps once per call; concurrent logons take their turns on the one channel, refusals too
    auth = NetlogonAuthority(config(addc, logon_call="with-flags", connections=4))
    auth.start_sync()

    async def one(i: int) -> NtStatus:
        password = addc.password if i % 4 else "wrong"
        client = NtlmClient(addc.user, password, domain=addc.domain)
        server = NtlmServer(auth, target=auth.target_info())
        sent = server.receive(client.step(None) or b"")
        assert isinstance(sent, Send)
        needed = server.receive(client.step(sent.token) or b"")
        assert isinstance(needed, ValidationNeeded)
        result = await consult(auth, needed.request)
        if result.ok:
            done = server.validation_done(needed.ticket, result)
            assert isinstance(done, Complete) and server.session_key == client.session_key
        return result.status

    async def run() -> list[NtStatus]:
        return list(await asyncio.gather(*(one(i) for i in range(16))))

    statuses = asyncio.run(run())
    assert statuses == [NtStatus.STATUS_WRONG_PASSWORD if i % 4 == 0 else NtStatus.STATUS_SUCCESS
                        for i in range(16)]
    assert auth.stats == {"channels": 1, "associations": auth.stats["associations"], "retries": 0}


def test_with_flags_wrong_authenticator_is_refused(addc: DomainController) -> None:
    auth = NetlogonAuthority(config(addc, logon_call="with-flags"))
    channel = auth.start_sync()
    *_, done = handshake(auth, addc.user, addc.password, addc.domain)
    assert isinstance(done, Complete)
    # a chain seeded wrong: the DC refuses the authenticator (ACCESS_DENIED), we set up a channel again
    # and the logon goes through on it
    auth._links[0].chain = AuthenticatorChain(channel.session_key, bytes(8))
    *_, done = handshake(auth, addc.user, addc.password, addc.domain)
    assert isinstance(done, Complete)
    assert auth.stats["channels"] == 2 and auth.stats["retries"] == 1
    assert auth.channel is not None and auth.channel is not channel


async def logged_in(auth: NetlogonAuthority, user: str, password: str, domain: str) -> bool:
    client = NtlmClient(user, password, domain=domain)
    server = NtlmServer(auth, target=auth.target_info())
    sent = server.receive(client.step(None) or b"")
    assert isinstance(sent, Send)
    needed = server.receive(client.step(sent.token) or b"")
    assert isinstance(needed, ValidationNeeded)
    done = server.validation_done(needed.ticket, await consult(auth, needed.request))
    return isinstance(done, Complete) and server.session_key == client.session_key


@pytest.mark.parametrize("logon_call", ["ex", "with-flags"])
def test_channels_spread_over_two_dcs(addc: DomainController, addc2: DomainController,
                                      logon_call: str) -> None:
    """One secure channel per DC (each DC keeps its own for HARNESS$), logons to the least busy channel,
    round robin among equals; a DC stopped loses its share to the other without a refused logon, and gets
    it back once it answers again (after retry_interval)."""
    first, second = Endpoint(addc.host), Endpoint(addc2.host)
    auth = NetlogonAuthority(config(addc, dcs=(first, second), connections=2, retry_interval=0.5,
                                    logon_call=logon_call))

    async def login() -> bool:
        return await logged_in(auth, addc.user, addc.password, addc.domain)

    async def run() -> None:
        await auth.start()
        assert [c.endpoint for c in auth.channels] == [first, second]
        assert await asyncio.gather(*(login() for _ in range(8))) == [True] * 8
        assert auth.logons == {addc.host: 4, addc2.host: 4}
        for _ in range(4):
            assert await login()
        assert auth.logons == {addc.host: 6, addc2.host: 6}
        addc.stop()
        try:
            for _ in range(4):
                assert await login()
            assert auth.logons == {addc.host: 6, addc2.host: 10}
            assert [c.endpoint for c in auth.channels] == [second]
        finally:
            addc.start()
        await asyncio.sleep(0.6)
        deadline = time.monotonic() + 10
        while len(auth.channels) < 2 and time.monotonic() < deadline:
            assert await login()  # the first DC's channel is set up again in the background meanwhile
            await asyncio.sleep(0.1)
        assert [c.endpoint for c in auth.channels] == [first, second]
        before = dict(auth.logons)
        for _ in range(4):
            assert await login()
        assert auth.logons[addc.host] - before[addc.host] == 2
        await auth.close()

    asyncio.run(run())


@pytest.fixture
def silent_dc() -> Iterator[Endpoint]:
    """A listener that accepts connections and never answers: a hung DC."""
    sock = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(sock.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield Endpoint("127.0.0.1", sock.getsockname()[1])
    finally:
        sock.close()
        for conn in held:
            conn.close()


def test_a_hung_dc_costs_one_call_time(addc: DomainController, silent_dc: Endpoint) -> None:
    auth = NetlogonAuthority(config(addc, dcs=(silent_dc,), call_timeout=1.5, connect_timeout=0.5))
    started = time.monotonic()
    *_, result, _ = handshake(auth, addc.user, addc.password, addc.domain)
    assert result.status == NtStatus.STATUS_NO_LOGON_SERVERS
    assert time.monotonic() - started < 1.5 + 1.0
    # with a live DC after it, the same call fails over within its time
    auth = NetlogonAuthority(config(addc, dcs=(silent_dc, Endpoint(addc.host)), call_timeout=8.0,
                                    connect_timeout=0.5))
    *_, done = handshake(auth, addc.user, addc.password, addc.domain)
    assert isinstance(done, Complete)
    assert auth.channel is not None and auth.channel.endpoint.host == addc.host


def test_failover_past_a_dead_dc(addc: DomainController) -> None:
    auth = NetlogonAuthority(config(addc, dcs=(Endpoint("127.0.0.1", 9), Endpoint(addc.host))))
    *_, done = handshake(auth, addc.user, addc.password, addc.domain)
    assert isinstance(done, Complete)
    assert auth.channel is not None and auth.channel.endpoint.host == addc.host


def test_channel_replaced_by_another_server(addc: DomainController) -> None:
    first = NetlogonAuthority(config(addc))

    async def run() -> None:
        await first.start()
        assert await logged_in(first, addc.user, addc.password, addc.domain)
        # a second secure channel for the same machine account replaces the first at the DC; the
        # association bound before keeps working, and at level 6 its key is still the right one
        other = NetlogonAuthority(config(addc))
        await other.start()
        await other.close()
        assert await logged_in(first, addc.user, addc.password, addc.domain) and first.stats["channels"] == 1
        # a new association on the replaced channel's key: the DC binds it, then faults the call
        # (nca_s_fault_sec_pkg_error); we set up a channel again and the logon goes through
        await first.close()
        assert await logged_in(first, addc.user, addc.password, addc.domain)
        assert first.stats["channels"] == 2 and first.stats["retries"] == 1

    asyncio.run(run())


def test_concurrent_logons_share_one_channel(addc: DomainController) -> None:
    auth = NetlogonAuthority(config(addc, connections=4))
    auth.start_sync()

    async def run() -> list[bool]:
        logons = (logged_in(auth, addc.user, addc.password, addc.domain) for _ in range(32))
        return list(await asyncio.gather(*logons))

    assert asyncio.run(run()) == [True] * 32
    assert auth.stats["channels"] == 1 and auth.stats["associations"] <= 1 + 4


def test_threads_share_one_channel_through_a_loop_thread(addc: DomainController) -> None:
    # what http-serve does for its request threads: one event loop owns the authority's associations
    inner = NetlogonAuthority(config(addc, connections=4))
    inner.start_sync()
    authority = LoopThreadAuthority(inner)
    outcomes: list[bool] = []

    def logon() -> None:
        for _ in range(4):
            client = NtlmClient(addc.user, addc.password, domain=addc.domain)
            server = NtlmServer(authority, target=inner.target_info())
            server.step(client.step(server.step(client.step(None) or b"")) or b"")
            outcomes.append(server.complete and server.session_key == client.session_key)

    threads = [threading.Thread(target=logon) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    authority.close()
    assert outcomes == [True] * 32
    assert inner.stats["channels"] == 1 and inner.stats["associations"] <= 1 + 4


@pytest.fixture(scope="module")
def harness(authority: NetlogonAuthority, addc: DomainController) -> Iterator[RunningServer]:
    with running_server(authority=authority, target=authority.target_info(), domain=addc.domain) as server:
        yield server


def smbclient(server: RunningServer, user: str, *args: str) -> subprocess.CompletedProcess[str]:
    program = require_program("smbclient", "/usr/bin/smbclient")
    return subprocess.run(
        [program, "//127.0.0.1/IPC$", "-p", str(server.port), "-U", user, "-W", "SMB2AUTH",
         "--use-kerberos=off", "-s", "/dev/null", "-c", "exit", *args],
        capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize("protocol", list(DIALECTS))
def test_smbclient_domain_user_signed(
    harness: RunningServer, addc: DomainController, users: dict[str, str], protocol: str
) -> None:
    before = len(harness.events)
    proc = smbclient(harness, f"{addc.user}%{addc.password}", "-m", protocol, "--client-protection=sign")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (event,) = harness.events[before:]
    assert event.success and event.user == addc.user and event.domain == addc.domain
    assert event.dialect == DIALECTS[protocol] and "NTLMSSP_NEGOTIATE_SIGN" in event.ntlm_flags
    assert event.signed and event.sid == users[addc.user] and users["engineers"] in event.groups


@pytest.mark.parametrize(
    ("user", "wire", "precise"),
    [
        ("alice%wrong", "NT_STATUS_LOGON_FAILURE", "STATUS_WRONG_PASSWORD"),
        ("nosuchuser%x", "NT_STATUS_LOGON_FAILURE", "STATUS_NO_SUCH_USER"),
        ("bob%B0b!Passw0rd", "NT_STATUS_ACCOUNT_DISABLED", "STATUS_ACCOUNT_DISABLED"),
    ],
)
def test_smbclient_refusals(harness: RunningServer, users: dict[str, str], user: str, wire: str,
                            precise: str) -> None:
    before = len(harness.events)
    proc = smbclient(harness, user, "-m", "SMB3_11", "--client-protection=sign")
    assert proc.returncode != 0 and wire in proc.stdout + proc.stderr
    (event,) = harness.events[before:]
    assert event.status == wire.removeprefix("NT_") and precise in event.reason


def wire_status(proc: subprocess.CompletedProcess[str]) -> str:
    """The NT_STATUS smbclient reports, or OK."""
    if proc.returncode == 0:
        return "OK"
    found = re.search(r"NT_STATUS_[A-Z_]+", proc.stdout + proc.stderr)
    assert found, proc.stdout + proc.stderr
    return found.group(0)


@pytest.fixture
def lockout_threshold(addc: DomainController) -> Iterator[int]:
    """The domain locks an account after 3 bad passwords for the test's length; then back to never."""
    addc.tool("domain", "passwordsettings", "set", "--account-lockout-threshold=3")
    try:
        yield 3
    finally:
        addc.tool("domain", "passwordsettings", "set", "--account-lockout-threshold=0")


def test_refusals_on_the_wire_as_the_dcs_smbd_gives_them(
    harness: RunningServer, addc: DomainController, users: dict[str, str], lockout_threshold: int
) -> None:
    """Each refusal through our server, and the same logon at the DC's own smbd (its status squashed by
    Samba's nt_status_squash: NO_SUCH_USER and WRONG_PASSWORD -> LOGON_FAILURE, the rest kept): the same
    wire status; our login event keeps the DC's precise one. Lockout: `lockout_threshold` bad passwords,
    then the right one (frank through us, grace at the DC, so that each is locked by its own tries)."""
    program = require_program("smbclient", "/usr/bin/smbclient")
    for name in ("frank", "grace"):
        addc.tool("user", "create", name, "Fr4nk!Passw0rd")

    def at_dc(user: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [program, f"//{addc.host}/IPC$", "-U", user, "-W", addc.domain, "--use-kerberos=off", "-s",
             "/dev/null", "-m", "SMB3_11", "-c", "exit"], capture_output=True, text=True, timeout=60)

    cases = [("alice%wrong", "alice%wrong", "STATUS_WRONG_PASSWORD"),
             ("nosuchuser%x", "nosuchuser%x", "STATUS_NO_SUCH_USER"),
             ("bob%B0b!Passw0rd", "bob%B0b!Passw0rd", "STATUS_ACCOUNT_DISABLED"),
             ("carol%C4rol!Passw0rd", "carol%C4rol!Passw0rd", "STATUS_PASSWORD_MUST_CHANGE"),
             ("erin%E4rin!Passw0rd", "erin%E4rin!Passw0rd", "STATUS_ACCOUNT_EXPIRED")]
    cases += [("frank%wrong", "grace%wrong", "STATUS_WRONG_PASSWORD")] * lockout_threshold
    cases += [("frank%Fr4nk!Passw0rd", "grace%Fr4nk!Passw0rd", "STATUS_ACCOUNT_LOCKED_OUT")]
    seen = []
    for ours, _, precise in cases:
        before = len(harness.events)
        wire = wire_status(smbclient(harness, ours, "-m", "SMB3_11"))
        (event,) = harness.events[before:]
        seen.append((ours, wire, event.status, precise in event.reason))
    dc_wire = [wire_status(at_dc(theirs)) for _, theirs, _ in cases]
    assert [w for _, w, _, _ in seen] == dc_wire
    assert dc_wire[-1] == "NT_STATUS_ACCOUNT_LOCKED_OUT" and dc_wire[0] == "NT_STATUS_LOGON_FAILURE"
    assert [s for _, _, s, _ in seen] == [w.removeprefix("NT_") for w in dc_wire]
    assert all(precise for *_, precise in seen), seen


def test_dc_stopped_then_restarted(authority: NetlogonAuthority, addc: DomainController,
                                   harness: RunningServer) -> None:
    assert smbclient(harness, f"{addc.user}%{addc.password}", "-m", "SMB3_11").returncode == 0
    addc.stop()
    try:
        before = len(harness.events)
        proc = smbclient(harness, f"{addc.user}%{addc.password}", "-m", "SMB3_11")
        assert proc.returncode != 0 and "NT_STATUS_NO_LOGON_SERVERS" in proc.stdout + proc.stderr
        (event,) = harness.events[before:]
        assert event.status == "STATUS_NO_LOGON_SERVERS"
    finally:
        addc.start()
    # the same server, without a restart, logs in again once the DC is back
    proc = smbclient(harness, f"{addc.user}%{addc.password}", "-m", "SMB3_11", "--client-protection=sign")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert harness.events[-1].success
