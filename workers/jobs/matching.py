"""Matching as the worker's job: ``match_request`` is enqueued by the API after a request commits
(``_job_id`` ``match:<id>``); ``sweep_matches`` runs every few seconds and matches what a lost job
left ``pending`` (Redis down at enqueue, a job dropped). Both go through the compare-and-set of
``record_match``, so a request is matched and invited once however often it is tried."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from broker.services.requests import compute_match, pending_matches, record_match

SWEEP_AFTER = timedelta(seconds=5)  # younger requests belong to their enqueued job


async def match_request(ctx: dict[str, Any], request_id: str) -> int | None:
    """Match on a reader (SQLite's write lock stays free meanwhile), then write it in one short
    transaction."""
    settings = ctx["settings"].matching
    async with ctx["db"].reader() as session:
        matched = await compute_match(
            session, request_id=request_id, settings=settings, now=datetime.now(UTC), cache=ctx["candidates"]
        )
    if matched is None:
        return None
    async with ctx["db"].writer() as session:
        invited = await record_match(session, matched=matched, settings=settings, now=datetime.now(UTC))
        await session.commit()
    return invited


async def sweep_matches(ctx: dict[str, Any]) -> int:
    async with ctx["db"].reader() as session:
        ids = await pending_matches(session, older_than=datetime.now(UTC) - SWEEP_AFTER)
    for request_id in ids:
        await match_request(ctx, request_id)
    return len(ids)
