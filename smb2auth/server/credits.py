"""A connection's credits: the CommandSequenceWindow (MS-SMB2 3.3.1.1) and what each response grants
(3.3.1.2 leaves the amount to the server; we grant as smbd does, source3/smbd/smb2_server.c
smb2_set_operation_credit, so a client sees the same window on both)."""

from __future__ import annotations

from smb2auth.server._reply import Disconnect
from smb2auth.smb2.header import Command
from smb2auth.status import NtStatus

__all__ = ["CreditWindow"]


class CreditWindow:
    """The message ids a client may use, [low, high) minus those already used; it starts as {0}.

    `multi_credit` is Connection.SupportsMultiCredit (MS-SMB2 3.3.5.4: a dialect above 2.0.2): without it a
    request's CreditCharge counts as one."""

    def __init__(self, max_credits: int) -> None:
        self.max_credits = max_credits
        self.multi_credit = False
        self._low = 0
        self._high = 1
        self._used: set[int] = set()

    @property
    def held(self) -> int:
        """Credits the client holds: message ids granted and not yet used."""
        return self._high - self._low - len(self._used)

    def restart_after_smb1(self) -> None:
        # MS-SMB2 3.3.5.3.1: the SMB1 NEGOTIATE used MessageId 0; the SMB2 one that follows uses 1.
        self._low, self._high, self._used = 1, 2, set()

    def charge(self, credit_charge: int) -> int:
        """MS-SMB2 3.3.5.2.3: the credits a request costs."""
        return max(1, credit_charge) if self.multi_credit else 1

    def consume(self, message_id: int, credit_charge: int) -> None:
        count = self.charge(credit_charge)
        if message_id < self._low or message_id + count > self._high:
            # MS-SMB2 3.3.5.2.3: a MessageId outside the CommandSequenceWindow drops the connection.
            raise Disconnect(f"MessageId {message_id} (charge {count}) outside [{self._low}, {self._high})")
        ids = range(message_id, message_id + count)
        if any(i in self._used for i in ids):
            # MS-SMB2 3.3.5.2.3: a MessageId used twice drops the connection.
            raise Disconnect(f"MessageId {message_id} reused")
        self._used.update(ids)
        while self._low in self._used:
            self._used.remove(self._low)
            self._low += 1

    def grant(
        self, command: int, status: int, requested: int, credit_charge: int, *, async_request: bool = False
    ) -> int:
        """The CreditResponse of one response. smbd grants back the charge, and the CreditRequest beyond it
        except on a NEGOTIATE and on a SESSION_SETUP that is not the successful last one; never more than
        `max_credits` held, and at least one when the client would otherwise hold none. A request flagged
        ASYNC_COMMAND gets none: smbd answers it with that flag, and an async response grants nothing."""
        if async_request:
            return 0
        charge = self.charge(credit_charge)
        if charge > self.max_credits:
            # Samba smb2_set_operation_credit ("credit charge > max credits"): a charge above what the server
            # could ever grant drops the connection unanswered; it shows on a NEGOTIATE that just chose a
            # multi-credit dialect (MS-SMB2 3.3.5.4), every later request is bounded by the window.
            raise Disconnect(f"CreditCharge {charge} above the {self.max_credits} credits a client may hold")
        extra = max(1, requested) - 1
        if command == Command.NEGOTIATE or (
            command == Command.SESSION_SETUP and status != NtStatus.STATUS_SUCCESS
        ):
            extra = 0
        grant = min(charge + extra, max(0, self.max_credits - self.held))
        if self.held + grant == 0:
            grant = 1
        self._high += grant
        return grant

    def grant_exactly(self, credits: int) -> int:
        """A CreditResponse of `credits` whatever the rules above say (server/hostile.py only)."""
        self._high += credits
        return credits
