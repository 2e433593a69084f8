"""Client <-> server round trips for each policy, and one negative test per server check."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from smb2auth.authority.consult import consult
from smb2auth.authority.local import LocalAuthority
from smb2auth.errors import AuthenticationError, MalformedMessage, ProtocolStateError
from smb2auth.ntlm import ChannelBindingPolicy, NtlmClient, NtlmPolicy, NtlmServer, TargetInfo, crypto
from smb2auth.ntlm._state import ServerState
from smb2auth.ntlm.authority import (
    AsyncAuthority,
    ResponseKind,
    ValidationRequest,
    ValidationResult,
)
from smb2auth.ntlm.events import Complete, Failed, Send, ValidationNeeded
from smb2auth.ntlm.messages import (
    AuthenticateMessage,
    AvId,
    AvPair,
    ChallengeMessage,
    NegotiateMessage,
    NtlmV2ClientChallenge,
    Version,
)
from smb2auth.ntlm.messages import NegotiateFlags as F
from smb2auth.status import NtStatus

PW = "Secret1"


def counter_rng() -> object:
    counter = itertools.count(1)
    return lambda n: bytes((next(counter) & 0xFF,)) * n


@pytest.fixture
def authority() -> LocalAuthority:
    a = LocalAuthority()
    a.add_user("alice", PW, sid="S-1-5-21-1-2-3-1000")
    return a


def handshake(
    authority: object, client: NtlmClient, policy: NtlmPolicy | None = None, **server_kw: object
) -> NtlmServer:
    server = NtlmServer(authority, target=TargetInfo(), policy=policy or NtlmPolicy(), **server_kw)  # type: ignore[arg-type]
    challenge = server.step(client.step(None))  # type: ignore[arg-type]
    assert challenge is not None
    assert server.step(client.step(challenge)) is None  # type: ignore[arg-type]
    return server


def exercise_security(client: NtlmClient, server: NtlmServer) -> None:
    for i in range(3):
        server.verify(b"c2s%d" % i, client.sign(b"c2s%d" % i))
        client.verify(b"s2c%d" % i, server.sign(b"s2c%d" % i))
        assert server.unwrap(client.wrap(b"sealed c2s")) == b"sealed c2s"
        assert client.unwrap(server.wrap(b"sealed s2c")) == b"sealed s2c"
    with pytest.raises(AuthenticationError) as err:
        server.verify(b"tampered", client.sign(b"original"))
    assert err.value.status == NtStatus.STATUS_ACCESS_DENIED


@pytest.mark.parametrize(
    "kind", [ResponseKind.NTLMV2, ResponseKind.NTLMV1, ResponseKind.NTLMV1_ESS, ResponseKind.LM]
)
@pytest.mark.parametrize("key_exchange", [True, False])
def test_round_trip(authority: LocalAuthority, kind: ResponseKind, key_exchange: bool) -> None:
    client = NtlmClient("ALICE", PW, domain="ANYDOMAIN", version=kind, key_exchange=key_exchange)
    policy = NtlmPolicy(allow_ntlmv1=True, allow_lm=True)
    server = handshake(authority, client, policy)
    assert server.complete and client.complete
    assert server.response_kind == kind
    assert server.account is not None and server.account.username == "alice"
    assert server.session_key == client.session_key and len(server.session_key or b"") == 16
    assert bool(server.negotiated_flags & F.NTLMSSP_NEGOTIATE_KEY_EXCH) == key_exchange
    assert server.mic_present == (kind == ResponseKind.NTLMV2)
    assert (server.user, server.domain) == ("ALICE", "ANYDOMAIN")
    exercise_security(client, server)


def test_nt_hash_credentials_and_no_mic(authority: LocalAuthority) -> None:
    client = NtlmClient("alice", nt_hash=crypto.ntowfv1(PW), send_mic=False)
    server = handshake(authority, client)
    assert server.complete and not server.mic_present and not client.mic_present


def test_oem_client_like_curl(authority: LocalAuthority) -> None:
    client = NtlmClient("alice", PW, domain="WORKGROUP", workstation="CURLBOX", oem=True, send_mic=False)
    server = handshake(authority, client)
    assert server.complete and server.workstation == "CURLBOX"
    assert server.negotiated_flags & F.NTLMSSP_NEGOTIATE_OEM
    assert not server.negotiated_flags & F.NTLMSSP_NEGOTIATE_UNICODE


def test_anonymous(authority: LocalAuthority) -> None:
    server = handshake(authority, NtlmClient(anonymous=True), NtlmPolicy(allow_anonymous=True))
    assert server.complete and server.is_anonymous and server.session_key == b"\x00" * 16
    assert server.response_kind == ResponseKind.ANONYMOUS


def test_anonymous_refused_by_default(authority: LocalAuthority) -> None:
    with pytest.raises(AuthenticationError) as err:
        handshake(authority, NtlmClient(anonymous=True))
    assert err.value.status == NtStatus.STATUS_LOGON_FAILURE


def test_guest(authority: LocalAuthority) -> None:
    server = handshake(authority, NtlmClient("mallory", "x"), NtlmPolicy(allow_guest=True))
    assert server.complete and server.is_guest and server.account is not None and server.account.guest


def test_unknown_user_and_wrong_password_squash_to_logon_failure(authority: LocalAuthority) -> None:
    for client, precise, phrase in (
        (NtlmClient("mallory", PW), NtStatus.STATUS_NO_SUCH_USER, "unknown user"),
        (NtlmClient("alice", "bad"), NtStatus.STATUS_WRONG_PASSWORD, "wrong password"),
    ):
        with pytest.raises(AuthenticationError) as err:
            handshake(authority, client)
        assert err.value.status == NtStatus.STATUS_LOGON_FAILURE
        # The authority's precise status travels as data beside the wire status, and leads the reason.
        assert err.value.cause is precise
        assert err.value.reason.startswith(phrase)


@pytest.mark.parametrize(
    ("flag", "status"),
    [
        ({"disabled": True}, NtStatus.STATUS_ACCOUNT_DISABLED),
        ({"locked": True}, NtStatus.STATUS_ACCOUNT_LOCKED_OUT),
        ({"expired": True}, NtStatus.STATUS_PASSWORD_EXPIRED),
    ],
)
def test_account_state(flag: dict[str, bool], status: NtStatus) -> None:
    a = LocalAuthority()
    a.add_user("bob", PW, **flag)
    with pytest.raises(AuthenticationError) as err:
        handshake(a, NtlmClient("bob", PW))
    assert err.value.status == status


@pytest.mark.parametrize("kind", [ResponseKind.NTLMV1, ResponseKind.NTLMV1_ESS, ResponseKind.LM])
def test_v1_and_lm_refused_by_default(authority: LocalAuthority, kind: ResponseKind) -> None:
    client = NtlmClient("alice", PW, version=kind)
    server = NtlmServer(authority, target=TargetInfo())
    challenge = server.step(client.step(None))  # type: ignore[arg-type]
    with pytest.raises(AuthenticationError) as err:
        server.step(client.step(challenge))  # type: ignore[arg-type]
    assert err.value.status == NtStatus.STATUS_LOGON_FAILURE
    assert "policy" in err.value.reason
    assert server.response_kind is kind  # the refused kind is still known, for the login event


def test_fresh_challenge_per_handshake(authority: LocalAuthority) -> None:
    rng = counter_rng()
    challenges = {
        handshake(authority, NtlmClient("alice", PW), rng=rng).server_challenge
        for _ in range(3)  # type: ignore[arg-type]
    }
    assert len(challenges) == 3


def test_challenge_lifetime(authority: LocalAuthority) -> None:
    now = [1000.0]
    client = NtlmClient("alice", PW)
    server = NtlmServer(authority, target=TargetInfo(), clock=lambda: now[0])
    challenge = server.step(client.step(None))
    assert challenge is not None
    now[0] += 301
    with pytest.raises(AuthenticationError) as err:
        server.step(client.step(challenge))  # type: ignore[arg-type]
    assert err.value.status == NtStatus.STATUS_INVALID_PARAMETER and "expired" in err.value.reason


def _begin(authority: LocalAuthority, **client_kw: object) -> tuple[NtlmClient, NtlmServer, bytes, bytes]:
    client = NtlmClient("alice", PW, **client_kw)  # type: ignore[arg-type]
    server = NtlmServer(authority, target=TargetInfo())
    challenge = server.step(client.step(None))
    assert challenge is not None
    auth = client.step(challenge)
    assert auth is not None
    return client, server, challenge, auth


def _rebuild(auth_bytes: bytes, nt_response: bytes, mic: bytes | None = ...) -> bytes:  # type: ignore[assignment]
    msg = AuthenticateMessage.unpack(auth_bytes)
    fields = dict(msg.__dict__)
    fields["nt_response"] = nt_response
    if mic is not ...:
        fields["mic"] = mic
    return AuthenticateMessage(**fields).pack()


def test_blob_too_short(authority: LocalAuthority) -> None:
    _, server, _, auth = _begin(authority)
    nt = AuthenticateMessage.unpack(auth).nt_response
    with pytest.raises(MalformedMessage) as err:
        server.step(_rebuild(auth, nt[:40]))
    assert err.value.status == NtStatus.STATUS_INVALID_PARAMETER


def _forge_blob(auth: bytes, password: str, server: NtlmServer, edit: object) -> bytes:
    """Re-sign a modified blob with the right key, so that only the checked property is wrong."""
    msg = AuthenticateMessage.unpack(auth)
    blob = NtlmV2ClientChallenge.unpack(msg.nt_response[16:])
    blob = edit(blob)  # type: ignore[operator]
    key = crypto.ntowfv2(crypto.ntowfv1(password), msg.user, msg.domain)
    temp = blob.pack()
    nt, _, _ = crypto.compute_response_v2(key, server.server_challenge, blob.challenge_from_client, temp)
    return _rebuild(auth, nt)


def test_server_av_pair_changed(authority: LocalAuthority) -> None:
    _, server, _, auth = _begin(authority)

    def edit(blob: NtlmV2ClientChallenge) -> NtlmV2ClientChallenge:
        pairs = tuple(
            AvPair(p.id, "EVIL".encode("utf-16-le")) if p.id == AvId.MsvAvNbComputerName else p
            for p in blob.av_pairs
        )
        return NtlmV2ClientChallenge(blob.timestamp, blob.challenge_from_client, pairs, trailer=b"")

    with pytest.raises(AuthenticationError) as err:
        server.step(_forge_blob(auth, PW, server, edit))
    assert err.value.status == NtStatus.STATUS_INVALID_PARAMETER and "MsvAvNbComputerName" in err.value.reason


@pytest.mark.parametrize("mic", [None, b"\x00" * 16, b"\x01" * 16])
def test_mic_missing_zero_or_tampered(authority: LocalAuthority, mic: bytes | None) -> None:
    _, server, _, auth = _begin(authority)
    msg = AuthenticateMessage.unpack(auth)
    with pytest.raises(AuthenticationError) as err:
        server.step(_rebuild(auth, msg.nt_response, mic))
    assert err.value.status == NtStatus.STATUS_INVALID_PARAMETER and "MIC" in err.value.reason


def test_channel_bindings_match_and_mismatch(authority: LocalAuthority) -> None:
    good = crypto.tls_server_end_point(b"\x11" * 32)
    bad = crypto.tls_server_end_point(b"\x22" * 32)
    policy = NtlmPolicy(channel_bindings=ChannelBindingPolicy.REQUIRED, expected_channel_bindings=good)
    assert handshake(authority, NtlmClient("alice", PW, channel_bindings=good), policy).complete
    for client in (NtlmClient("alice", PW, channel_bindings=bad), NtlmClient("alice", PW)):
        with pytest.raises(AuthenticationError) as err:
            handshake(authority, client, policy)
        assert err.value.status == NtStatus.STATUS_BAD_BINDINGS
    # IF_PRESENT: no bindings sent is fine; wrong bindings are not.
    lax = NtlmPolicy(expected_channel_bindings=good)
    assert handshake(authority, NtlmClient("alice", PW), lax).complete
    with pytest.raises(AuthenticationError):
        handshake(authority, NtlmClient("alice", PW, channel_bindings=bad), lax)
    # OFF ignores them.
    off = NtlmPolicy(channel_bindings=ChannelBindingPolicy.OFF, expected_channel_bindings=good)
    assert handshake(authority, NtlmClient("alice", PW, channel_bindings=bad), off).complete


def test_server_refuses_dropped_required_flag(authority: LocalAuthority) -> None:
    client, server, _, auth = _begin(authority)
    server = NtlmServer(authority, target=TargetInfo(), policy=NtlmPolicy(require_128bit=True))
    challenge = server.step(client.__class__("alice", PW).step(None))
    assert challenge is not None
    c2 = NtlmClient("alice", PW)
    c2.step(None)
    auth = c2.step(challenge)
    assert auth is not None
    msg = AuthenticateMessage.unpack(auth)
    fields = dict(msg.__dict__)
    fields["flags"] = msg.flags & ~F.NTLMSSP_NEGOTIATE_128
    with pytest.raises(AuthenticationError) as err:
        server.step(AuthenticateMessage(**fields).pack())
    assert err.value.status == NtStatus.STATUS_DOWNGRADE_DETECTED


def test_client_refuses_downgraded_challenge() -> None:
    client = NtlmClient("alice", PW)
    client.step(None)
    challenge = ChallengeMessage(
        F.NTLMSSP_NEGOTIATE_UNICODE | F.NTLMSSP_NEGOTIATE_NTLM | F.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY,
        b"\x01" * 8,
        "S",
        (),
        Version(),
    ).pack()
    with pytest.raises(AuthenticationError) as err:
        client.step(challenge)
    assert err.value.status == NtStatus.STATUS_DOWNGRADE_DETECTED


@pytest.mark.parametrize("dropped", [AvId.MsvAvNbComputerName, AvId.MsvAvNbDomainName])
def test_client_refuses_challenge_without_netbios_names(authority: LocalAuthority, dropped: AvId) -> None:
    # MS-NLMP 3.1.5.1.2: NTLMv2 with integrity or confidentiality needs both NetBIOS names.
    client = NtlmClient("alice", PW)
    server = NtlmServer(authority, target=TargetInfo(), policy=NtlmPolicy())
    token = server.step(client.step(None))
    assert token is not None
    challenge = ChallengeMessage.unpack(token)
    pairs = tuple(p for p in challenge.target_info or () if p.id != dropped)
    edited = ChallengeMessage(
        challenge.flags, challenge.server_challenge, challenge.target_name, pairs, challenge.version
    ).pack()
    with pytest.raises(AuthenticationError) as err:
        client.step(edited)
    assert err.value.status == NtStatus.STATUS_LOGON_FAILURE and "NetBIOS names" in err.value.reason
    assert not client.complete
    # The untouched CHALLENGE still completes for a fresh client.
    assert handshake(authority, NtlmClient("alice", PW)).complete


def test_out_of_order_messages(authority: LocalAuthority) -> None:
    client, server, _, auth = _begin(authority)
    fresh = NtlmServer(authority)
    with pytest.raises(ProtocolStateError, match="initial"):
        fresh.step(auth)
    server.step(auth)
    with pytest.raises(ProtocolStateError, match="complete"):
        server.step(auth)
    with pytest.raises(ProtocolStateError, match="complete"):
        client.step(b"NTLMSSP\x00\x02\x00\x00\x00" + b"\x00" * 40)
    with pytest.raises(ProtocolStateError):
        NtlmClient("a", "b").sign(b"x")


def test_async_authority_two_step(authority: LocalAuthority) -> None:
    class Remote(AsyncAuthority):
        async def validate(self, request: ValidationRequest) -> ValidationResult:
            await asyncio.sleep(0)
            return authority.validate(request)

    client = NtlmClient("alice", PW)
    server = NtlmServer(Remote())

    async def run() -> None:
        # The transport's part: the core asks (ValidationNeeded), the transport awaits the authority.
        sent = server.receive(client.step(None))  # type: ignore[arg-type]
        assert isinstance(sent, Send)
        needed = server.receive(client.step(sent.token))  # type: ignore[arg-type]
        assert isinstance(needed, ValidationNeeded) and not server.complete
        done = server.validation_done(needed.ticket, await consult(server.authority, needed.request))
        assert isinstance(done, Complete) and done.token is None

    asyncio.run(run())
    assert server.complete and server.session_key == client.session_key
    sync_server = NtlmServer(Remote())
    sync_client = NtlmClient("alice", PW)
    challenge = sync_server.step(sync_client.step(None))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        sync_server.step(sync_client.step(challenge))  # type: ignore[arg-type]


def test_validation_needed_then_done(authority: LocalAuthority) -> None:
    client, server, _, auth = _begin(authority)
    event = server.receive(auth)
    assert isinstance(event, ValidationNeeded)
    request = event.request
    assert request.kind == ResponseKind.NTLMV2 and request.username == "alice"
    # A result for another ticket is refused and fails the context; the pending one completes it.
    stale = NtlmServer(authority)
    assert isinstance(stale.validation_done(event.ticket, authority.validate(request)), Failed)
    assert isinstance(server.validation_done(event.ticket + 1, authority.validate(request)), Failed)
    assert server.state is ServerState.FAILED
    client, server, _, auth = _begin(authority)
    event = server.receive(auth)
    assert isinstance(event, ValidationNeeded)
    assert isinstance(server.validation_done(event.ticket, authority.validate(event.request)), Complete)
    assert server.complete


def test_reset_crypto_state(authority: LocalAuthority) -> None:
    client = NtlmClient("alice", PW)
    server = handshake(authority, client)
    mic = client.sign(b"mechList")
    client.reset_crypto_state(outgoing=True)
    server.verify(b"mechList", mic)
    server.reset_crypto_state(outgoing=False)
    server.verify(b"next", client.sign(b"next"))
    client.reset_crypto_state()
    server.reset_crypto_state()
    assert server.unwrap(client.wrap(b"after reset")) == b"after reset"


def test_key_exch_without_a_key_fails_after_the_password(authority: LocalAuthority) -> None:
    # Samba ntlmssp_server_postauth checks the KEY_EXCH key once the password has been: a wrong password with
    # an empty EncryptedRandomSessionKey reads LOGON_FAILURE (smbd: tests/hardening/test_negative.py).
    client = NtlmClient("alice", PW + "x", key_exchange=True)
    server = NtlmServer(authority, target=TargetInfo())
    challenge = server.step(client.step(None))  # type: ignore[arg-type]
    token = bytearray(client.step(challenge))  # type: ignore[arg-type]
    token[52:56] = bytes(4)  # EncryptedRandomSessionKeyFields: Len = MaxLen = 0
    event = server.receive(bytes(token))
    assert isinstance(event, ValidationNeeded)
    failed = server.validation_done(event.ticket, authority.validate(event.request))
    assert isinstance(failed, Failed) and failed.error.status == NtStatus.STATUS_LOGON_FAILURE


@pytest.mark.parametrize(
    ("at", "length", "max_length"),
    [(28, 0, 2), (20, 1, 0xFFFF), (44, 8, 0), (52, 16, 0)],
    ids=["domain-len-0", "nt-len-1", "workstation-maxlen-0", "key-maxlen-0"],
)
def test_payload_field_len_and_maxlen_differ(
    authority: LocalAuthority, at: int, length: int, max_length: int
) -> None:
    # Samba msrpc_parse: Len and MaxLen differ -> INVALID_PARAMETER before the password check; for the
    # session key field, Samba reads the message without key, VERSION and MIC, and the MIC MsvAvFlags
    # promised is missing (ntlmssp_server_preauth). MS-NLMP 2.2.1.3 would have MaxLen ignored.
    client = NtlmClient("alice", PW, domain="DOM", workstation="WS")
    server = NtlmServer(authority, target=TargetInfo())
    challenge = server.step(client.step(None))  # type: ignore[arg-type]
    token = bytearray(client.step(challenge))  # type: ignore[arg-type]
    token[at : at + 4] = length.to_bytes(2, "little") + max_length.to_bytes(2, "little")
    event = server.receive(bytes(token))
    assert isinstance(event, Failed) and event.error.status == NtStatus.STATUS_INVALID_PARAMETER


def test_negotiate_message_round_trip_in_handshake() -> None:
    token = NtlmClient("alice", PW).step(None)
    assert token is not None
    msg = NegotiateMessage.unpack(token)
    assert msg.flags & F.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY and msg.version is not None


def test_key_exch_without_a_16_byte_key_is_invalid_parameter(authority: LocalAuthority) -> None:
    # Samba ntlmssp_server_postauth: KEY_EXCH with an EncryptedRandomSessionKey that is not 16 bytes.
    client = NtlmClient("alice", PW, key_exchange=True)
    server = NtlmServer(authority, target=TargetInfo())
    challenge = server.step(client.step(None))  # type: ignore[arg-type]
    token = bytearray(client.step(challenge))  # type: ignore[arg-type]
    assert int.from_bytes(token[60:64], "little") & 0x40000000  # NTLMSSP_NEGOTIATE_KEY_EXCH
    token[52:56] = bytes(4)  # EncryptedRandomSessionKeyFields: Len = MaxLen = 0
    with pytest.raises(AuthenticationError) as err:
        server.step(bytes(token))
    assert err.value.status == NtStatus.STATUS_INVALID_PARAMETER
    assert "KEY_EXCH" in err.value.reason
