"""The sans-IO client core against our real server Connection, in memory (tests/helpers.py ConnectionPair):
no network and no fake. Equal keys on both sides check the client's preauth integrity chain (MS-SMB2 3.2.5.2)
and key derivation (3.2.5.3.1) against the server's (3.3.5.4, 3.3.5.5.3). Where a test needs a server that
misbehaves, a hook changes what the real server sent on its way to the client."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import replace

import pytest

from smb2auth.client.protocol import (
    ALL_DIALECTS,
    ClientConnection,
    NegotiateDowngradeError,
    SigningError,
    Smb2ClientError,
    parse_dialect,
)
from smb2auth.commands.connect import parse_credentials, parse_target
from smb2auth.errors import MalformedMessage, ProtocolStateError
from smb2auth.smb2.crypto import decrypt, encrypt, nonce_size
from smb2auth.smb2.header import HEADER_SIZE, Command, Smb2Header
from smb2auth.smb2.ioctl import (
    IoctlRequest,
    IoctlResponse,
    ValidateNegotiateInfoRequest,
    ValidateNegotiateInfoResponse,
)
from smb2auth.smb2.negotiate import Capabilities, Dialect, NegotiateRequest, NegotiateResponse, SecurityMode
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
from smb2auth.smb2.simple import ErrorResponse
from smb2auth.smb2.tree import ShareFlags, TreeConnectResponse
from smb2auth.status import NtStatus
from tests.helpers import (
    CLOCK,
    DOMAIN,
    PASSWORD,
    SERVER_NAME,
    USER,
    ConnectionPair,
    break_signature,
    counter_rng,
    edit,
    pending_first,
    server_context,
    strip_signature,
    with_session_id,
)


def make(password: str = PASSWORD, **kw: object) -> ClientConnection:
    kw.setdefault("rng", counter_rng())
    kw.setdefault("clock", lambda: CLOCK)
    return ClientConnection(username=USER, password=password, domain=DOMAIN, server_name=SERVER_NAME, **kw)  # type: ignore[arg-type]


def pair_for(**config: object) -> Callable[..., ConnectionPair]:
    """A ConnectionPair factory for a server with `config` (and the share "share")."""
    config.setdefault("shares", ("share",))

    def start(**client_options: object) -> ConnectionPair:
        return ConnectionPair(server_context(**config), **client_options)

    return start


SIGNING = {
    Dialect.SMB2_0_2: SigningAlgorithm.HMAC_SHA256,
    Dialect.SMB2_1: SigningAlgorithm.HMAC_SHA256,
    Dialect.SMB3_0: SigningAlgorithm.AES_CMAC,
    Dialect.SMB3_0_2: SigningAlgorithm.AES_CMAC,
    Dialect.SMB3_1_1: SigningAlgorithm.AES_GMAC,
}


@pytest.mark.parametrize("dialect", ALL_DIALECTS, ids=lambda d: f"0x{d:04x}")
def test_session_setup_each_dialect(dialect: Dialect) -> None:
    # The harness announces SMB2_GLOBAL_CAP_LARGE_MTU from 2.1 on, as smbd does: the client charges credits.
    pair = ConnectionPair(dialects=(dialect,))
    core = pair.client
    pair.establish()
    assert core.dialect == dialect
    assert core.signing_algorithm == SIGNING[dialect]
    assert core.setup_response_signed and core.signed
    session, keys = pair.session, pair.server_keys()
    # Same keys on both sides: preauth chain and KDF agree with the server's.
    assert core.signing_key == keys.signing_key == session.signing_key
    assert core.application_key == keys.application_key
    assert core.session_key == keys.session_key
    if dialect >= Dialect.SMB3_0:
        assert core.encryption_key == keys.encryption_key == session.decryption_key
        assert core.decryption_key == keys.decryption_key == session.encryption_key
    tree = pair.tree_connect()
    (tree_id,) = session.trees
    assert tree.signed and core.trees[tree_id].path == "\\\\harness\\share"
    assert pair.transact(core.echo()).signed
    pair.transact(core.logoff())
    assert core.state.value == "CLOSED"
    received = [r.header for r in pair.requests]
    # MS-SMB2 3.2.4.1.3/3.2.4.1.5: MessageIds 0.., CreditCharge 0 without multi-credit, CreditRequest 32.
    assert [h.message_id for h in received] == list(range(len(received)))
    charge = 0 if dialect == Dialect.SMB2_0_2 else 1
    assert [h.credit_charge for h in received] == [0] + [charge] * (len(received) - 1)
    assert all(h.credit == 32 for h in received)
    # Every request after SESSION_SETUP is signed (signing required by the client).
    setup_count = sum(h.command in (Command.NEGOTIATE, Command.SESSION_SETUP) for h in received)
    assert [r.signed for r in pair.requests] == [False] * setup_count + [True] * (len(received) - setup_count)


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
    assert isinstance(netname, NetnameNegotiateContextId) and netname.net_name == SERVER_NAME


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
    # MS-SMB2 3.3.5.4: the server's preference among the client's offer (SIGNING_PREFERENCE, its ciphers),
    # not the client's order.
    start = pair_for(ciphers=(Cipher.AES_256_GCM, Cipher.AES_128_GCM))
    pair = start(signing_algorithms=(SigningAlgorithm.HMAC_SHA256, SigningAlgorithm.AES_CMAC))
    core = pair.client
    pair.establish()
    assert core.signing_algorithm == SigningAlgorithm.AES_CMAC
    assert core.cipher == Cipher.AES_256_GCM
    assert len(core.encryption_key) == 32
    assert core.encryption_key == pair.server_keys().encryption_key == pair.session.decryption_key


def test_unsigned_final_response_refused_for_311() -> None:
    pair = ConnectionPair(to_client=edit(strip_signature, Command.SESSION_SETUP))
    with pytest.raises(SigningError) as info:
        pair.establish()
    assert info.value.status == NtStatus.STATUS_ACCESS_DENIED
    assert pair.client.state.value == "FAILED"


def test_unsigned_final_response_allowed_before_311() -> None:
    pair = ConnectionPair(to_client=edit(strip_signature, Command.SESSION_SETUP), dialects=(Dialect.SMB3_0,))
    core = pair.client
    pair.establish()
    assert Smb2Header.unpack(pair.answered[-1]).is_signed  # the server signed it; the hook took it off
    assert not core.setup_response_signed and not core.signed
    assert pair.transact(core.echo()).signed
    assert core.signed


def test_bad_signature_refused() -> None:
    pair = ConnectionPair(to_client=edit(break_signature))
    with pytest.raises(SigningError) as info:
        pair.establish()
    assert info.value.status == NtStatus.STATUS_ACCESS_DENIED


def test_unsigned_response_refused_when_signing_required() -> None:
    pair = ConnectionPair()
    core = pair.client
    pair.establish()
    pair.to_client = edit(strip_signature)
    with pytest.raises(SigningError) as info:
        pair.transact(core.echo())
    assert info.value.status == NtStatus.STATUS_ACCESS_DENIED
    assert info.value.command is Command.ECHO


def test_no_signing_when_neither_side_requires_it() -> None:
    pair = pair_for(signing_required=False)(require_signing=False)
    core = pair.client
    pair.establish()
    assert not core.signing_required
    assert not pair.transact(core.echo()).signed
    assert pair.requests[-1].signed is False
    assert not Smb2Header.unpack(pair.answered[-1]).is_signed


def test_interim_pending_then_final() -> None:
    pair = ConnectionPair(to_client=pending_first(Command.ECHO, Command.SESSION_SETUP))
    core = pair.client
    pair.establish()
    replies = pair.answers(core.echo())
    assert len(replies) == 2
    assert core.receive(replies[0]) is None  # MS-SMB2 3.2.5.1.5: interim STATUS_PENDING
    final = core.receive(replies[1])
    assert final is not None and final.signed


@pytest.mark.parametrize("password,user", [("wrong", USER), (PASSWORD, "mallory")])
def test_logon_failure(password: str, user: str) -> None:
    pair = ConnectionPair(username=user, password=password, domain="", server_name="")
    with pytest.raises(Smb2ClientError) as info:
        pair.establish()
    assert info.value.status == NtStatus.STATUS_LOGON_FAILURE
    assert info.value.command is Command.SESSION_SETUP
    assert pair.client.state.value == "FAILED"


@pytest.mark.parametrize("dialect", [Dialect.SMB3_0, Dialect.SMB3_0_2, Dialect.SMB3_1_1])
def test_session_encryption_demanded_by_server(dialect: Dialect) -> None:
    pair = pair_for(encrypt=True)(dialects=(dialect,))
    core = pair.client
    pair.establish()
    assert core.session_flags == SessionFlags.ENCRYPT_DATA and core.encrypt_data
    assert pair.tree_connect().encrypted
    echo = pair.transact(core.echo())
    assert echo.encrypted and not echo.signed
    assert [r.encrypted for r in pair.requests[-2:]] == [True, True]
    # MS-SMB2 3.2.4.1.8: encrypted, not signed.
    assert [r.signed for r in pair.requests[-2:]] == [False, False]


def test_share_encryption() -> None:
    # The harness never sets SMB2_SHAREFLAG_ENCRYPT_DATA (smbd does for a share with "smb encrypt =
    # required"): a hook sets it in the real TREE_CONNECT response and signs it again with the session's key.
    pair = ConnectionPair()
    core = pair.client

    def encrypted_share(message: bytes) -> bytes:
        body = TreeConnectResponse.unpack(message[HEADER_SIZE:])
        flags = body.share_flags | ShareFlags.ENCRYPT_DATA
        return pair.resign(message[:HEADER_SIZE] + replace(body, share_flags=flags).pack())

    pair.to_client = edit(encrypted_share, Command.TREE_CONNECT)
    pair.establish()
    pair.tree_connect()
    (tree_id,) = pair.session.trees
    assert core.trees[tree_id].encrypt
    assert not pair.transact(core.echo()).encrypted  # session-level: not on the tree
    assert pair.transact(core.tree_disconnect(tree_id)).encrypted
    assert pair.requests[-1].encrypted is True
    assert pair.session.trees == {}


def test_encryption_before_smb3_is_refused() -> None:
    with pytest.raises(Smb2ClientError) as info:
        make(dialects=(Dialect.SMB2_0_2, Dialect.SMB2_1), require_encryption=True)
    assert info.value.status == NtStatus.STATUS_NOT_SUPPORTED
    pair = pair_for(max_dialect=Dialect.SMB2_1)(require_encryption=True)
    with pytest.raises(Smb2ClientError) as info:
        pair.establish()
    assert "negotiated 2.1" in str(info.value)


def test_dialect_not_offered_is_refused() -> None:
    def answer_21(message: bytes) -> bytes:
        response = NegotiateResponse.unpack(message[HEADER_SIZE:])
        return message[:HEADER_SIZE] + replace(response, dialect_revision=Dialect.SMB2_1).pack()

    pair = ConnectionPair(to_client=edit(answer_21, Command.NEGOTIATE), dialects=(Dialect.SMB3_0,))
    with pytest.raises(Smb2ClientError) as info:
        pair.establish()
    assert info.value.status == NtStatus.STATUS_NOT_SUPPORTED


def test_bad_share_status() -> None:
    pair = ConnectionPair()
    core = pair.client
    pair.establish()
    with pytest.raises(Smb2ClientError) as info:
        pair.transact(core.tree_connect("nope"))
    assert info.value.status == NtStatus.STATUS_BAD_NETWORK_NAME
    assert core.established


def test_out_of_order() -> None:
    core = make()
    with pytest.raises(ProtocolStateError, match="IDLE"):
        core.echo()
    pair = ConnectionPair()
    core = pair.client
    pair.establish()
    stray = Smb2Header(Command.ECHO, message_id=77, credit=1).pack()
    response = stray[:16] + struct.pack("<I", 1) + stray[20:] + b"\x04\x00\x00\x00"
    with pytest.raises(ProtocolStateError, match="77"):
        core.receive(response)


def test_keys_not_in_repr() -> None:
    pair = ConnectionPair()
    core = pair.client
    pair.establish()
    # Its private state, read attribute by attribute (a compiled build's ClientConnection has no __dict__).
    text = " ".join(repr(getattr(core, name)) for name in dir(core) if name[:1] == "_" and name[:2] != "__")
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
    pair = pair_for(encrypt=True)()
    core = pair.client
    pair.establish()
    (reply,) = pair.answers(core.echo())
    key, cipher = pair.session.encryption_key, core.cipher or 0
    _, inner = decrypt(reply, key, cipher)
    forged = with_session_id(inner, core.session_id ^ 1)
    resealed = encrypt(forged, key, cipher, core.session_id, bytes(nonce_size(cipher)))
    core.echo()
    with pytest.raises(MalformedMessage, match="another SessionId"):
        core.receive(resealed)


# --- FSCTL_VALIDATE_NEGOTIATE_INFO (MS-SMB2 3.2.5.5, 3.2.5.14.12) -------------------------------------------


def validate_answer(pair: ConnectionPair, **changes: object) -> Callable[[bytes], bytes]:
    """A change to the server's FSCTL_VALIDATE_NEGOTIATE_INFO answer: `changes` to its fields, re-signed."""

    def change(message: bytes) -> bytes:
        ioctl = IoctlResponse.unpack(message[HEADER_SIZE:])
        answer = replace(ValidateNegotiateInfoResponse.unpack(ioctl.output), **changes)  # type: ignore[arg-type]
        return pair.resign(message[:HEADER_SIZE] + replace(ioctl, output=answer.pack()).pack())

    return change


