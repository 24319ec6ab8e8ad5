"""Housekeeping use cases (cron jobs) and reading the audit log."""

from __future__ import annotations

from datetime import datetime

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.repositories import AuditRepository, IdempotencyRepository
from broker.domain.access import Principal
from broker.domain.audit import AuditEntry


async def purge_idempotency_records(session: AsyncSession, *, now: datetime) -> int:
    """Delete Idempotency-Key records past their 24 h (published) lifetime."""
    return await IdempotencyRepository(session).purge(now=now)


async def audit_page(
    session: AsyncSession, *, actor: Principal, after_id: int | None, limit: int
) -> list[AuditEntry]:
    """The audit log: every entry for admins, the caller's organisation's otherwise."""
    rows = await AuditRepository(session).page(
        scope_org_id=None if actor.is_admin else actor.org_id, after_id=after_id, limit=limit
    )
    return [msgspec.convert(row, AuditEntry, from_attributes=True) for row in rows]
