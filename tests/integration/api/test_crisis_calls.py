"""Crisis calls through the HTTP API: allocation, accept / decline / progress, rebalance, points
added and quantities raised, close; bad input is a 4xx that writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from factories import FAB_LAB, WOOD_SHOP, bearer, make_workshop, tenant
from sqlalchemy import text

from broker.services.crisis_allocation import rebalance_call
from broker.settings import CrisisSettings

# Visor makers around Rennes: (commune, units per day declared for face-visor)
MAKERS = [("35238", 30), ("35047", 20), ("35051", 25), ("35115", 15), ("35360", 10)]


def _deadline(days: int = 10) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


async def _makers(client, admin_key):
    out = []
    for i, (insee, per_day) in enumerate(MAKERS):
        shop, key = await make_workshop(client, admin_key, name=f"Fab lab {i}", commune_insee=insee, machines=FAB_LAB,
                                        radius_km=80, capacities={"face-visor": per_day})
        out.append((shop, key))
    return out


def _call_body(points):
    return {"item": "face-visor", "deadline": _deadline(), "priority": 1,
            "delivery_points": [{"label": label, "commune_insee": insee, "quantity": q, "priority": prio}
                                for label, insee, q, prio in points]}


async def _detail(client, key, call_id):
    response = await client.get(f"/v1/crisis-calls/{call_id}", headers=bearer(key))
    assert response.status_code == 200, response.text
    return response.json()


def _check_totals(detail):
    """Totals add up: over the points, over the commitments, and in order."""
    t = detail["totals"]
    live = [c for c in detail["commitments"] if c["status"] in ("proposed", "accepted", "completed")]
    agreed = [c for c in live if c["status"] != "proposed"]
    assert t["requested"] == sum(p["quantity"] for p in detail["delivery_points"])
    assert t["committed"] == sum(c["quantity"] for c in live) == sum(p["committed"] for p in detail["delivery_points"])
    assert t["accepted"] == sum(c["quantity"] for c in agreed)
    assert t["produced"] == sum(c["units_produced"] for c in agreed)
    assert t["delivered"] == sum(c["units_delivered"] for c in agreed)
    assert t["unmet"] == t["requested"] - t["committed"] == sum(p["unmet"] for p in detail["delivery_points"])
    assert t["requested"] >= t["committed"] >= t["accepted"] >= t["produced"] >= t["delivered"] >= 0
    for p in detail["delivery_points"]:
        assert p["committed"] <= p["quantity"]


async def test_call_allocates_and_makers_accept_decline_and_report(client, admin_key, db, settings):
    makers = await _makers(client, admin_key)
    _, coordinator = await tenant(client, admin_key, "coordination", "coordinator", name="ARS Bretagne")
    body = _call_body([("CHU de Rennes", "35238", 400, 1), ("EHPAD de Vitré", "35360", 150, 2),
                       ("Mairie de Fougères", "35115", 100, 3)])
    created = await client.post("/v1/crisis-calls", json=body, headers=bearer(coordinator))
    assert created.status_code == 201, created.text
    call = created.json()
    assert call["status"] == "open" and call["totals"]["requested"] == 650
    detail = await _detail(client, coordinator, call["id"])
    _check_totals(detail)
    assert detail["totals"]["committed"] > 0
    assert [r["reason"] for r in detail["rebalances"]] == ["allocation"]
    assert all(c["status"] == "proposed" for c in detail["commitments"])

    by_workshop = {shop["id"]: key for shop, key in makers}
    # `second` (declined below) serves the most urgent point, from another workshop than `first`:
    # its units then go to another maker's proposal for a less urgent point. Declining one for the
    # least urgent point may rightly move nothing (every workshop is fully booked: 600 of 650).
    priority = {p["id"]: p["priority"] for p in detail["delivery_points"]}
    commitments = sorted(detail["commitments"], key=lambda c: (priority[c["delivery_point"]], c["id"]))
    second = commitments[0]
    first = next(c for c in commitments if c["workshop_id"] != second["workshop_id"])
    owner = by_workshop[first["workshop_id"]]
    stranger = next(k for w, k in by_workshop.items() if w != first["workshop_id"])
    # Someone else's commitment does not exist for them.
    for path in ("accept", "decline"):
        response = await client.post(f"/v1/commitments/{first['id']}/{path}", json={"reason": "x"} if path == "decline"
                                     else None, headers=bearer(stranger))
        assert response.status_code == 404, response.text
    assert (await client.get(f"/v1/commitments/{first['id']}", headers=bearer(stranger))).status_code == 404

    mine = (await client.get("/v1/commitments", headers=bearer(owner))).json()["items"]
    assert first["id"] in {c["id"] for c in mine}
    assert {c["call"]["id"] for c in mine} == {call["id"]} and all(c["destination"]["label"] for c in mine)

    accepted = await client.post(f"/v1/commitments/{first['id']}/accept", headers=bearer(owner))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    again = await client.post(f"/v1/commitments/{first['id']}/accept", headers=bearer(owner))
    assert again.status_code == 409

    q = first["quantity"]
    for produced, delivered in ((q + 1, 0), (2, 3)):
        bad = await client.post(f"/v1/commitments/{first['id']}/progress", headers=bearer(owner),
                                json={"units_produced": produced, "units_delivered": delivered})
        assert bad.status_code == 422, bad.text
    ok = await client.post(f"/v1/commitments/{first['id']}/progress", headers=bearer(owner),
                           json={"units_produced": 3, "units_delivered": 1})
    assert ok.status_code == 200 and ok.json()["units_produced"] == 3
    back = await client.post(f"/v1/commitments/{first['id']}/progress", headers=bearer(owner),
                             json={"units_produced": 2, "units_delivered": 1})
    assert back.status_code == 422
    _check_totals(await _detail(client, coordinator, call["id"]))

    # A decline releases the capacity and flags the call; the rebalance re-allocates the units.
    decliner = by_workshop[second["workshop_id"]]
    declined = await client.post(f"/v1/commitments/{second['id']}/decline", json={"reason": "imprimante en panne"},
                                 headers=bearer(decliner))
    assert declined.status_code == 200, declined.text
    flagged = await _detail(client, coordinator, call["id"])
    assert flagged["rebalance_pending"] is True
    _check_totals(flagged)
    async with db.writer() as session:
        done = await rebalance_call(session, call_id=call["id"], settings=CrisisSettings(), now=datetime.now(UTC))
        await session.commit()
    assert done is not None and done.reason == "decline"
    after = await _detail(client, coordinator, call["id"])
    _check_totals(after)
    assert after["rebalance_pending"] is False
    assert after["rebalances"][-1]["reason"] == "decline"
    kept = next(c for c in after["commitments"] if c["id"] == first["id"])
    assert kept["status"] == "accepted" and kept["quantity"] == first["quantity"]
    assert all(c["workshop_id"] != second["workshop_id"] for c in after["commitments"]
               if c["status"] == "proposed" and c["created_at"] > second["created_at"])
    # A second run finds nothing to do (idempotent).
    async with db.writer() as session:
        assert await rebalance_call(session, call_id=call["id"], settings=CrisisSettings(),
                                    now=datetime.now(UTC)) is None
        await session.commit()

    # Delivering everything completes the commitment and releases its capacity.
    done = await client.post(f"/v1/commitments/{first['id']}/progress", headers=bearer(owner),
                             json={"units_produced": q, "units_delivered": q})
    assert done.status_code == 200 and done.json()["status"] == "completed"
    _check_totals(await _detail(client, coordinator, call["id"]))

    async with db.reader() as session:
        types = {r[0] for r in (await session.execute(text(
            "SELECT type FROM outbox_event WHERE type LIKE 'crisis_call.%' OR type LIKE 'commitment.%'"))).all()}
    assert {"crisis_call.created", "crisis_call.allocated", "commitment.created", "commitment.accepted",
            "commitment.declined", "crisis_call.rebalanced", "crisis_call.progress", "commitment.completed"} <= types


async def test_points_added_and_quantity_raised_allocate_only_the_difference(client, admin_key):
    makers = await _makers(client, admin_key)
    _, coordinator = await tenant(client, admin_key, "coordination", "coordinator")
    call = (await client.post("/v1/crisis-calls", json=_call_body([("CHU de Rennes", "35238", 100, 1)]),
                              headers=bearer(coordinator))).json()
    before = await _detail(client, coordinator, call["id"])
    assert before["totals"]["unmet"] == 0
    keys = {shop["id"]: key for shop, key in makers}
    c0 = before["commitments"][0]
    assert (await client.post(f"/v1/commitments/{c0['id']}/accept", headers=bearer(keys[c0["workshop_id"]]))
            ).status_code == 200
    added = await client.post(f"/v1/crisis-calls/{call['id']}/delivery-points", headers=bearer(coordinator),
                              json={"delivery_points": [{"label": "Pharmacie de Bruz", "commune_insee": "35047",
                                                         "quantity": 60, "priority": 2}]})
    assert added.status_code == 201, added.text
    point = before["delivery_points"][0]["id"]
    raised = await client.patch(f"/v1/crisis-calls/{call['id']}/delivery-points/{point}", headers=bearer(coordinator),
                                json={"quantity": 140})
    assert raised.status_code == 200, raised.text
    lower = await client.patch(f"/v1/crisis-calls/{call['id']}/delivery-points/{point}", headers=bearer(coordinator),
                               json={"quantity": 120})
    assert lower.status_code == 422
    after = await _detail(client, coordinator, call["id"])
    _check_totals(after)
    assert after["totals"]["requested"] == 200 and after["totals"]["committed"] == 200
    # Every commitment of the first allocation is still there, unchanged.
    now = {c["id"]: c for c in after["commitments"]}
    for c in before["commitments"]:
        assert now[c["id"]]["quantity"] == c["quantity"] and now[c["id"]]["status"] in ("proposed", "accepted")
    assert [r["reason"] for r in after["rebalances"]] == ["allocation", "points_added", "quantity_raised"]

    closed = await client.post(f"/v1/crisis-calls/{call['id']}/close", headers=bearer(coordinator))
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    final = await _detail(client, coordinator, call["id"])
    assert {c["status"] for c in final["commitments"]} == {"accepted", "cancelled"}
    _check_totals(final)
    assert (await client.post(f"/v1/crisis-calls/{call['id']}/delivery-points", headers=bearer(coordinator),
                              json={"delivery_points": [{"label": "X", "commune_insee": "35047", "quantity": 1,
                                                         "priority": 1}]})).status_code == 409


async def test_bad_input_is_refused_and_writes_nothing(client, admin_key, db):
    await make_workshop(client, admin_key, name="Fab lab", commune_insee="35238", machines=FAB_LAB, radius_km=80,
                        capacities={"face-visor": 10})
    await make_workshop(client, admin_key, name="Menuiserie", commune_insee="35238", machines=WOOD_SHOP)
    _, coordinator = await tenant(client, admin_key, "coordination", "coordinator")
    good = [("CHU de Rennes", "35238", 50, 1)]
    cases = [
        (_call_body([("CHU de Rennes", "35238", 0, 1)]), 400, "/delivery_points/0/quantity"),
        (_call_body([("Lieu inconnu", "99999", 10, 1)]), 422, "/delivery_points/0/commune_insee"),
        (_call_body(good) | {"item": "uns1-mask"}, 422, "/item"),  # nobody holds the S76-001 certification
        (_call_body(good) | {"item": "no-such-item"}, 422, "/item"),
        (_call_body(good) | {"deadline": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}, 422, "/deadline"),
        (_call_body([("CHU", "35238", 5, 1), ("chu", "35047", 5, 1)]), 422, "/delivery_points/1/label"),
        (_call_body(good) | {"priority": 9}, 400, "/priority"),
        (_call_body([]), 400, "/delivery_points"),
        (_call_body(good) | {"status": "closed"}, 400, "/status"),
    ]
    for body, status, pointer in cases:
        response = await client.post("/v1/crisis-calls", json=body, headers=bearer(coordinator))
        assert response.status_code == status, (body, response.text)
        assert pointer in [e.get("pointer") for e in response.json().get("errors", [])], response.text
    buyer = (await tenant(client, admin_key, "collectivite", "buyer"))[1]
    assert (await client.post("/v1/crisis-calls", json=_call_body(good), headers=bearer(buyer))).status_code == 403
    async with db.reader() as session:
        for table in ("crisis_call", "delivery_point", "commitment", "rebalance"):
            assert (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one() == 0, table
        assert (await session.execute(text(
            "SELECT count(*) FROM outbox_event WHERE type LIKE 'crisis_call.%'"))).scalar_one() == 0


async def test_accept_never_promises_a_point_more_than_its_quantity(client, admin_key, db):
    """The point's counter is the last line of defence: with its units already promised (as if a
    concurrent path had taken them), an accept is a 409 and the proposal stays open."""
    makers = await _makers(client, admin_key)
    _, coordinator = await tenant(client, admin_key, "coordination", "coordinator")
    call = (await client.post("/v1/crisis-calls", json=_call_body([("CHU de Rennes", "35238", 60, 1)]),
                              headers=bearer(coordinator))).json()
    c = (await _detail(client, coordinator, call["id"]))["commitments"][0]
    async with db.writer() as session:
        await session.execute(text("UPDATE delivery_point SET accepted_units = quantity - :n + 1 WHERE id = :p"),
                              {"n": c["quantity"], "p": c["delivery_point"]})
        await session.commit()
    key = {shop["id"]: k for shop, k in makers}[c["workshop_id"]]
    refused = await client.post(f"/v1/commitments/{c['id']}/accept", headers=bearer(key))
    assert refused.status_code == 409 and refused.json()["code"] == "delivery-point-full", refused.text
    assert (await client.get(f"/v1/commitments/{c['id']}", headers=bearer(key))).json()["status"] == "proposed"
