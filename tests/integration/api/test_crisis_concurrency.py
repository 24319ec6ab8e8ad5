"""30 makers accepting, declining and reporting at once, while the worker rebalances and the
coordinator raises a quantity and adds a point: no workshop is ever booked beyond its capacity, no
point promised beyond its quantity, each commitment decided once, progress never backwards, and
no 5xx (SQLite and PostgreSQL; truly concurrent clients, RELIABILITY.md §3)."""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import UTC, datetime, timedelta

from crisis_support import check_invariants, region_communes, seed
from factories import bearer
from support_concurrency import ConcurrentClients

from broker.errors import Conflict
from broker.services.crisis_allocation import rebalance_call
from broker.settings import CrisisSettings
from matching import working_days

POINTS = [("CHU de Rennes", "35238", 1), ("CHU de Brest", "29019", 1), ("CH de Vannes", "56260", 2),
          ("CH de Saint-Brieuc", "22278", 2), ("EHPAD de Quimper", "29232", 3), ("Mairie de Lorient", "56121", 3)]


async def _rebalance(db, call_id: str) -> str:
    try:
        async with db.writer() as session:
            done = await rebalance_call(session, call_id=call_id, settings=CrisisSettings(), now=datetime.now(UTC))
            await session.commit()
    except Conflict:
        return "conflict"
    return "none" if done is None else "done"


async def test_thirty_makers_at_once_never_overbook(settings, db, redis_client):
    rng = random.Random(30)
    communes = region_communes("53", 30, seed=30)  # Bretagne
    seeded = await seed(db, workshops_at=[(c.insee, float(rng.randint(3, 9)), 90.0) for c in communes])
    keys = {m["workshop_id"]: m["key"] for m in seeded["makers"]}
    coordinator = seeded["coordinator"]
    deadline = datetime.now(UTC) + timedelta(days=9)
    body = {"item": "face-visor", "deadline": deadline.isoformat(), "priority": 1,
            "delivery_points": [{"label": label, "commune_insee": insee, "quantity": 220, "priority": prio}
                                for label, insee, prio in POINTS]}
    statuses: list[int] = []
    async with ConcurrentClients(settings, n=4) as clients:
        pick = itertools.cycle(clients)
        created = await clients[0].post("/v1/crisis-calls", json=body, headers=bearer(coordinator))
        assert created.status_code == 201, created.text
        call_id = created.json()["id"]
        detail = (await clients[0].get(f"/v1/crisis-calls/{call_id}", headers=bearer(coordinator))).json()
        proposals = detail["commitments"]
        assert len({c["workshop_id"] for c in proposals}) >= 20
        await check_invariants(db, call_id)

        async def send(method: str, path: str, key: str, json=None) -> int:
            response = await next(pick).request(method, path, json=json, headers=bearer(key))
            statuses.append(response.status_code)
            return response.status_code

        async def post(path: str, key: str, json=None) -> int:
            return await send("POST", path, key, json)

        async def insist(method: str, path: str, key: str, json) -> int:
            """The coordinator retries a lost race (409 while the worker re-allocates), as a client would."""
            for _ in range(20):
                code = await send(method, path, key, json)
                if code != 409:
                    return code
                await asyncio.sleep(0.05)
            return code

        # Round 1: every maker answers each proposal twice at once (accept and decline race, or two
        # accepts), the worker rebalances three times, the coordinator raises a point and adds one.
        contested: dict[str, list] = {}
        jobs = []
        for c in proposals:
            key = keys[c["workshop_id"]]
            second = "decline" if rng.random() < 0.3 else "accept"
            for action in ("accept", second):
                path = f"/v1/commitments/{c['id']}/{action}"
                task = post(path, key, {"reason": "plus de PETG"} if action == "decline" else None)
                jobs.append(task)
                contested.setdefault(c["id"], []).append((action, len(jobs) - 1))
        point = detail["delivery_points"][0]["id"]
        jobs.append(insist("PATCH", f"/v1/crisis-calls/{call_id}/delivery-points/{point}", coordinator,
                           {"quantity": 300}))
        raised = len(jobs) - 1
        jobs.append(insist("POST", f"/v1/crisis-calls/{call_id}/delivery-points", coordinator, {"delivery_points": [
            {"label": "Pharmacie de Fougères", "commune_insee": "35115", "quantity": 80, "priority": 1}]}))
        added = len(jobs) - 1
        jobs.extend(_rebalance(db, call_id) for _ in range(3))
        rng.shuffle(order := list(range(len(jobs))))
        results = await asyncio.gather(*(jobs[i] for i in order))
        by_job = dict(zip(order, results, strict=True))
        assert (by_job[raised], by_job[added]) == (200, 201)
        for commitment_id, attempts in contested.items():
            codes = [by_job[i] for _action, i in attempts]
            # Exactly one answer wins; the other is a conflict (or a 404-free refusal), never a 5xx.
            assert codes.count(200) <= 1 and all(code in (200, 409) for code in codes), (commitment_id, codes)
        await check_invariants(db, call_id)

        # Let the worker catch up with the declines, then round 2: everything proposed is accepted
        # at once, and every accepted commitment gets three concurrent progress reports.
        for _ in range(5):
            if await _rebalance(db, call_id) == "none":
                break
        detail = (await clients[0].get(f"/v1/crisis-calls/{call_id}", headers=bearer(coordinator))).json()
        await asyncio.gather(*(post(f"/v1/commitments/{c['id']}/accept", keys[c["workshop_id"]])
                               for c in detail["commitments"] if c["status"] == "proposed"))
        detail = (await clients[0].get(f"/v1/crisis-calls/{call_id}", headers=bearer(coordinator))).json()
        accepted = [c for c in detail["commitments"] if c["status"] == "accepted"]
        reports = []
        for c in accepted:
            for produced in (c["quantity"] // 3, c["quantity"] // 2, c["quantity"]):
                reports.append(post(f"/v1/commitments/{c['id']}/progress", keys[c["workshop_id"]],
                                    {"units_produced": produced, "units_delivered": produced // 2}))
        await asyncio.gather(*reports)
        final = (await clients[0].get(f"/v1/crisis-calls/{call_id}", headers=bearer(coordinator))).json()

    assert all(code < 500 for code in statuses), sorted(set(statuses))
    totals = await check_invariants(db, call_id)
    assert totals["requested"] == final["totals"]["requested"] == 6 * 220 + 80 + 80
    assert final["totals"]["committed"] == totals["committed"] and final["totals"]["accepted"] == totals["accepted"]
    _assert_progress_and_capacity(final, accepted, seeded, deadline)


def _assert_progress_and_capacity(final: dict, accepted: list[dict], seeded: dict, deadline: datetime) -> None:
    # Monotonic progress: whatever order the three reports landed in, the last word is the largest
    # value that was accepted, and a smaller one arriving later was refused.
    for c in final["commitments"]:
        if c["status"] == "accepted" and c["id"] in {a["id"] for a in accepted}:
            assert c["units_produced"] in (c["quantity"] // 3, c["quantity"] // 2, c["quantity"])
    # Capacity: what each workshop has booked is within units per day × working days to the deadline.
    days = working_days(datetime.now(UTC), deadline)
    booked: dict[str, int] = {}
    for c in final["commitments"]:
        if c["status"] in ("proposed", "accepted", "completed"):
            booked[c["workshop_id"]] = booked.get(c["workshop_id"], 0) + c["quantity"]
    per_day = {m["workshop_id"]: m["per_day"] for m in seeded["makers"]}
    for workshop_id, units in booked.items():
        assert units <= per_day[workshop_id] * days, (workshop_id, units, per_day[workshop_id], days)
