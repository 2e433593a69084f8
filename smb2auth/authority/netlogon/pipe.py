"""ncacn_np (MS-RPCE 2.1.1.2): an RPC association over \\PIPE\\netlogon on the DC's IPC$, through our own
SMB2 client: CREATE, then FSCTL_PIPE_TRANSCEIVE for each request and its first response fragment, READ for
any further one, CLOSE."""

from __future__ import annotations

from smb2auth.authority.netlogon import pdu as P
from smb2auth.client.aio import AsyncSession, aconnect
from smb2auth.smb2.file import FSCTL_PIPE_TRANSCEIVE

MAX_OUTPUT = 65536  # one credit's worth (MS-SMB2 3.1.5.2); a fragment is at most 5840 bytes


class PipeStream:
    def __init__(self, session: AsyncSession, tree_id: int, file_id: bytes) -> None:
        self._session = session
        self._tree_id = tree_id
        self._file_id = file_id
        self._pending: bytes | None = None
        self._buffer = b""
        self._closed = False

    @classmethod
    async def open(cls, host: str, port: int, username: str, password: str, domain: str,
                   pipe: str = "netlogon") -> PipeStream:
        session = await aconnect(host, port, username=username, password=password, domain=domain)
        try:
            tree = await session.tree_connect("IPC$")
            opened = await session.create(tree.tree_id, pipe)
        except BaseException:
            session.abort()
            raise
        return cls(session, tree.tree_id, opened.file_id)

    async def send(self, frame: bytes) -> None:
        # MS-RPCE 2.1.1.2: a request goes out with the transceive that brings its answer back
        self._pending = frame

    async def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            answer = await self._session.ioctl(self._tree_id, self._file_id, FSCTL_PIPE_TRANSCEIVE, pending,
                                               MAX_OUTPUT)
            self._buffer += answer.output

    async def receive(self) -> bytes:
        await self._flush()
        while len(self._buffer) < P.HEADER_SIZE or len(self._buffer) < P.fragment_length(self._buffer):
            data = (await self._session.read(self._tree_id, self._file_id, MAX_OUTPUT)).data
            if not data:
                raise EOFError("the pipe gave no more data inside a PDU")
            self._buffer += data
        length = P.fragment_length(self._buffer)
        frame, self._buffer = self._buffer[:length], self._buffer[length:]
        return frame

    def close(self) -> None:
        self._closed = True
        self._session.abort()

    @property
    def closed(self) -> bool:
        return self._closed
