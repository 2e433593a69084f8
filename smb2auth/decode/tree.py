"""The annotated tree the decoder builds (`Node`), its one error (`DecodeError`), and how a field's value is
written in it."""

from __future__ import annotations

import datetime
import enum
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from smb2auth.errors import MalformedMessage
from smb2auth.events import flag_names


@dataclass
class Node:
    """One line of the annotated tree: a field name, its value as text, a note, and where it starts."""

    name: str
    value: str | None = None
    note: str | None = None
    offset: int | None = None
    children: list[Node] = field(default_factory=list)

    def add(
        self, name: str, value: str | None = None, note: str | None = None, offset: int | None = None
    ) -> Node:
        child = Node(name, value, note, offset)
        self.children.append(child)
        return child

    def find(self, name: str) -> Node | None:
        """The first node named `name` in this subtree (depth first), or None."""
        for node in self.walk():
            if node.name == name:
                return node
        return None

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.value is not None:
            out["value"] = self.value
        if self.note is not None:
            out["note"] = self.note
        if self.offset is not None:
            out["offset"] = self.offset
        out["children"] = [c.to_dict() for c in self.children]
        return out


class DecodeError(MalformedMessage):
    """Input that does not decode: `what` names the structure ("NTLMSSP AUTHENTICATE"), `offset` the byte,
    counted from the start of the decoded bytes."""

    def __init__(self, what: str, reason: str, offset: int | None = None) -> None:
        super().__init__(reason, offset=offset)
        self.what = what

    def __str__(self) -> str:
        where = f" at offset {self.offset}" if self.offset is not None else ""
        return f"malformed {self.what}{where}: {self.reason}"

    @classmethod
    def from_codec(cls, what: str, exc: MalformedMessage, base: int) -> DecodeError:
        """A codec's error about bytes that start at `base`; one without an offset points at their start."""
        return cls(what, exc.reason, base + (exc.offset or 0))


def hexed(data: bytes) -> str:
    return data.hex()


def flag_list(flags_type: type[enum.IntFlag], value: int) -> list[str]:
    """Names of the single-bit members set in `value`, then any unknown bits as hex."""
    names = list(flag_names(flags_type, value))
    known = 0
    for name in names:
        known |= int(flags_type[name])
    rest = value & ~known
    if rest:
        names.append(f"0x{rest:x} (unknown bits)")
    return names


def add_flags(
    parent: Node, name: str, value: int, flags_type: type[enum.IntFlag], width: int, offset: int | None
) -> Node:
    """A flags field: its value in hex, one child per flag set, "none set" when none is."""
    names = flag_list(flags_type, value)
    node = parent.add(name, f"0x{value:0{width * 2}x}", None if names else "none set", offset)
    for flag in names:
        node.add(flag)
    return node


def enum_name(enum_type: type[enum.IntEnum], value: int) -> str:
    try:
        return enum_type(value).name
    except ValueError:
        return "unknown"


def filetime(value: int) -> str:
    """A FILETIME (100 ns since 1601-01-01 UTC, MS-DTYP 2.3.3) as a UTC date."""
    if value == 0:
        return "0 (not set)"
    try:
        when = datetime.datetime(1601, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(
            microseconds=value // 10
        )
    except OverflowError:
        return f"0x{value:016x} (out of range)"
    return when.strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def guid(data: bytes) -> str:
    """MS-DTYP 2.3.4.2: a GUID in its registry form."""
    if len(data) != 16:
        return hexed(data)
    a, b, c = struct.unpack_from("<IHH", data)
    return f"{a:08x}-{b:04x}-{c:04x}-{data[8:10].hex()}-{data[10:].hex()}"


def without_offsets(node: Node) -> Node:
    """`node`'s subtree with its offsets dropped, for a part of the input whose place is not known."""
    for n in node.walk():
        n.offset = None
    return node
