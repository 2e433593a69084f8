"""A BER tree just deep enough to re-encode a SPNEGO token with a node's length in another legal form.

`parse(der)` reads the DER our encoder writes into `Node`s (constructed tags are descended into, primitive
ones kept as bytes); `encode(node)` writes it back, each node's length in its own `form`: DER, the long form
with N length bytes (X.690 8.1.3.5, non-minimal), or indefinite (X.690 8.1.3.6, constructed only).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["DER", "INDEFINITE", "Node", "encode", "long_form", "nodes", "parse"]

DER = 0
INDEFINITE = -1


def long_form(length_bytes: int) -> int:
    """The form of a length written in the long form with `length_bytes` bytes (X.690 8.1.3.5), or as many
    as the length needs when that is more."""
    return length_bytes


@dataclass
class Node:
    """One TLV: `tag` (the identifier octet), `children` when constructed, else `value`."""

    tag: int
    value: bytes = b""
    children: list[Node] | None = None
    form: int = DER
    trailing: bytes = field(default=b"", repr=False)

    @property
    def constructed(self) -> bool:
        return self.children is not None


def _read_length(data: bytes, pos: int) -> tuple[int, int]:
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count == 0 or pos + 1 + count > len(data):
        raise ValueError(f"not DER: length octet 0x{first:02x} at {pos}")
    return int.from_bytes(data[pos + 1 : pos + 1 + count], "big"), pos + 1 + count


def _parse_at(data: bytes, pos: int, end: int) -> tuple[Node, int]:
    if pos + 2 > end:
        raise ValueError(f"not DER: TLV truncated at {pos}")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise ValueError(f"high tag numbers are not used by SPNEGO (at {pos})")
    length, start = _read_length(data, pos + 1)
    stop = start + length
    if stop > end:
        raise ValueError(f"not DER: content of the TLV at {pos} runs past its parent")
    if tag & 0x20:
        children = []
        inner = start
        while inner < stop:
            child, inner = _parse_at(data, inner, stop)
            children.append(child)
        return Node(tag, children=children), stop
    return Node(tag, value=bytes(data[start:stop])), stop


def parse(data: bytes) -> Node:
    node, stop = _parse_at(data, 0, len(data))
    if stop != len(data):
        raise ValueError(f"{len(data) - stop} bytes after the token")
    return node


def _length(n: int, form: int) -> bytes:
    if form == DER:
        if n < 0x80:
            return bytes((n,))
        body = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return bytes((0x80 | len(body),)) + body
    if form == INDEFINITE:
        return b"\x80"
    size = max(form, (n.bit_length() + 7) // 8)
    return bytes((0x80 | size,)) + n.to_bytes(size, "big")


def encode(node: Node) -> bytes:
    content = node.value if node.children is None else b"".join(encode(c) for c in node.children)
    content += node.trailing
    if node.form == INDEFINITE:
        if node.children is None:
            raise ValueError("X.690 8.1.3.2: a primitive encoding has a definite length")
        return bytes((node.tag,)) + b"\x80" + content + b"\x00\x00"
    return bytes((node.tag,)) + _length(len(content), node.form) + content


def nodes(root: Node) -> Iterator[Node]:
    """Every node in pre-order (the index a mutation names a node by)."""
    yield root
    for child in root.children or ():
        yield from nodes(child)
