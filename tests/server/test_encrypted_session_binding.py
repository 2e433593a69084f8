"""MS-SMB2 3.3.5.2.1.1: a decrypted request must carry the SessionId of the session whose key sealed it.

Found in review: bob's key sealing a TREE_CONNECT whose header named alice's session ran it as alice. The
server now drops the connection, as it does for any TRANSFORM_HEADER it cannot accept.
"""

from __future__ import annotations

from smb2auth.server.inline import answer_frame
from smb2auth.smb2.crypto import decrypt, encrypt
from smb2auth.smb2.header import Command, Smb2Header
from smb2auth.smb2.negotiate_contexts import Cipher, EncryptionCapabilities
from smb2auth.smb2.simple import EchoRequest
from smb2auth.smb2.tree import TreeConnectRequest
from smb2auth.status import NtStatus
from tests.server.driver import Driver, make_context, preauth_contexts


def _two_sessions() -> tuple[Driver, int, object]:
    ctx = make_context(shares=("data",))
    ctx.config.authority.add_user("bob", "b")  # type: ignore[attr-defined]
    driver = Driver(ctx)
    driver.negotiate((0x311,), contexts=preauth_contexts() + (EncryptionCapabilities((Cipher.AES_128_GCM,)),))
    alice = driver.login()
    bob = driver.login("bob", "b")
    return driver, alice.session_id, bob


def test_request_sealed_by_one_session_for_another_drops_the_connection() -> None:
    driver, alice_id, bob = _two_sessions()
    inner = driver.message(Command.TREE_CONNECT, TreeConnectRequest("\\\\srv\\data"), session_id=alice_id)
    sealed = encrypt(inner, bob.keys.client_to_server_key, driver.cipher, bob.session_id, b"\x01" * 12)
    assert answer_frame(driver.conn, sealed) == []
    assert driver.conn.closed
    # The dropped connection holds no session, so alice's tree connect never happened.
    assert driver.conn.sessions == {} and alice_id not in driver.conn.ctx.sessions


def test_request_sealed_by_its_own_session_is_served() -> None:
    driver, _, bob = _two_sessions()
    inner = driver.message(Command.ECHO, EchoRequest(), session_id=bob.session_id)
    sealed = encrypt(inner, bob.keys.client_to_server_key, driver.cipher, bob.session_id, b"\x02" * 12)
    out = answer_frame(driver.conn, sealed)
    _, plain = decrypt(out[0][4:], bob.keys.server_to_client_key, driver.cipher)
    header = Smb2Header.unpack(plain)
    assert header.status == NtStatus.STATUS_SUCCESS and header.session_id == bob.session_id
    assert not driver.conn.closed
