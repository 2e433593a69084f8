"""Negative conformance: the same raw SMB2 cases sent to our server and to a real smbd, answered alike.

Each case is built once with our codecs (tests/server/driver.py) and sent to both peers: our sans-IO server
in-process and Debian's smbd over TCP (tests/peers.py, the reference). Both must answer the same NTSTATUS and
leave the connection in the same state (still serving: an ECHO afterwards succeeds; or closed). The statuses
were read from smbd's answers and match Samba's source (auth/ntlmssp/ntlmssp_server.c
ntlmssp_server_preauth/postauth, source3/smbd/smb2_sesssetup.c, smb2_server.c). Cases smbd cannot be set up
for (injected clock, channel bindings, refusing anonymous) run against our server only and say why.
"""

from __future__ import annotations

import dataclasses
import struct
import subprocess
from collections.abc import Callable, Iterator

import pytest

from fuzz.differential.wire import NegotiateSpec
from smb2auth.authority.local import LocalAuthority
from smb2auth.ntlm.authority import ResponseKind
from smb2auth.ntlm.client import NtlmClient
from smb2auth.ntlm.messages import AuthenticateMessage, AvId, AvPair, NtlmV2ClientChallenge, NtlmV2Response
from smb2auth.ntlm.server import ChannelBindingPolicy, NtlmPolicy
from smb2auth.server.inline import answer_frame
from smb2auth.smb2.framing import frame
from smb2auth.smb2.header import Command, HeaderFlags, Smb2Header
from smb2auth.smb2.negotiate import Capabilities, Dialect, NegotiateRequest, SecurityMode
from smb2auth.smb2.session import SessionSetupFlags, SessionSetupRequest, SessionSetupResponse
from smb2auth.smb2.simple import EchoRequest
from smb2auth.smb2.tree import TreeConnectRequest
from smb2auth.spnego import tokens
from smb2auth.spnego.context import SpnegoClient
from tests.hardening.raw import SocketDriver, login_answers, serving
from tests.peers import Smbd, require_program
from tests.server.driver import DOMAIN, PASSWORD, USER, Driver, make_context, preauth_contexts

Peer = Callable[[], Driver]
NtlmEdit = Callable[[AuthenticateMessage, bytes], bytes]
DISABLED_USER = "bob"
LOGOFF_BODY = b"\x04\x00\x00\x00"  # MS-SMB2 2.2.7: StructureSize 4, Reserved
SIGNING_DIALECTS = (Dialect.SMB2_1, Dialect.SMB3_0, Dialect.SMB3_1_1)


def _ours(**config: object) -> Peer:
    authority = LocalAuthority(DOMAIN)
    authority.add_user(USER, PASSWORD)
    authority.add_user(DISABLED_USER, PASSWORD, disabled=True)
    ctx = make_context(authority=authority, **config)
    return lambda: Driver(ctx)


def _smbd_peer(server: Smbd, opened: list[SocketDriver]) -> Peer:
    def make() -> Driver:
        driver = SocketDriver("127.0.0.1", server.port)
        opened.append(driver)
        return driver

    return make


@pytest.fixture(scope="module")
def strict_smbd(smbd_factory: Callable[[str], Smbd]) -> Smbd:
    """smbd with mandatory signing (our default) and a disabled account bob / Passw0rd!."""
    server = smbd_factory("  server signing = mandatory\n")
    smbpasswd = require_program("smbpasswd", "/usr/bin/smbpasswd")
    with (server.base / "etc" / "passwd").open("a") as passwd:
        passwd.write(f"{DISABLED_USER}:x:10002:10001:{DISABLED_USER}:/nonexistent:/bin/false\n")
    secret = f"{PASSWORD}\n{PASSWORD}\n".encode()
    for args in (["-a", "-s", DISABLED_USER], ["-d", DISABLED_USER]):
        subprocess.run([smbpasswd, "-c", str(server.conf), *args], input=secret, env=server.env,
                       check=True, capture_output=True, timeout=60)
    return server


@pytest.fixture(params=["ours", pytest.param("smbd", marks=pytest.mark.interop)])
def peer(request: pytest.FixtureRequest) -> Iterator[Peer]:
    """A factory of fresh connections to one peer (both require signing and know alice and bob)."""
    if request.param == "ours":
        yield _ours()
        return
    opened: list[SocketDriver] = []
    yield _smbd_peer(request.getfixturevalue("strict_smbd"), opened)
    for driver in opened:
        driver.close()


