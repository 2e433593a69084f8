"""A minimal in-process client for the sans-IO server Connection: builds requests from our codecs, runs
NTLM/SPNEGO with our client contexts, and parses the answers. Lets the tests craft wrong input on purpose."""

from __future__ import annotations

from dataclasses import dataclass, field

from smb2auth.authority.local import LocalAuthority
from smb2auth.ntlm.authority import ResponseKind
from smb2auth.ntlm.client import NtlmClient
from smb2auth.ntlm.server import TargetInfo
from smb2auth.server.config import ServerConfig
from smb2auth.server.connection import Connection
from smb2auth.server.context import ServerContext
from smb2auth.server.inline import answer_frame
from smb2auth.smb2.body import Message
from smb2auth.smb2.crypto import (
    PreauthIntegrity,
    SessionKeys,
    derive_session_keys,
    sign,
    verify,
)
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
from smb2auth.smb2.policy import signing_algorithm_for
from smb2auth.smb2.session import SessionFlags, SessionSetupFlags, SessionSetupRequest, SessionSetupResponse
from smb2auth.spnego.context import SpnegoClient
from smb2auth.status import NtStatus

USER, PASSWORD, DOMAIN = "alice", "Passw0rd!", "TESTGRP"
NO_FLAGS = HeaderFlags(0)
NO_SETUP_FLAGS = SessionSetupFlags(0)


def make_context(**config: object) -> ServerContext:
    authority = config.pop("authority", None)
    if authority is None:
        local = LocalAuthority(DOMAIN)
        local.add_user(USER, PASSWORD)
        authority = local
    cfg = ServerConfig(authority=authority, target=TargetInfo(nb_domain=DOMAIN), **config)  # type: ignore[arg-type]
    counter = iter(range(1, 1 << 30))
    return ServerContext(cfg, rng=lambda n: next(counter).to_bytes(n, "little"))


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
        self.preauth = PreauthIntegrity()
        self.cipher = 0
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
        header = Smb2Header(command, flags, self.mid, session_id, tree_id, credit=credit, credit_charge=1)
        self.mid += 1
        data = header.pack() + (body if isinstance(body, bytes) else body.pack())
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
    ) -> NegotiateResponse:
        if contexts is None:
            contexts = preauth_contexts() if Dialect.SMB3_1_1 in dialects else ()
        request = self.message(
            Command.NEGOTIATE,
            NegotiateRequest(dialects, security_mode, client_guid=b"G" * 16, negotiate_contexts=contexts),
        )
        answer = self.send_raw(request)[0]
        assert answer.status == "STATUS_SUCCESS", answer
        response = NegotiateResponse.unpack(answer.body)
        self.dialect = response.dialect_revision
        signing = find_context(response.negotiate_contexts, SigningCapabilities)
        negotiated = signing.signing_algorithms[0] if isinstance(signing, SigningCapabilities) else None
        self.algorithm = signing_algorithm_for(self.dialect, negotiated)
        ciphers = find_context(response.negotiate_contexts, EncryptionCapabilities)
        if isinstance(ciphers, EncryptionCapabilities):
            self.cipher = ciphers.ciphers[0]
        elif response.capabilities & Capabilities.ENCRYPTION:
            self.cipher = Cipher.AES_128_CCM
        self.preauth = PreauthIntegrity().add(request).add(answer.raw)
        return response

    def login(
        self,
        user: str = USER,
        password: str = PASSWORD,
        *,
        version: ResponseKind = ResponseKind.NTLMV2,
        anonymous: bool = False,
        previous_session_id: int = 0,
        flags: SessionSetupFlags = NO_SETUP_FLAGS,
    ) -> Login:
        ntlm = NtlmClient(
            user,
            None if anonymous else password,
            domain=DOMAIN,
            workstation="WS1",
            version=version,
            anonymous=anonymous,
        )
        spnego = SpnegoClient(ntlm)
        token = spnego.step(None)
        session_id = 0
        preauth = self.preauth
        while True:
            body = SessionSetupRequest(token or b"", flags, previous_session_id=previous_session_id)
            request = self.message(Command.SESSION_SETUP, body, session_id=session_id)
            preauth = preauth.add(request)
            answer = self.send_raw(request)[0]
            session_id = answer.header.session_id
            if answer.header.status != NtStatus.STATUS_MORE_PROCESSING_REQUIRED:
                break
            preauth = preauth.add(answer.raw)
            token = spnego.step(SessionSetupResponse.unpack(answer.body).security_buffer)
        if answer.header.status != NtStatus.STATUS_SUCCESS:
            return Login(session_id, b"", self.algorithm, answer)
        final = SessionSetupResponse.unpack(answer.body)
        if final.security_buffer and not final.session_flags:
            # A guest's server has no session key, so it sends no mechListMIC: only check ours.
            spnego.step(final.security_buffer)
        key = b""
        keys = None
        guest_or_null = final.session_flags & (SessionFlags.IS_GUEST | SessionFlags.IS_NULL)
        if not guest_or_null and ntlm.session_key:
            keys = derive_session_keys(
                self.dialect,
                ntlm.session_key,
                preauth.value if self.dialect == Dialect.SMB3_1_1 else None,
                self.cipher or Cipher.AES_128_CCM,
            )
            key = keys.signing_key
            assert verify(answer.raw, key, self.algorithm), "final SESSION_SETUP response not signed"
        return Login(session_id, key, self.algorithm, answer, keys)
