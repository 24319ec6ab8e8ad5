"""Queries of the procurement rules (issue 17): a buyer's cumulative need for a CPV group in a year."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.models import OrderRow, RequestRow
from broker.domain.lifecycle import OrderStatus, RequestStatus


async def cumulative_cents(
    session: AsyncSession, *, org_id: str, cpv_group: str, start: datetime, end: datetime
) -> tuple[int, int]:
    """(awarded HT, open estimates HT) of ``org_id`` for ``cpv_group`` between ``start`` and ``end``:
    the orders it awarded (cancelled ones excepted) and the estimates of its requests still open or
    quoting."""
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
    awarded_cents = (await session.execute(awarded)).scalar_one()
    open_cents = (await session.execute(open_estimates)).scalar_one()
    return int(awarded_cents or 0), int(open_cents or 0)