def _negotiated(peer: Peer, dialect: Dialect = Dialect.SMB3_1_1) -> Driver:
    driver = peer()
    driver.negotiate((dialect,))
    return driver


# -- tampering with the AUTHENTICATE inside the SPNEGO NegTokenResp ---------------------------------------


def _edit_ntlm(edit: Callable[[AuthenticateMessage, bytes], bytes]) -> Callable[[bytes], bytes]:
    def tamper(token: bytes) -> bytes:
        resp = tokens.decode(token)
        assert isinstance(resp, tokens.NegTokenResp) and resp.response_token
        raw = resp.response_token
        return dataclasses.replace(resp, response_token=edit(AuthenticateMessage.unpack(raw), raw)).encode()

    return tamper


_MIC = slice(72, 88)  # MS-NLMP 2.2.1.3: MIC after the 64-byte fixed part and the 8-byte Version


def _flip_mic(auth: AuthenticateMessage, raw: bytes) -> bytes:
    assert auth.mic is not None
    return raw[: _MIC.start] + bytes([raw[_MIC.start] ^ 1]) + raw[_MIC.start + 1 :]


def _zero_mic(auth: AuthenticateMessage, raw: bytes) -> bytes:
    assert auth.mic is not None
    return raw[: _MIC.start] + bytes(16) + raw[_MIC.stop :]


def _edit_blob(keep: Callable[[AvId], bool], rename: bool) -> Callable[[AuthenticateMessage, bytes], bytes]:
    def edit(auth: AuthenticateMessage, raw: bytes) -> bytes:
        response = NtlmV2Response.unpack(auth.nt_response)
        blob = response.client_challenge
        pairs = tuple(
            p._replace(value="EVIL".encode("utf-16-le"))
            if rename and p.id == AvId.MsvAvNbComputerName
            else p
            for p in blob.av_pairs
            if keep(AvId(p.id))
        )
        new_blob = dataclasses.replace(blob, av_pairs=pairs).pack()
        nt_response = dataclasses.replace(response, blob=new_blob).pack()
        return dataclasses.replace(auth, nt_response=nt_response).pack()

    return edit


# Samba ntlmssp_server_postauth: a MIC that does not verify -> INVALID_PARAMETER (after the password check).
# Samba ntlmssp_server_preauth: a server AV pair missing or changed -> INVALID_PARAMETER (before it).
TAMPERING = {
    "mic-tampered": _flip_mic,
    "mic-flag-set-mic-zeroed": _zero_mic,
    "av-pair-changed": _edit_blob(lambda _: True, rename=True),
    "av-pair-dropped": _edit_blob(lambda av_id: av_id != AvId.MsvAvTimestamp, rename=False),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_tampered_authenticate(peer: Peer, case: str) -> None:
    driver = _negotiated(peer)
    answers = login_answers(driver, tamper=_edit_ntlm(TAMPERING[case]))
    assert [a.status for a in answers] == ["STATUS_MORE_PROCESSING_REQUIRED", "STATUS_INVALID_PARAMETER"]
    assert serving(driver)


# -- who logs in ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "password", "version", "status"),
    [
        (USER, "wrong", ResponseKind.NTLMV2, "STATUS_LOGON_FAILURE"),
        ("nobody", PASSWORD, ResponseKind.NTLMV2, "STATUS_LOGON_FAILURE"),
        (DISABLED_USER, PASSWORD, ResponseKind.NTLMV2, "STATUS_ACCOUNT_DISABLED"),
        (DISABLED_USER, "wrong", ResponseKind.NTLMV2, "STATUS_LOGON_FAILURE"),
        # Samba "ntlm auth = ntlmv2-only" (our default policy): NTLMv1 in either form is a failed logon.
        (USER, PASSWORD, ResponseKind.NTLMV1, "STATUS_LOGON_FAILURE"),
        (USER, PASSWORD, ResponseKind.NTLMV1_ESS, "STATUS_LOGON_FAILURE"),
    ],
    ids=["wrong-password", "unknown-user", "disabled", "disabled-wrong-password", "ntlmv1", "ntlmv1-ess"],
)
def test_refused_logons(peer: Peer, user: str, password: str, version: ResponseKind, status: str) -> None:
    driver = _negotiated(peer)
    answers = login_answers(driver, user, password, version=version)
    assert answers[-1].status == status
    assert serving(driver)
    # The refused session is gone: its id is unknown afterwards (MS-SMB2 3.3.5.5.3).
    tree = TreeConnectRequest("\\\\127.0.0.1\\IPC$")
    answer = driver.request(Command.TREE_CONNECT, tree, session_id=answers[-1].header.session_id)
    assert answer.status == "STATUS_USER_SESSION_DELETED"


