"""HTTP/1.1 on the proxy's two sides: request and response heads (RFC 9112 2-6), and relaying bodies
(fixed length, chunked, until close) from one stream to another, each read bounded by an idle timeout."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

MAX_HEAD = 64 * 1024
CHUNK = 64 * 1024

T = TypeVar("T")

if sys.version_info >= (3, 11):

    async def within(seconds: float, step: Awaitable[T]) -> T:
        """`await step`, TimeoutError past `seconds`; on 3.11+ without the Task `wait_for` makes per call."""
        async with asyncio.timeout(seconds):
            return await step

else:

    async def within(seconds: float, step: Awaitable[T]) -> T:
        """`await step`, TimeoutError past `seconds`."""
        try:
            return await asyncio.wait_for(step, seconds)
        except asyncio.TimeoutError:
            raise TimeoutError from None


class IdleTimer:
    """The idle timeout of one task's reads on one timer: `await timer.run(step)` is `within(timeout, step)`
    without a TimerHandle per read (asyncio.timeout's cost, paid on every request of a keep-alive
    connection). A read only moves the deadline; the timer, when it fires early, re-arms itself at the
    deadline, and one that fires past it cancels the task, which `run` turns into TimeoutError (as
    asyncio.timeout does, a cancellation from elsewhere stays one). `close()` when the task is done."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._deadline: float | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._expired = False

    async def run(self, step: Awaitable[T]) -> T:
        if sys.version_info < (3, 11) or self._task is None:  # no Task.uncancel before 3.11
            return await within(self.timeout, step)
        self._deadline = deadline = self._loop.time() + self.timeout
        if self._handle is None:
            self._handle = self._loop.call_at(deadline, self._fire)
        try:
            return await step
        except asyncio.CancelledError:
            if self._expired:
                self._expired = False
                if self._task.uncancel() == 0:
                    raise TimeoutError from None
            raise
        finally:
            self._deadline = None

    def _fire(self) -> None:
        self._handle = None
        deadline = self._deadline
        if deadline is None or self._task is None:  # between reads: the next read arms it again
            return
        if self._loop.time() < deadline:
            self._handle = self._loop.call_at(deadline, self._fire)
            return
        self._expired = True
        self._task.cancel()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"{status} {reason}")


@dataclass
class Head:
    """A parsed request or response head: the start line split in three, and the fields in order
    (`get` and `tokens` look names up in an index by lower-cased name, built once)."""

    start: tuple[str, str, str]
    fields: list[tuple[str, str]] = field(default_factory=list)
    _index: dict[str, list[str]] | None = field(default=None, repr=False, compare=False)

    def _by_name(self) -> dict[str, list[str]]:
        index = self._index
        if index is None:
            index = {}
            for k, v in self.fields:
                index.setdefault(k.lower(), []).append(v)
            self._index = index
        return index

    def get(self, name: str) -> str | None:
        index = self._index
        values = (index if index is not None else self._by_name()).get(name.lower())
        if not values:
            return None
        return values[0] if len(values) == 1 else ", ".join(values)

    def tokens(self, name: str) -> set[str]:
        value = self.get(name)
        if not value:
            return set()
        return {t for t in (t.strip().lower() for t in value.split(",")) if t}


def parse_head(data: bytes) -> Head:
    """Parse a head ending in CRLFCRLF (RFC 9112 2-5); raises BadRequest(400)."""
    lines = data.decode("latin-1").split("\r\n")
    while lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise BadRequest(400, "empty head")
    parts = lines[0].split(" ", 2)
    if len(parts) != 3:
        raise BadRequest(400, "bad start line")
    fields: list[tuple[str, str]] = []
    index: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        # RFC 9112 5.2: obsolete line folding (a line starting with SP or HTAB) is rejected with 400;
        # RFC 9112 5.1: no whitespace in or around a field name
        if not sep or not name or name.strip() != name or " " in name or "\t" in name:
            raise BadRequest(400, "obsolete line folding" if line[:1] in (" ", "\t") else "bad header field")
        value = value.strip(" \t")
        fields.append((name, value))
        key = name.lower()
        found = index.get(key)
        if found is None:
            index[key] = [value]
        else:
            found.append(value)
    return Head((parts[0], parts[1], parts[2]), fields, index)


async def read_head(reader: asyncio.StreamReader) -> bytes | None:
    """The bytes of one head, or None at a clean EOF before any byte."""
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise BadRequest(400, "truncated head") from None
    except asyncio.LimitOverrunError:
        raise BadRequest(431, "head too large") from None


def content_length(head: Head) -> int:
    value = head.get("Content-Length")
    if value is None:
        return 0
    try:
        lengths = {int(v.strip()) for v in value.split(",")}
    except ValueError:
        raise BadRequest(400, "bad Content-Length") from None
    # RFC 9112 6.3: differing Content-Length values are an unrecoverable framing error
    if len(lengths) != 1 or min(lengths) < 0:
        raise BadRequest(400, "bad Content-Length")
    return lengths.pop()


async def pump(
    src: asyncio.StreamReader, dst: asyncio.StreamWriter, timeout: float, *, eof: bool = True,
    activity: Activity | None = None,
) -> None:
    """Copy until EOF; a read idle for `timeout` (and, for a tunnel, no traffic the other way either)
    raises TimeoutError."""
    try:
        while data := await read_idle(src, timeout, activity):
            dst.write(data)
            await dst.drain()
        if eof and dst.can_write_eof():
            dst.write_eof()
    except (ConnectionError, OSError):
        dst.close()


class Activity:
    """When a tunnel last moved a byte either way."""

    def __init__(self) -> None:
        self.last = asyncio.get_running_loop().time()


async def read_idle(src: asyncio.StreamReader, timeout: float, activity: Activity | None = None,
                     n: int = CHUNK) -> bytes:
    loop = asyncio.get_running_loop()
    while True:
        try:
            data = await within(timeout, src.read(n))
        except TimeoutError:
            if activity is None or loop.time() - activity.last >= timeout:
                raise
            continue
        if activity is not None:
            activity.last = loop.time()
        return data


async def relay_exactly(src: asyncio.StreamReader, dst: asyncio.StreamWriter, n: int, timeout: float,
                         *, drop_tail: int = 0) -> None:
    """Relay `n` bytes, leaving out the last `drop_tail` of them (a chunk's CRLF when dechunking)."""
    while n > 0:
        data = await read_idle(src, timeout, n=min(n, CHUNK))
        if not data:
            raise ConnectionError("upstream closed mid-body")
        n -= len(data)
        keep = max(0, len(data) - max(0, drop_tail - n))
        dst.write(data[:keep])
        await dst.drain()


async def relay_chunked(
    src: asyncio.StreamReader, dst: asyncio.StreamWriter, timeout: float, *, dechunk: bool = False
) -> None:
    """Pass a chunked body through, parsing just enough to find its end (RFC 9112 7.1); `dechunk`
    passes only the chunks' data."""
    while True:
        line = await within(timeout, src.readuntil(b"\r\n"))
        if not dechunk:
            dst.write(line)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ConnectionError("bad chunk size from upstream") from None
        if size == 0:
            while True:
                trailer = await within(timeout, src.readuntil(b"\r\n"))
                if not dechunk:
                    dst.write(trailer)
                if trailer == b"\r\n":
                    return
        await relay_exactly(src, dst, size + 2, timeout, drop_tail=2 if dechunk else 0)
