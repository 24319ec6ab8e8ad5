"""A crisis call end to end against a real server and a real worker (`broker up`): 200 visor
workshops in Bretagne, 20 delivery points. The allocation is the optimum of the linear programme
(scipy HiGHS, written independently in crisis_support.lp_optimum); makers accept part of it, three
workshops decline, the worker rebalances: accepted commitments are untouched, the decliners get
nothing new, and what is committed is again the LP optimum of what is left. Totals add up at every
step, through the API and in the database.

The 200 workshops are seeded through the services straight into the server's SQLite file (the HTTP
path is ~1,400 requests and tested elsewhere); the call and everything after go through HTTP."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from crisis_support import check_invariants, lp_optimum, region_communes, seed
from factories import bearer
from support_server import running_broker

from adapters.geocoding import load_communes
from broker.db.session import Database
from broker.settings import DatabaseSettings
from matching import haversine_km, working_days

LIVE = ("proposed", "accepted", "completed")


def _check_totals(detail: dict) -> None:
    t = detail["totals"]
    live = [c for c in detail["commitments"] if c["status"] in LIVE]
    agreed = [c for c in live if c["status"] != "proposed"]
    assert t["requested"] == sum(p["quantity"] for p in detail["delivery_points"])
    assert t["committed"] == sum(c["quantity"] for c in live) == sum(p["committed"] for p in detail["delivery_points"])
    assert t["accepted"] == sum(c["quantity"] for c in agreed) == sum(p["accepted"] for p in detail["delivery_points"])
    assert t["produced"] == sum(c["units_produced"] for c in agreed)
    assert t["delivered"] == sum(c["units_delivered"] for c in agreed)
    assert t["unmet"] == t["requested"] - t["committed"] == sum(p["unmet"] for p in detail["delivery_points"])
    assert t["requested"] >= t["committed"] >= t["accepted"] >= t["produced"] >= t["delivered"] >= 0


def _coverage(detail: dict) -> tuple[dict[int, int], dict[tuple[str, str], int]]:
    """Units committed per point priority, and per (workshop, point) edge."""
    prio = {p["id"]: p["priority"] for p in detail["delivery_points"]}
    covered: dict[int, int] = {}
    edges: dict[tuple[str, str], int] = {}
    for c in detail["commitments"]:
        if c["status"] in LIVE:
            covered[prio[c["delivery_point"]]] = covered.get(prio[c["delivery_point"]], 0) + c["quantity"]
            key = (c["workshop_id"], c["delivery_point"])
            edges[key] = edges.get(key, 0) + c["quantity"]
    return covered, edges


def _cost(edges: dict[tuple[str, str], int], where: dict[str, tuple[float, float]]) -> float:
    """Σ units × metres, with the LP's distance formula and rounding."""
    return float(sum(u * round(haversine_km(*where[w], *where[p]) * 1000.0) for (w, p), u in edges.items()))


async def _detail(client: httpx.AsyncClient, key: str, call_id: str) -> dict:
    response = await client.get(f"/v1/crisis-calls/{call_id}", headers=bearer(key))
    assert response.status_code == 200, response.text
    body: dict = response.json()
    _check_totals(body)
    return body


async def _post(client: httpx.AsyncClient, path: str, key: str, body: dict | None = None, status: int = 200) -> dict:
    response = await client.post(path, json=body, headers={**bearer(key), "Idempotency-Key": str(uuid.uuid4())})
    assert response.status_code == status, (path, response.text)
    result: dict = response.json()
    return result