def _responses(nt_length: int, lm_length: int, key_exchange: bool = True) -> Callable[[bytes], bytes]:
    """The AUTHENTICATE with its NT response cut to `nt_length` bytes and an LM response of zeros."""

    def edit(auth: AuthenticateMessage, raw: bytes) -> bytes:
        assert nt_length <= len(auth.nt_response)
        key = auth.encrypted_random_session_key if key_exchange else b""
        nt, lm = auth.nt_response[:nt_length], bytes(lm_length)
        edited = dataclasses.replace(auth, nt_response=nt, lm_response=lm, encrypted_random_session_key=key)
        return edited.pack()

    return _edit_ntlm(edit)


# Samba ntlm_password_check: an NT response under 24 bytes is ignored and the LM response checked; neither of
# a usable length is a wrong password (LOGON_FAILURE, before ntlmssp_server_postauth's KEY_EXCH check). Samba
# ntlmssp_server_preauth: an NT response over 24 bytes is an NTLMv2 response, and one too short for its
# fixed part (48 bytes with the first AV pair's header) is INVALID_PARAMETER. smbclient -N with signing
# required sends the first case for its Unix user.
RESPONSE_LENGTHS = {
    "nt-empty-lm-empty": (_responses(0, 0), "STATUS_LOGON_FAILURE"),
    "nt-empty-lm-z1": (_responses(0, 1), "STATUS_LOGON_FAILURE"),
    "nt-empty-no-session-key": (_responses(0, 0, key_exchange=False), "STATUS_LOGON_FAILURE"),
    "nt-16": (_responses(16, 0), "STATUS_LOGON_FAILURE"),
    "nt-23-lm-24": (_responses(23, 24), "STATUS_LOGON_FAILURE"),
    "nt-25": (_responses(25, 0), "STATUS_INVALID_PARAMETER"),
    "nt-47": (_responses(47, 24), "STATUS_INVALID_PARAMETER"),
}


@pytest.mark.parametrize("user", [USER, "nobody"])
@pytest.mark.parametrize("case", sorted(RESPONSE_LENGTHS))
def test_response_lengths(peer: Peer, case: str, user: str) -> None:
    tamper, status = RESPONSE_LENGTHS[case]
    driver = _negotiated(peer)
    answers = login_answers(driver, user, tamper=tamper)
    assert [a.status for a in answers] == ["STATUS_MORE_PROCESSING_REQUIRED", status]
    assert serving(driver)


def _field(at: int, part: str, value: int) -> NtlmEdit:
    """The AUTHENTICATE with the Len, MaxLen or BufferOffset of the payload field at `at` set to `value`
    (MS-NLMP 2.2.1.3), the payload itself unmoved."""

    def edit(auth: AuthenticateMessage, raw: bytes) -> bytes:
        out = bytearray(raw)
        if part == "offset":
            struct.pack_into("<I", out, at + 4, value)
        else:
            struct.pack_into("<H", out, at + (0 if part == "len" else 2), value)
        return bytes(out)

    return edit


def _both(first: NtlmEdit, second: NtlmEdit) -> NtlmEdit:
    return lambda auth, raw: second(auth, first(auth, raw))


def _nt_byte(where: Callable[[NtlmV2Response], int], value: int) -> NtlmEdit:
    """The AUTHENTICATE with one byte of its NTLMv2 response, at `where(response)`, set to `value` in place
    (so the NTProofStr no longer covers the blob)."""

    def edit(auth: AuthenticateMessage, raw: bytes) -> bytes:
        _, _, nt_at = struct.unpack_from("<HHI", raw, 20)
        out = bytearray(raw)
        out[nt_at + where(NtlmV2Response.unpack(auth.nt_response))] = value
        return bytes(out)

    return edit


def _eol_at(response: NtlmV2Response) -> int:
    """Where the MsvAvEOL's AvLen sits in the NT response (MS-NLMP 2.2.2.8, 2.2.2.7, 2.2.2.1)."""
    pairs = AvPair.pack_all(response.client_challenge.av_pairs)
    return 16 + NtlmV2ClientChallenge.HEADER_SIZE + len(pairs) - 2


