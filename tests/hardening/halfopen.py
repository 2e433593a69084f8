"""Half-open SMB2 handshakes from a separate process (its own file descriptors): each connection sends
NEGOTIATE and the first SESSION_SETUP (NTLM NEGOTIATE), reads the CHALLENGE, then goes silent until the server
closes it.

    python -m tests.hardening.halfopen HOST PORT COUNT

Prints one line "challenged N" when every connection has its CHALLENGE, then "closed N SECONDS" when the
server has closed all of them (SECONDS from the first line). Exits 1 on any other answer.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time

from smb2auth.ntlm.client import NtlmClient
from smb2auth.smb2.framing import frame
from smb2auth.smb2.header import Command, HeaderFlags, Smb2Header
from smb2auth.smb2.negotiate import Dialect, NegotiateRequest, SecurityMode
from smb2auth.smb2.session import SessionSetupRequest
from smb2auth.spnego.context import SpnegoClient
from smb2auth.status import NtStatus


def opening() -> bytes:
    """NEGOTIATE (2.1) and SESSION_SETUP leg 1, pipelined in one write: the same bytes for every client."""
    negotiate = Smb2Header(Command.NEGOTIATE, HeaderFlags(0), 0, 0, 0, credit=8, credit_charge=1).pack()
    request = NegotiateRequest((Dialect.SMB2_1,), SecurityMode.SIGNING_ENABLED, client_guid=b"H" * 16)
    negotiate += request.pack()
    token = SpnegoClient(NtlmClient("halfopen", "x")).step(None) or b""
    setup = Smb2Header(Command.SESSION_SETUP, HeaderFlags(0), 1, 0, 0, credit=8, credit_charge=1).pack()
    setup += SessionSetupRequest(token).pack()
    return frame(negotiate) + frame(setup)


async def _read_status(reader: asyncio.StreamReader) -> int:
    head = await reader.readexactly(4)
    payload = await reader.readexactly(int.from_bytes(head[1:4], "big"))
    return int.from_bytes(payload[8:12], "little")


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def one(host: str, port: int, data: bytes) -> Stream:
    for attempt in range(50):
        try:
            reader, writer = await asyncio.open_connection(host, port)
            break
        except OSError:
            await asyncio.sleep(0.05 * (attempt + 1))  # listen backlog full: retry
    else:
        raise RuntimeError("could not connect")
    writer.write(data)
    if await _read_status(reader) != NtStatus.STATUS_SUCCESS:
        raise RuntimeError("NEGOTIATE failed")
    if await _read_status(reader) != NtStatus.STATUS_MORE_PROCESSING_REQUIRED:
        raise RuntimeError("no CHALLENGE")
    return reader, writer


async def main(host: str, port: int, count: int) -> int:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    data = opening()
    batch = 500  # connect in waves, so the server's accept backlog keeps up
    streams: list[Stream] = []
    for start in range(0, count, batch):
        streams += await asyncio.gather(*(one(host, port, data) for _ in range(min(batch, count - start))))
    print(f"challenged {len(streams)}", flush=True)
    t0 = time.monotonic()
    # Silent from here on: wait for the server to close each connection (EOF).
    await asyncio.gather(*(reader.read() for reader, _ in streams))
    print(f"closed {len(streams)} {time.monotonic() - t0:.2f}", flush=True)
    for _, writer in streams:
        writer.close()
    return 0


if __name__ == "__main__":
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sys.exit(asyncio.run(main(host, port, count)))
