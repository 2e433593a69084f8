"""require_group: only accounts holding an allowed SID get through, for either kind of authority."""

from __future__ import annotations

import asyncio

from smb2auth.authority.groups import RequireGroup, RequireGroupAsync, require_group
from smb2auth.authority.local import LocalAuthority
from smb2auth.errors import AuthenticationError
from smb2auth.ntlm import NtlmClient, NtlmServer
from smb2auth.ntlm.authority import AsyncAuthority, ValidationRequest, ValidationResult
from smb2auth.status import NtStatus

ENGINEERS = "S-1-5-21-1-2-3-1105"


def local() -> LocalAuthority:
    authority = LocalAuthority("DOM")
    authority.add_user("alice", "a", sid="S-1-5-21-1-2-3-1102", groups=[ENGINEERS])
    authority.add_user("dave", "d", sid="S-1-5-21-1-2-3-1106", groups=["S-1-5-21-1-2-3-513"])
    return authority


def status(server: NtlmServer, user: str, password: str) -> NtStatus:
    client = NtlmClient(user, password, domain="DOM")
    try:
        server.step(client.step(server.step(client.step(None) or b"")) or b"")
    except AuthenticationError as exc:
        return exc.status
    return NtStatus.STATUS_SUCCESS


def test_sync_authority_admits_by_group() -> None:
    gated = require_group(local(), [ENGINEERS])
    assert isinstance(gated, RequireGroup)
    assert status(NtlmServer(gated), "alice", "a") == NtStatus.STATUS_SUCCESS
    assert status(NtlmServer(gated), "dave", "d") == NtStatus.STATUS_LOGON_TYPE_NOT_GRANTED
    # a wrong password stays what it was (squashed to LOGON_FAILURE on the wire)
    assert status(NtlmServer(gated), "alice", "x") == NtStatus.STATUS_LOGON_FAILURE
    # the user's own SID counts too
    assert status(NtlmServer(require_group(local(), ["S-1-5-21-1-2-3-1106"])), "dave", "d") == (
        NtStatus.STATUS_SUCCESS)


def test_async_authority_stays_async() -> None:
    inner = local()

    class Remote(AsyncAuthority):
        async def validate(self, request: ValidationRequest) -> ValidationResult:
            return inner.validate(request)

    gated = require_group(Remote(), [ENGINEERS])
    assert isinstance(gated, RequireGroupAsync)
    client = NtlmClient("dave", "d", domain="DOM")
    server = NtlmServer(gated)

    async def run() -> ValidationResult:
        sent = server.receive(client.step(None) or b"")
        needed = server.receive(client.step(sent.token) or b"")  # type: ignore[union-attr]
        return await gated.validate(needed.request)  # type: ignore[union-attr]

    result = asyncio.run(run())
    assert result.status == NtStatus.STATUS_LOGON_TYPE_NOT_GRANTED and result.account is None