# Samba msrpc_parse (ntlmssp_server_preauth): a payload field that is not empty must have MaxLen == Len, else
# INVALID_PARAMETER before the password check; a session key field that does not parse is read as none, and
# the message then as one without VERSION and MIC, which a MIC promised by MsvAvFlags fails. Samba
# ntlmssp_server_postauth: KEY_EXCH without a 16-byte key is INVALID_PARAMETER after the password check.
# Samba ndr_pull_NTLMv2_RESPONSE reads RespType, TimeStamp and an MsvAvEOL's value unchecked: the NTProofStr
# over them no longer verifies (LOGON_FAILURE). Each case: the status with the right and a wrong password.
PAYLOAD_FIELDS = {
    "domain-len-0": (_field(28, "len", 0), "STATUS_INVALID_PARAMETER", "STATUS_INVALID_PARAMETER"),
    "nt-maxlen-0": (_field(20, "maxlen", 0), "STATUS_INVALID_PARAMETER", "STATUS_INVALID_PARAMETER"),
    "nt-len-1": (_field(20, "len", 1), "STATUS_INVALID_PARAMETER", "STATUS_INVALID_PARAMETER"),
    "user-len-2": (_field(36, "len", 2), "STATUS_INVALID_PARAMETER", "STATUS_INVALID_PARAMETER"),
    "workstation-maxlen-0": (_field(44, "maxlen", 0), "STATUS_INVALID_PARAMETER", "STATUS_INVALID_PARAMETER"),
    "key-maxlen-0": (_field(52, "maxlen", 0), "STATUS_INVALID_PARAMETER", "STATUS_INVALID_PARAMETER"),
    "key-len-past-end": (_field(52, "len", 0x7FFE), "STATUS_INVALID_PARAMETER", "STATUS_INVALID_PARAMETER"),
    "key-len-0": (_field(52, "len", 0), "STATUS_INVALID_PARAMETER", "STATUS_INVALID_PARAMETER"),
    "key-empty": (_both(_field(52, "len", 0), _field(52, "maxlen", 0)), "STATUS_INVALID_PARAMETER",
                  "STATUS_LOGON_FAILURE"),
    "domain-offset-0": (_field(28, "offset", 0), "STATUS_LOGON_FAILURE", "STATUS_LOGON_FAILURE"),
    "resp-type-2": (_nt_byte(lambda _: 16, 2), "STATUS_LOGON_FAILURE", "STATUS_LOGON_FAILURE"),
    "hi-resp-type-0": (_nt_byte(lambda _: 17, 0), "STATUS_LOGON_FAILURE", "STATUS_LOGON_FAILURE"),
    "blob-timestamp": (_nt_byte(lambda _: 16 + 8, 0xAA), "STATUS_LOGON_FAILURE", "STATUS_LOGON_FAILURE"),
    "eol-len-4": (_nt_byte(_eol_at, 4), "STATUS_LOGON_FAILURE", "STATUS_LOGON_FAILURE"),
    "eol-len-5": (_nt_byte(_eol_at, 5), "STATUS_INVALID_PARAMETER", "STATUS_INVALID_PARAMETER"),
    "first-av-len-past-the-list": (_nt_byte(lambda _: 16 + 28 + 3, 0x7F), "STATUS_INVALID_PARAMETER",
                                   "STATUS_INVALID_PARAMETER"),
}


@pytest.mark.parametrize("wrong_password", [False, True], ids=["password", "wrong-password"])
@pytest.mark.parametrize("case", sorted(PAYLOAD_FIELDS))
def test_payload_fields_and_blob(peer: Peer, case: str, wrong_password: bool) -> None:
    edit, right, wrong = PAYLOAD_FIELDS[case]
    driver = _negotiated(peer)
    password = PASSWORD + ("x" if wrong_password else "")
    answers = login_answers(driver, password=password, tamper=_edit_ntlm(edit))
    expected = wrong if wrong_password else right
    assert [a.status for a in answers] == ["STATUS_MORE_PROCESSING_REQUIRED", expected]
    assert serving(driver)


def test_authenticate_replayed_on_a_new_handshake(peer: Peer) -> None:
    saved: list[bytes] = []

    def keep(token: bytes) -> bytes:
        saved.append(token)
        return token

    first = _negotiated(peer)
    assert login_answers(first, tamper=keep)[-1].status == "STATUS_SUCCESS"
    # Samba ntlmssp_server_preauth: the replayed MsvAvTimestamp is not this challenge's -> INVALID_PARAMETER.
    second = _negotiated(peer)
    answers = login_answers(second, tamper=lambda _: saved[0])
    assert answers[-1].status == "STATUS_INVALID_PARAMETER"
    assert serving(second)


