"""Whether a request may still be awarded (issue 21 item 3): ``awarded`` means « awarded, possibly in
part ». A request whose split is allowed stays awardable after an award that left units over, as long
as a quote still open and unexpired can take them. One pure rule, read by the award service, the
closing of a request and the buyer's request page."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from broker.domain.lifecycle import OrderStatus, QuoteStatus, RequestStatus


class _Units(Protocol):
    """An order as this rule reads it."""

    @property
    def status(self) -> str: ...

    @property
    def quantity(self) -> int: ...


class _Open(Protocol):
    """A quote as this rule reads it."""

    @property
    def status(self) -> str: ...

    @property
    def valid_until(self) -> datetime: ...


def remaining_units(quantity: int, orders: Iterable[_Units]) -> int:
    """The units of a request of ``quantity`` not covered by its orders that are not cancelled (a
    cancelled order's units may be awarded again)."""
    return max(quantity - sum(o.quantity for o in orders if o.status != OrderStatus.CANCELLED), 0)


def awardable(
    *, status: str, allow_split: bool, quantity: int, orders: Iterable[_Units], quotes: Iterable[_Open],
    now: datetime,
) -> bool:
    """``quoting``; or ``awarded`` with splits allowed, units left to award and at least one quote
    still ``submitted`` and valid (``valid_until`` after ``now``)."""
    if status == RequestStatus.QUOTING:
        return True
    if status != RequestStatus.AWARDED or not allow_split or remaining_units(quantity, orders) == 0:
        return False
    return any(q.status == QuoteStatus.SUBMITTED and q.valid_until > now for q in quotes)