@pytest.mark.parametrize("dialect", ALL_DIALECTS, ids=lambda d: f"0x{d:04x}")
def test_validate_negotiate_after_first_tree_connect(dialect: Dialect) -> None:
    pair = ConnectionPair(dialects=(Dialect.SMB2_0_2, dialect))
    core = pair.client
    pair.establish()
    first = pair.tree_connect()
    pair.tree_connect()  # only the first TREE_CONNECT is followed by the FSCTL
    ioctls = [r for r in pair.requests if r.header.command is Command.IOCTL]
    if dialect in (Dialect.SMB3_0, Dialect.SMB3_0_2):
        assert core.validated_negotiate is True
        assert len(ioctls) == 1 and ioctls[0].signed
        assert ioctls[0].header.tree_id == first.header.tree_id and first.header.tree_id in pair.session.trees
        # MS-SMB2 2.2.31.4: the input repeats our NEGOTIATE request.
        sent = ValidateNegotiateInfoRequest.unpack(IoctlRequest.unpack(ioctls[0].body).input)
        assert sent.dialects == (Dialect.SMB2_0_2, dialect)
        assert sent.security_mode == 3 and sent.client_guid == core._negotiate_info.client_guid  # type: ignore[union-attr]
        assert sent.client_guid == pair.server.negotiated.client_guid
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
    # A server that does not require signing, so that "SIGNING_REQUIRED" in the answer is a change.
    pair = pair_for(signing_required=False)(dialects=(Dialect.SMB3_0, Dialect.SMB3_0_2))
    core = pair.client
    pair.to_client = edit(validate_answer(pair, **tamper), Command.IOCTL)
    pair.establish()
    pair.transact(core.tree_connect("share"))
    with pytest.raises(NegotiateDowngradeError) as info:
        core.receive(pair.answers(core.data_to_send())[0])
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
    pair = ConnectionPair(dialects=(Dialect.SMB3_0_2,))
    core = pair.client

    def answer(message: bytes) -> bytes:
        if status:
            header = replace(Smb2Header.unpack(message), status=status)
            message = header.pack() + ErrorResponse().pack()
        return strip_signature(message) if unsigned else pair.resign(message)

    pair.to_client = edit(answer, Command.IOCTL)
    pair.establish()
    pair.transact(core.tree_connect("share"))
    reply = pair.answers(core.data_to_send())[0]
    if outcome == "refused":
        with pytest.raises(NegotiateDowngradeError):
            core.receive(reply)
        assert core.state.value == "FAILED"
    else:
        response = core.receive(reply)
        assert response is not None and response.signed and response.header.status == status
        assert core.validated_negotiate is outcome and core.established
        assert pair.transact(core.echo()).signed


