"""smb2auth.http.wire.IdleTimer: one timer bounding each of a task's reads, as asyncio.timeout per read
would (the proxy's hot path reads through it)."""

from __future__ import annotations

import asyncio

import pytest

from smb2auth.http.wire import IdleTimer


def test_reads_each_within_the_timeout_never_time_out() -> None:
    """Ten reads of 0.03 s each under a 0.1 s timeout: 0.3 s in all, none timed out."""

    async def main() -> int:
        timer = IdleTimer(0.1)
        done = 0
        for _ in range(10):
            await timer.run(asyncio.sleep(0.03))
            done += 1
        timer.close()
        return done

    assert asyncio.run(main()) == 10


def test_a_stalled_read_times_out_and_the_next_read_runs() -> None:
    async def main() -> tuple[float, str]:
        loop = asyncio.get_running_loop()
        timer = IdleTimer(0.1)
        started = loop.time()
        with pytest.raises(TimeoutError):
            await timer.run(asyncio.sleep(5))
        took = loop.time() - started
        answer = await timer.run(asyncio.sleep(0.01, result="after"))
        timer.close()
        return took, answer

    took, answer = asyncio.run(main())
    assert 0.1 <= took < 1.0
    assert answer == "after"


def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    async def main() -> bool:
        async def reader() -> None:
            timer = IdleTimer(5.0)
            try:
                await timer.run(asyncio.sleep(5))
            finally:
                timer.close()

        task = asyncio.ensure_future(reader())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return task.cancelled()

    assert asyncio.run(main())
