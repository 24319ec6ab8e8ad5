"""The one way a status is written: a compare-and-set UPDATE that asks the lifecycle's transition
table first (``broker.domain``), so no write can make a move the table does not allow.

``compare_and_set`` moves one row and answers True ("changed") or False ("lost the race": the row
is no longer in an expected status, or fails an extra condition); ``move_all`` is the same for the
sweeps that move many rows at once (quotes past their validity, the quotes an award did not take,
the retries of a disabled endpoint). ``lock`` takes a row without changing it, for the writers
that must queue behind a status change of another row (a quote's writers behind its request)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from enum import StrEnum
from typing import Any, Generic, TypeVar

import msgspec
from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from broker.db.base import Base, table_of
from broker.db.models import (
    CommitmentRow,
    CrisisCallRow,
    InvitationRow,
    InvoiceRow,
    OrderRow,
    QuoteRow,
    RequestRow,
    WebhookDeliveryRow,
    WebhookEndpointRow,
)
from broker.domain.crisis import CALL, COMMITMENT
from broker.domain.invoicing import INVOICE
from broker.domain.lifecycle import (
    DELIVERY,
    ENDPOINT,
    INVITATION,
    ORDER,
    QUOTE,
    REQUEST,
    Lifecycle,
    check,
)

S = TypeVar("S", bound=StrEnum)


class Stored(msgspec.Struct, Generic[S], frozen=True):
    """Where a lifecycle's status is kept: the row class (an ``id`` primary key) and its column."""

    lifecycle: Lifecycle[S]
    row: type[Base]
    column: str = "status"


REQUESTS = Stored(REQUEST, RequestRow)
INVITATIONS = Stored(INVITATION, InvitationRow)
QUOTES = Stored(QUOTE, QuoteRow)
ORDERS = Stored(ORDER, OrderRow)
CALLS = Stored(CALL, CrisisCallRow)
COMMITMENTS = Stored(COMMITMENT, CommitmentRow)
ENDPOINTS = Stored(ENDPOINT, WebhookEndpointRow)
DELIVERIES = Stored(DELIVERY, WebhookDeliveryRow, column="state")
INVOICES = Stored(INVOICE, InvoiceRow)


def _froms(stored: Stored[S], expected: S | Collection[S], to: S) -> list[S]:
    """The expected statuses, each checked against the table (InvalidTransition otherwise)."""
    froms: list[S] = [expected] if isinstance(expected, StrEnum) else sorted(expected)
    if not froms:
        raise ValueError("no expected status")
    for current in froms:
        check(stored.lifecycle, current, to)
    return froms


async def move_all(
    session: AsyncSession,
    stored: Stored[S],
    *,
    where: Sequence[ColumnElement[bool]],
    expected: S | Collection[S],
    to: S,
    values: Mapping[str, Any] | None = None,
) -> int:
    """``expected → to`` (a move the table allows) of every row matching ``where`` that is still
    in an ``expected`` status, with ``values``, in one UPDATE. Returns how many rows moved."""
    froms = _froms(stored, expected, to)
    column = table_of(stored.row).c[stored.column]
    statement = (
        update(stored.row)
        .where(column.in_(froms), *where)
        .values({stored.column: to, **(values or {})})
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(statement)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def compare_and_set(
    session: AsyncSession,
    stored: Stored[S],
    row_id: str,
    *,
    expected: S | Collection[S],
    to: S,
    values: Mapping[str, Any] | None = None,
    where: Sequence[ColumnElement[bool]] = (),
    loaded: Base | None = None,
) -> bool:
    """``UPDATE … SET status = :to, values WHERE id = :row_id AND status IN (:expected) AND where``.
    True: changed; False: lost the race. InvalidTransition if the table allows no ``expected → to``
    (the caller's check should have said so first). ``loaded``: the row's ORM object in this
    session, given the new values without another query."""
    table = table_of(stored.row)
    moved = await move_all(session, stored, where=[table.c.id == row_id, *where], expected=expected, to=to,
                           values=values) == 1
    if moved and loaded is not None:
        for key, value in {stored.column: to, **(values or {})}.items():
            set_committed_value(loaded, key, value)
    return moved


async def lock(session: AsyncSession, stored: Stored[S], row_id: str) -> S | None:
    """The row's status, the row locked until the transaction ends (``FOR UPDATE`` on PostgreSQL;
    SQLite's write transaction already holds the whole database). None: no such row."""
    table = table_of(stored.row)
    column = table.c[stored.column]
    found = (await session.execute(select(column).where(table.c.id == row_id).with_for_update())).scalar_one_or_none()
    if found is None:
        return None
    enum = type(next(iter(stored.lifecycle.table)))  # the table has a row for every status
    return enum(found)