def test_validate_negotiate_can_be_turned_off() -> None:
    pair = ConnectionPair(dialects=(Dialect.SMB3_0,), validate_negotiate=False)
    core = pair.client
    pair.to_client = edit(validate_answer(pair, dialect=Dialect.SMB2_1), Command.IOCTL)
    pair.establish()
    pair.tree_connect()
    assert core.validated_negotiate is False and core.data_to_send() == b""
    assert not any(r.header.command is Command.IOCTL for r in pair.requests)


def test_validate_negotiate_signed_when_signing_is_optional() -> None:
    # Neither side requires signing, so requests go unsigned, but the FSCTL is signed (MS-SMB2 3.2.5.14.12).
    pair = pair_for(signing_required=False)(dialects=(Dialect.SMB3_0_2,), require_signing=False)
    core = pair.client
    pair.establish()
    assert not core.signing_required
    pair.tree_connect()
    assert core.validated_negotiate is True
    ioctl = [r for r in pair.requests if r.header.command is Command.IOCTL]
    tree = [r for r in pair.requests if r.header.command is Command.TREE_CONNECT]
    assert [r.signed for r in ioctl + tree] == [True, False]


def test_validate_negotiate_over_an_encrypted_session() -> None:
    pair = pair_for(encrypt=True)(dialects=(Dialect.SMB3_0,))
    core = pair.client
    pair.establish()
    pair.tree_connect()
    assert core.validated_negotiate is True
    assert pair.requests[-1].encrypted and pair.requests[-1].header.command is Command.IOCTL