def test_authenticate_sent_on_a_different_connection(peer: Peer) -> None:
    a, b = _negotiated(peer), _negotiated(peer)
    saved: list[bytes] = []
    spnego = SpnegoClient(NtlmClient(USER, PASSWORD, domain=DOMAIN, workstation="WS1"))
    leg1 = a.request(Command.SESSION_SETUP, SessionSetupRequest(spnego.step(None) or b""))
    assert leg1.status == "STATUS_MORE_PROCESSING_REQUIRED"
    saved.append(spnego.step(SessionSetupResponse.unpack(leg1.body).security_buffer) or b"")
    # With A's SessionId: not a session of connection B (MS-SMB2 3.3.5.5).
    a_session = leg1.header.session_id
    answer = b.request(Command.SESSION_SETUP, SessionSetupRequest(saved[0]), session_id=a_session)
    assert answer.status == "STATUS_USER_SESSION_DELETED"
    # As the first token of a new session on B: a NegTokenResp cannot start SPNEGO (Samba gensec_spnego).
    answer = b.request(Command.SESSION_SETUP, SessionSetupRequest(saved[0]))
    assert answer.status == "STATUS_INVALID_PARAMETER"
    assert serving(b)
    # A's handshake was not disturbed: its AUTHENTICATE still completes there.
    final = a.request(Command.SESSION_SETUP, SessionSetupRequest(saved[0]), session_id=a_session)
    assert final.status == "STATUS_SUCCESS"


# -- SESSION_SETUP framing -------------------------------------------------------------------------------


@pytest.mark.parametrize(("kept", "status"), [
    (1, "STATUS_INVALID_PARAMETER"),  # no length yet
    (2, "STATUS_MORE_PROCESSING_REQUIRED"),  # tag and length: a fragment, even with no content
    (3, "STATUS_MORE_PROCESSING_REQUIRED"),
    (40, "STATUS_MORE_PROCESSING_REQUIRED"),
])
def test_first_token_in_fragments(peer: Peer, kept: int, status: str) -> None:
    """Samba gensec_spnego_update_in (asn1_peek_full_tag): a buffer shorter than the length its token
    header declares is a fragment, answered with an empty MORE_PROCESSING_REQUIRED; the rest completes it."""
    driver = _negotiated(peer)
    token = SpnegoClient(NtlmClient(USER, PASSWORD, domain=DOMAIN, workstation="WS1")).step(None) or b""
    first = driver.request(Command.SESSION_SETUP, SessionSetupRequest(token[:kept]))
    assert first.status == status
    if status != "STATUS_MORE_PROCESSING_REQUIRED":
        return
    assert SessionSetupResponse.unpack(first.body).security_buffer == b""
    rest = driver.request(Command.SESSION_SETUP, SessionSetupRequest(token[kept:]),
                          session_id=first.header.session_id)
    assert rest.status == "STATUS_MORE_PROCESSING_REQUIRED"
    assert SessionSetupResponse.unpack(rest.body).security_buffer.startswith(b"\xa1")  # the CHALLENGE


@pytest.mark.parametrize(("left", "status"), [
    (1, "STATUS_INVALID_PARAMETER"),
    (3, "STATUS_INVALID_PARAMETER"),  # a1 82 01: the length's second octet missing
    (4, "STATUS_MORE_PROCESSING_REQUIRED"),
])
def test_last_token_cut(peer: Peer, left: int, status: str) -> None:
    """The NegTokenResp cut to its first `left` octets: refused until its whole length is there, then a
    fragment (Samba asn1_peek_tag_needed_size)."""
    driver = _negotiated(peer)
    answers = login_answers(driver, tamper=lambda token: token[:left])
    assert [a.status for a in answers] == ["STATUS_MORE_PROCESSING_REQUIRED", status]


@pytest.mark.parametrize(("kept", "status"), [(27, "STATUS_MORE_PROCESSING_REQUIRED"),
                                             (None, "STATUS_INVALID_PARAMETER")])
def test_last_token_in_the_indefinite_form(peer: Peer, kept: int | None, status: str) -> None:
    """The NegTokenResp's outer length as 0x80 (X.690 8.1.3.6): Samba's asn1_peek_tag_needed_size reads the
    next octet as a one-octet length, so a short buffer is a fragment and the whole token is too long."""
    def indefinite(token: bytes) -> bytes:
        assert token[:2] == b"\xa1\x82"
        recoded = b"\xa1\x80" + token[4:] + b"\x00\x00"
        return recoded[:kept] if kept is not None else recoded

    answers = login_answers(_negotiated(peer), tamper=indefinite)
    assert [a.status for a in answers] == ["STATUS_MORE_PROCESSING_REQUIRED", status]


