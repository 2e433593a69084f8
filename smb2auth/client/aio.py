"""The asyncio shell: a StreamReader/StreamWriter pair moving the sans-IO core's bytes."""

from __future__ import annotations

import asyncio
import contextlib
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
from smb2auth.smb2.file import CloseResponse, CreateResponse, ReadResponse
from smb2auth.smb2.framing import FrameReader
from smb2auth.smb2.ioctl import IoctlResponse
from smb2auth.smb2.simple import RawBody
from smb2auth.status import NtStatus


class AsyncSession(SessionView):
    """An SMB2 session over an asyncio connection. Use `aconnect()`; close with `close()` or `async with`."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        core: ClientConnection,
        host: str,
        port: int,
        timeout: float,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._core = core
        self.host = host
        self.port = port
        self.timeout = timeout
        self._frames_in = FrameReader()
        self._frames: deque[bytes] = deque()

    async def _read_frame(self) -> bytes:
        while not self._frames:
            try:
                data = await asyncio.wait_for(self._reader.read(65536), self.timeout)
            except asyncio.TimeoutError:
                raise Smb2ClientError(
                    NtStatus.STATUS_IO_TIMEOUT, f"no answer within {self.timeout}s"
                ) from None
            if not data:
                raise Smb2ClientError(
                    NtStatus.STATUS_CONNECTION_DISCONNECTED, "the server closed the connection"
                )
            self._frames.extend(self._frames_in.feed(data))
        return self._frames.popleft()

    async def _receive(self) -> Response:
        while True:
            # Interim STATUS_PENDING responses give None: keep waiting for the final one.
            response = self._core.receive(await self._read_frame())
            if response is not None:
                return response

    async def _transact(self, request: bytes) -> Response:
        self._writer.write(request)
        return await self._receive()

    async def _setup(self) -> None:
        self._writer.write(self._core.negotiate())
        while not self._core.established:
            await self._receive()
            out = self._core.data_to_send()
            if out:
                self._writer.write(out)

    async def echo(self) -> Response:
        return await self._transact(self._core.echo())

    async def tree_connect(self, share: str) -> TreeConnect:
        """As `Session.tree_connect`, FSCTL_VALIDATE_NEGOTIATE_INFO included."""
        response = await self._transact(self._core.tree_connect(share))
        validate = self._core.data_to_send()
        if validate:
            try:
                await self._transact(validate)
            except NegotiateDowngradeError:
                await self.close()  # MS-SMB2 3.2.5.14.12: terminate the connection
                raise
        return self._core.trees[response.header.tree_id]

    async def tree_disconnect(self, tree: TreeConnect | int) -> None:
        tree_id = tree if isinstance(tree, int) else tree.tree_id
        await self._transact(self._core.tree_disconnect(tree_id))

    async def logoff(self) -> None:
        await self._transact(self._core.logoff())

    async def _raw(self, request: bytes) -> bytes:
        body = (await self._transact(request)).body
        assert isinstance(body, RawBody)
        return body.data

    async def create(self, tree_id: int, name: str) -> CreateResponse:
        return CreateResponse.unpack(await self._raw(self._core.create(tree_id, name)))

    async def ioctl(self, tree_id: int, file_id: bytes, ctl_code: int, data: bytes,
                    max_output: int) -> IoctlResponse:
        body = (await self._transact(self._core.ioctl(tree_id, file_id, ctl_code, data, max_output))).body
        assert isinstance(body, IoctlResponse)
        return body

    async def read(self, tree_id: int, file_id: bytes, length: int) -> ReadResponse:
        return ReadResponse.unpack(await self._raw(self._core.read(tree_id, file_id, length)))

    async def close_file(self, tree_id: int, file_id: bytes) -> CloseResponse:
        return CloseResponse.unpack(await self._raw(self._core.close_file(tree_id, file_id)))

    def abort(self) -> None:
        """Drop the connection at once: no LOGOFF, no waiting."""
        self._core.close()
        self._writer.close()

    async def close(self) -> None:
        self._core.close()
        self._writer.close()
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            await asyncio.wait_for(self._writer.wait_closed(), self.timeout)

    async def __aenter__(self) -> AsyncSession:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if kind is None and self._core.established:
                await self.logoff()
        finally:
            await self.close()


async def aconnect(
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
) -> AsyncSession:
    """`connect()` for asyncio: the returned session is established."""
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
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except asyncio.TimeoutError:
        raise Smb2ClientError(
            NtStatus.STATUS_IO_TIMEOUT, f"no connection to {host}:{port} within {timeout}s"
        ) from None
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    session = AsyncSession(reader, writer, core, host, port, timeout)
    try:
        await session._setup()
    except (Smb2AuthError, OSError):
        await session.close()
        raise
    return session
