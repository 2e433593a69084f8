"""A decoded tree as text (one line per node: offset, indented name, value, note) or as JSON."""

from __future__ import annotations

import json

from smb2auth.decode.tree import Node


def render_text(node: Node, *, width: int = 160) -> str:
    """One line per node: the offset column, then the indented name, value and note."""
    out: list[str] = []

    def walk(n: Node, depth: int) -> None:
        off = "" if n.offset is None else str(n.offset)
        line = f"{off:>6}  {'  ' * depth}{n.name}"
        if n.value is not None:
            value = n.value if len(n.value) <= width else f"{n.value[:width]}... ({len(n.value)} chars)"
            line += f": {value}"
        if n.note:
            line += f"  ({n.note})"
        out.append(line)
        for c in n.children:
            walk(c, depth + 1)

    walk(node, 0)
    return "\n".join(out) + "\n"


def render_json(node: Node) -> str:
    """The tree as JSON: name, value, note, offset (each only when set), children."""
    return json.dumps(node.to_dict(), indent=2) + "\n"
