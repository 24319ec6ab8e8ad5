"""Matching in the worker (the default): the API stores the request ``pending`` and queues
``match_request`` under ``match:<id>`` after the commit; the job invites once however often it
runs (retries, the sweep and the job together, two at the same time); the sweep finds what a lost
job left pending; a request cancelled first is closed without invitations."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from arq.constants import expires_extra_ms, job_key_prefix
from arq.jobs import deserialize_job
from arq.worker import Worker
from factories import FAB_LAB, bearer, make_siret, make_workshop, tenant
from sqlalchemy import func, select, update

from broker.db.models import InvitationRow, OutboxRow, RequestRow
from broker.db.session import Database
from broker.services.jobs import MATCH_REQUEST, QUEUE, RELAY_WAKE_KEY, deserialize, match_job_id
from broker.services.matching import CandidateCache
from workers.jobs.matching import MatchBatches, match_request, sweep_matches


@pytest.fixture
def settings(settings):  # the conftest's, with matching in the worker as in production
    return msgspec.structs.replace(settings, matching=msgspec.structs.replace(settings.matching, inline=False))


@pytest.fixture
async def job_ctx(settings, redis_client):
    database = Database(settings.db)
    yield {"db": database, "settings": settings, "candidates": CandidateCache(), "match_batches": MatchBatches(),
           "redis": redis_client}
    await database.dispose()


async def _scene(client, admin_key, n_labs: int = 3):
    for i, insee in enumerate(("35238", "35047", "35281", "56260", "22278")[:n_labs]):
        await make_workshop(client, admin_key, name=f"FabLab {i}", commune_insee=insee, machines=FAB_LAB,
                            capacities={"face-visor": 40})
    _org, buyer = await tenant(client, admin_key, "collectivite", "buyer", commune_insee="35238")
    return buyer


async def _post_request(client, buyer, **extra):
    body = {"item": "face-visor", "quantity": 300, "allow_split": True, "delivery": {"commune_insee": "35238"},
            "deadline": (datetime.now(UTC) + timedelta(days=20)).isoformat(),
            "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "500"}, **extra}
    response = await client.post("/v1/requests", json=body, headers=bearer(buyer))
    assert response.status_code == 201, response.text
    return response.json()


async def _counts(db, request_id):
    async with db.reader() as session:
        invitations = (await session.execute(
            select(func.count()).select_from(InvitationRow).where(InvitationRow.request_id == request_id))).scalar_one()
        matched_events = (await session.execute(
            select(func.count()).select_from(OutboxRow).where(
                OutboxRow.resource_id == request_id, OutboxRow.type == "request.matched"))).scalar_one()
    return invitations, matched_events


async def test_request_is_queued_then_matched_once(client, admin_key, redis_client, job_ctx):
    buyer = await _scene(client, admin_key)
    created = await _post_request(client, buyer)
    assert created["match_state"] == "pending" and created["invited"] is None
    pending = (await client.get(f"/v1/requests/{created['id']}/matches", headers=bearer(buyer))).json()
    assert pending["state"] == "pending" and pending["included"] == []
    # Queued on arq's queue, under the request's own job id, with the id as its only argument, and
    # the relay woken for request.created (`JobQueue.signal`: one script after the commit).
    job_id = match_job_id(created["id"])
    assert job_id == f"match:{created['id']}"
    assert await redis_client.zscore(QUEUE, job_id) is not None
    assert 0 < await redis_client.pttl(job_key_prefix + job_id) <= expires_extra_ms
    job = deserialize_job(await redis_client.get(job_key_prefix + job_id), deserializer=deserialize)
    assert (job.function, tuple(job.args)) == (MATCH_REQUEST, (created["id"],))
    assert await redis_client.lrange(RELAY_WAKE_KEY, 0, -1) == [b"1"]
    await _post_request(client, buyer)  # a second request: a second job, still one wake-up
    assert await redis_client.zcard(QUEUE) == 2 and await redis_client.llen(RELAY_WAKE_KEY) == 1

    await redis_client.delete(RELAY_WAKE_KEY)
    assert await match_request(job_ctx, created["id"]) == 3
    assert await redis_client.llen(RELAY_WAKE_KEY) == 1  # the invitations' events: relay them now
    assert await match_request(job_ctx, created["id"]) is None  # a retry: nothing to do
    assert await _counts(job_ctx["db"], created["id"]) == (3, 1)
    done = (await client.get(f"/v1/requests/{created['id']}/matches", headers=bearer(buyer))).json()
    assert done["state"] == "done" and sum(m["invited"] for m in done["included"]) == 3
    assert done["eligible"] == 3
    invitations = (await client.get("/v1/invitations", headers=bearer(buyer)))
    assert invitations.status_code == 403  # a buyer has none; the makers see theirs (test_lifecycle)


async def test_two_jobs_at_once_invite_once(client, admin_key, job_ctx):
    buyer = await _scene(client, admin_key)
    created = await _post_request(client, buyer)
    other = {**job_ctx, "db": Database(job_ctx["settings"].db), "match_batches": MatchBatches()}  # another worker
    try:
        results = await asyncio.gather(match_request(job_ctx, created["id"]), match_request(other, created["id"]))
    finally:
        await other["db"].dispose()
    assert sorted(results, key=lambda r: r is None) == [3, None]
    assert await _counts(job_ctx["db"], created["id"]) == (3, 1)


async def test_one_worker_matches_its_queued_requests_in_one_batch(client, admin_key, job_ctx, monkeypatch):
    """arq runs up to max_jobs jobs at once, each with its own copy of the start-up ctx: they must
    still share one batch (the first computes and writes all; the others find theirs done)."""
    import workers.jobs.matching as jobs

    buyer = await _scene(client, admin_key)
    created = [await _post_request(client, buyer) for _ in range(5)]
    computed: list[int] = []
    real = jobs.compute_matches

    async def counting(session, **kwargs):
        found = await real(session, **kwargs)
        computed.append(len(found))
        return found

    monkeypatch.setattr(jobs, "compute_matches", counting)
    results = await asyncio.gather(*(match_request({**job_ctx, "job_id": c["id"]}, c["id"]) for c in created))
    assert computed == [5]
    assert sorted(results, key=lambda r: r is None) == [3, None, None, None, None]
    for c in created:
        assert await _counts(job_ctx["db"], c["id"]) == (3, 1)


async def test_a_batch_takes_the_jobs_it_did_off_the_queue(client, admin_key, job_ctx, redis_client):
    """One job matches the 4 queued requests; the other 3 jobs leave the queue (the worker never
    starts them) and their keys expire within a minute; its own job is left to arq."""
    buyer = await _scene(client, admin_key)
    created = [await _post_request(client, buyer) for _ in range(4)]
    job_ids = [match_job_id(c["id"]) for c in created]
    assert all([await redis_client.zscore(QUEUE, j) for j in job_ids])  # queued by the API
    assert await match_request(job_ctx, created[0]["id"]) == 3
    for c in created:
        assert await _counts(job_ctx["db"], c["id"]) == (3, 1)
    assert await redis_client.zscore(QUEUE, job_ids[0]) is not None  # its own: arq removes it at its end
    assert await redis_client.pttl(job_key_prefix + job_ids[0]) > 3_600_000
    for job_id in job_ids[1:]:
        assert await redis_client.zscore(QUEUE, job_id) is None
        assert 0 < await redis_client.pttl(job_key_prefix + job_id) <= 60_000
    # A worker that had already taken one of them still ends it at once, with nothing written.
    assert await match_request(job_ctx, created[1]["id"]) is None
    assert await _counts(job_ctx["db"], created[1]["id"]) == (3, 1)


async def test_sweep_matches_what_a_lost_job_left(client, admin_key, job_ctx, redis_client):
    buyer = await _scene(client, admin_key, n_labs=2)
    lost = await _post_request(client, buyer)
    fresh = await _post_request(client, buyer)
    await redis_client.flushdb()  # the queued jobs are gone (Redis restarted without its data)
    async with job_ctx["db"].writer() as session:
        await session.execute(update(RequestRow).where(RequestRow.id == lost["id"])
                              .values(created_at=datetime.now(UTC) - timedelta(minutes=1)))
        await session.commit()
    assert await sweep_matches(job_ctx) == 1  # the fresh one still belongs to its own job
    assert await _counts(job_ctx["db"], lost["id"]) == (2, 1)
    assert await _counts(job_ctx["db"], fresh["id"]) == (0, 0)
    assert await sweep_matches(job_ctx) == 0


async def test_cancelled_before_matching_invites_nobody(client, admin_key, job_ctx):
    buyer = await _scene(client, admin_key, n_labs=1)
    created = await _post_request(client, buyer)
    cancelled = await client.post(f"/v1/requests/{created['id']}/cancel", headers=bearer(buyer))
    assert cancelled.status_code == 200, cancelled.text
    assert await match_request(job_ctx, created["id"]) == 0
    assert await _counts(job_ctx["db"], created["id"]) == (0, 0)
    matches = (await client.get(f"/v1/requests/{created['id']}/matches", headers=bearer(buyer))).json()
    assert matches["state"] == "done" and matches["included"] == []


async def _run_worker(settings) -> dict[str, object]:
    """A real arq worker as ``broker worker`` builds it (``worker_settings``), in burst mode until it
    has run one job: what the jobs returned, by function name (arq keeps no cron job's result). Of
    the cron jobs only the sweep is kept (the other sweeps have tests of their own)."""
    from workers.settings import worker_settings

    config = worker_settings(settings)
    config["cron_jobs"] = [c for c in config["cron_jobs"] if c.name.rsplit(":", 1)[-1] == "sweep_matches"]
    assert len(config["cron_jobs"]) == 1
    worker = Worker(**config | {"burst": True, "handle_signals": False})
    try:
        assert await worker.run_check(max_burst_jobs=1) == 1  # raises FailedJobs if the job failed
        return {r.function: r.result for r in await worker.pool.all_job_results()}
    finally:
        await worker.close()


@pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")  # arq's Worker.close
async def test_the_worker_runs_the_job_and_the_sweep(client, admin_key, settings, redis_client, job_ctx):
    buyer = await _scene(client, admin_key, n_labs=2)
    lost = await _post_request(client, buyer)
    await redis_client.flushdb()  # its job is gone
    async with job_ctx["db"].writer() as session:
        await session.execute(update(RequestRow).where(RequestRow.id == lost["id"])
                              .values(created_at=datetime.now(UTC) - timedelta(minutes=1)))
        await session.commit()
    # Nothing queued: the worker's one job is the sweep (a cron job also run at start-up), which
    # matches the lost request.
    assert await _run_worker(settings) == {}
    assert await _counts(job_ctx["db"], lost["id"]) == (2, 1)

    await redis_client.flushdb()  # the first worker's results and next sweep
    fresh = await _post_request(client, buyer)
    # The request's own job, queued by the API, is the next worker's first job.
    assert await _run_worker(settings) == {MATCH_REQUEST: 2}
    assert await _counts(job_ctx["db"], fresh["id"]) == (2, 1)
    done = (await client.get(f"/v1/requests/{fresh['id']}/matches", headers=bearer(buyer))).json()
    assert done["state"] == "done" and sum(m["invited"] for m in done["included"]) == 2
