"""The candidate index cache over two registry counters: an award, a release or a crisis booking
moves only ``bookings``, and the next matching reads the new reserved units, on-time rates and
recent wins into the cached index without rebuilding it; a change of a workshop itself (pause, a
machine) moves ``workshops`` and rebuilds it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from factories import FAB_LAB, bearer, make_siret, make_workshop, tenant

from broker.db.crisis import CrisisRepository
from broker.db.fabrication import RegistryRepository, RequestRepository, WorkshopRepository
from broker.services.matching import CandidateCache, run_many

ITEM = "face-visor"
FULL_BUILD = CandidateCache.build  # unpatched, for the reference index
NOW = datetime.now(UTC)  # one instant for the whole test: the fairness inputs are those of its day


def count_builds(monkeypatch) -> list[str | None]:
    """Items whose index is built from scratch from now on, in order (by any cache)."""
    built: list[str | None] = []

    async def counted(session, item_slug, **kw):
        built.append(item_slug)
        return await FULL_BUILD(session, item_slug, **kw)

    monkeypatch.setattr(CandidateCache, "build", staticmethod(counted))
    return built


async def _post_request(client, buyer) -> str:
    body = {"item": ITEM, "quantity": 300, "allow_split": True, "delivery": {"commune_insee": "35238"},
            "deadline": (datetime.now(UTC) + timedelta(days=20)).isoformat(),
            "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "500"}}
    response = await client.post("/v1/requests", json=body, headers=bearer(buyer))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _capacities(db, settings, cache, request_id) -> dict[str, int]:
    """The next matching, as the worker runs it: units per included workshop."""
    async with db.reader() as session:
        request = await RequestRepository(session).get(request_id, scope_org_id=None)
        [result] = await run_many(session, [request], now=NOW, settings=settings.matching, cache=cache)
    return {i.workshop_id: i.capacity_units for i in result.included}


async def _same_as_rebuilt(db, index) -> None:
    async with db.reader() as session:
        rebuilt = await FULL_BUILD(session, ITEM, now=NOW)
    assert index.candidates == rebuilt.candidates
    for name in ("reserved", "on_time", "recent_wins"):
        assert np.array_equal(getattr(index, name), getattr(rebuilt, name), equal_nan=True), name


async def _index(db, cache):
    async with db.reader() as session:
        return await cache.index(session, ITEM, now=NOW)


async def test_bookings_refresh_the_index_and_workshop_changes_rebuild_it(client, admin_key, settings, db,
                                                                          monkeypatch):
    a, _a_key = await make_workshop(client, admin_key, name="FabLab A", commune_insee="35238", machines=FAB_LAB,
                                    capacities={ITEM: 40})
    b, b_key = await make_workshop(client, admin_key, name="FabLab B", commune_insee="35047", machines=FAB_LAB,
                                   capacities={ITEM: 40})
    _org, buyer = await tenant(client, admin_key, "collectivite", "buyer", commune_insee="35238")
    request_id = await _post_request(client, buyer)  # matched inline, by the app's own cache
    builds = count_builds(monkeypatch)
    cache = CandidateCache()

    first = await _capacities(db, settings, cache, request_id)
    assert set(first) == {a["id"], b["id"]} and builds == [ITEM]
    base = await _index(db, cache)
    assert await _index(db, cache) is base  # nothing moved: the same index, no query but the versions

    # An award books 30 units of A: the next matching sees them, without a rebuild.
    async with db.writer() as session:
        before = await RegistryRepository(session).current()
        assert await WorkshopRepository(session).reserve(a["id"], 30, capacity=10_000)
        await session.commit()
    async with db.reader() as session:
        after = await RegistryRepository(session).current()
    assert after == (before.workshops, before.bookings + 1)
    booked = await _capacities(db, settings, cache, request_id)
    assert booked == {a["id"]: first[a["id"]] - 30, b["id"]: first[b["id"]]}
    assert builds == [ITEM]
    index = await _index(db, cache)
    assert index is not base and index.tree is base.tree and index.processes is base.processes
    row = index.row_of(a["id"])
    # No order was written: reserved units move, the fairness input (orders of the last 12 months) does not.
    assert (index.candidates[row].reserved_units, index.candidates[row].recent_wins) == (30, 0.0)
    assert base.candidates[row].reserved_units == 0  # the old index is left as it was
    await _same_as_rebuilt(db, index)

    # A delivery on time releases 10 of them; a crisis commitment books 5 of B.
    async with db.writer() as session:
        await WorkshopRepository(session).release(a["id"], 10, delivered_on_time=True)
        await session.commit()
    async with db.writer() as session:
        crisis = CrisisRepository(session)
        assert await crisis.book_many([(b["id"], 5, 10_000)])
        await crisis.bookings_changed()
        await session.commit()
    assert await _capacities(db, settings, cache, request_id) == {
        a["id"]: first[a["id"]] - 20, b["id"]: first[b["id"]] - 5}
    assert builds == [ITEM]
    index = await _index(db, cache)
    assert index.candidates[row].on_time_rate == 1.0 and index.tree is base.tree
    await _same_as_rebuilt(db, index)

    # B pauses (its profile): the index is rebuilt, and B is no longer included.
    profile = {"commune_insee": "35047", "delivery_radius_km": 250, "trades": ["numerique"],
               "labels": ["manufacture-de-proximite"], "paused": True}
    response = await client.put("/v1/workshops/me", json=profile, headers=bearer(b_key))
    assert response.status_code == 200, response.text
    assert await _capacities(db, settings, cache, request_id) == {a["id"]: first[a["id"]] - 20}
    assert builds == [ITEM, ITEM]
    paused = await _index(db, cache)
    assert paused.tree is not base.tree and paused.paused[paused.row_of(b["id"])]

    # A machine added is a change of the workshop too.
    added = await client.post("/v1/workshops/me/machines", json=FAB_LAB[0], headers=bearer(b_key))
    assert added.status_code == 201, added.text
    await _index(db, cache)
    assert builds == [ITEM, ITEM, ITEM]
