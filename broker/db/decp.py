"""Queries of the DECP records (issue 17): one row per award at or above the publication threshold."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import msgspec
from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.models import DecpRecordRow, OrganizationRow
from broker.domain.decp import DecpRecord, Marche


def _record(row: DecpRecordRow) -> DecpRecord:
    return DecpRecord(
        id=row.id, org_id=row.org_id, request_id=row.request_id, year=row.year, amount_cents=row.amount_cents,
        notified_on=row.notified_on, due_on=row.due_on, published_at=row.published_at,
        marche=msgspec.convert(row.marche, Marche), created_at=row.created_at,
    )


def _after(after: tuple[datetime, str] | None) -> list[ColumnElement[bool]]:
    if after is None:
        return []
    at, last_id = after
    return [or_(DecpRecordRow.created_at > at, and_(DecpRecordRow.created_at == at, DecpRecordRow.id > last_id))]


class DecpRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, record: DecpRecord, *, now: datetime) -> None:
        self.session.add(DecpRecordRow(
            id=record.id, org_id=record.org_id, request_id=record.request_id, year=record.year,
            amount_cents=record.amount_cents, notified_on=record.notified_on, due_on=record.due_on,
            published_at=None, marche=msgspec.to_builtins(record.marche), created_at=now, updated_at=now,
        ))

    async def get(self, record_id: str, *, scope_org_id: str | None) -> DecpRecord | None:
        """``scope_org_id=None`` only for callers whose role sees every tenant (admin)."""
        query = select(DecpRecordRow).where(DecpRecordRow.id == record_id)
        if scope_org_id is not None:
            query = query.where(DecpRecordRow.org_id == scope_org_id)
        row = (await self.session.execute(query)).scalar_one_or_none()
        return None if row is None else _record(row)

    async def of_year(
        self, year: int, *, scope_org_id: str | None, after: tuple[datetime, str] | None, limit: int
    ) -> list[DecpRecord]:
        """The records notified in ``year``, oldest first (``ix_decp_record_org_year``)."""
        query = select(DecpRecordRow).where(DecpRecordRow.year == year, *_after(after))
        if scope_org_id is not None:
            query = query.where(DecpRecordRow.org_id == scope_org_id)
        query = query.order_by(DecpRecordRow.created_at, DecpRecordRow.id).limit(limit)
        return [_record(r) for r in (await self.session.execute(query)).scalars()]

    async def overdue(
        self, today: date, *, scope_org_id: str | None, after: tuple[datetime, str] | None, limit: int
    ) -> list[DecpRecord]:
        """The records not published whose ``due_on`` is before ``today``, oldest first
        (``ix_decp_record_due``, partial on ``published_at IS NULL``)."""
        query = select(DecpRecordRow).where(
            DecpRecordRow.published_at.is_(None), DecpRecordRow.due_on < today, *_after(after))
        if scope_org_id is not None:
            query = query.where(DecpRecordRow.org_id == scope_org_id)
        query = query.order_by(DecpRecordRow.created_at, DecpRecordRow.id).limit(limit)
        return [_record(r) for r in (await self.session.execute(query)).scalars()]

    async def mark_published(self, record_id: str, *, marche: Marche, at: datetime) -> bool:
        """Compare-and-set: False when the record was published meanwhile."""
        result = await self.session.execute(
            update(DecpRecordRow)
            .where(DecpRecordRow.id == record_id, DecpRecordRow.published_at.is_(None))
            .values(published_at=at, marche=msgspec.to_builtins(marche), updated_at=at)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def sirets(self, org_ids: Sequence[str]) -> dict[str, str]:
        """The SIRET of each organisation of ``org_ids``."""
        if not org_ids:
            return {}
        query = select(OrganizationRow.id, OrganizationRow.siret).where(OrganizationRow.id.in_(sorted(set(org_ids))))
        return {str(org_id): str(siret) for org_id, siret in (await self.session.execute(query)).all()}
