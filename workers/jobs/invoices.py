"""Invoices in the worker: deposit those the makers submitted on Chorus Pro, follow their statuses,
and flag those paid late (`broker.services.invoices`)."""

from __future__ import annotations

from datetime import UTC, datetime

from broker.services.invoices import check_statuses, deposit_submitted, flag_overdue
from workers.context import WorkerContext


async def chorus_invoices(ctx: WorkerContext) -> int:
    """One round: every submitted invoice deposited, every followed one asked its status when due."""
    settings = ctx["settings"].chorus
    now = datetime.now(UTC)
    deposited = await deposit_submitted(ctx["db"], chorus=ctx["chorus"], geocoder=ctx["geocoder"],
                                        syntax=settings.syntax, now=now)
    moved = await check_statuses(ctx["db"], chorus=ctx["chorus"], now=now, poll_s=settings.poll_s)
    return deposited + moved


async def watch_payments(ctx: WorkerContext) -> int:
    async with ctx["db"].writer() as session:
        flagged = await flag_overdue(session, now=datetime.now(UTC))
        await session.commit()
    return flagged
