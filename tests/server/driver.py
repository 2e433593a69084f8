"""A raw driver for the sans-IO server Connection: it builds requests from our codecs one field at a time, so
the tests can send wrong input on purpose, and parses the answers. Its logins are the real client's
SESSION_SETUP core (smb2auth.client._session_setup: the SPNEGO/NTLM legs, the 3.1.1 preauth chain, the session
keys and the final signature check), one new session per `login`, over whatever `negotiate` settled. Tests
that need only a well-behaved client pair the real one with the server (tests/helpers.py ConnectionPair)."""

from __future__ import annotations

from dataclasses import dataclass, field

from smb2auth.client._session_setup import SessionSetup
from smb2auth.ntlm.authority import ResponseKind
from smb2auth.ntlm.client import NtlmClient
from smb2auth.server import Connection, ServerContext
from smb2auth.server.inline import answer_frame
from smb2auth.smb2 import policy
from smb2auth.smb2.body import Message
from smb2auth.smb2.crypto import SessionKeys, sign
from smb2auth.smb2.header import Command, HeaderFlags, Smb2Header, split_compound
from smb2auth.smb2.negotiate import Capabilities, Dialect, NegotiateRequest, NegotiateResponse, SecurityMode
from smb2auth.smb2.negotiate_contexts import (
    Cipher,
    EncryptionCapabilities,
    HashAlgorithm,
    NegotiateContext,
    PreauthIntegrityCapabilities,
    SigningAlgorithm,
    SigningCapabilities,
    find_context,
)
from smb2auth.smb2.session import SessionFlags, SessionSetupResponse
from smb2auth.spnego.context import SpnegoClient
from smb2auth.status import NtStatus
from tests.helpers import DOMAIN, PASSWORD, USER, server_context

__all__ = ["DOMAIN", "PASSWORD", "USER", "Answer", "Driver", "Login", "make_context", "preauth_contexts"]

NO_FLAGS = HeaderFlags(0)
NO_CAPABILITIES = Capabilities(0)
make_context = server_context


def preauth_contexts(signing: tuple[int, ...] = (SigningAlgorithm.AES_CMAC,)) -> tuple[NegotiateContext, ...]:
    return (
        PreauthIntegrityCapabilities((HashAlgorithm.SHA_512,), b"\x11" * 32),
        SigningCapabilities(signing),
    )


@dataclass
class Answer:
    header: Smb2Header
    body: bytes = field(repr=False)
    raw: bytes = field(repr=False)

    @property
    def status(self) -> str:
        return NtStatus.name_of(self.header.status)


@dataclass
class Login:
    session_id: int
    signing_key: bytes = field(repr=False)
    algorithm: int
    final: Answer
    keys: SessionKeys | None = None


