"""Queries of a maker's own things that the matching never reads this way: one machine or one declared
capacity of its workshop (to edit or remove it), and its quotes newest first with their requests.

Every query is scoped by the workshop in its WHERE clause: another workshop's machine is simply not
found (the caller answers 404, never 403)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.models import InvitationRow, MachineRow, QuoteRow, RequestRow, WorkshopCapacityRow

Keyset = tuple[datetime, str]


class MachineRepository:
    """A workshop's machines and declared capacities, one at a time."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def row(self, machine_id: str, *, workshop_id: str) -> MachineRow | None:
        query = select(MachineRow).where(MachineRow.id == machine_id, MachineRow.workshop_id == workshop_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def remove(self, row: MachineRow) -> None:
        await self.session.delete(row)
        await self.session.flush()

    async def remove_capacity(self, *, workshop_id: str, item_slug: str) -> bool:
        """Drop the declared capacity; False when there was none (nothing to remove)."""
        statement = (
            delete(WorkshopCapacityRow)
            .where(WorkshopCapacityRow.workshop_id == workshop_id, WorkshopCapacityRow.item_slug == item_slug)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(statement)
        return int(result.rowcount or 0) > 0  # type: ignore[attr-defined]


class MakerQuoteRepository:
    """A workshop's quotes, with the request each answers and the invitation it came through."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def newest_first(
        self, workshop_id: str, *, before: Keyset | None, limit: int
    ) -> list[tuple[QuoteRow, RequestRow, str]]:
        """A page of the workshop's quotes, newest first (``before``: the last row of the page before).
        Every quote answers an invitation of its workshop (a consultation's answer creates one)."""
        query = (
            select(QuoteRow, RequestRow, InvitationRow.id)
            .join(RequestRow, RequestRow.id == QuoteRow.request_id)
            .join(InvitationRow, and_(InvitationRow.request_id == QuoteRow.request_id,
                                      InvitationRow.workshop_id == QuoteRow.workshop_id))
            .where(QuoteRow.workshop_id == workshop_id)
            .order_by(QuoteRow.created_at.desc(), QuoteRow.id.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where((QuoteRow.created_at < before[0])
                                | ((QuoteRow.created_at == before[0]) & (QuoteRow.id < before[1])))
        return [(q, r, i) for q, r, i in (await self.session.execute(query)).all()]
