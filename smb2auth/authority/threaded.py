"""A synchronous face for an AsyncAuthority: its coroutines run on one event loop in a thread of its own,
so that threaded callers (a WSGI server's request threads) share its connections safely."""

from __future__ import annotations

import asyncio
import threading

from smb2auth.ntlm.authority import AsyncAuthority, Authority, ValidationRequest, ValidationResult


class LoopThreadAuthority(Authority):
    """`validate` blocks the calling thread until `inner.validate` has run on the private loop."""

    def __init__(self, inner: AsyncAuthority, timeout: float = 60.0) -> None:
        self.inner = inner
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="smb2auth-authority", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"LoopThreadAuthority({self.inner!r})"

    def validate(self, request: ValidationRequest) -> ValidationResult:
        future = asyncio.run_coroutine_threadsafe(self.inner.validate(request), self._loop)
        return future.result(self.timeout)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
