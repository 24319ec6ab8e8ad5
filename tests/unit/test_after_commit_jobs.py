"""The after-commit buffer of a unit of work (`broker.services.jobs`): what a service schedules is
taken once by the edge that committed, with the relay's wake-up flag; a rollback's jobs are dropped.
No database: the buffer lives in the session's ``info``."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.repositories import OUTBOX_WRITTEN
from broker.services.jobs import (
    DELIVER,
    MATCH_REQUEST,
    NOTIFY,
    REBALANCE_CRISIS_CALL,
    Job,
    delivery_jobs,
    discard_scheduled,
    match_job,
    notify_job,
    rebalance_job,
    schedule,
    take_after_commit,
)


def test_scheduled_jobs_are_taken_once_with_the_wake_up_flag() -> None:
    session = AsyncSession()
    schedule(session, match_job("r1"))
    schedule(session, rebalance_job("c1", commitment_id="k1"))
    session.info[OUTBOX_WRITTEN] = True
    assert take_after_commit(session) == (
        [Job(MATCH_REQUEST, ("r1",), "match:r1"), Job(REBALANCE_CRISIS_CALL, ("c1",), "rebalance:c1:k1")],
        True,
    )
    assert take_after_commit(session) == ([], False)


def test_a_discarded_buffer_queues_nothing() -> None:
    session = AsyncSession()
    schedule(session, match_job("r1"))
    discard_scheduled(session)
    assert take_after_commit(session) == ([], False)


def test_job_ids_are_spelled_by_the_queue_module() -> None:
    assert notify_job("e1") == Job(NOTIFY, ("e1",), "notify:e1")
    now = datetime(2026, 12, 3, tzinfo=UTC)
    jobs = delivery_jobs(["d1", "d2", "d3"], now=now, batch=2)
    assert [(j.function, j.args) for j in jobs] == [(DELIVER, (["d1", "d2"],)), (DELIVER, (["d3"],))]
    run = jobs[0].job_id.rsplit(":", 1)[0]
    assert run.startswith(f"deliveries:{int(now.timestamp() * 1000)}:")
    assert [j.job_id for j in jobs] == [f"{run}:0", f"{run}:1"]
    assert delivery_jobs(["d1"], now=now, batch=2)[0].job_id != jobs[0].job_id  # a new run each pass
