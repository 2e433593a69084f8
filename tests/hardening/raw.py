"""The same raw SMB2 cases against our server (in-process, tests/server/driver.py) and a real smbd (a socket).

`SocketDriver` is `Driver` with `send_raw` over TCP, so every helper of Driver (negotiate, login, message,
request) builds byte-identical requests for both peers. `open_peer(name, ...)` gives either one.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from smb2auth.ntlm.authority import ResponseKind
from smb2auth.ntlm.client import NtlmClient
from smb2auth.smb2.framing import frame
from smb2auth.smb2.header import Command, split_compound
from smb2auth.smb2.session import SessionSetupRequest, SessionSetupResponse
from smb2auth.smb2.simple import EchoRequest
from smb2auth.spnego.context import SpnegoClient
from smb2auth.status import NtStatus
from tests.server.driver import DOMAIN, PASSWORD, USER, Answer, Driver

STATUS_PENDING = 0x00000103


class SocketDriver(Driver):
    """Driver whose messages go to a real server over TCP (one frame out, one frame back)."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        super().__init__()
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        self.eof = False  # the peer closed (or reset) the connection
        self.silent = False  # a read timed out: the peer said nothing, and may still

    def close(self) -> None:
        self.sock.close()

    def _read_exact(self, n: int) -> bytes | None:
        data = bytearray()
        while len(data) < n:
            try:
                chunk = self.sock.recv(n - len(data))
            except TimeoutError:
                self.silent = True
                return None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
                return None
            data += chunk
        return bytes(data)

    def send_bytes(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self.eof = True

    def read_answers(self) -> list[Answer]:
        while True:
            head = self._read_exact(4)
            if head is None:
                return []
            body = self._read_exact(int.from_bytes(head[1:4], "big"))
            if body is None:
                return []
            answers = [Answer(p.header, p.body, p.raw) for p in split_compound(body)]
            if answers and all(a.header.status == STATUS_PENDING for a in answers):
                continue  # an interim response (MS-SMB2 3.3.4.2): the final one follows
            return answers

    def send_raw(self, payload: bytes) -> list[Answer]:
        self.send_bytes(frame(payload))
        if self.eof:
            return []
        return self.read_answers()


def serving(driver: Driver) -> bool:
    """Whether the connection still answers: an ECHO (needs no session) gets STATUS_SUCCESS."""
    if isinstance(driver, SocketDriver) and driver.eof:
        return False
    if not isinstance(driver, SocketDriver) and driver.conn.closed:
        return False
    answers = driver.send_raw(driver.message(Command.ECHO, EchoRequest()))
    return bool(answers) and answers[0].header.status == NtStatus.STATUS_SUCCESS


def login_answers(
    driver: Driver,
    user: str = USER,
    password: str | None = PASSWORD,
    *,
    version: ResponseKind = ResponseKind.NTLMV2,
    anonymous: bool = False,
    tamper: Callable[[bytes], bytes] | None = None,
) -> list[Answer]:
    """Both SESSION_SETUP legs with our NTLM/SPNEGO client, `tamper` applied to the AUTHENTICATE leg's
    security buffer; every answer (no key checks: what a peer answers is the point)."""
    ntlm = NtlmClient(user, None if anonymous else password, domain=DOMAIN, workstation="WS1",
                      version=version, anonymous=anonymous)
    spnego = SpnegoClient(ntlm)
    token = spnego.step(None) or b""
    first = driver.request(Command.SESSION_SETUP, SessionSetupRequest(token))
    if first.header.status != NtStatus.STATUS_MORE_PROCESSING_REQUIRED:
        return [first]
    token = spnego.step(SessionSetupResponse.unpack(first.body).security_buffer) or b""
    if tamper is not None:
        token = tamper(token)
    session_id = first.header.session_id
    return [first, driver.request(Command.SESSION_SETUP, SessionSetupRequest(token), session_id=session_id)]