def test_unknown_session_id(peer: Peer) -> None:
    driver = _negotiated(peer, Dialect.SMB2_1)
    answer = driver.request(Command.SESSION_SETUP, SessionSetupRequest(b"x"), session_id=0x1234)
    assert answer.status == "STATUS_USER_SESSION_DELETED"
    assert serving(driver)


@pytest.mark.parametrize("command", [Command.LOGOFF, Command.TREE_CONNECT])
def test_command_on_a_session_in_progress(peer: Peer, command: Command) -> None:
    """A request on a session whose SESSION_SETUP is still going on: STATUS_INVALID_HANDLE, as smbd."""
    driver = _negotiated(peer, Dialect.SMB2_1)
    token = SpnegoClient(NtlmClient(USER, PASSWORD, domain=DOMAIN, workstation="WS1")).step(None) or b""
    first = driver.request(Command.SESSION_SETUP, SessionSetupRequest(token))
    assert first.status == "STATUS_MORE_PROCESSING_REQUIRED"
    body = TreeConnectRequest("\\\\127.0.0.1\\IPC$") if command is Command.TREE_CONNECT else LOGOFF_BODY
    answer = driver.request(command, body, session_id=first.header.session_id)
    assert answer.status == "STATUS_INVALID_HANDLE"
    assert serving(driver)


def test_binding_flag_on_2x(peer: Peer) -> None:
    owner = _negotiated(peer, Dialect.SMB2_1)
    login = owner.login()
    driver = _negotiated(peer, Dialect.SMB2_1)
    bind = SessionSetupRequest(b"x", SessionSetupFlags.BINDING)
    # Samba smbd_smb2_request_process_sesssetup: binding without a SessionId is invalid, an unknown one is
    # deleted, and a real session cannot be bound on 2.x (MS-SMB2 3.3.5.5: STATUS_REQUEST_NOT_ACCEPTED).
    assert driver.request(Command.SESSION_SETUP, bind).status == "STATUS_INVALID_PARAMETER"
    unknown = driver.request(Command.SESSION_SETUP, bind, session_id=0x77)
    assert unknown.status == "STATUS_USER_SESSION_DELETED"
    unsigned = driver.request(Command.SESSION_SETUP, bind, session_id=login.session_id)
    assert unsigned.status == "STATUS_REQUEST_NOT_ACCEPTED"
    signed = driver.request(Command.SESSION_SETUP, bind, session_id=login.session_id, key=login.signing_key)
    assert signed.status == "STATUS_REQUEST_NOT_ACCEPTED"
    assert serving(driver)
    # The bound-to session is untouched.
    echo = owner.request(Command.ECHO, EchoRequest(), session_id=login.session_id, key=login.signing_key)
    assert echo.status == "STATUS_SUCCESS"


@pytest.mark.parametrize(
    ("offset", "length", "payload"),
    [(88, 500, b""), (10, 4, b"abcd"), (0xFFFF, 0xFFFF, b"abcd")],
    ids=["past-end", "inside-header", "max"],
)
def test_security_buffer_out_of_range(peer: Peer, offset: int, length: int, payload: bytes) -> None:
    driver = _negotiated(peer, Dialect.SMB2_1)
    # MS-SMB2 2.2.5 (StructureSize 25, Flags, SecurityMode, Capabilities, Channel, buffer offset and length,
    # PreviousSessionId): a buffer outside the message -> INVALID_PARAMETER, connection kept.
    raw = struct.pack("<HBBIIHHQ", 25, 0, 1, 0, 0, offset, length, 0) + payload
    assert driver.request(Command.SESSION_SETUP, raw).status == "STATUS_INVALID_PARAMETER"
    assert serving(driver)


def test_truncated_bodies_and_headers(peer: Peer) -> None:
    driver = _negotiated(peer, Dialect.SMB2_1)
    # A body shorter than its StructureSize: INVALID_PARAMETER, connection kept (MS-SMB2 3.3.5.2.6).
    assert driver.request(Command.SESSION_SETUP, b"\x19\x00\x00").status == "STATUS_INVALID_PARAMETER"
    assert serving(driver)
    # A message shorter than the SMB2 header: the connection is dropped (MS-SMB2 3.3.5.2).
    echo = driver.message(Command.ECHO, EchoRequest())
    assert driver.send_raw(echo[:40]) == []
    assert not serving(driver)


