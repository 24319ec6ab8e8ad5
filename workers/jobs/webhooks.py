"""The outbox relay (a cron every second, plus a waker that runs it as soon as an API process says it
committed events) and one webhook delivery attempt (a job per attempt)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import event
from sqlalchemy.orm import Session

from broker.services import webhooks
from broker.services.jobs import RELAY_WAKE_KEY, delivery_jobs, notify_job
from workers.context import WorkerContext

DELIVERY_BATCH = 25  # deliveries per job: their POSTs go out together, one transaction records them
CLAIM = 200  # events claimed per relay pass
DUE = 500  # deliveries enqueued per relay pass
#: Between two passes started by wake-ups (an event waits at most this much longer).
RELAY_MIN_INTERVAL_S = 0.05
RELAY_BUDGET_S = 10.0  # passes of one relay run (the cron job's timeout is 30 s)

log = logging.getLogger("broker.worker.relay")


async def relay_outbox(ctx: WorkerContext) -> int:
    """Fan committed events out into deliveries, then enqueue every due delivery: a job per handful
    (DELIVERY_BATCH) and one Redis round trip per pass. A pass takes at most CLAIM events and DUE
    deliveries; passes follow each other while there is more (up to RELAY_BUDGET_S), so a burst
    of events is not held to one batch per cron tick. The database says what is due: a delivery
    whose job was lost (Redis lost it, a worker died with it) is queued again once its lease
    expires, or at once when Redis shows the job was never queued (its pass left no marker) or that
    Redis itself came back empty.

    Notifications have no row of their own: their jobs (``notify:<outbox id>``, a job id Redis
    keeps once) are queued before the claim, so a Redis failure leaves the events pending for the
    next pass."""
    started = time.monotonic()
    total, first = 0, True
    while True:
        claimed, due = await _relay_pass(ctx, check=first)
        total += claimed
        first = False
        if (claimed < CLAIM and due < DUE) or time.monotonic() - started > RELAY_BUDGET_S:
            return total


async def _relay_pass(ctx: WorkerContext, *, check: bool) -> tuple[int, int]:
    """One pass: recovery first when Redis lost its data or (first pass of a run) lost some jobs;
    then read the next events without a lock, queue their notifications, and claim them with their
    deliveries and the due deliveries in one short write (`webhooks.commit_relay`); then queue the
    due deliveries' jobs."""
    db, queue = ctx["db"], ctx["enqueue"]
    lease = ctx.get("lease", webhooks.LEASE)
    now = datetime.now(UTC)
    if check and await queue.lost_data():
        async with db.writer() as session:
            again = await webhooks.after_redis_loss(session, now=now)
            if again:
                await queue.enqueue_many([notify_job(i) for i in again])
            await session.commit()
    elif check:
        async with db.reader() as session:
            ticks = await webhooks.in_flight(session, now=now, lease=lease)
        if ticks and (never := await queue.absent(list(ticks))):
            async with db.writer() as session:
                await webhooks.release(session, [d for marker in never for d in ticks[marker]], now=now)
                await session.commit()
    plan = await webhooks.plan_relay(db, now=now, limit=CLAIM)
    if plan.notify:  # before the claim: a Redis failure leaves the events pending for the next pass
        await queue.enqueue_many([notify_job(i) for i in plan.notify])
    claimed, due = await db.write(lambda connection: webhooks.commit_relay(
        connection, plan, now=now, skip_locked=db.skips_locked, lease=lease, due_limit=DUE))
    if due:
        jobs = delivery_jobs([d for d, _attempts in due], now=now, batch=DELIVERY_BATCH)
        await queue.enqueue_many(jobs, marker=webhooks.tick_marker(now),
                                 marker_ttl_ms=int((lease.total_seconds() + 60) * 1000))
    return claimed, len(due)


async def relay_waker(ctx: WorkerContext) -> None:
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
        warned = 0.0
        while True:
            try:
                # redis-py types a command as sync or async; on the asyncio client it is awaitable
                if await cast("Awaitable[list[bytes] | None]", redis.blpop([RELAY_WAKE_KEY], timeout=5)):
                    wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down: keep trying, say so every 30 s
                if time.monotonic() - warned > 30:
                    log.warning("relay waker: %s; listening again every second", type(exc).__name__)
                    warned = time.monotonic()
                await asyncio.sleep(1)

    listener = asyncio.create_task(listen())
    last = -RELAY_MIN_INTERVAL_S
    try:
        while True:
            await wake.wait()
            # Under a burst, wake-ups come faster than passes: one pass per interval at most relays
            # them together (on SQLite each pass is a write transaction the API waits for).
            if (pause := last + RELAY_MIN_INTERVAL_S - time.monotonic()) > 0:
                await asyncio.sleep(pause)
            wake.clear()
            last = time.monotonic()
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


async def deliver_webhooks(ctx: WorkerContext, delivery_ids: list[str]) -> dict[str, str | None]:
    outcomes = await webhooks.attempt_many(
        ctx["db"], delivery_ids=delivery_ids, sender=ctx["sender"], box=ctx["box"], now=datetime.now(UTC)
    )
    return {d: None if o is None else str(o) for d, o in outcomes.items()}
