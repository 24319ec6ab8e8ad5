"""Queries of the procurement rules (issue 17): a buyer's cumulative need for a CPV group in a year,
its recent awards in a CPV group (the rotation rule)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session

from broker.db.models import OrderRow, RequestRow
from broker.domain.award_rules import PastAward
from broker.domain.lifecycle import OrderStatus, RequestStatus


def _cumulative_query(*, org_id: str, cpv_group: str, start: datetime, end: datetime) -> Select[Any]:
    """One statement, two sums: the orders ``org_id`` awarded (cancelled ones excepted) and the
    estimates of its requests still open or quoting, for ``cpv_group`` between ``start`` and ``end``."""
    awarded = (
        select(func.coalesce(func.sum(OrderRow.unit_price_cents * OrderRow.quantity), 0))
        .join(RequestRow, RequestRow.id == OrderRow.request_id)
        .where(OrderRow.buyer_org_id == org_id, RequestRow.cpv_group == cpv_group,
               OrderRow.created_at >= start, OrderRow.created_at < end,
               OrderRow.status != OrderStatus.CANCELLED.value)
    )
    open_estimates = (
        select(func.coalesce(func.sum(RequestRow.estimated_cents), 0))
        .where(RequestRow.org_id == org_id, RequestRow.cpv_group == cpv_group,
               RequestRow.created_at >= start, RequestRow.created_at < end,
               RequestRow.status.in_([RequestStatus.OPEN.value, RequestStatus.QUOTING.value]))
    )
    return select(awarded.scalar_subquery(), open_estimates.scalar_subquery())


def _pair(row: Sequence[Any]) -> tuple[int, int]:
    return int(row[0] or 0), int(row[1] or 0)


async def cumulative_cents(
    connection: AsyncSession | AsyncConnection, *, org_id: str, cpv_group: str, start: datetime, end: datetime
) -> tuple[int, int]:
    """(awarded HT, open estimates HT) of ``org_id`` for ``cpv_group`` between ``start`` and ``end``."""
    query = _cumulative_query(org_id=org_id, cpv_group=cpv_group, start=start, end=end)
    return _pair((await connection.execute(query)).one())


def cumulative_cents_now(
    session: Session, *, org_id: str, cpv_group: str, start: datetime, end: datetime
) -> tuple[int, int]:
    """`cumulative_cents` in a sync session (`Database.read_now`, SQLite)."""
    query = _cumulative_query(org_id=org_id, cpv_group=cpv_group, start=start, end=end)
    return _pair(session.connection().execute(query).one())


async def recent_awards(
    session: AsyncSession, *, org_id: str, cpv_group: str, since: datetime, limit: int, exclude_request_id: str
) -> list[PastAward]:
    """The last ``limit`` awards of ``org_id`` in ``cpv_group`` made since ``since``, newest first
    (`broker.domain.award_rules`, rotation): each awarded request, dated by its first order, with the
    workshops of its orders. Cancelled orders count (the award was made); ``exclude_request_id``
    (the request being awarded) does not."""
    awarded_at = func.min(OrderRow.created_at).label("awarded_at")
    last = (
        select(OrderRow.request_id, awarded_at)
        .join(RequestRow, RequestRow.id == OrderRow.request_id)
        .where(OrderRow.buyer_org_id == org_id, RequestRow.org_id == org_id, RequestRow.cpv_group == cpv_group,
               OrderRow.created_at >= since, OrderRow.request_id != exclude_request_id)
        .group_by(OrderRow.request_id)
        .order_by(awarded_at.desc(), OrderRow.request_id.desc())
        .limit(limit)
    )
    dates: dict[str, datetime] = {str(r): at for r, at in (await session.execute(last)).all()}
    if not dates:
        return []
    winners: dict[str, set[str]] = {request_id: set() for request_id in dates}
    shops = select(OrderRow.request_id, OrderRow.workshop_id).where(OrderRow.request_id.in_(list(dates)))
    for request_id, workshop_id in (await session.execute(shops)).all():
        winners[str(request_id)].add(str(workshop_id))
    return [PastAward(request_id=r, awarded_at=_aware(dates[r]), workshop_ids=frozenset(winners[r]))
            for r in dates]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
