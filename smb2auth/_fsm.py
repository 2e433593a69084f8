"""The one shape every context's state machine has: a table of (state, event) -> state, events that lead to
a fixed state from anywhere (FAIL, CLOSE), and an error naming the state a message arrived in."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from smb2auth.errors import ProtocolStateError
from smb2auth.status import NtStatus

S = TypeVar("S", bound=enum.Enum)
E = TypeVar("E", bound=enum.Enum)


MACHINES: list[StateMachine[Any, Any]] = []


class StateMachine(Generic[S, E]):
    """`next(state, event)`: the state after `event`, or ProtocolStateError naming `who` and the state.
    Every machine is listed in `MACHINES`, so one test can walk each (state, event) pair of each table."""

    def __init__(
        self,
        who: str,
        table: Mapping[tuple[S, E], S],
        *,
        anywhere: Mapping[E, S] | None = None,
        status: NtStatus = NtStatus.STATUS_INVALID_PARAMETER,
    ) -> None:
        self.who = who
        self.table = table
        self.anywhere = dict(anywhere or {})
        self.status = status
        MACHINES.append(self)

    def next(self, state: S, event: E) -> S:
        target = self.anywhere.get(event)
        if target is not None:
            return target
        try:
            return self.table[(state, event)]
        except KeyError:
            message = f"{self.who} in state {state.value}: unexpected {event.value}"
            raise ProtocolStateError(message, status=self.status) from None
