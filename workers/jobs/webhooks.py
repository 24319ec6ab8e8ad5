"""The outbox relay (a cron every second, plus a waker that runs it as soon as an API process says it
committed events) and one webhook delivery attempt (a job per attempt)."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from broker.services import webhooks

DELIVER = "deliver_webhook"
NOTIFY = "notify"

log = logging.getLogger("broker.worker.relay")


async def relay_outbox(ctx: dict[str, Any]) -> int:
    """Fan committed events out into deliveries, then enqueue every due delivery, all in one Redis
    round trip per kind. A job id per (delivery, attempt number) makes a repeated enqueue a no-op;
    a job lost by Redis is enqueued again once its lease expires (the database says what is due).

    Notifications have no row of their own: their jobs (``notify:<outbox id>``) are queued before
    the claim commits, so a Redis failure leaves the events pending for the next tick."""
    db = ctx["db"]
    now = datetime.now(UTC)
    async with db.writer() as session:
        claimed = await webhooks.relay(session, now=now, skip_locked=not db.is_sqlite)
        notify = [(NOTIFY, (row.id,), f"notify:{row.id}") for row in claimed if row.type in webhooks.NOTIFY_TYPES]
        if notify:
            await ctx["enqueue"].enqueue_many(notify)
        due = await webhooks.due(session, now=now)
        await session.commit()
    if due:
        await ctx["enqueue"].enqueue_many([(DELIVER, (d,), f"delivery:{d}:{attempts}") for d, attempts in due])
    return len(claimed)


async def relay_waker(ctx: dict[str, Any]) -> None:
    """For the worker's lifetime: block on the wake-up list (BLPOP) and run the relay as soon as an
    API process pushed to it after a commit that wrote events, instead of waiting for the 1 s cron;
    and as soon as a job of this worker committed events (matching's invitations…). Wake-ups that
    arrive while the relay runs make it run once more; several workers share the list, one of them
    takes each wake-up. Errors (Redis or the database down) are logged and retried: the cron relay
    stays the safety net."""
    redis = ctx["redis"]
    wake = asyncio.Event()

    def committed(session: Session) -> None:
        if session.info.pop(webhooks.OUTBOX_WRITTEN, False):
            wake.set()

    event.listen(Session, "after_commit", committed)

    async def listen() -> None:
        while True:
            try:
                if await redis.blpop([webhooks.RELAY_WAKE_KEY], timeout=5):
                    wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("relay waker: %s; listening again in 1 s", type(exc).__name__)
                await asyncio.sleep(1)

    listener = asyncio.create_task(listen())
    try:
        while True:
            await wake.wait()
            wake.clear()
            try:
                await relay_outbox(ctx)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("relay on wake-up failed: %s (the cron relay retries)", type(exc).__name__)
                await asyncio.sleep(0.5)
    finally:
        listener.cancel()
        event.remove(Session, "after_commit", committed)


async def deliver_webhook(ctx: dict[str, Any], delivery_id: str) -> str | None:
    outcome = await webhooks.attempt(
        ctx["db"], delivery_id=delivery_id, client=ctx["http"], box=ctx["box"], policy=ctx["policy"],
        now=datetime.now(UTC), rng=random.Random(),
    )
    return None if outcome is None else str(outcome)