class Driver:
    def __init__(self, ctx: ServerContext | None = None, peer: str = "127.0.0.1:40000") -> None:
        self.ctx = ctx if ctx is not None else make_context()
        self.conn = Connection(self.ctx, peer)
        self.mid = 0
        self.dialect = 0
        self.algorithm: int = SigningAlgorithm.AES_CMAC
        self.cipher = 0
        self.server_signing_required = False
        # The NEGOTIATE exchange as it crossed: the 3.1.1 preauth hash starts from it, SPNEGO from its hint.
        self.negotiate_request = b""
        self.negotiate_response = b""
        self.negotiate_token = b""
        self.message_log: list[bytes] = []

    def send_raw(self, payload: bytes) -> list[Answer]:
        out = answer_frame(self.conn, payload)
        answers: list[Answer] = []
        for data in out:
            assert data[0] == 0 and int.from_bytes(data[1:4], "big") == len(data) - 4
            answers.extend(Answer(p.header, p.body, p.raw) for p in split_compound(data[4:]))
        return answers

    def feed(self, data: bytes) -> list[Answer]:
        answers: list[Answer] = []
        for payload in self.conn.feed(data):
            answers.extend(self.send_raw(payload))
        return answers

    def header(
        self,
        command: Command,
        *,
        session_id: int = 0,
        tree_id: int = 0,
        flags: HeaderFlags = NO_FLAGS,
        credit: int = 1,
    ) -> bytes:
        """The next request's header, taking the next MessageId."""
        header = Smb2Header(command, flags, self.mid, session_id, tree_id, credit=credit, credit_charge=1)
        self.mid += 1
        return header.pack()

    def message(
        self,
        command: Command,
        body: Message | bytes,
        *,
        session_id: int = 0,
        tree_id: int = 0,
        flags: HeaderFlags = NO_FLAGS,
        credit: int = 1,
        key: bytes | None = None,
    ) -> bytes:
        header = self.header(command, session_id=session_id, tree_id=tree_id, flags=flags, credit=credit)
        data = header + (body if isinstance(body, bytes) else body.pack())
        data = sign(data, key, self.algorithm) if key is not None else data
        self.message_log.append(data)
        return data

    def request(self, command: Command, body: Message | bytes, **kw: object) -> Answer:
        answers = self.send_raw(self.message(command, body, **kw))  # type: ignore[arg-type]
        assert len(answers) == 1, answers
        return answers[0]

    def negotiate(
        self,
        dialects: tuple[int, ...] = (
            Dialect.SMB3_1_1,
            Dialect.SMB3_0_2,
            Dialect.SMB3_0,
            Dialect.SMB2_1,
            Dialect.SMB2_0_2,
        ),
        contexts: tuple[NegotiateContext, ...] | None = None,
        security_mode: SecurityMode = SecurityMode.SIGNING_ENABLED,
        capabilities: Capabilities = NO_CAPABILITIES,
    ) -> NegotiateResponse:
        if contexts is None:
            contexts = preauth_contexts() if Dialect.SMB3_1_1 in dialects else ()
        request = self.message(
            Command.NEGOTIATE,
            NegotiateRequest(dialects, security_mode, capabilities, b"G" * 16, contexts),
        )
        answer = self.send_raw(request)[0]
        assert answer.status == "STATUS_SUCCESS", answer
        response = NegotiateResponse.unpack(answer.body)
        # The client's reading of the answer (smb2/policy.py): dialect, signing algorithm, cipher.
        ciphers = find_context(contexts, EncryptionCapabilities)
        signing = find_context(contexts, SigningCapabilities)
        choice = policy.check_response(
            response,
            dialects,
            ciphers.ciphers if isinstance(ciphers, EncryptionCapabilities) else (),
            signing.signing_algorithms if isinstance(signing, SigningCapabilities) else (),
        )
        assert isinstance(choice, policy.Negotiated), choice
        self.dialect, self.algorithm, self.cipher = choice.dialect, choice.signing_algorithm, choice.cipher
        self.server_signing_required = bool(response.security_mode & SecurityMode.SIGNING_REQUIRED)
        self.negotiate_request, self.negotiate_response = request, answer.raw
        self.negotiate_token = response.security_buffer
        return response

    def login(
        self,
        user: str = USER,
        password: str = PASSWORD,
        *,
        version: ResponseKind = ResponseKind.NTLMV2,
        anonymous: bool = False,
        previous_session_id: int = 0,
    ) -> Login:
        """A new session: the client's SESSION_SETUP legs to the end; the failing answer, or the session."""
        ntlm = NtlmClient(
            user,
            None if anonymous else password,
            domain=DOMAIN,
            workstation="WS1",
            version=version,
            anonymous=anonymous,
        )
        setup = SessionSetup(SpnegoClient(ntlm), require_signing=False, anonymous_logon=anonymous)
        setup.start(Dialect(self.dialect), self.negotiate_request, self.negotiate_response)
        token = setup.spnego.step(self.negotiate_token or None)
        session_id = 0
        while True:
            header = self.header(Command.SESSION_SETUP, session_id=session_id)
            request = setup.request(header, token, previous_session_id=previous_session_id)
            self.message_log.append(request)
            answer = self.send_raw(request)[0]
            session_id = answer.header.session_id
            if answer.header.status != NtStatus.STATUS_MORE_PROCESSING_REQUIRED:
                break
            token = setup.more_processing(answer.raw, SessionSetupResponse.unpack(answer.body))
        if answer.header.status != NtStatus.STATUS_SUCCESS:
            return Login(session_id, b"", self.algorithm, answer)
        session = setup.established(
            answer.header,
            answer.raw,
            SessionSetupResponse.unpack(answer.body),
            cipher=Cipher(self.cipher) if self.cipher else None,
            signing_algorithm=SigningAlgorithm(self.algorithm),
            server_signing_required=self.server_signing_required,
            can_encrypt=self.dialect >= Dialect.SMB3_0 and bool(self.cipher),
            require_encryption=False,
        )
        if anonymous or session.flags & (SessionFlags.IS_GUEST | SessionFlags.IS_NULL):
            # A guest or null session has no key to sign with (MS-SMB2 3.3.5.5.3).
            return Login(session_id, b"", self.algorithm, answer)
        assert session.response_signed, "final SESSION_SETUP response not signed"
        return Login(session_id, session.keys.signing_key, self.algorithm, answer, session.keys)
