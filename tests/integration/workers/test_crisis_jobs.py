"""The crisis jobs with a hand-built worker ctx: a decline queues `rebalance_crisis_call` after its
commit; the sweep expires unanswered proposals (a decline by silence) and trims a workshop that
stopped reporting, then rebalances; running a job twice changes nothing the second time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from crisis_support import check_invariants, seed
from factories import bearer
from sqlalchemy import text

from broker.db.session import Database
from workers.jobs.crisis import rebalance_crisis_call, sweep_crisis, watch_crisis_lags

SHOPS = [("35238", 20.0, 60.0), ("35047", 15.0, 60.0), ("35051", 10.0, 60.0), ("35115", 10.0, 60.0),
         ("35360", 10.0, 60.0), ("35024", 8.0, 60.0)]


@pytest.fixture
async def job_ctx(settings):
    database = Database(settings.db)
    yield {"db": database, "settings": settings}
    await database.dispose()


async def _call(client, db, admin_key: str | None = None, quantity: int = 300) -> tuple[dict, dict]:
    seeded = await seed(db, workshops_at=SHOPS, admin_token=admin_key)
    body = {"item": "face-visor", "deadline": (datetime.now(UTC) + timedelta(days=8)).isoformat(), "priority": 1,
            "delivery_points": [{"label": "CHU de Rennes", "commune_insee": "35238", "quantity": quantity,
                                 "priority": 1},
                                {"label": "EHPAD de Vitré", "commune_insee": "35360", "quantity": 100,
                                 "priority": 2}]}
    created = await client.post("/v1/crisis-calls", json=body, headers=bearer(seeded["coordinator"]))
    assert created.status_code == 201, created.text
    return seeded, created.json()


async def _detail(client, seeded, call_id):
    return (await client.get(f"/v1/crisis-calls/{call_id}", headers=bearer(seeded["coordinator"]))).json()


async def test_decline_queues_the_rebalance_and_a_second_run_is_a_no_op(settings, db, redis_client, job_ctx):
    from litestar.testing import AsyncTestClient

    from broker.app import create_app

    async with AsyncTestClient(app=create_app(settings)) as client:
        seeded, call = await _call(client, db)
        keys = {m["workshop_id"]: m["key"] for m in seeded["makers"]}
        first = (await _detail(client, seeded, call["id"]))["commitments"][0]
        declined = await client.post(f"/v1/commitments/{first['id']}/decline", json={"reason": "pas de PETG"},
                                     headers=bearer(keys[first["workshop_id"]]))
        assert declined.status_code == 200
        assert await redis_client.exists(f"arq:job:rebalance:{call['id']}:{first['id']}") == 1
        assert await rebalance_crisis_call(job_ctx, call["id"]) is not None
        assert await rebalance_crisis_call(job_ctx, call["id"]) is None  # the same job again: nothing to do
        assert await sweep_crisis(job_ctx) == 0
        after = await _detail(client, seeded, call["id"])
    assert [r["reason"] for r in after["rebalances"]] == ["allocation", "decline"]
    assert not [c for c in after["commitments"] if c["workshop_id"] == first["workshop_id"]
                and c["status"] in ("proposed", "accepted")]
    await check_invariants(db, call["id"])


async def test_sweep_expires_silent_proposals_and_trims_a_silent_maker(client, admin_key, db, job_ctx):
    seeded, call = await _call(client, db, admin_key)
    keys = {m["workshop_id"]: m["key"] for m in seeded["makers"]}
    detail = await _detail(client, seeded, call["id"])
    first, *rest = detail["commitments"]
    accepted = await client.post(f"/v1/commitments/{first['id']}/accept", headers=bearer(keys[first["workshop_id"]]))
    assert accepted.status_code == 200
    expiring = [c for c in rest if c["workshop_id"] != first["workshop_id"]][:2]
    async with db.writer() as session:
        # Two proposals were never answered; the accepted commitment was never reported on for 30 h.
        await session.execute(text("UPDATE commitment SET expires_at = :t WHERE id IN (:a, :b)"),
                              {"t": datetime.now(UTC) - timedelta(minutes=1), "a": expiring[0]["id"],
                               "b": expiring[-1]["id"]})
        await session.execute(text("UPDATE commitment SET accepted_at = :t WHERE id = :id"),
                              {"t": datetime.now(UTC) - timedelta(hours=30), "id": first["id"]})
        await session.commit()
    assert await watch_crisis_lags(job_ctx) == 1  # the silent maker flags the call
    assert await watch_crisis_lags(job_ctx) == 0  # already flagged
    assert await sweep_crisis(job_ctx) == 1  # expires the two proposals, rebalances once
    after = await _detail(client, seeded, call["id"])
    by_id = {c["id"]: c for c in after["commitments"]}
    assert {by_id[c["id"]]["status"] for c in expiring} == {"expired"}
    assert by_id[first["id"]]["status"] == "cancelled" and by_id[first["id"]]["decline_reason"].startswith("lag:")
    silent = {first["workshop_id"], *(c["workshop_id"] for c in expiring)}
    assert not [c for c in after["commitments"] if c["workshop_id"] in silent and c["status"] == "proposed"]
    reasons = [r["reason"] for r in after["rebalances"]]
    assert reasons == ["allocation", "lag"]
    assert after["rebalances"][-1]["moved"]["trimmed"][0]["commitment_id"] == first["id"]
    assert after["rebalance_pending"] is False
    await check_invariants(db, call["id"])
    # A late accept of an expired proposal is refused.
    late = await client.post(f"/v1/commitments/{expiring[0]['id']}/accept",
                             headers=bearer(keys[expiring[0]["workshop_id"]]))
    assert late.status_code == 409
