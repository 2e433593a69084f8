"""One hostile exchange on one fresh connection: the login script, the edits it applies, what came back.

The script is a real login (NEGOTIATE, SESSION_SETUP with SPNEGO/NTLM until the server stops answering
MORE_PROCESSING_REQUIRED), the AUTHENTICATE computed from this server's own CHALLENGE. At each stage the
case's edits for that stage rewrite what is about to go out. Every request's answer is recorded as a
`Step`; after the script an unsigned ECHO without a session says whether the connection still answers.
"""

from __future__ import annotations

import itertools
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fuzz.differential import ber
from fuzz.differential.ntlm import build, negotiate_message, spec_for
from fuzz.differential.wire import Header, InitSpec, NegotiateSpec, RespSpec, SetupSpec, echo, mech_types_der
from smb2auth.errors import MalformedMessage
from smb2auth.ntlm.messages import ChallengeMessage
from smb2auth.smb2.header import HEADER_SIZE, Command
from smb2auth.spnego import tokens
from smb2auth.status import NtStatus

__all__ = ["CLOSED", "SILENT", "Account", "Edit", "Outcome", "run"]

CLOSED = "closed"
SILENT = "silent"
NO_ANSWER = "no answer"
NBSS_POSITIVE = "NBSS positive response"
STATUS_PENDING = 0x00000103
T = TypeVar("T")
_CLIENT_GUIDS = itertools.count(0x4747_4747_4747_4747_4747_4747_4747_0000)


@dataclass(frozen=True)
class Edit:
    """One mutation: `kind` names it, `stage` is where the script applies it, `args` its parameters."""

    kind: str
    stage: str
    args: tuple[Any, ...] = ()
    label: str = ""

    def __str__(self) -> str:
        shown = ", ".join(a.hex() if isinstance(a, bytes) else repr(a) for a in self.args)
        return f"{self.kind}({shown})"


Apply = Callable[[Any, tuple[Any, ...], "Conversation"], Any]
REGISTRY: dict[str, Apply] = {}


@dataclass(frozen=True)
class Account:
    user: str = "alice"
    password: str = "Passw0rd!"
    domain: str = "TESTGRP"


@dataclass(frozen=True)
class Outcome:
    """The answers to each request (status names, in order; CLOSED or SILENT when none came) and the
    connection's fate after the script: "open", CLOSED or SILENT."""

    steps: tuple[tuple[str, ...], ...]
    fate: str

    def __str__(self) -> str:
        steps = " -> ".join("+".join(s) for s in self.steps)
        return f"{steps} | {self.fate}"


@dataclass
class Answer:
    command: int
    status: int
    session_id: int
    body: bytes


@dataclass
class Conversation:
    """A socket to one server and the client state the script needs (message ids, the records)."""

    sock: socket.socket
    edits: tuple[Edit, ...]
    next_mid: int = 0
    steps: list[tuple[str, ...]] = field(default_factory=list)
    eof: bool = False
    stash: dict[str, Any] = field(default_factory=dict)

    def at(self, stage: str, value: T) -> T:
        for edit in self.edits:
            if edit.stage == stage:
                value = REGISTRY[edit.kind](value, edit.args, self)
        return value

    def has(self, stage: str) -> bool:
        return any(e.stage == stage for e in self.edits)

    # -- bytes ----------------------------------------------------------------------------------

    def _read_exact(self, n: int) -> bytes | str:
        data = bytearray()
        while len(data) < n:
            try:
                chunk = self.sock.recv(n - len(data))
            except TimeoutError:
                return SILENT
            except OSError:
                chunk = b""
            if not chunk:
                self.eof = True
                return CLOSED
            data += chunk
        return bytes(data)

    def read_frame(self) -> tuple[int, bytes] | str:
        """(the NBSS type byte, the payload) of the next frame, or CLOSED / SILENT."""
        head = self._read_exact(4)
        if isinstance(head, str):
            return head
        size = int.from_bytes(head[1:4], "big")
        body = self._read_exact(size) if size else b""
        if isinstance(body, str):
            return body
        return head[0], body

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            self.eof = True

    def read_answers(self) -> list[Answer] | str:
        """The SMB2 responses in the next frame (interim STATUS_PENDING skipped), NBSS replies noted."""
        while True:
            got = self.read_frame()
            if isinstance(got, str):
                return got
            kind, payload = got
            if kind == 0x82:
                self.steps.append((NBSS_POSITIVE,))
                continue
            if kind != 0:
                return f"NBSS type 0x{kind:02x}"
            answers = _split(payload)
            if answers and all(a.status == STATUS_PENDING for a in answers):
                continue
            return answers

    # -- requests -------------------------------------------------------------------------------

    def request(self, target: str, command: int, body: bytes, session_id: int = 0) -> list[Answer] | None:
        """Send one request (edited at header.<target> and frame.<target>); record and return its answers,
        None when the connection gave none."""
        header = self.at(f"header.{target}", Header(command, self.next_mid, session_id))
        self.next_mid = header.message_id + max(1, header.credit_charge)
        payload = header.pack() + body
        data = self.at(f"frame.{target}", struct.pack(">I", len(payload)) + payload)
        self.send(data)
        answers = CLOSED if self.eof else self.read_answers()
        if isinstance(answers, str):
            # Closed now or silent until the timeout: no answer either way (smbd often closes only later).
            self.steps.append((NO_ANSWER if answers in (CLOSED, SILENT) else answers,))
            return None
        self.steps.append(tuple(NtStatus.name_of(a.status) for a in answers) or ("empty frame",))
        return answers

    def fate(self) -> str:
        if self.eof:
            return CLOSED
        mid = self.next_mid
        probe = echo(mid)
        self.send(struct.pack(">I", len(probe)) + probe)
        for _ in range(4):
            answers = CLOSED if self.eof else self.read_answers()
            if isinstance(answers, str):
                return CLOSED if answers == CLOSED else SILENT
            for answer in answers:
                if answer.command == Command.ECHO:
                    return "open"
        return SILENT