def test_a_negotiate_downgraded_in_transit_is_caught_by_the_server() -> None:
    # A man in the middle takes 3.0.2 out of the client's NEGOTIATE; the signed FSCTL repeats the offer as
    # sent, so the server sees the difference and drops the connection (MS-SMB2 3.3.5.15.12).
    def only_30(message: bytes) -> bytes:
        request = NegotiateRequest.unpack(message[HEADER_SIZE:])
        return message[:HEADER_SIZE] + replace(request, dialects=(Dialect.SMB3_0,)).pack()

    offer = (Dialect.SMB3_0, Dialect.SMB3_0_2)
    pair = ConnectionPair(to_server=edit(only_30, Command.NEGOTIATE), dialects=offer)
    core = pair.client
    pair.establish()
    assert core.dialect == Dialect.SMB3_0 and pair.server.dialect == Dialect.SMB3_0
    pair.transact(core.tree_connect("share"))
    assert pair.answers(core.data_to_send()) == []
    assert pair.server.closed and "VALIDATE_NEGOTIATE_INFO" in pair.server.close_reason


# --- signature checks before credits, and the session of the request (MS-SMB2 3.2.5.1.3, 3.2.5.1.4) ---------


def test_credits_from_a_bad_signature_are_not_granted() -> None:
    pair = pair_for(max_credits=10_000)(dialects=(Dialect.SMB3_1_1,), credit_request=500)
    core = pair.client
    pair.establish()
    before = core.credits
    echo = core.echo()
    pair.to_client = edit(break_signature)
    with pytest.raises(SigningError):
        pair.exchange(echo)
    # The ECHO spent one credit; the CreditResponse of 500 under a broken signature was not counted.
    assert Smb2Header.unpack(pair.received[-1]).credit == 500
    assert core.credits == before - 1
    pair.to_client = None
    pair.transact(core.echo())
    assert core.credits == before - 2 + 500


def test_unsigned_response_with_session_id_zero_is_refused() -> None:
    # MS-SMB2 3.2.5.1.3: the session comes from the request, so zeroing the response's SessionId (and dropping
    # its signature) does not escape verification.
    pair = ConnectionPair(dialects=(Dialect.SMB3_1_1,))
    core = pair.client
    pair.establish()
    pair.to_client = edit(lambda message: with_session_id(strip_signature(message), 0))
    with pytest.raises(SigningError) as info:
        pair.transact(core.echo())
    assert "unsigned ECHO" in str(info.value)


def test_unsigned_response_with_session_id_zero_allowed_without_signing() -> None:
    pair = pair_for(signing_required=False)(dialects=(Dialect.SMB3_1_1,), require_signing=False)
    core = pair.client
    pair.establish()
    assert not core.signing_required
    pair.to_client = edit(lambda message: with_session_id(strip_signature(message), 0))
    assert not pair.transact(core.echo()).signed