@pytest.mark.parametrize(
    ("dialects", "charge", "answered"),
    [
        ((Dialect.SMB2_1, Dialect.SMB2_0_2), 8192, True),
        ((Dialect.SMB2_1, Dialect.SMB2_0_2), 8193, False),
        ((Dialect.SMB3_1_1, Dialect.SMB2_1), 65535, False),
        ((Dialect.SMB2_0_2,), 65535, True),
    ],
    ids=["2.1-8192", "2.1-8193", "3.1.1-65535", "2.0.2-65535"],
)
def test_negotiate_credit_charge(
    peer: Peer, dialects: tuple[Dialect, ...], charge: int, answered: bool
) -> None:
    """A NEGOTIATE's CreditCharge counts once it chose a multi-credit dialect (MS-SMB2 3.3.5.4): above the
    8192 credits smbd ("smb2 max credits") or we would ever grant, the connection drops unanswered."""
    driver = peer()
    contexts = preauth_contexts() if Dialect.SMB3_1_1 in dialects else ()
    header = Smb2Header(Command.NEGOTIATE, HeaderFlags(0), 0, 0, 0, credit=1, credit_charge=charge).pack()
    body = NegotiateRequest(dialects, SecurityMode.SIGNING_ENABLED, Capabilities(0), b"G" * 16, contexts)
    answers = driver.send_raw(header + body.pack())
    assert [a.status for a in answers] == (["STATUS_SUCCESS"] if answered else [])
    driver.mid = 1 if dialects == (Dialect.SMB2_0_2,) else charge  # the MessageIds the NEGOTIATE used
    assert serving(driver) is answered


@pytest.mark.parametrize("negotiated", [False, True], ids=["first", "after-negotiate"])
def test_unknown_command(peer: Peer, negotiated: bool) -> None:
    """An unknown command (0x0020): before a NEGOTIATE the connection drops unanswered; after it, an ERROR
    with STATUS_INVALID_PARAMETER and the connection stays (MS-SMB2 3.3.5.2)."""
    driver = peer()
    if negotiated:
        driver = _negotiated(peer, Dialect.SMB2_1)
    request = bytearray(driver.message(Command.ECHO, EchoRequest()))
    struct.pack_into("<H", request, 12, 0x0020)
    if isinstance(driver, SocketDriver):
        driver.send_bytes(frame(bytes(request)))
        head = driver._read_exact(4)
        reply = driver._read_exact(int.from_bytes(head[1:4], "big")) if head else None
    else:
        out = answer_frame(driver.conn, bytes(request))
        reply = out[0][4:] if out else None
    if not negotiated:
        assert reply is None
        assert not serving(driver)
        return
    assert reply is not None
    assert struct.unpack_from("<IH", reply, 8) == (0xC000000D, 0x0020)  # STATUS_INVALID_PARAMETER, echoed
    assert serving(driver)


_PREAUTH = struct.pack("<HHH", 1, 32, 1) + b"S" * 32  # one hash algorithm (SHA-512), a 32-octet salt
_CIPHERS = struct.pack("<HHH", 2, 2, 1)  # AES-128-GCM, AES-128-CCM


@pytest.mark.parametrize(("contexts", "status"), [
    ([(1, _PREAUTH + b"xx"), (2, _CIPHERS)], "STATUS_SUCCESS"),
    ([(1, struct.pack("<HHH", 1, 0, 1) + b"S" * 32), (2, _CIPHERS)], "STATUS_SUCCESS"),  # SaltLength 0
    ([(1, struct.pack("<HHH", 1, 40, 1) + b"S" * 32), (2, _CIPHERS)], "STATUS_INVALID_PARAMETER"),
    ([(1, _PREAUTH), (2, _CIPHERS + b"x")], "STATUS_SUCCESS"),
    ([(1, _PREAUTH), (2, _CIPHERS), (8, struct.pack("<HHH", 2, 1, 0) + b"xx")], "STATUS_SUCCESS"),
], ids=["preauth-trailing", "preauth-salt-0", "preauth-short", "ciphers-trailing", "signing-trailing"])
def test_negotiate_context_lengths(peer: Peer, contexts: list[tuple[int, bytes]], status: str) -> None:
    """A context's DataLength may run past what its counts size (the rest is unread), never short of it."""
    driver = peer()
    header = Smb2Header(Command.NEGOTIATE, HeaderFlags(0), 0, 0, 0, credit=1, credit_charge=1).pack()
    body = NegotiateSpec(client_guid=b"G" * 16, contexts=contexts).pack()
    assert [a.status for a in driver.send_raw(header + body)] == [status]


