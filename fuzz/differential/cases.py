"""The mutation registry and the cases made from it.

Families, as issue 17 names them: `ntlm` (the AUTHENTICATE inside a real handshake, mutate_ntlm.py),
`spnego` (the wrappers of both client tokens, mutate_spnego.py), `smb2` (NEGOTIATE and SESSION_SETUP
headers, bodies and their Direct TCP framing, mutate_smb2.py). Each mutation is a generator (a seeded Random
-> an Edit) and an apply registered under the edit's kind. A case is one edit, or (havoc) two or three edits
from any family. Everything random is drawn when the case is made, so a case is the same exchange for both
peers.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fuzz.differential.script import REGISTRY, Edit

__all__ = ["FAMILIES", "Case", "applies", "generator", "junk", "make_case"]

Generator = Callable[[random.Random], Edit]
FAMILIES: dict[str, list[Generator]] = {"ntlm": [], "spnego": [], "smb2": []}
HAVOC_RATE = 0.15


def generator(family: str) -> Callable[[Generator], Generator]:
    def register(fn: Generator) -> Generator:
        FAMILIES[family].append(fn)
        return fn

    return register


def applies(kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        REGISTRY[kind] = fn
        return fn

    return register


def junk(rng: random.Random, n: int) -> bytes:
    return bytes(rng.randrange(256) for _ in range(n))


@dataclass(frozen=True)
class Case:
    index: int
    family: str
    edits: tuple[Edit, ...]

    @property
    def name(self) -> str:
        return " + ".join(f"{e.kind}[{e.label}]" for e in self.edits)


def _load() -> None:
    from fuzz.differential import mutate_ntlm, mutate_smb2, mutate_spnego  # noqa: F401  (they register)


def make_case(seed: int, index: int) -> Case:
    """Case `index` of the run with `seed`: the same case on every machine and every run."""
    _load()
    rng = random.Random(f"differential:{seed}:{index}")
    if rng.random() < HAVOC_RATE:
        count = rng.choice((2, 3))
        edits = tuple(rng.choice(FAMILIES[rng.choice(sorted(FAMILIES))])(rng) for _ in range(count))
        return Case(index, "havoc", edits)
    family = rng.choice(sorted(FAMILIES))
    return Case(index, family, (rng.choice(FAMILIES[family])(rng),))
