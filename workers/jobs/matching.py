"""Matching as the worker's job: ``match_request`` is queued after a request commits (its service
schedules `broker.services.jobs.match_job`, one per request); ``sweep_matches`` runs every few
seconds and matches what a lost job left ``pending`` (Redis down at enqueue, a job dropped). Both
go through the compare-and-set of ``write_matches``, so a request is matched and invited once
however often it is tried.

A job matches its own request together with the others waiting (up to ``BATCH``), one batch at a
time per worker process: the computing happens on a reader, the writing in one short transaction
of a few statements for the whole batch. Under load that is what keeps up with the API (one write
transaction per batch instead of per request; on SQLite, one take of the write lock); the jobs of
the requests a batch already matched then end at once."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import UTC, datetime, timedelta

from broker.services.jobs import match_job_id, settle_batch
from broker.services.requests import compute_matches, pending_match_batch, pending_matches, write_match_batch
from workers.context import WorkerContext

SWEEP_AFTER = timedelta(seconds=5)  # younger requests belong to their enqueued job
BATCH = 64  # requests matched and written together
_RECENT = 4096  # ids of requests this process matched lately: their own jobs need no query


class MatchBatches:
    """One per worker process, made at start-up (``ctx["match_batches"]``; arq hands each job a
    copy of the start-up ctx, so state made inside a job would not be shared): one batch at a time,
    and the requests matched lately."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.recent: OrderedDict[str, None] = OrderedDict()

    def done(self, request_ids: list[str]) -> None:
        for request_id in request_ids:
            self.recent[request_id] = None
        while len(self.recent) > _RECENT:
            self.recent.popitem(last=False)


async def match_request(ctx: WorkerContext, request_id: str) -> int | None:
    """Match ``request_id`` (with whatever else is pending); the number it invited, or None when
    another job or worker matched it."""
    batches: MatchBatches = ctx["match_batches"]
    async with batches.lock:
        if request_id in batches.recent:
            return None
        async with ctx["db"].reader() as session:
            ids = await pending_match_batch(session, limit=BATCH, first=request_id)
        invited = await _match_batch(ctx, ids, own=request_id)
        return invited.get(request_id)


async def _match_batch(ctx: WorkerContext, request_ids: list[str], own: str | None = None) -> dict[str, int]:
    """Match on a reader (SQLite's write lock stays free meanwhile), then write the batch in one
    short transaction, its rows built beforehand (on SQLite the write lock is held only while
    SQLite works: `Database.write`)."""
    if not request_ids:
        return {}
    settings = ctx["settings"].matching
    async with ctx["db"].reader() as session:
        matched = await compute_matches(
            session, request_ids=request_ids, settings=settings, now=datetime.now(UTC), cache=ctx["candidates"]
        )
    if not matched:
        return {}
    invited = await write_match_batch(ctx["db"], matched=matched, settings=settings, now=datetime.now(UTC))
    ctx["match_batches"].done(list(invited))
    # The other requests' queued jobs have nothing left to do: off the queue; and the invitations'
    # events are committed: relay them now.
    others = [match_job_id(request_id) for request_id in invited if request_id != own]
    await settle_batch(ctx["redis"], others, wake_relay=bool(invited))
    return invited


async def sweep_matches(ctx: WorkerContext) -> int:
    async with ctx["db"].reader() as session:
        ids = await pending_matches(session, older_than=datetime.now(UTC) - SWEEP_AFTER)
    done = 0
    for start in range(0, len(ids), BATCH):
        async with ctx["match_batches"].lock:
            done += len(await _match_batch(ctx, ids[start : start + BATCH]))
    return done