def test_oversized_frame_gets_no_answer(peer: Peer) -> None:
    """A Direct TCP length of almost 16 MiB: smbd waits for all of it, and so do we, counting the bytes off
    without keeping them (server/nbss.py; ServerConfig.max_message_size bounds what is held). Neither
    answers, not even the ECHO that follows (its bytes are part of the frame), and neither closes."""
    driver = _negotiated(peer, Dialect.SMB2_1)
    echo = frame(driver.message(Command.ECHO, EchoRequest()))
    if isinstance(driver, SocketDriver):
        driver.sock.settimeout(1.0)
        driver.send_bytes(b"\x00\xff\xff\xff\xfeSMB" + bytes(60))
        assert driver.read_answers() == []
        driver.send_bytes(echo)
        assert driver.read_answers() == [] and driver.silent and not driver.eof
    else:
        assert driver.feed(b"\x00\xff\xff\xff\xfeSMB" + bytes(60)) == []
        assert driver.feed(echo) == [] and not driver.conn.closed


# -- signing ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", SIGNING_DIALECTS, ids=lambda d: f"0x{d:04x}")
def test_signing_required(peer: Peer, dialect: Dialect) -> None:
    driver = _negotiated(peer, dialect)
    login = driver.login()
    sid, key = login.session_id, login.signing_key
    tree = TreeConnectRequest("\\\\127.0.0.1\\IPC$")
    # Samba smbd_smb2_request_dispatch: unsigned on a session that requires signing -> ACCESS_DENIED.
    assert driver.request(Command.TREE_CONNECT, tree, session_id=sid).status == "STATUS_ACCESS_DENIED"
    assert driver.request(Command.ECHO, EchoRequest(), session_id=sid).status == "STATUS_ACCESS_DENIED"
    # A signature that does not verify (one bit of the body flipped, or another key) -> ACCESS_DENIED.
    bad = bytearray(driver.message(Command.TREE_CONNECT, tree, session_id=sid, key=key))
    bad[-1] ^= 1
    assert [a.status for a in driver.send_raw(bytes(bad))] == ["STATUS_ACCESS_DENIED"]
    assert driver.request(Command.ECHO, EchoRequest(), session_id=sid, key=bytes(16)).status == (
        "STATUS_ACCESS_DENIED"
    )
    # The session survives all of it.
    assert driver.request(Command.TREE_CONNECT, tree, session_id=sid, key=key).status == "STATUS_SUCCESS"
    assert serving(driver)


# -- ours only: what smbd cannot be configured for ------------------------------------------------------


def test_stale_challenge_clock_injected() -> None:
    """Samba ntlmssp_server_preauth: an expired challenge -> INVALID_PARAMETER. smbd's clock cannot be moved,
    ours is injected (NtlmPolicy.challenge_lifetime, 300 s by default)."""
    now = [1_000_000.0]
    ctx = make_context()
    ctx.clock = lambda: now[0]
    driver = Driver(ctx)
    driver.negotiate()

    def later(token: bytes) -> bytes:
        now[0] += 301
        return token

    answers = login_answers(driver, tamper=later)
    assert answers[-1].status == "STATUS_INVALID_PARAMETER"
    assert "expired" in ctx.events.events[-1].reason
    assert serving(driver) and ctx.pending_handshakes == 0


def test_anonymous_when_not_allowed() -> None:
    """Ours refuses a null session unless allow_anonymous. smbd has no such switch: even with
    'restrict anonymous = 2' it accepts the null session and denies IPC$ later (checked by hand: SUCCESS,
    then TREE_CONNECT IPC$ -> ACCESS_DENIED), so this case is not cross-checked."""
    driver = Driver(make_context())
    driver.negotiate()
    answers = login_answers(driver, anonymous=True)
    assert answers[-1].status == "STATUS_LOGON_FAILURE"
    assert driver.ctx.events.events[-1].reason.startswith("anonymous logon")
    assert serving(driver)


def test_channel_bindings_policy_over_smb2() -> None:
    """SMB2 has no channel bindings: a server that requires them refuses every SMB2 logon with
    STATUS_BAD_BINDINGS (MS-NLMP 3.2.5.1.2); the match/mismatch cases are NTLM-level tests in
    tests/ntlm/test_handshake.py::test_channel_bindings_match_and_mismatch."""
    policy = NtlmPolicy(channel_bindings=ChannelBindingPolicy.REQUIRED, expected_channel_bindings=b"x" * 32)
    driver = Driver(make_context(policy=policy))
    driver.negotiate()
    answers = login_answers(driver)
    assert answers[-1].status == "STATUS_BAD_BINDINGS"
    assert serving(driver)
