"""What a case runs on: the server under test (`Target`), fresh TCP connections each carrying a sans-IO client
core (`Link`), and a time limit for the whole case (`Probe`).

A case never waits longer than its deadline: every read is bounded by what is left of it, and running out
raises `CaseTimeout`. A connection the server closes reads as `Closed` (or `Answer.closed` from `answer`).
"""

from __future__ import annotations

import dataclasses
import socket
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from smb2auth.client.hooks import Hooks
from smb2auth.client.protocol import ALL_DIALECTS, ClientConnection, Response
from smb2auth.errors import Smb2AuthError
from smb2auth.smb2.framing import FrameReader
from smb2auth.smb2.header import HEADER_SIZE, SMB2_PROTOCOL_ID, Command, Smb2Header
from smb2auth.smb2.negotiate import SMB2_DIALECTS, Dialect, NegotiateResponse
from smb2auth.smb2.simple import EchoRequest
from smb2auth.smb2.tree import TreeConnectRequest
from smb2auth.status import NtStatus

__all__ = ["Answer", "CaseTimeout", "Closed", "Link", "Probe", "Profile", "Target"]


class CaseTimeout(Exception):
    """The case ran out of time waiting for the server."""


class Closed(Exception):
    """The server closed the connection (or reset it) where an answer was expected."""


