"""The outbox relay (cron, every second) and one webhook delivery attempt (a job per attempt)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from broker.services import webhooks

DELIVER = "deliver_webhook"


async def relay_outbox(ctx: dict[str, Any]) -> int:
    """Fan committed events out into deliveries, then enqueue every due delivery. A job id per
    (delivery, attempt number) makes a repeated enqueue a no-op (arq answers None)."""
    db = ctx["db"]
    now = datetime.now(UTC)
    async with db.writer() as session:
        claimed = await webhooks.relay(session, now=now, skip_locked=not db.is_sqlite)
        due = await webhooks.due(session, now=now)
        await session.commit()
    for delivery_id, attempts in due:
        await ctx["redis"].enqueue_job(DELIVER, delivery_id, _job_id=f"delivery:{delivery_id}:{attempts}")
    return claimed


async def deliver_webhook(ctx: dict[str, Any], delivery_id: str) -> str | None:
    outcome = await webhooks.attempt(
        ctx["db"].writer, delivery_id=delivery_id, client=ctx["http"], box=ctx["box"], policy=ctx["policy"],
        now=datetime.now(UTC), rng=random.Random(),
    )
    return None if outcome is None else str(outcome)
