"""Housekeeping use cases run by cron jobs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.repositories import IdempotencyRepository


async def purge_idempotency_records(session: AsyncSession, *, now: datetime) -> int:
    """Delete Idempotency-Key records past their 24 h (published) lifetime."""
    return await IdempotencyRepository(session).purge(now=now)
