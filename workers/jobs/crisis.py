"""Crisis rebalancing in the worker. ``rebalance_crisis_call`` is queued after a decline commits
(the decline schedules `broker.services.jobs.rebalance_job`); ``sweep_crisis`` (cron, every 10 s)
expires unanswered proposals and rebalances every flagged call, so a lost job is only a delay;
``watch_crisis_lags`` (cron, every minute) flags the calls whose accepted commitments lag. The
database says what is left to do (``crisis_call.rebalance_due_at``) and the call's revision makes
a second run of the same rebalance a no-op."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from broker.errors import Conflict
from broker.services.crisis_allocation import (
    calls_with_expired_proposals,
    due_calls,
    expire_proposals,
    flag_lagging_calls,
    rebalance_call,
)
from workers.context import WorkerContext

log = logging.getLogger("broker.worker.crisis")


async def rebalance_crisis_call(ctx: WorkerContext, call_id: str) -> int | None:
    """Units newly proposed, or None when there was nothing to do or a concurrent change won (the
    call stays flagged and the sweep tries again)."""
    try:
        async with ctx["db"].writer() as session:
            done = await rebalance_call(session, call_id=call_id, settings=ctx["settings"].crisis,
                                        now=datetime.now(UTC))
            await session.commit()
    except Conflict as exc:
        log.info("rebalance of crisis call %s deferred: %s", call_id, exc.detail)
        return None
    return None if done is None else done.units_moved


async def sweep_crisis(ctx: WorkerContext) -> int:
    """Expire what is overdue, then rebalance every flagged call; returns how many were rebalanced."""
    async with ctx["db"].reader() as session:
        expiring = await calls_with_expired_proposals(session, now=datetime.now(UTC))
    for call_id in expiring:  # one transaction per call: short write locks
        async with ctx["db"].writer() as session:
            await expire_proposals(session, call_id=call_id, now=datetime.now(UTC))
            await session.commit()
    async with ctx["db"].reader() as session:
        ids = await due_calls(session, now=datetime.now(UTC))
    done = 0
    for call_id in ids:
        if await rebalance_crisis_call(ctx, call_id) is not None:
            done += 1
    return done


async def watch_crisis_lags(ctx: WorkerContext) -> int:
    """Once a minute: flag the calls where an accepted commitment lags (the sweep rebalances them)."""
    async with ctx["db"].writer() as session:
        flagged = await flag_lagging_calls(session, settings=ctx["settings"].crisis, now=datetime.now(UTC))
        await session.commit()
    return flagged
