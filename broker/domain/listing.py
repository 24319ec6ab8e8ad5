"""What a web list asks for and gets back (a buyer's requests, either side's orders): the search,
filters and sort of `ListQuery`, and each row with its keyset position (`broker.db.lists` runs it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, NamedTuple

import msgspec

from broker.domain.fabrication import Order, Request

#: Where a page ends: the last row's sort value and id (`ListQuery.sort` says what the value is).
Position = tuple[Any, str]


class ListQuery(msgspec.Struct, frozen=True, kw_only=True):
    """What a list shows: rows whose object name or order number contains ``text`` (or delivered in
    one of ``text_communes``, the communes whose name starts with it), in ``status``, created (or due,
    ``dated="deadline"``) in [since, until[, delivered in ``commune``; sorted by ``sort``."""

    text: str | None = None
    text_communes: tuple[str, ...] = ()
    status: str | None = None
    dated: Literal["created", "deadline"] = "created"
    since: datetime | None = None
    until: datetime | None = None
    commune: str | None = None
    sort: str = "created"
    descending: bool = True


class ListedRequest(NamedTuple):
    request: Request
    position: Position


class ListedOrder(NamedTuple):
    """An order with what its list shows of its request and workshop."""

    order: Order
    name: str  # the request's object
    delivery_insee: str
    deadline: datetime
    workshop_name: str
    position: Position
