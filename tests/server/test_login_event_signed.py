"""LoginEvent.signed says whether the session a login made requires signed requests (MS-SMB2 3.3.5.5.3:
Session.SigningRequired from the server's setting or the client's SecurityMode), our client against our
harness."""

from __future__ import annotations

import pytest

from smb2auth.client import connect
from smb2auth.ntlm.authority import ResponseKind
from smb2auth.testing import running_server


@pytest.mark.parametrize(
    ("server_requires", "client_requires", "signed"),
    [(True, False, True), (False, True, True), (False, False, False)],
    ids=["server-requires", "client-requires", "neither"],
)
def test_signed_in_login_event(server_requires: bool, client_requires: bool, signed: bool) -> None:
    with running_server(signing_required=server_requires) as server:
        with connect(server.host, server.port, username=server.username, password=server.password,
                     domain=server.domain, require_signing=client_requires, timeout=10) as session:
            session.tree_connect("IPC$")
        (event,) = server.events
        assert event.success and event.signed is signed
        assert ("signed" in event.describe().split()) is signed


def test_anonymous_login_is_not_signed() -> None:
    with running_server(allow_anonymous=True, signing_required=False) as server:
        with connect(server.host, server.port, ntlm_version=ResponseKind.ANONYMOUS, require_signing=False,
                     timeout=10):
            pass
        (event,) = server.events
        assert event.success and event.anonymous and not event.signed
