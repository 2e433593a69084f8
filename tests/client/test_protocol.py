"""The sans-IO client core against an in-memory server (tests/client/fakes.py): no network.

The fake server derives its keys on its own (smb2auth.smb2.crypto from the bytes it saw), so equal keys on
both sides check the client's preauth integrity chain (MS-SMB2 3.2.5.2) and key derivation (3.2.5.3.1)."""

from __future__ import annotations

import itertools
import struct

import pytest

from smb2auth.client.protocol import (
    ALL_DIALECTS,
    ClientConnection,
    NegotiateDowngradeError,
    Response,
    SigningError,
    Smb2ClientError,
    parse_dialect,
)
from smb2auth.commands.connect import parse_credentials, parse_target
from smb2auth.errors import MalformedMessage, ProtocolStateError
from smb2auth.smb2.crypto import decrypt, encrypt
from smb2auth.smb2.header import Command, Smb2Header
from smb2auth.smb2.negotiate import Capabilities, Dialect, NegotiateRequest, SecurityMode
from smb2auth.smb2.negotiate_contexts import (
    Cipher,
    EncryptionCapabilities,
    NetnameNegotiateContextId,
    PreauthIntegrityCapabilities,
    SigningAlgorithm,
    SigningCapabilities,
    find_context,
)
from smb2auth.smb2.session import SessionFlags
from smb2auth.status import NtStatus
from tests.client.fakes import PASSWORD, USER, FakeServer


def counter_rng() -> object:
    counter = itertools.count()

    def rng(n: int) -> bytes:
        return bytes((next(counter) + i) & 0xFF for i in range(n))

    return rng


def make(password: str = PASSWORD, **kw: object) -> ClientConnection:
    kw.setdefault("rng", counter_rng())
    kw.setdefault("clock", lambda: 1_700_000_000.0)
    return ClientConnection(username=USER, password=password, domain="TESTGRP", server_name="fake", **kw)  # type: ignore[arg-type]


def setup(core: ClientConnection, server: FakeServer) -> None:
    replies = server.handle(core.negotiate())
    while not core.established:
        assert replies, "the server has nothing to answer"
        for reply in replies:
            core.receive(reply)
        out = core.data_to_send()
        replies = server.handle(out) if out else []


def transact(core: ClientConnection, server: FakeServer, request: bytes) -> Response:
    results = [core.receive(r) for r in server.handle(request)]
    assert all(r is None for r in results[:-1])
    final = results[-1]
    assert final is not None
    return final


def tree_connect(core: ClientConnection, server: FakeServer, share: str = "share") -> Response:
    """TREE_CONNECT, then the FSCTL_VALIDATE_NEGOTIATE_INFO the client queues after it (3.0, 3.0.2)."""
    tree = transact(core, server, core.tree_connect(share))
    out = core.data_to_send()
    if out:
        validate = transact(core, server, out)
        assert validate.header.command is Command.IOCTL
    return tree


SIGNING = {
    Dialect.SMB2_0_2: SigningAlgorithm.HMAC_SHA256,
    Dialect.SMB2_1: SigningAlgorithm.HMAC_SHA256,
    Dialect.SMB3_0: SigningAlgorithm.AES_CMAC,
    Dialect.SMB3_0_2: SigningAlgorithm.AES_CMAC,
    Dialect.SMB3_1_1: SigningAlgorithm.AES_GMAC,
}


@pytest.mark.parametrize("dialect", ALL_DIALECTS, ids=lambda d: f"0x{d:04x}")
def test_session_setup_each_dialect(dialect: Dialect) -> None:
    server = FakeServer()
    core = make(dialects=(dialect,))
    setup(core, server)
    assert core.dialect == dialect
    assert core.signing_algorithm == SIGNING[dialect]
    assert core.setup_response_signed and core.signed
    assert server.keys is not None
    # Same keys on both sides: preauth chain and KDF agree with the server's.
    assert core.signing_key == server.keys.signing_key
    assert core.application_key == server.keys.application_key
    assert core.session_key == server.keys.session_key
    if dialect >= Dialect.SMB3_0:
        assert core.encryption_key == server.keys.encryption_key
        assert core.decryption_key == server.keys.decryption_key
    tree = tree_connect(core, server)
    assert tree.signed and core.trees[server.tree_id].path == "\\\\fake\\share"
    assert transact(core, server, core.echo()).signed
    transact(core, server, core.logoff())
    assert core.state.value == "CLOSED"
    # MS-SMB2 3.2.4.1.3/3.2.4.1.5: MessageIds 0.., CreditCharge 0 without multi-credit, CreditRequest 32.
    assert [h.message_id for h in server.received] == list(range(len(server.received)))
    charge = 0 if dialect == Dialect.SMB2_0_2 else 1
    assert [h.credit_charge for h in server.received] == [0] + [charge] * (len(server.received) - 1)
    assert all(h.credit == 32 for h in server.received)
    # Every request after SESSION_SETUP is signed (signing required by the client).
    setup_count = sum(h.command in (Command.NEGOTIATE, Command.SESSION_SETUP) for h in server.received)
    assert server.requests_signed == [False] * setup_count + [True] * (
        len(server.received) - setup_count
    )


