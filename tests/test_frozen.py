"""smb2auth/_frozen.py: quick_init keeps what the dataclass's own __init__ does (signature, defaults,
__post_init__, frozen fields, eq, replace), and refuses what it cannot keep."""

from __future__ import annotations

import dataclasses

import pytest

from smb2auth._frozen import quick_init
from smb2auth.ntlm.messages import AuthenticateMessage, Version


@quick_init
@dataclasses.dataclass(frozen=True)
class _Point:
    x: int
    y: int = 2
    label: str = dataclasses.field(default="p", repr=False)
    z: int = dataclasses.field(default=0, kw_only=True)

    def __post_init__(self) -> None:
        if self.x < 0:
            raise ValueError("x must be non-negative")


def test_same_values_defaults_and_keywords_as_the_generated_init() -> None:
    p = _Point(1)
    assert (p.x, p.y, p.label, p.z) == (1, 2, "p", 0)
    assert _Point(1, 3, "q", z=4) == _Point(x=1, y=3, label="q", z=4)
    assert repr(_Point(1)) == "_Point(x=1, y=2, z=0)"
    with pytest.raises(TypeError):
        _Point(1, 2, "p", 4)  # type: ignore[misc]  # z is keyword-only


def test_post_init_runs_and_fields_stay_frozen() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        _Point(-1)
    p = _Point(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 2  # type: ignore[misc]
    assert dataclasses.replace(p, y=5) == _Point(1, 5)
    assert hash(p) == hash(_Point(1))


def test_a_message_keeps_its_checks() -> None:
    with pytest.raises(ValueError, match="MIC"):
        AuthenticateMessage(0, mic=b"\x00" * 16)
    message = AuthenticateMessage(0, version=Version(), mic=b"\x01" * 16)
    assert AuthenticateMessage.unpack(message.pack()) == message


def test_refuses_what_it_cannot_keep() -> None:
    @dataclasses.dataclass
    class Mutable:
        x: int

    @dataclasses.dataclass(frozen=True)
    class Factory:
        x: list[int] = dataclasses.field(default_factory=list)

    @dataclasses.dataclass(frozen=True)
    class WithInitVar:
        x: int
        scale: dataclasses.InitVar[int] = 1

    for cls in (Mutable, Factory, WithInitVar):
        with pytest.raises(TypeError):
            quick_init(cls)
