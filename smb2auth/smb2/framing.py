"""Direct TCP transport framing (MS-SMB2 2.1): a zero byte, then a 24-bit big-endian length."""

from __future__ import annotations

from smb2auth.errors import MalformedMessage

MAX_FRAME = 0xFFFFFF
DEFAULT_MAX_SIZE = 16 * 1024 * 1024 - 1


def frame(payload: bytes) -> bytes:
    """`payload` with its 4-byte Direct TCP header."""
    if len(payload) > MAX_FRAME:
        # MS-SMB2 2.1: StreamProtocolLength is 24 bits.
        raise ValueError(f"payload of {len(payload)} bytes does not fit a Direct TCP frame")
    return len(payload).to_bytes(4, "big") + payload


class FrameReader:
    """Sans-IO reassembly of Direct TCP frames; holds at most one incomplete frame."""

    def __init__(self, max_size: int = DEFAULT_MAX_SIZE) -> None:
        if not 0 < max_size <= MAX_FRAME:
            raise ValueError("max_size must be between 1 and 0xFFFFFF")
        self.max_size = max_size
        self._buffer = bytearray()
        self._offset = 0  # stream offset of the buffer's first byte, for error reports

    @property
    def pending(self) -> int:
        """Bytes received but not yet returned as a frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add `data`; return every frame it completed, in order."""
        self._buffer += data
        frames: list[bytes] = []
        while len(self._buffer) >= 4:
            if self._buffer[0] != 0:
                # MS-SMB2 2.1: the first byte of the Direct TCP header is zero.
                raise MalformedMessage(
                    "Direct TCP header does not start with a zero byte", offset=self._offset
                )
            size = int.from_bytes(self._buffer[1:4], "big")
            if size > self.max_size:
                raise MalformedMessage(
                    f"frame of {size} bytes exceeds the limit of {self.max_size}", offset=self._offset
                )
            if len(self._buffer) < 4 + size:
                break
            frames.append(bytes(self._buffer[4 : 4 + size]))
            del self._buffer[: 4 + size]
            self._offset += 4 + size
        return frames
