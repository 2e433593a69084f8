"""The asyncio harness over real sockets: our client against our server, concurrency, an async authority,
connection limits, timeouts, and the `smb2auth serve` command."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from smb2auth.authority.local import LocalAuthority
from smb2auth.authority.smbpasswd import write_smbpasswd_entry
from smb2auth.client import Smb2ClientError, aconnect, connect
from smb2auth.ntlm.authority import AsyncAuthority, ValidationRequest, ValidationResult
from smb2auth.server.aio import Smb2Server
from smb2auth.server.config import ServerConfig
from smb2auth.smb2.framing import frame
from smb2auth.smb2.header import Command, Smb2Header
from smb2auth.smb2.negotiate import Dialect, NegotiateRequest
from smb2auth.smb2.simple import EchoRequest
from smb2auth.status import NtStatus
from smb2auth.testing import RunningServer, running_server

ALL = (Dialect.SMB2_0_2, Dialect.SMB2_1, Dialect.SMB3_0, Dialect.SMB3_0_2, Dialect.SMB3_1_1)
NAMES = {0x0202: "2.0.2", 0x0210: "2.1", 0x0300: "3.0", 0x0302: "3.0.2", 0x0311: "3.1.1"}


@pytest.mark.parametrize("dialect", ALL, ids=lambda d: NAMES[d])
def test_our_client_against_our_server(smb2_server: RunningServer, dialect: int) -> None:
    s = smb2_server
    with connect(
        s.host, s.port, username=s.username, password=s.password, domain=s.domain, dialects=(dialect,)
    ) as session:
        assert session.dialect == dialect and session.signed
        tree = session.tree_connect("IPC$")
        session.echo()
        session.tree_disconnect(tree)
    event = s.events[-1]
    assert event.success and event.user == s.username and event.dialect == NAMES[dialect]
    assert event.response_kind == "NTLMv2" and event.session_id == session.session_id


def test_our_client_wrong_password(smb2_server: RunningServer) -> None:
    s = smb2_server
    with pytest.raises(Smb2ClientError) as info:
        connect(s.host, s.port, username=s.username, password="wrong", domain=s.domain)
    assert NtStatus.name_of(info.value.status) == "STATUS_LOGON_FAILURE"
    assert s.events[-1].status == "STATUS_LOGON_FAILURE" and s.events[-1].reason.startswith("wrong password")


def test_share_names() -> None:
    with (
        running_server(shares=("data",)) as s,
        connect(s.host, s.port, username=s.username, password=s.password) as session,
    ):
        session.tree_connect("DATA")
        with pytest.raises(Smb2ClientError) as info:
            session.tree_connect("nothere")
        assert NtStatus.name_of(info.value.status) == "STATUS_BAD_NETWORK_NAME"


def test_fifty_concurrent_clients(smb2_server: RunningServer) -> None:
    s = smb2_server

    async def one(i: int) -> int:
        dialect = ALL[i % len(ALL)]
        session = await aconnect(
            s.host, s.port, username=s.username, password=s.password, dialects=(dialect,)
        )
        async with session:
            await session.echo()
            return session.dialect

    async def main() -> list[int]:
        return await asyncio.gather(*(one(i) for i in range(50)))

    dialects = asyncio.run(main())
    assert sorted(dialects) == sorted(ALL[i % len(ALL)] for i in range(50))
    assert len(s.events) == 50 and all(e.success for e in s.events)
    assert len({e.session_id for e in s.events}) == 50


async def _raw_exchange(host: str, port: int, messages: list[bytes]) -> list[int]:
    """Send each message, read one response each; the statuses."""
    reader, writer = await asyncio.open_connection(host, port)
    statuses = []
    try:
        for message in messages:
            writer.write(frame(message))
            size = int.from_bytes(await reader.readexactly(4), "big")
            statuses.append(Smb2Header.unpack(await reader.readexactly(size)).status)
    finally:
        writer.close()
    return statuses


def _negotiate_and_echo() -> list[bytes]:
    neg = Smb2Header(Command.NEGOTIATE, credit=1).pack() + NegotiateRequest((Dialect.SMB2_1,)).pack()
    echo = Smb2Header(Command.ECHO, message_id=1, credit=1, credit_charge=1).pack() + EchoRequest().pack()
    return [neg, echo]


class GatedAuthority(AsyncAuthority):
    """Validates only once the test opens the gate: a stand-in for a slow remote Netlogon."""

    def __init__(self) -> None:
        self.local = LocalAuthority("TESTGRP")
        self.local.add_user("alice", "Passw0rd!")
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()

    async def validate(self, request: ValidationRequest) -> ValidationResult:
        self.waiting.set()
        await self.gate.wait()
        return self.local.validate(request)


def test_async_authority_does_not_block_other_connections() -> None:
    async def main() -> None:
        authority = GatedAuthority()
        async with Smb2Server(ServerConfig(authority=authority)) as server:
            host, port = server.addresses[0]
            login = asyncio.ensure_future(aconnect(host, port, username="alice", password="Passw0rd!"))
            await asyncio.wait_for(authority.waiting.wait(), 10)
            # The first login sits in the authority; another connection is served meanwhile.
            statuses = await asyncio.wait_for(_raw_exchange(host, port, _negotiate_and_echo()), 10)
            assert statuses == [0, 0]
            assert not login.done()
            authority.gate.set()
            session = await asyncio.wait_for(login, 10)
            await session.logoff()
            await session.close()
            assert server.events.events[-1].success

    asyncio.run(main())


def test_connection_limit_and_timeouts() -> None:
    async def main() -> None:
        local = LocalAuthority()
        config = ServerConfig(authority=local, max_connections=2, handshake_timeout=0.2, idle_timeout=60)
        async with Smb2Server(config) as server:
            host, port = server.addresses[0]
            held = [await asyncio.open_connection(host, port) for _ in range(2)]
            # The third is refused: closed on accept.
            reader, writer = await asyncio.open_connection(host, port)
            assert await asyncio.wait_for(reader.read(), 10) == b""
            writer.close()
            # The two silent ones are closed after the handshake timeout.
            for r, w in held:
                assert await asyncio.wait_for(r.read(), 10) == b""
                w.close()
            # Framing garbage: closed without an answer.
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"\x01\x02\x03\x04garbage")
            assert await asyncio.wait_for(reader.read(), 10) == b""
            writer.close()
            assert server.connection_count == 0

    asyncio.run(main())


def _serve(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "smb2auth.commands.main", "serve", "--listen", "127.0.0.1:0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _stop(proc: subprocess.Popen[str], signum: int) -> tuple[int, str]:
    proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_cli_serve_random_account(signum: int) -> None:
    proc = _serve("--domain", "CLIDOM")
    assert proc.stdout is not None
    creds = proc.stdout.readline().split()
    listening = proc.stdout.readline().strip()
    assert creds[:3] == ["user", "smb2auth", "password"] and len(creds) == 4
    assert listening.startswith("listening on 127.0.0.1:")
    port = int(listening.rsplit(":", 1)[1])
    assert port > 0
    with connect("127.0.0.1", port, username="smb2auth", password=creds[3]) as session:
        session.echo()
    code, err = _stop(proc, signum)
    assert code == 0, err
    assert "smb2 login ok user=" in err and "smb2auth" in err and "Traceback" not in err


def test_cli_serve_smbpasswd_file(tmp_path: Path) -> None:
    users = tmp_path / "smbpasswd"
    write_smbpasswd_entry(users, "bob", "S3cret!")
    proc = _serve("--users", str(users), "--max-dialect", "SMB3_02", "--share", "data")
    assert proc.stdout is not None
    listening = proc.stdout.readline().strip()
    assert listening.startswith("listening on ")  # no credentials line: the accounts came from the file
    port = int(listening.rsplit(":", 1)[1])
    with connect("127.0.0.1", port, username="bob", password="S3cret!") as session:
        assert session.dialect == Dialect.SMB3_0_2
        session.tree_connect("data")
    with pytest.raises(Smb2ClientError):
        connect("127.0.0.1", port, username="bob", password="nope")
    code, err = _stop(proc, signal.SIGTERM)
    assert code == 0 and "STATUS_LOGON_FAILURE" in err and "wrong password" in err


@pytest.mark.parametrize("dialect", ALL[2:], ids=lambda d: NAMES[d])
def test_our_client_encrypted(dialect: int) -> None:
    with (
        running_server(encrypt=True) as s,
        connect(
            s.host,
            s.port,
            username=s.username,
            password=s.password,
            dialects=(dialect,),
            require_encryption=True,
        ) as session,
    ):
        assert session.encrypted
        session.tree_connect("IPC$")
        session.echo()
    assert s.events[-1].session_flags == ("ENCRYPT_DATA",)


def test_ipv6_loopback() -> None:
    import socket

    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    with running_server(host="::1") as s:
        assert s.address == f"[::1]:{s.port}"
        with connect("::1", s.port, username=s.username, password=s.password) as session:
            session.echo()
        assert s.events[-1].success and s.events[-1].client_address.startswith("[::1]:")
