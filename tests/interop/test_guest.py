"""Guest sessions (MS-SMB2 2.2.6 SMB2_SESSION_FLAG_IS_GUEST): the server's key is not the client's, so no
mechListMIC comes back and nothing can be signed. Our client against Samba's `map to guest = bad user`, and
against our own harness with allow_guest; both also refuse the guest session when signing is required."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from smb2auth.client import SessionFlags, SigningError, connect
from smb2auth.testing import running_server
from tests.peers import Smbd


@pytest.fixture(scope="module")
def guest_smbd(smbd_factory: Callable[[str], Smbd]) -> Smbd:
    return smbd_factory("  map to guest = bad user\n  server signing = auto")


def test_unknown_user_is_guest_on_samba(guest_smbd: Smbd) -> None:
    with connect("127.0.0.1", guest_smbd.port, username="nosuchuser", password="x",
                 require_signing=False, timeout=10) as session:
        assert session.session_flags & SessionFlags.IS_GUEST
        assert not session.signed
        session.echo()


def test_guest_refused_when_signing_required_on_samba(guest_smbd: Smbd) -> None:
    with pytest.raises(SigningError):
        connect("127.0.0.1", guest_smbd.port, username="nosuchuser", password="x", timeout=10)


def test_unknown_user_is_guest_on_our_harness() -> None:
    with running_server(allow_guest=True) as server:
        with connect("127.0.0.1", server.port, username="nosuchuser", password="x",
                     require_signing=False, timeout=10) as session:
            assert session.session_flags & SessionFlags.IS_GUEST
            session.tree_connect("IPC$")
        event = server.events[-1]
        assert event.success and event.guest and "IS_GUEST" in event.session_flags