def test_negotiate_request_is_deterministic_and_carries_311_contexts() -> None:
    first, second = make().negotiate(), make().negotiate()
    assert first == second  # rng and clock are injected
    header = Smb2Header.unpack(first[4:])
    assert (header.command, header.message_id, header.credit_charge, header.credit) == (
        Command.NEGOTIATE,
        0,
        0,
        32,
    )
    request = NegotiateRequest.unpack(first[4 + 64 :])
    assert request.dialects == tuple(ALL_DIALECTS)
    preauth = find_context(request.negotiate_contexts, PreauthIntegrityCapabilities)
    assert isinstance(preauth, PreauthIntegrityCapabilities)
    assert preauth.hash_algorithms == (1,) and len(preauth.salt) == 32
    ciphers = find_context(request.negotiate_contexts, EncryptionCapabilities)
    assert isinstance(ciphers, EncryptionCapabilities)
    assert set(ciphers.ciphers) == {c.value for c in Cipher}
    signing = find_context(request.negotiate_contexts, SigningCapabilities)
    assert isinstance(signing, SigningCapabilities)
    assert signing.signing_algorithms == (2, 1, 0)
    netname = find_context(request.negotiate_contexts, NetnameNegotiateContextId)
    assert isinstance(netname, NetnameNegotiateContextId) and netname.net_name == "fake"


def test_no_ciphers_and_no_signing_algorithms_leave_their_contexts_out() -> None:
    # MS-SMB2 2.2.3.1.2 / 2.2.3.1.7: a count of 0 is refused by the server, so the client never sends one.
    frame = make(ciphers=(), signing_algorithms=()).negotiate()
    request = NegotiateRequest.unpack(frame[4 + 64 :])
    assert [type(c) for c in request.negotiate_contexts] == [
        PreauthIntegrityCapabilities,
        NetnameNegotiateContextId,
    ]