@dataclass(frozen=True)
class Target:
    """The server under test and the account the cases log in with."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    domain: str = ""


@dataclass(frozen=True)
class Answer:
    """The answer to one raw request: the response, or None when the server closed the connection."""

    response: Response | None

    @property
    def closed(self) -> bool:
        return self.response is None

    @property
    def status(self) -> int | None:
        return None if self.response is None else self.response.header.status

    @property
    def name(self) -> str:
        """The NTSTATUS name, or "connection closed"."""
        status = self.status
        return "connection closed" if status is None else NtStatus.name_of(status)

    @property
    def ok(self) -> bool:
        return self.status == NtStatus.STATUS_SUCCESS


class Link:
    """One TCP connection to the target and the client core speaking on it."""

    def __init__(self, probe: Probe, core: ClientConnection) -> None:
        self.probe = probe
        self.core = core
        try:
            self.sock = socket.create_connection((probe.target.host, probe.target.port), probe.remaining())
        except TimeoutError:
            raise CaseTimeout(f"no TCP connection within {probe.timeout:g}s") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reader = FrameReader()
        self._frames: deque[bytes] = deque()
        self.eof = False
        # The header and body of the last unencrypted response: what the server answered, even where the
        # core refused it.
        self.last: tuple[Smb2Header, bytes] | None = None

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            self.eof = True  # a reset connection: the read that follows reports it

    def frame(self) -> bytes | None:
        """The next frame payload; None once the server closed the connection."""
        while not self._frames:
            if self.eof:
                return None
            self.sock.settimeout(self.probe.remaining())
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                raise CaseTimeout(f"no answer within {self.probe.timeout:g}s") from None
            except OSError:
                data = b""
            if not data:
                self.eof = True
                return None
            self._frames.extend(self._reader.feed(data))
        return self._frames.popleft()

    def response(self) -> Response:
        """The next final response, through the core (which raises for an error status or a bad signature)."""
        while True:
            payload = self.frame()
            if payload is None:
                raise Closed("the server closed the connection")
            if payload[:4] == SMB2_PROTOCOL_ID:
                self.last = (Smb2Header.unpack(payload), payload[HEADER_SIZE:])
            response = self.core.receive(payload)
            if response is not None:
                return response

    def exchange(self, request: bytes) -> Response:
        self.send(request)
        return self.response()

    def answer(self, request: bytes) -> Answer:
        """Send a raw request (ClientConnection.raw_request) and take its answer, or note the close."""
        self.send(request)
        try:
            return Answer(self.response())
        except Closed:
            return Answer(None)

    def negotiate(self) -> NegotiateResponse:
        self.exchange(self.core.negotiate())
        assert self.core.negotiate_response is not None
        return self.core.negotiate_response

    def establish(self) -> Response:
        """The SESSION_SETUP legs after the NEGOTIATE, until the session is established."""
        response: Response | None = None
        while not self.core.established:
            out = self.core.data_to_send()
            if not out:
                raise Closed("the client has nothing more to send")
            response = self.exchange(out)
        assert response is not None
        return response

    def login(self) -> Response:
        self.negotiate()
        return self.establish()

    def alive(self) -> bool:
        """Whether the connection still serves: an ECHO on no session gets STATUS_SUCCESS."""
        if self.eof:
            return False
        echo = self.core.raw_request(Command.ECHO, EchoRequest().pack(), session_id=0, sign=False,
                                     encrypt=False)
        return self.answer(echo).ok

    def tree_connect_ipc(self, **raw: Any) -> Answer:
        """A raw TREE_CONNECT to IPC$ (the share every SMB2 server has), as `raw_request` keywords say."""
        path = f"\\\\{self.probe.target.host}\\IPC$"
        body = TreeConnectRequest(path).pack()
        return self.answer(self.core.raw_request(Command.TREE_CONNECT, body, **raw))


class Probe:
    """One case's access to the target: fresh connections, all bounded by the case's deadline."""

    def __init__(self, target: Target, timeout: float, profile: Profile | None = None) -> None:
        self.target = target
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.profile = profile if profile is not None else Profile(target, timeout)
        self.links: list[Link] = []

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise CaseTimeout(f"the case took longer than {self.timeout:g}s")
        return left

    def core(
        self,
        dialects: Sequence[int] = ALL_DIALECTS,
        *,
        user: str | None = None,
        password: str | None = None,
        hooks: Hooks | None = None,
        **kw: Any,
    ) -> ClientConnection:
        """A client core with the target's credentials (or `user` / `password`), offering `dialects`."""
        t = self.target
        return ClientConnection(
            username=t.user if user is None else user,
            password=t.password if password is None else password,
            domain=t.domain,
            workstation="CONFORMANCE",
            server_name=t.host,
            dialects=tuple(dialects),
            hooks=hooks,
            **kw,
        )

    def link(self, dialects: Sequence[int] = ALL_DIALECTS, *, hold: bool = False, **kw: Any) -> Link:
        """A fresh connection with a core made by `core(dialects, **kw)`, nothing sent yet. `hold`: its
        NEGOTIATE queues no SESSION_SETUP, for raw requests after it."""
        if hold:
            kw["hooks"] = dataclasses.replace(kw.get("hooks") or Hooks(), hold_session_setup=True)
        link = Link(self, self.core(dialects, **kw))
        self.links.append(link)
        return link

    def login(self, dialects: Sequence[int] = ALL_DIALECTS, **kw: Any) -> Link:
        """A fresh connection with an established session."""
        link = self.link(dialects, **kw)
        link.login()
        return link

    def close(self) -> None:
        for link in self.links:
            link.close()


class Profile:
    """What the server offers, probed once per run (NEGOTIATE-only connections) and shared by the cases."""

    def __init__(self, target: Target, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        self._negotiated: dict[int, NegotiateResponse | None] = {}

    def negotiate(self, dialect: int) -> NegotiateResponse | None:
        """The server's NEGOTIATE response to an offer of `dialect` alone; None when it refuses it."""
        if dialect not in self._negotiated:
            probe = Probe(self.target, self.timeout, self)
            try:
                link = probe.link((dialect,))
                try:
                    self._negotiated[dialect] = link.negotiate()
                except Smb2AuthError:
                    self._negotiated[dialect] = None
            finally:
                probe.close()
        return self._negotiated[dialect]

    @property
    def dialects(self) -> tuple[Dialect, ...]:
        """The dialects the server negotiates when offered alone, lowest first."""
        return tuple(d for d in SMB2_DIALECTS if self.negotiate(d) is not None)

    def speaks(self, dialect: int) -> bool:
        return self.negotiate(dialect) is not None

    @property
    def top(self) -> Dialect:
        """The highest dialect the server speaks."""
        if not self.dialects:
            raise Closed("the server negotiates no SMB2 dialect")
        return self.dialects[-1]
