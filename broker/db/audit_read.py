"""Reading the audit log newest first (the web interface's journal page)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.models import AuditLogRow


class AuditReader:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def newest(self, *, scope_org_id: str | None, before_id: int | None, limit: int) -> list[AuditLogRow]:
        """Entries by descending id (the primary key: no extra index), older than ``before_id``."""
        query = select(AuditLogRow).order_by(AuditLogRow.id.desc()).limit(limit)
        if scope_org_id is not None:
            query = query.where(AuditLogRow.org_id == scope_org_id)
        if before_id is not None:
            query = query.where(AuditLogRow.id < before_id)
        return list((await self.session.execute(query)).scalars().all())
