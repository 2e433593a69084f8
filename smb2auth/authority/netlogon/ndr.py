"""NDR 1.0 (C706 chapter 14), little-endian, as far as the endpoint mapper and Netlogon calls need it.

Alignment is relative to the start of the stub data. Pointers are written as pidl and Windows write them:
a structure's scalars first (a non-zero referent id for each unique/full pointer that is set), then the
pointees in the order of their pointers, each pointee's own pointees right after it.
"""

from __future__ import annotations

import struct
import uuid

from smb2auth.errors import MalformedMessage

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class NdrWriter:
    def __init__(self) -> None:
        self._buf = bytearray()
        self._next_ref = 0x00020000

    def getvalue(self) -> bytes:
        return bytes(self._buf)

    def align(self, n: int) -> None:
        self._buf += b"\x00" * (-len(self._buf) % n)

    def u8(self, value: int) -> None:
        self._buf.append(value)

    def u16(self, value: int) -> None:
        self.align(2)
        self._buf += _U16.pack(value)

    def u32(self, value: int) -> None:
        self.align(4)
        self._buf += _U32.pack(value)

    def raw(self, data: bytes) -> None:
        self._buf += data

    def referent(self, present: bool) -> None:
        """C706 14.3.10: a unique or full pointer is a non-zero referent id, or zero for NULL."""
        if present:
            self.u32(self._next_ref)
            self._next_ref += 4
        else:
            self.u32(0)

    def conformant_varying_string(self, text: str) -> None:
        """C706 14.3.4.3: a [string] wchar_t*: max count, offset 0, actual count, the terminated UTF-16."""
        data = (text + "\x00").encode("utf-16-le")
        count = len(data) // 2
        self.u32(count)
        self.u32(0)
        self.u32(count)
        self.raw(data)

    def unique_string(self, text: str | None) -> None:
        self.referent(text is not None)
        if text is not None:
            self.conformant_varying_string(text)

    def counted_header(self, length: int, present: bool) -> None:
        """RPC_UNICODE_STRING / STRING scalars (MS-DTYP 2.3.10, MS-NRPC 2.2.1.1.2): Length, MaximumLength,
        Buffer pointer."""
        self.u16(length)
        self.u16(length)
        self.referent(present)

    def counted_buffer(self, data: bytes, unit: int) -> None:
        """The deferred Buffer of a counted string: a conformant varying array of `unit`-byte elements."""
        count = len(data) // unit
        self.u32(count)
        self.u32(0)
        self.u32(count)
        self.raw(data)


class NdrReader:
    def __init__(self, data: bytes, base: int = 0) -> None:
        self._data = data
        self._pos = 0
        self._base = base

    @property
    def pos(self) -> int:
        return self._pos

    def _fail(self, what: str) -> MalformedMessage:
        return MalformedMessage(f"NDR: {what}", offset=self._base + self._pos)

    def align(self, n: int) -> None:
        self._pos += -self._pos % n

    def take(self, n: int) -> bytes:
        if n < 0 or self._pos + n > len(self._data):
            raise self._fail(f"{n} bytes past the end of the stub ({len(self._data)} bytes)")
        out = self._data[self._pos:self._pos + n]
        self._pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        self.align(2)
        return int(_U16.unpack(self.take(2))[0])

    def u32(self) -> int:
        self.align(4)
        return int(_U32.unpack(self.take(4))[0])

    def u64_pair(self) -> int:
        """An OLD_LARGE_INTEGER (MS-NRPC 2.2.1.1.1): LowPart, HighPart, 4-byte aligned."""
        self.align(4)
        return int(_U64.unpack(self.take(8))[0])

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(bytes_le=self.take(16))

    def count(self, limit: int) -> int:
        value = self.u32()
        if value > limit:
            raise self._fail(f"count {value} over the limit {limit}")
        return value

    def varying_header(self, max_count: int) -> int:
        """C706 14.3.3.3: offset and actual count of a varying array; returns the actual count."""
        offset = self.u32()
        actual = self.u32()
        if offset != 0 or actual > max_count:
            raise self._fail(f"varying array offset {offset} count {actual} of {max_count}")
        return actual

    def conformant_varying_string(self) -> str:
        max_count = self.count(0x10000)
        actual = self.varying_header(max_count)
        text = self.take(2 * actual).decode("utf-16-le", errors="replace")
        return text[:-1] if text.endswith("\x00") else text

    def counted_header(self) -> tuple[int, int, bool]:
        length = self.u16()
        maximum = self.u16()
        present = self.u32() != 0
        if length > maximum:
            raise self._fail(f"counted string Length {length} over MaximumLength {maximum}")
        return length, maximum, present

    def counted_buffer(self, header: tuple[int, int, bool], unit: int) -> bytes:
        length, maximum, present = header
        if not present:
            return b""
        max_count = self.count(0x10000)
        if max_count * unit < maximum:
            raise self._fail(f"counted string conformance {max_count} under MaximumLength {maximum}")
        actual = self.varying_header(max_count)
        if actual * unit != length:
            raise self._fail(f"counted string holds {actual} units, Length says {length} bytes")
        return self.take(actual * unit)

    def counted_string(self, header: tuple[int, int, bool]) -> str:
        return self.counted_buffer(header, 2).decode("utf-16-le", errors="replace")

    def sid(self) -> str:
        """An RPC_SID (MS-DTYP 2.4.2.3): the conformance first, then the structure; rendered S-1-..."""
        count = self.count(15)
        revision = self.u8()
        sub_count = self.u8()
        if sub_count != count or revision != 1:
            raise self._fail(f"SID revision {revision} with {sub_count} sub-authorities, conformance {count}")
        authority = int.from_bytes(self.take(6), "big")
        subs = [self.u32() for _ in range(sub_count)]
        return "-".join(["S-1", str(authority), *map(str, subs)])

    def done(self) -> None:
        if self._pos != len(self._data):
            raise self._fail(f"{len(self._data) - self._pos} bytes after the last field")