def _split(payload: bytes) -> list[Answer]:
    """The responses of a (compound) frame, read leniently: what a server sends is not ours to refuse."""
    out = []
    offset = 0
    while offset + HEADER_SIZE <= len(payload):
        (status,) = struct.unpack_from("<I", payload, offset + 8)
        (command,) = struct.unpack_from("<H", payload, offset + 12)
        (next_command,) = struct.unpack_from("<I", payload, offset + 20)
        (session_id,) = struct.unpack_from("<Q", payload, offset + 40)
        end = offset + next_command if next_command else len(payload)
        out.append(Answer(command, status, session_id, payload[offset + HEADER_SIZE : end]))
        if not next_command or end <= offset:
            break
        offset = end
    return out


def _encode(conv: Conversation, stage: str, der: bytes) -> bytes:
    """A token's DER, its BER tree edited at `<stage>.tree` (if any edit is), then its bytes."""
    if conv.has(f"{stage}.tree"):
        der = ber.encode(conv.at(f"{stage}.tree", ber.parse(der)))
    return conv.at(f"{stage}.bytes", der)


def _security_buffer(body: bytes) -> bytes | None:
    """MS-SMB2 2.2.6: the SESSION_SETUP response's SecurityBuffer, or None when it does not fit."""
    if len(body) < 8:
        return None
    offset, length = struct.unpack_from("<HH", body, 4)
    start = offset - HEADER_SIZE
    if start < 0 or start + length > len(body):
        return None
    return body[start : start + length]


def _server_ntlm(token: bytes) -> bytes | None:
    """The NTLM message inside the server's token (or the bare one)."""
    if tokens.is_raw_ntlmssp(token):
        return token
    try:
        resp = tokens.decode(token)
    except MalformedMessage:
        return None
    return resp.response_token if isinstance(resp, tokens.NegTokenResp) else None


def login(conv: Conversation, account: Account, client_guid: bytes) -> None:
    negotiate = conv.at("negotiate", NegotiateSpec(client_guid=client_guid))
    answers = conv.request("negotiate", Command.NEGOTIATE, conv.at("negotiate.bytes", negotiate.pack()))
    if not answers or answers[0].status != NtStatus.STATUS_SUCCESS:
        return
    ntlm_negotiate = conv.at("ntlm.negotiate", negotiate_message())
    init = conv.at("spnego.init", InitSpec(mech_token=ntlm_negotiate))
    raw = conv.stash.get("raw", False)
    token = ntlm_negotiate if raw else _encode(conv, "spnego.init", init.encode())
    setup = conv.at("setup.first", SetupSpec(token))
    answers = conv.request("first", Command.SESSION_SETUP, setup.pack())
    sent_negotiate = init.mech_token is not None
    for _ in range(3):
        first = next((a for a in answers or () if a.command == Command.SESSION_SETUP), None)
        if first is None or first.status != NtStatus.STATUS_MORE_PROCESSING_REQUIRED:
            return
        server_token = _security_buffer(first.body)
        ntlm = _server_ntlm(server_token) if server_token else None
        if ntlm is not None and ntlm[8:12] == b"\x02\x00\x00\x00":
            try:
                challenge = ChallengeMessage.unpack(ntlm)
            except MalformedMessage:
                return
            spec = conv.at("auth", spec_for(challenge, account.user, account.password, account.domain))
            built = build(spec, ntlm_negotiate, ntlm)
            auth = conv.at("auth.bytes", built.message)
            conv.stash["auth"] = auth
            if raw:
                token = auth
            else:
                # MS-SPNG 3.3.5.1 / RFC 4178 5: the mechListMIC over the DER of the mechTypes we offered.
                mic = built.security().sign(mech_types_der(init.mech_oids))
                resp = conv.at("spnego.resp", RespSpec(response_token=auth, mic=mic))
                token = _encode(conv, "spnego.resp", resp.encode())
            setup = conv.at("setup.auth", SetupSpec(token))
            answers = conv.request("auth", Command.SESSION_SETUP, setup.pack(), first.session_id)
        elif not sent_negotiate:
            # RFC 4178 3.1: no optimistic token was sent; the mechanism's first token follows now.
            sent_negotiate = True
            token = RespSpec(response_token=ntlm_negotiate).encode()
            answers = conv.request("extra", Command.SESSION_SETUP, SetupSpec(token).pack(), first.session_id)
        else:
            return


def run(edits: tuple[Edit, ...], address: tuple[str, int], account: Account, timeout: float) -> Outcome:
    """The login script with `edits` on a fresh connection to `address`."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conv = Conversation(sock, edits)
        # smbd 4.15+ hands a connection whose ClientGUID another live connection holds to that connection's
        # process (smbXsrv_client_connection_pass): concurrent cases must not share one.
        login(conv, account, next(_CLIENT_GUIDS).to_bytes(16, "little"))
        fate = conv.fate()
        return Outcome(tuple(conv.steps), fate)