async def test_crisis_call_over_200_workshops_with_declines_and_a_worker_rebalance(tmp_path):
    rng = random.Random(2020)
    communes = region_communes("53", 200, seed=2020)
    shops = [(c.insee, float(rng.choice([4, 6, 8, 10, 15, 20, 30])), float(rng.choice([30, 50, 80])))
             for c in communes]
    geocoder = load_communes()
    towns = sorted((c for c in geocoder.all() if c.region == "53"), key=lambda c: -(c.population or 0))[:20]
    deadline = datetime.now(UTC) + timedelta(days=10)
    days = working_days(datetime.now(UTC), deadline)
    capacity = sum(int(per_day * days) for _i, per_day, _r in shops)
    shares = [rng.uniform(0.5, 1.5) for _ in towns]
    demand = [max(10, int(0.95 * capacity * s / sum(shares))) for s in shares]
    points_body = [{"label": f"Centre hospitalier de {t.name}", "commune_insee": t.insee, "quantity": q,
                    "priority": 1 + i % 3} for i, (t, q) in enumerate(zip(towns, demand, strict=True))]

    with running_broker(tmp_path) as broker:
        db = Database(DatabaseSettings(url=f"sqlite+aiosqlite:///{broker.data_dir}/broker.db"))
        try:
            started = time.monotonic()
            seeded = await seed(db, workshops_at=shops, admin_token=broker.admin_key)
            seeding_s = time.monotonic() - started
            makers = {m["workshop_id"]: m for m in seeded["makers"]}
            coordinator = seeded["coordinator"]
            async with httpx.AsyncClient(base_url=broker.url, timeout=60) as client:
                call = await _post(client, "/v1/crisis-calls", coordinator, {
                    "item": "face-visor", "deadline": deadline.isoformat(), "priority": 1,
                    "delivery_points": points_body}, status=201)
                detail = await _detail(client, coordinator, call["id"])
                await check_invariants(db, call["id"])
                where = {m["workshop_id"]: (geocoder.commune(m["insee"]).lat, geocoder.commune(m["insee"]).lon)
                         for m in seeded["makers"]}
                where |= {p["id"]: (p["lat"], p["lon"]) for p in detail["delivery_points"]}
                supplies = [(m["workshop_id"], *where[m["workshop_id"]], int(m["per_day"] * days), m["radius_km"])
                            for m in seeded["makers"]]
                points = [(p["id"], p["lat"], p["lon"], p["quantity"], p["priority"])
                          for p in detail["delivery_points"]]

                # 1. The allocation is the LP optimum: coverage per priority, then unit·metres.
                covered, edges = _coverage(detail)
                lp_covered, lp_cost = lp_optimum(supplies, points)
                assert {k: round(v) for k, v in lp_covered.items()} == {k: covered.get(k, 0) for k in lp_covered}
                assert abs(_cost(edges, where) - lp_cost) <= max(1.0, 1e-9 * lp_cost) + sum(edges.values())
                assert detail["totals"]["committed"] > 0.7 * detail["totals"]["requested"]

                # 2. Makers accept the proposals of every other workshop and report some progress.
                workshops = sorted({c["workshop_id"] for c in detail["commitments"]})
                accepting = set(workshops[::2])
                accepted_ids = []
                for c in detail["commitments"]:
                    if c["workshop_id"] in accepting:
                        key = makers[c["workshop_id"]]["key"]
                        await _post(client, f"/v1/commitments/{c['id']}/accept", key)
                        accepted_ids.append(c["id"])
                        made = c["quantity"] // 4
                        await _post(client, f"/v1/commitments/{c['id']}/progress", key,
                                    {"units_produced": made, "units_delivered": made // 2})
                before = await _detail(client, coordinator, call["id"])
                await check_invariants(db, call["id"])
                assert before["totals"]["accepted"] > 0 and before["totals"]["produced"] > 0

                # 3. Three workshops with open proposals decline them all, and 4. the worker rebalances
                # (enqueued after each decline's commit; the sweep would too). A rebalance that ran
                # before a workshop's first decline may have moved its proposals: the maker lists
                # them again, as a client would, until it has none left and the worker is idle.
                open_by_shop: dict[str, int] = {}
                for c in before["commitments"]:
                    if c["status"] == "proposed":
                        open_by_shop[c["workshop_id"]] = open_by_shop.get(c["workshop_id"], 0) + c["quantity"]
                decliners = sorted(open_by_shop, key=lambda w: -open_by_shop[w])[:3]
                limit = time.monotonic() + 60
                declined_units = 0
                while True:
                    left = 0
                    for w in decliners:
                        mine = (await client.get("/v1/commitments", headers=bearer(makers[w]["key"]), params={
                            "call_id": call["id"], "status": "proposed"})).json()["items"]
                        left += len(mine)
                        for c in mine:
                            response = await client.post(f"/v1/commitments/{c['id']}/decline",
                                                         json={"reason": "plus de plaques de PETG"},
                                                         headers=bearer(makers[w]["key"]))
                            assert response.status_code in (200, 409), response.text  # 409: moved meanwhile
                            declined_units += response.json()["quantity"] if response.status_code == 200 else 0
                    after = await _detail(client, coordinator, call["id"])
                    if not left and not after["rebalance_pending"] and after["rebalances"][-1]["reason"] == "decline":
                        break
                    assert time.monotonic() < limit, after["rebalances"]
                    await asyncio.sleep(0.2)
                await check_invariants(db, call["id"])
        finally:
            await db.dispose()

        # Accepted commitments are untouched; the decliners got nothing new.
        was = {c["id"]: c for c in before["commitments"]}
        now_by_id = {c["id"]: c for c in after["commitments"]}
        for cid in accepted_ids:
            assert now_by_id[cid]["status"] == "accepted"
            assert now_by_id[cid]["quantity"] == was[cid]["quantity"]
            assert now_by_id[cid]["units_produced"] == was[cid]["units_produced"]
        assert not [c for c in after["commitments"] if c["workshop_id"] in decliners and c["status"] in LIVE]
        # One rebalance, or several when the worker ran between the declines: together they moved
        # units and served again part of what the declines had taken away.
        assert sum(r["units_moved"] for r in after["rebalances"] if r["reason"] == "decline") > 0
        assert declined_units > 0
        # Not necessarily more than before minus the declines: the free capacity left may sit out of
        # reach of the points short of units (demand is 95 % of capacity). The LP below says whether
        # what was served again is all that could be.
        assert after["totals"]["committed"] >= before["totals"]["committed"] - declined_units

        # What is committed again is the optimum of what is left: the decliners removed, accepted
        # units fixed as lower bounds on their edges.
        covered, edges = _coverage(after)
        fixed = {}
        for cid in accepted_ids:
            c = now_by_id[cid]
            fixed[(c["workshop_id"], c["delivery_point"])] = fixed.get((c["workshop_id"], c["delivery_point"]), 0) + \
                c["quantity"]
        rest = [s for s in supplies if s[0] not in decliners]
        lp_covered, lp_cost = lp_optimum(rest, points, fixed=fixed)
        assert {k: round(v) for k, v in lp_covered.items()} == {k: covered.get(k, 0) for k in lp_covered}
        assert abs(_cost(edges, where) - lp_cost) <= max(1.0, 1e-9 * lp_cost) + sum(edges.values())

        with sqlite3.connect(broker.data_dir / "broker.db") as conn:
            events = dict(conn.execute(
                "SELECT type, count(*) FROM outbox_event WHERE resource_id = ? OR payload LIKE ? GROUP BY type",
                (call["id"], f'%{call["id"]}%')).fetchall())
        assert events["crisis_call.created"] == 1 and events["crisis_call.allocated"] == 1
        assert events["crisis_call.rebalanced"] >= 1 and events["commitment.declined"] >= 3
        assert events["commitment.created"] >= len(detail["commitments"])
        print(f"seeded 200 workshops in {seeding_s:.1f} s; {len(detail['commitments'])} commitments; "
              f"committed {detail['totals']['committed']} -> {after['totals']['committed']} of "
              f"{after['totals']['requested']}; {len(after['rebalances']) - 1} rebalance(s)")
