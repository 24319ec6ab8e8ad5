"""Clocks of the request lifecycle: quote windows that close by themselves, the deadline watch."""

from __future__ import annotations

from datetime import UTC, datetime

from broker.services.orders import flag_late_orders
from broker.services.requests import close_quote_windows
from workers.context import WorkerContext


async def close_windows(ctx: WorkerContext) -> int:
    async with ctx["db"].writer() as session:
        closed = await close_quote_windows(session, now=datetime.now(UTC))
        await session.commit()
    return closed


async def watch_deadlines(ctx: WorkerContext) -> int:
    async with ctx["db"].writer() as session:
        flagged = await flag_late_orders(session, now=datetime.now(UTC))
        await session.commit()
    return flagged
