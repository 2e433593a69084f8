"""The synchronous shell: a blocking socket moving the sans-IO core's bytes."""

from __future__ import annotations

import os
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from types import TracebackType

from smb2auth.client._base import DEFAULT_TIMEOUT, SessionView
from smb2auth.client.protocol import (
    ALL_DIALECTS,
    ClientConnection,
    NegotiateDowngradeError,
    Response,
    Smb2ClientError,
    TreeConnect,
)
from smb2auth.errors import Smb2AuthError
from smb2auth.ntlm.authority import ResponseKind
from smb2auth.smb2.framing import FrameReader
from smb2auth.status import NtStatus


class Session(SessionView):
    """An SMB2 session over a TCP connection. Use `connect()`; close with `close()` or `with`."""

    def __init__(
        self, sock: socket.socket, core: ClientConnection, host: str, port: int, timeout: float
    ) -> None:
        self._sock = sock
        self._core = core
        self.host = host
        self.port = port
        self.timeout = timeout
        self._reader = FrameReader()
        self._frames: deque[bytes] = deque()

    def _read_frame(self) -> bytes:
        while not self._frames:
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                raise Smb2ClientError(
                    NtStatus.STATUS_IO_TIMEOUT, f"no answer within {self.timeout}s"
                ) from None
            if not data:
                raise Smb2ClientError(
                    NtStatus.STATUS_CONNECTION_DISCONNECTED, "the server closed the connection"
                )
            self._frames.extend(self._reader.feed(data))
        return self._frames.popleft()

    def _receive(self) -> Response:
        while True:
            response = self._core.receive(self._read_frame())
            if response is not None:
                return response

    def _transact(self, request: bytes) -> Response:
        self._sock.sendall(request)
        return self._receive()

    def _setup(self) -> None:
        self._sock.sendall(self._core.negotiate())
        while not self._core.established:
            self._receive()
            out = self._core.data_to_send()
            if out:
                self._sock.sendall(out)

    def echo(self) -> Response:
        """MS-SMB2 3.2.4.16: ECHO, signed (or encrypted) like every request of the session."""
        return self._transact(self._core.echo())

    def tree_connect(self, share: str) -> TreeConnect:
        """Connect to `share`; `.tree_id` and `.response` (the TreeConnectResponse) tell the result.

        After the first one on a 3.0/3.0.2 connection, FSCTL_VALIDATE_NEGOTIATE_INFO (MS-SMB2 3.2.5.5): a
        mismatch raises NegotiateDowngradeError and closes the connection."""
        response = self._transact(self._core.tree_connect(share))
        validate = self._core.data_to_send()
        if validate:
            try:
                self._transact(validate)
            except NegotiateDowngradeError:
                self.close()  # MS-SMB2 3.2.5.14.12: terminate the connection
                raise
        return self._core.trees[response.header.tree_id]

    def tree_disconnect(self, tree: TreeConnect | int) -> None:
        tree_id = tree if isinstance(tree, int) else tree.tree_id
        self._transact(self._core.tree_disconnect(tree_id))

    def logoff(self) -> None:
        self._transact(self._core.logoff())

    def close(self) -> None:
        """Close the connection (without LOGOFF; the server drops the session with it)."""
        self._core.close()
        self._sock.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if kind is None and self._core.established:
                self.logoff()
        finally:
            self.close()


def connect(
    host: str,
    port: int = 445,
    *,
    username: str = "",
    password: str | None = None,
    nt_hash: bytes | None = None,
    domain: str = "",
    workstation: str = "",
    server_name: str | None = None,
    dialects: Sequence[int] = ALL_DIALECTS,
    require_signing: bool = True,
    require_encryption: bool = False,
    validate_negotiate: bool = True,
    ntlm_version: ResponseKind = ResponseKind.NTLMV2,
    timeout: float = DEFAULT_TIMEOUT,
    rng: Callable[[int], bytes] = os.urandom,
    clock: Callable[[], float] = time.time,
) -> Session:
    """Connect, NEGOTIATE and SESSION_SETUP; the returned session is established and signed as required.

    Raises an Smb2AuthError subclass carrying `.status` (e.g. STATUS_LOGON_FAILURE), or OSError when the
    TCP connection cannot be made."""
    core = ClientConnection(
        username=username,
        password=password,
        nt_hash=nt_hash,
        domain=domain,
        workstation=workstation,
        server_name=host if server_name is None else server_name,
        dialects=dialects,
        require_signing=require_signing,
        require_encryption=require_encryption,
        validate_negotiate=validate_negotiate,
        ntlm_version=ntlm_version,
        rng=rng,
        clock=clock,
    )
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError:
        raise Smb2ClientError(
            NtStatus.STATUS_IO_TIMEOUT, f"no connection to {host}:{port} within {timeout}s"
        ) from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    session = Session(sock, core, host, port, timeout)
    try:
        session._setup()
    except (Smb2AuthError, OSError):
        session.close()
        raise
    return session
