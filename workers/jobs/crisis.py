"""Crisis rebalancing in the worker. ``rebalance_crisis_call`` is enqueued by the API after a decline
commits; ``sweep_crisis`` (cron, every 10 s) expires unanswered proposals, flags calls whose
accepted commitments lag, and rebalances every flagged call, so a lost job is only a delay. The
database says what is left to do (``crisis_call.rebalance_due_at``) and the call's revision makes
a second run of the same rebalance a no-op."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from broker.errors import Conflict
from broker.services.crisis_allocation import due_calls, expire_proposals, flag_lagging_calls, rebalance_call

log = logging.getLogger("broker.worker.crisis")


async def rebalance_crisis_call(ctx: dict[str, Any], call_id: str) -> int | None:
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


async def sweep_crisis(ctx: dict[str, Any]) -> int:
    """Returns how many calls were rebalanced."""
    settings = ctx["settings"].crisis
    async with ctx["db"].writer() as session:
        now = datetime.now(UTC)
        await expire_proposals(session, now=now)
        await flag_lagging_calls(session, settings=settings, now=now)
        await session.commit()
    async with ctx["db"].reader() as session:
        ids = await due_calls(session, now=datetime.now(UTC))
    done = 0
    for call_id in ids:
        if await rebalance_crisis_call(ctx, call_id) is not None:
            done += 1
    return done
