"""A minimal raw HTTP/1.x response reader over a socket, for tests that look at framing and connection
headers byte for byte (http.client hides them)."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def get(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None


class RawConnection:
    """One client socket; `request` sends bytes, `response` reads one response (HEAD: no body)."""

    def __init__(self, address: tuple[str, int], timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(address, timeout=timeout)
        self._buffer = b""
        self._eof = False

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self._buffer += data
        self._eof = not data
        return bool(data)

    def response(self, *, head: bool = False) -> RawResponse:
        while b"\r\n\r\n" not in self._buffer:
            if not self._fill():
                raise ConnectionError(f"closed before a full head: {self._buffer!r}")
        raw, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/1."):
            raise ValueError(f"not a status line (stray body bytes?): {lines[0][:80]!r}")
        response = RawResponse(int(lines[0].split(" ")[1]))
        for line in lines[1:]:
            name, _, value = line.partition(":")
            response.headers.append((name, value.strip()))
        length = response.get("Content-Length")
        if head or response.status in (204, 304) or response.status < 200:
            return response
        if length is None:
            while self._fill():
                pass
            response.body, self._buffer = self._buffer, b""
            return response
        while len(self._buffer) < int(length):
            if not self._fill():
                self._buffer = b""
                raise ConnectionError("closed mid-body")
        response.body, self._buffer = self._buffer[: int(length)], self._buffer[int(length):]
        return response

    def at_eof(self, wait: float = 5.0) -> bool:
        """True when the peer closed with nothing more to read (waits up to `wait` seconds)."""
        if self._buffer:
            return False
        if self._eof:
            return True
        self.sock.settimeout(wait)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def extra(self, wait: float = 0.3) -> bytes:
        """Whatever arrives within `wait` seconds beyond the responses read so far."""
        self.sock.settimeout(wait)
        try:
            while self._fill():
                pass
        except (TimeoutError, ConnectionResetError):
            pass
        data, self._buffer = self._buffer, b""
        return data
