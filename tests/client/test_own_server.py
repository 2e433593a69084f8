"""The client against our own server (smb2auth.testing.running_server) on loopback:
FSCTL_VALIDATE_NEGOTIATE_INFO end to end (MS-SMB2 3.2.5.5 client side, 3.3.5.15.12 server side)."""

from __future__ import annotations

import asyncio

import pytest

from smb2auth.client import Dialect, aconnect, connect
from smb2auth.smb2.tree import ShareType
from smb2auth.testing import running_server


@pytest.mark.parametrize(
    ("offered", "validated"),
    [
        ((Dialect.SMB3_0,), True),
        ((Dialect.SMB2_1, Dialect.SMB3_0_2), True),
        ((Dialect.SMB2_1,), None),
        ((Dialect.SMB3_1_1,), None),
    ],
    ids=["3.0", "2.1+3.0.2", "2.1", "3.1.1"],
)
@pytest.mark.parametrize("require_signing", [True, False], ids=["signing-required", "signing-optional"])
def test_validate_negotiate_against_our_server(
    offered: tuple[Dialect, ...], validated: bool | None, require_signing: bool
) -> None:
    with running_server() as server:
        session = connect(
            server.host, server.port, username=server.username, password=server.password,
            domain=server.domain, dialects=offered, require_signing=require_signing, timeout=10,
        )
        with session:
            assert session.tree_connect("IPC$").response.share_type == ShareType.PIPE
            assert session.validated_negotiate is validated
            assert session.echo().header.status == 0
        assert server.events and server.events[-1].success


def test_validate_negotiate_async_against_our_server() -> None:
    with running_server() as server:

        async def run() -> bool | None:
            session = await aconnect(
                server.host, server.port, username=server.username, password=server.password,
                domain=server.domain, dialects=(Dialect.SMB3_0_2,), timeout=10,
            )
            async with session:
                await session.tree_connect("IPC$")
                return session.validated_negotiate

        assert asyncio.run(run()) is True
