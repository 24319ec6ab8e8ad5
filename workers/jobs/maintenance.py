"""Cron jobs that keep the database tidy."""

from __future__ import annotations

from datetime import UTC, datetime

from broker.services.maintenance import purge_idempotency_records
from workers.context import WorkerContext


async def purge_idempotency(ctx: WorkerContext) -> int:
    async with ctx["db"].writer() as session:
        removed = await purge_idempotency_records(session, now=datetime.now(UTC))
        await session.commit()
    return removed
