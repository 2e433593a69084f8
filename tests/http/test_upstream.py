"""The proxy's per-client-connection upstream pool (smb2auth.http.upstream) on real loopback connections:
reuse by origin, the idle-time and count bounds, pinning."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from smb2auth.http.upstream import IdleUpstreams, UpstreamPool

Origin = tuple[str, int]
Body = Callable[[UpstreamPool, list[Origin], list[Origin]], Awaitable[None]]


async def _with_origins(count: int, body: Body) -> None:
    """`body(pool, origins, opened)` against `count` loopback origins that hold connections open."""
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.read()
        writer.close()

    servers = [await asyncio.start_server(hold, "127.0.0.1", 0) for _ in range(count)]
    origins: list[Origin] = [("127.0.0.1", int(s.sockets[0].getsockname()[1])) for s in servers]
    opened: list[Origin] = []

    async def opener(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        opened.append((host, port))
        return await asyncio.open_connection(host, port)

    try:
        await body(UpstreamPool(opener, max_idle=2, idle_timeout=0.2), origins, opened)
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()


def test_reuse_by_origin_and_bounds() -> None:
    async def body(pool: UpstreamPool, origins: list[Origin], opened: list[Origin]) -> None:
        a, b, c = origins
        first = await pool.take(a)
        pool.give_back(first, True)
        assert await pool.take(a) is first and first.reused and len(opened) == 1
        # another origin never gets a's connection
        other = await pool.take(b)
        assert other is not first and len(opened) == 2
        pool.give_back(first, True)
        pool.give_back(other, True)
        third = await pool.take(c)
        pool.give_back(third, True)
        # max_idle=2: the oldest idle one (a's) was closed to make room
        assert first.writer.is_closing() and not third.writer.is_closing()
        assert await pool.take(b) is other
        pool.give_back(other, True)
        # idle_timeout=0.2: past it, a new connection
        await asyncio.sleep(0.3)
        assert await pool.take(b) is not other and other.writer.is_closing()
        # not reusable (the response said close): closed, never pooled
        used = await pool.take(c)
        pool.give_back(used, False)
        assert used.writer.is_closing()
        await pool.close()

    asyncio.run(_with_origins(3, body))


def test_pinned_stays_until_it_cannot_carry_on() -> None:
    async def body(pool: UpstreamPool, origins: list[Origin], opened: list[Origin]) -> None:
        up = await pool.take(origins[0])
        pool.pin(up)
        pool.give_back(up, True)
        # pinned: never in the idle pool, still the client connection's
        assert pool.pinned is up and (await pool.take(origins[0])) is not up
        pool.give_back(up, False)
        assert pool.pinned is None and up.writer.is_closing()
        await pool.close()

    asyncio.run(_with_origins(1, body))


def test_parked_upstreams_are_bounded_per_origin_and_in_all() -> None:
    """IdleUpstreams keeps at most max_idle per origin and max_total in all, closing the oldest first;
    take hands out the newest usable one and forgets an origin with none left."""
    async def body(pool: UpstreamPool, origins: list[Origin], opened: list[Origin]) -> None:
        parked = IdleUpstreams(max_idle=2, max_total=3, idle_timeout=30.0)
        a, b, c = origins
        ups = [await pool.take(origin, fresh=True) for origin in (a, a, a, b, c)]
        for up in ups:
            parked.park(up)
            await asyncio.sleep(0.01)  # distinct idle_since, in this order
        # a's first: over max_idle for a; a's second: the oldest when c's made four in all
        assert [up.writer.is_closing() for up in ups] == [True, True, False, False, False]
        assert len(parked) == 3
        assert parked.take(a) is ups[2] and parked.take(a) is None
        assert parked.take(c) is ups[4] and len(parked) == 1
        await parked.close()
        assert ups[3].writer.is_closing() and len(parked) == 0
        await pool.close()

    asyncio.run(_with_origins(3, body))
