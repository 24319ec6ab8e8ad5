"""The lists people work with (a buyer's requests, either side's orders): searched, filtered and
sorted in the query, paged by a keyset on the sort key and the id.

The API's own pages stay oldest first on ``(created_at, id)`` (``RequestRepository.page``,
``OrderRepository.page``); these queries serve the web lists and their CSV export."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import msgspec
from sqlalchemy import Float, and_, case, cast, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.models import OrderRow, RequestRow, WorkshopRow
from broker.domain.fabrication import Order, Request
from broker.domain.lifecycle import OrderStatus, RequestStatus
from broker.domain.listing import ListedOrder, ListedRequest, ListQuery, Position


def _rank(column: Any, statuses: type[StrEnum]) -> Any:
    """A status's place in its lifecycle (the enum's order), so that sorting by status follows it."""
    return case({s.value: i for i, s in enumerate(statuses)}, value=column, else_=len(statuses))


REQUEST_SORTS: Mapping[str, tuple[Any, type[Any]]] = {
    "created": (RequestRow.created_at, datetime),
    "deadline": (RequestRow.deadline, datetime),
    "name": (func.lower(RequestRow.name), str),
    "quantity": (RequestRow.quantity, int),
    "status": (_rank(RequestRow.status, RequestStatus), int),
}
ORDER_SORTS: Mapping[str, tuple[Any, type[Any]]] = {
    "created": (OrderRow.created_at, datetime),
    "deadline": (RequestRow.deadline, datetime),
    "name": (func.lower(RequestRow.name), str),
    "number": (OrderRow.number, str),
    "workshop": (func.lower(WorkshopRow.name), str),
    "quantity": (OrderRow.quantity, int),
    # TTC before rounding, as a float: exact enough to order, and no integer overflow.
    "total": (cast(OrderRow.unit_price_cents, Float) * OrderRow.quantity * (10_000 + OrderRow.vat_rate_bp), float),
    "delivery": (OrderRow.delivery_date, date),
    "status": (_rank(OrderRow.status, OrderStatus), int),
}


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _keyset(key: Any, kind: type[Any], id_column: Any, after: Position | None, descending: bool) -> Any:
    """Rows after ``after`` in the order (key, id), ascending or descending. The position's value
    comes back from a cursor as JSON: it is read again as the key's type (a forged one cannot be
    made: cursors are signed)."""
    if after is None:
        return True
    value = msgspec.convert(after[0], kind, strict=False)
    if descending:
        return or_(key < value, and_(key == value, id_column < after[1]))
    return or_(key > value, and_(key == value, id_column > after[1]))


def _filters(query: ListQuery, *, name: Any, number_match: Any, created: Any) -> list[Any]:
    where: list[Any] = []
    if query.text:
        pattern = _like(query.text)
        found = [name.ilike(pattern, escape="\\"), number_match(pattern)]
        if query.text_communes:
            found.append(RequestRow.delivery_insee.in_(query.text_communes))
        where.append(or_(*found))
    if query.commune is not None:
        where.append(RequestRow.delivery_insee == query.commune)
    dated = created if query.dated == "created" else RequestRow.deadline
    if query.since is not None:
        where.append(dated >= query.since)
    if query.until is not None:
        where.append(dated < query.until)
    return where


def _sort(sorts: Mapping[str, tuple[Any, type[Any]]], query: ListQuery) -> tuple[Any, type[Any]]:
    if query.sort not in sorts:
        raise ValueError(f"unknown sort {query.sort!r}")
    return sorts[query.sort]


def _value(value: Any) -> Any:
    """A sort value as a cursor carries it (JSON)."""
    return value.isoformat() if isinstance(value, (date, datetime)) else value


async def requests_page(
    session: AsyncSession, *, scope_org_id: str | None, query: ListQuery, after: Position | None, limit: int
) -> list[ListedRequest]:
    """One page of requests (of ``scope_org_id``, every organisation's when None)."""
    key, kind = _sort(REQUEST_SORTS, query)

    def number_match(pattern: str) -> Any:
        return exists().where(OrderRow.request_id == RequestRow.id, OrderRow.number.ilike(pattern, escape="\\"))

    where = _filters(query, name=RequestRow.name, number_match=number_match, created=RequestRow.created_at)
    if scope_org_id is not None:
        where.append(RequestRow.org_id == scope_org_id)
    if query.status is not None:
        where.append(RequestRow.status == query.status)
    where.append(_keyset(key, kind, RequestRow.id, after, query.descending))
    direction = (key.desc(), RequestRow.id.desc()) if query.descending else (key.asc(), RequestRow.id.asc())
    statement = select(RequestRow, key.label("sort_key")).where(*where).order_by(*direction).limit(limit)
    return [ListedRequest(msgspec.convert(row, Request, from_attributes=True), (_value(value), row.id))
            for row, value in (await session.execute(statement)).all()]


async def orders_page(
    session: AsyncSession,
    *,
    buyer_org_id: str | None,
    maker_org_id: str | None,
    query: ListQuery,
    after: Position | None,
    limit: int,
) -> list[ListedOrder]:
    """One page of orders (of the buyer or the maker organisation; every one's when both are None)."""
    key, kind = _sort(ORDER_SORTS, query)

    def number_match(pattern: str) -> Any:
        return OrderRow.number.ilike(pattern, escape="\\")

    where = _filters(query, name=RequestRow.name, number_match=number_match, created=OrderRow.created_at)
    if buyer_org_id is not None:
        where.append(OrderRow.buyer_org_id == buyer_org_id)
    if maker_org_id is not None:
        where.append(OrderRow.maker_org_id == maker_org_id)
    if query.status is not None:
        where.append(OrderRow.status == query.status)
    where.append(_keyset(key, kind, OrderRow.id, after, query.descending))
    direction = (key.desc(), OrderRow.id.desc()) if query.descending else (key.asc(), OrderRow.id.asc())
    statement = (
        select(OrderRow, RequestRow.name, RequestRow.delivery_insee, RequestRow.deadline, WorkshopRow.name,
               key.label("sort_key"))
        .join(RequestRow, RequestRow.id == OrderRow.request_id)
        .join(WorkshopRow, WorkshopRow.id == OrderRow.workshop_id)
        .where(*where)
        .order_by(*direction)
        .limit(limit)
    )
    return [
        ListedOrder(msgspec.convert(row, Order, from_attributes=True), name, insee, deadline, workshop,
                    (_value(value), row.id))
        for row, name, insee, deadline, workshop, value in (await session.execute(statement)).all()
    ]
