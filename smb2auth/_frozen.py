"""`quick_init`: a frozen dataclass's __init__ that stores the fields in one step.

`@dataclass(frozen=True)` generates an __init__ that stores each field through `object.__setattr__` (the
class's own __setattr__ refuses), some 1,300 CPU instructions a field on CPython 3.11: a handshake builds a
dozen messages, port objects and tokens of up to nine fields, and that was a tenth of its cost. The
__init__ this writes instead has the same signature, defaults and __post_init__ call, and sets the
instance dict with one `object.__setattr__`; everything else dataclasses generated (eq, repr, hash, the
frozen __setattr__, fields(), replace()) is the dataclass's own.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, TypeVar

T = TypeVar("T")


def quick_init(cls: type[T]) -> type[T]:
    """Replace the generated __init__ of a frozen dataclass (no slots, every field an init field with at
    most a plain default)."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__name__}: quick_init takes a frozen dataclass without slots")
    namespace: dict[str, Any] = {"_set": object.__setattr__}
    positional: list[str] = []
    keywords: list[str] = []
    items: list[str] = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not f.init or f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: quick_init takes init fields with plain defaults")
        param = f.name
        if f.default is not dataclasses.MISSING:
            namespace[f"_default_{f.name}"] = f.default
            param = f"{f.name}=_default_{f.name}"
        (keywords if f.kw_only else positional).append(param)
        items.append(f"{f.name!r}: {f.name}")
    generated = list(inspect.signature(cls.__init__).parameters)[1:]
    if generated != [p.partition("=")[0] for p in positional + keywords]:
        # An InitVar, say: a parameter that is not a field.
        raise TypeError(f"{cls.__name__}: quick_init takes an __init__ whose parameters are the fields")
    signature = ", ".join(["self", *positional, *(["*", *keywords] if keywords else [])])
    body = f"    _set(self, '__dict__', {{{', '.join(items)}}})\n"
    if hasattr(cls, "__post_init__"):
        body += "    self.__post_init__()\n"
    exec(f"def __init__({signature}) -> None:\n{body}", namespace)  # noqa: S102 -- as dataclasses does
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