@pytest.mark.parametrize(
    "offer", [{"ciphers": (Cipher.AES_128_GCM, 9)}, {"signing_algorithms": (3,)}, {"dialects": (0x02FF,)}]
)
def test_an_offer_no_server_could_accept_is_refused_before_sending(offer: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        make(**offer)


def test_cmac_and_gmac_choices_follow_the_server() -> None:
    server = FakeServer(signing=SigningAlgorithm.AES_CMAC, cipher=Cipher.AES_256_GCM)
    core = make()
    setup(core, server)
    assert core.signing_algorithm == SigningAlgorithm.AES_CMAC
    assert core.cipher == Cipher.AES_256_GCM
    assert server.keys is not None and len(core.encryption_key) == 32
    assert core.encryption_key == server.keys.encryption_key


def test_unsigned_final_response_refused_for_311() -> None:
    core = make()
    with pytest.raises(SigningError) as info:
        setup(core, FakeServer(sign_final=False))
    assert info.value.status == NtStatus.STATUS_ACCESS_DENIED
    assert core.state.value == "FAILED"


def test_unsigned_final_response_allowed_before_311() -> None:
    core = make(dialects=(Dialect.SMB3_0,))
    server = FakeServer(sign_final=False)
    setup(core, server)
    assert not core.setup_response_signed and not core.signed
    assert transact(core, server, core.echo()).signed
    assert core.signed


def test_bad_signature_refused() -> None:
    core = make()
    with pytest.raises(SigningError) as info:
        setup(core, FakeServer(corrupt_signatures=True))
    assert info.value.status == NtStatus.STATUS_ACCESS_DENIED


def test_unsigned_response_refused_when_signing_required() -> None:
    server = FakeServer(unsigned_after_setup=True)
    core = make()
    setup(core, server)
    with pytest.raises(SigningError) as info:
        transact(core, server, core.echo())
    assert info.value.status == NtStatus.STATUS_ACCESS_DENIED
    assert info.value.command is Command.ECHO


def test_no_signing_when_neither_side_requires_it() -> None:
    server = FakeServer(unsigned_after_setup=True)
    core = make(require_signing=False)
    setup(core, server)
    assert not core.signing_required
    assert not transact(core, server, core.echo()).signed
    assert server.requests_signed[-1] is False


def test_interim_pending_then_final() -> None:
    server = FakeServer(pending_for=(Command.ECHO, Command.SESSION_SETUP))
    core = make()
    setup(core, server)
    replies = server.handle(core.echo())
    assert len(replies) == 2
    assert core.receive(replies[0]) is None  # MS-SMB2 3.2.5.1.5: interim STATUS_PENDING
    final = core.receive(replies[1])
    assert final is not None and final.signed


@pytest.mark.parametrize("password,user", [("wrong", USER), (PASSWORD, "mallory")])
def test_logon_failure(password: str, user: str) -> None:
    core = ClientConnection(username=user, password=password, rng=counter_rng())  # type: ignore[arg-type]
    with pytest.raises(Smb2ClientError) as info:
        setup(core, FakeServer())
    assert info.value.status == NtStatus.STATUS_LOGON_FAILURE
    assert info.value.command is Command.SESSION_SETUP
    assert core.state.value == "FAILED"


@pytest.mark.parametrize("dialect", [Dialect.SMB3_0, Dialect.SMB3_0_2, Dialect.SMB3_1_1])
def test_session_encryption_demanded_by_server(dialect: Dialect) -> None:
    server = FakeServer(encrypt_data=True)
    core = make(dialects=(dialect,))
    setup(core, server)
    assert core.session_flags == SessionFlags.ENCRYPT_DATA and core.encrypt_data
    assert tree_connect(core, server).encrypted
    echo = transact(core, server, core.echo())
    assert echo.encrypted and not echo.signed
    assert server.requests_encrypted[-2:] == [True, True]
    assert server.requests_signed[-2:] == [False, False]  # MS-SMB2 3.2.4.1.8: encrypted, not signed


def test_share_encryption() -> None:
    server = FakeServer(encrypt_share=True)
    core = make()
    setup(core, server)
    tree_connect(core, server)
    assert core.trees[server.tree_id].encrypt
    assert not transact(core, server, core.echo()).encrypted  # session-level: not on the tree
    assert transact(core, server, core.tree_disconnect(server.tree_id)).encrypted
    assert server.requests_encrypted[-1] is True


def test_encryption_before_smb3_is_refused() -> None:
    with pytest.raises(Smb2ClientError) as info:
        make(dialects=(Dialect.SMB2_0_2, Dialect.SMB2_1), require_encryption=True)
    assert info.value.status == NtStatus.STATUS_NOT_SUPPORTED
    core = make(require_encryption=True)
    with pytest.raises(Smb2ClientError) as info:
        setup(core, FakeServer(dialects=(Dialect.SMB2_1,)))
    assert "negotiated 2.1" in str(info.value)


def test_dialect_not_offered_is_refused() -> None:
    core = make(dialects=(Dialect.SMB3_0,))
    with pytest.raises(Smb2ClientError) as info:
        setup(core, FakeServer(dialect_override=Dialect.SMB2_1))
    assert info.value.status == NtStatus.STATUS_NOT_SUPPORTED


def test_bad_share_status() -> None:
    server = FakeServer()
    core = make()
    setup(core, server)
    with pytest.raises(Smb2ClientError) as info:
        transact(core, server, core.tree_connect("nope"))
    assert info.value.status == NtStatus.STATUS_BAD_NETWORK_NAME
    assert core.established


def test_out_of_order() -> None:
    core = make()
    with pytest.raises(ProtocolStateError, match="IDLE"):
        core.echo()
    server = FakeServer()
    setup(core, server)
    stray = Smb2Header(Command.ECHO, message_id=77, credit=1).pack()
    response = stray[:16] + struct.pack("<I", 1) + stray[20:] + b"\x04\x00\x00\x00"
    with pytest.raises(ProtocolStateError, match="77"):
        core.receive(response)


def test_keys_not_in_repr() -> None:
    server = FakeServer()
    core = make()
    setup(core, server)
    text = repr(core.__dict__)
    assert core.signing_key.hex() not in text and repr(core.signing_key) not in text


@pytest.mark.parametrize(
    "text,dialect",
    [
        ("3.1.1", Dialect.SMB3_1_1),
        ("SMB2_02", Dialect.SMB2_0_2),
        ("smb3_00", Dialect.SMB3_0),
        ("2.1", Dialect.SMB2_1),
        ("0x0302", Dialect.SMB3_0_2),
    ],
)
def test_parse_dialect(text: str, dialect: Dialect) -> None:
    assert parse_dialect(text) == dialect


def test_parse_dialect_rejects() -> None:
    with pytest.raises(ValueError):
        parse_dialect("4.0")


def test_parse_target_and_user() -> None:
    assert parse_target("//srv") == ("srv", None, "")
    assert parse_target("//srv:4445/share") == ("srv", 4445, "share")
    assert parse_target("\\\\srv\\share") == ("srv", None, "share")
    assert parse_target("//[::1]:99/s") == ("::1", 99, "s")
    with pytest.raises(ValueError):
        parse_target("srv/share")
    assert parse_credentials("DOM/bob%pw%x") == ("DOM", "bob", "pw%x")
    assert parse_credentials("DOM\\bob") == ("DOM", "bob", None)
    assert parse_credentials("bob%") == ("", "bob", "")


def test_decrypted_response_for_another_session_is_refused() -> None:
    # MS-SMB2 3.2.5.1.1.1: the inner SessionId must be the TRANSFORM_HEADER's.
    server = FakeServer(encrypt_data=True)
    core = make()
    setup(core, server)
    (reply,) = server.handle(core.echo())
    assert server.keys is not None
    _, inner = decrypt(reply, server.keys.decryption_key, core.cipher or 0)
    forged = inner[:40] + (core.session_id ^ 1).to_bytes(8, "little") + inner[48:]
    nonce = bytes(12 if core.cipher in (Cipher.AES_128_GCM, Cipher.AES_256_GCM) else 11)
    resealed = encrypt(forged, server.keys.decryption_key, core.cipher or 0, core.session_id, nonce)
    core.echo()
    with pytest.raises(MalformedMessage, match="another SessionId"):
        core.receive(resealed)


# --- FSCTL_VALIDATE_NEGOTIATE_INFO (MS-SMB2 3.2.5.5, 3.2.5.14.12) -------------------------------------------


@pytest.mark.parametrize("dialect", ALL_DIALECTS, ids=lambda d: f"0x{d:04x}")
def test_validate_negotiate_after_first_tree_connect(dialect: Dialect) -> None:
    server = FakeServer()
    core = make(dialects=(Dialect.SMB2_0_2, dialect))
    setup(core, server)
    tree_connect(core, server)
    tree_connect(core, server)  # only the first TREE_CONNECT is followed by the FSCTL
    ioctls = [i for i, h in enumerate(server.received) if h.command is Command.IOCTL]
    if dialect in (Dialect.SMB3_0, Dialect.SMB3_0_2):
        assert core.validated_negotiate is True
        assert len(ioctls) == 1 and server.requests_signed[ioctls[0]]
        assert server.received[ioctls[0]].tree_id == server.tree_id
        # MS-SMB2 2.2.31.4: the input repeats our NEGOTIATE request.
        (sent,) = server.validate_requests
        assert sent.dialects == (Dialect.SMB2_0_2, dialect)
        assert sent.security_mode == 3 and sent.client_guid == core._negotiate_info.client_guid  # type: ignore[union-attr]
    else:
        assert core.validated_negotiate is None and not ioctls


@pytest.mark.parametrize(
    "tamper",
    [
        {"dialect": Dialect.SMB3_0},
        {"server_guid": b"\x00" * 16},
        {"capabilities": Capabilities.LARGE_MTU},
        {"security_mode": SecurityMode.SIGNING_ENABLED | SecurityMode.SIGNING_REQUIRED},
    ],
    ids=["dialect", "guid", "capabilities", "security-mode"],
)
def test_tampered_validate_answer_is_a_downgrade(tamper: dict[str, object]) -> None:
    server = FakeServer(validate_tamper=tamper)
    core = make(dialects=(Dialect.SMB3_0, Dialect.SMB3_0_2))
    setup(core, server)
    transact(core, server, core.tree_connect("share"))
    with pytest.raises(NegotiateDowngradeError) as info:
        core.receive(server.handle(core.data_to_send())[0])
    assert info.value.status == NtStatus.STATUS_ACCESS_DENIED and "downgrade" in str(info.value)
    # MS-SMB2 3.2.5.14.12: the connection is terminated.
    assert core.state.value == "FAILED" and core.validated_negotiate is None
    with pytest.raises(ProtocolStateError):
        core.echo()


@pytest.mark.parametrize(
    ("status", "unsigned", "outcome"),
    [
        (NtStatus.STATUS_ACCESS_DENIED, False, "refused"),
        (NtStatus.STATUS_INVALID_PARAMETER, False, "refused"),
        (NtStatus.STATUS_NOT_SUPPORTED, False, False),
        (NtStatus.STATUS_FILE_CLOSED, False, False),
        (NtStatus.STATUS_INVALID_DEVICE_REQUEST, False, False),
        (NtStatus.STATUS_NOT_SUPPORTED, True, "refused"),
        (NtStatus.STATUS_FILE_CLOSED, True, "refused"),
        (0, True, "refused"),
    ],
)
def test_validate_answer_statuses(status: int, unsigned: bool, outcome: object) -> None:
    # MS-SMB2 3.2.5.14.12: unsigned (and unencrypted) or ACCESS_DENIED terminates; a signed "not supported"
    # (older Windows and Samba) leaves the negotiation unvalidated.
    server = FakeServer(validate_status=status, validate_unsigned=unsigned)
    core = make(dialects=(Dialect.SMB3_0_2,))
    setup(core, server)
    transact(core, server, core.tree_connect("share"))
    reply = server.handle(core.data_to_send())[0]
    if outcome == "refused":
        with pytest.raises(NegotiateDowngradeError):
            core.receive(reply)
        assert core.state.value == "FAILED"
    else:
        response = core.receive(reply)
        assert response is not None and response.signed and response.header.status == status
        assert core.validated_negotiate is outcome and core.established
        assert transact(core, server, core.echo()).signed


def test_validate_negotiate_can_be_turned_off() -> None:
    server = FakeServer(validate_tamper={"dialect": Dialect.SMB2_1})
    core = make(dialects=(Dialect.SMB3_0,), validate_negotiate=False)
    setup(core, server)
    tree_connect(core, server)
    assert core.validated_negotiate is False and core.data_to_send() == b""
    assert not any(h.command is Command.IOCTL for h in server.received)


def test_validate_negotiate_signed_when_signing_is_optional() -> None:
    # Neither side requires signing, so requests go unsigned, but the FSCTL is signed (MS-SMB2 3.2.5.14.12).
    server = FakeServer()
    core = make(dialects=(Dialect.SMB3_0_2,), require_signing=False)
    setup(core, server)
    assert not core.signing_required
    tree_connect(core, server)
    assert core.validated_negotiate is True
    ioctl = [i for i, h in enumerate(server.received) if h.command is Command.IOCTL]
    tree = [i for i, h in enumerate(server.received) if h.command is Command.TREE_CONNECT]
    assert [server.requests_signed[i] for i in ioctl + tree] == [True, False]


def test_validate_negotiate_over_an_encrypted_session() -> None:
    server = FakeServer(encrypt_data=True)
    core = make(dialects=(Dialect.SMB3_0,))
    setup(core, server)
    tree_connect(core, server)
    assert core.validated_negotiate is True
    assert server.requests_encrypted[-1] and server.received[-1].command is Command.IOCTL


# --- signature checks before credits, and the session of the request (MS-SMB2 3.2.5.1.3, 3.2.5.1.4) ---------


def test_credits_from_a_bad_signature_are_not_granted() -> None:
    server = FakeServer(credit_grant=500)
    core = make(dialects=(Dialect.SMB3_1_1,))
    setup(core, server)
    before = core.credits
    echo = core.echo()
    server.corrupt_signatures = True
    with pytest.raises(SigningError):
        for reply in server.handle(echo):
            core.receive(reply)
    # The ECHO spent one credit; the forged CreditResponse of 500 was not counted.
    assert core.credits == before - 1
    server.corrupt_signatures = False
    transact(core, server, core.echo())
    assert core.credits == before - 2 + 500


def test_unsigned_response_with_session_id_zero_is_refused() -> None:
    # MS-SMB2 3.2.5.1.3: the session comes from the request, so zeroing the response's SessionId (and dropping
    # its signature) does not escape verification.
    server = FakeServer()
    core = make(dialects=(Dialect.SMB3_1_1,))
    setup(core, server)
    server.zero_session_id = True
    with pytest.raises(SigningError) as info:
        transact(core, server, core.echo())
    assert "unsigned ECHO" in str(info.value)


def test_unsigned_response_with_session_id_zero_allowed_without_signing() -> None:
    server = FakeServer()
    core = make(dialects=(Dialect.SMB3_1_1,), require_signing=False)
    setup(core, server)
    assert not core.signing_required
    server.zero_session_id = True
    assert not transact(core, server, core.echo()).signed
