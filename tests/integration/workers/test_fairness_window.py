"""Matching's fairness term counts the awards (orders) of the last 12 months, each weighing
1 − age / 365 days: a fresh award lowers the winner's rank at the next matching, the same award
13 months old counts for nothing, six months old for half, cancelled for nothing; the cached
index follows the days going by without any registry version bump, and sums the awards made
before the day began again only after a cancellation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from factories import FAB_LAB, bearer, make_siret, make_workshop, matched, tenant
from sqlalchemy import update

from broker.db.fabrication import RegistryRepository, RequestRepository, WorkshopRepository
from broker.db.models import OrderRow
from broker.services.matching import CandidateCache, run, run_many

ITEM = "face-visor"
NOW = datetime.now(UTC)  # one instant for the whole test (the fairness inputs are those of its day)
NO_AWARD = "aucune commande remportée sur les 12 derniers mois\u00a0: équité 1 × poids 0,2"


def _idem(key: str) -> dict[str, str]:
    return {**bearer(key), "Idempotency-Key": str(uuid.uuid4())}


async def _post_request(client, buyer) -> str:
    body = {"item": ITEM, "quantity": 20, "min_quotes": 1, "delivery": {"commune_insee": "35238"},
            "deadline": (NOW + timedelta(days=20)).isoformat(),
            "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "500"}}
    response = await client.post("/v1/requests", json=body, headers=bearer(buyer))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _ranked(db, settings, request_id, *, cache: CandidateCache | None = None, now=NOW):
    """(workshop id, fairness component, fairness sentence) of the included workshops, best first,
    from a matching run now (through ``cache`` when given, else uncached)."""
    async with db.reader() as session:
        request = await RequestRepository(session).get(request_id, scope_org_id=None)
        if cache is None:
            result = await run(session, request, now=now, settings=settings.matching)
        else:
            [result] = await run_many(session, [request], now=now, settings=settings.matching, cache=cache)
    return [(i.workshop_id, i.components.fairness, i.reasons[3]) for i in result.included]


async def _move_orders(db, workshop_id: str, **values) -> None:
    async with db.writer() as session:
        await session.execute(update(OrderRow).where(OrderRow.workshop_id == workshop_id).values(**values))
        await session.commit()


async def test_fresh_awards_count_old_ones_fade_and_ranking_follows(client, admin_key, settings, db):
    shops = [await make_workshop(client, admin_key, name=f"FabLab {n}", commune_insee="35238", machines=FAB_LAB,
                                 capacities={ITEM: 40}) for n in ("Est", "Ouest")]
    keys = {shop["id"]: key for shop, key in shops}
    _org, buyer = await tenant(client, admin_key, "collectivite", "buyer", commune_insee="35238")

    # Same place, same machines, no award yet: a tie, broken by id.
    first_id = await _post_request(client, buyer)
    first = (await matched(client, buyer, first_id))["included"]
    assert len(first) == 2 and first[0]["score"] == first[1]["score"]
    assert [m["reasons"][3] for m in first] == [NO_AWARD, NO_AWARD]
    winner, other = first[0]["workshop_id"], first[1]["workshop_id"]
    assert winner < other

    # The tie-winner quotes and is awarded: one order, created now.
    quote = await client.post(f"/v1/requests/{first_id}/quotes", headers=_idem(keys[winner]),
                              json={"unit_price_eur_ht": "3.00", "vat_rate": "20", "quantity": 20,
                                    "delivery_date": (NOW + timedelta(days=15)).date().isoformat()})
    assert quote.status_code == 201, quote.text
    awarded = await client.post(f"/v1/requests/{first_id}/award", json={"quote_ids": [quote.json()["id"]]},
                                headers=_idem(buyer))
    assert awarded.status_code == 201, awarded.text

    # The API's cached index sees the award at the next request: the winner now ranks second, and
    # its explanation says what fairness measures.
    second_id = await _post_request(client, buyer)
    second = (await matched(client, buyer, second_id))["included"]
    assert [m["workshop_id"] for m in second] == [other, winner]
    assert [m["components"]["distance"] for m in second] == [first[0]["components"]["distance"]] * 2
    assert second[0]["components"]["slack"] == second[1]["components"]["slack"]
    assert second[0]["reasons"][3] == NO_AWARD
    assert second[1]["reasons"][3] == ("1 commande remportée sur les 12 derniers mois (compte pondéré par "
                                       "l'ancienneté)\u00a0: équité 0,83 × poids 0,2")
    fresh = await _ranked(db, settings, second_id)  # uncached: the same figures
    assert [w for w, _f, _r in fresh] == [other, winner]
    assert fresh[1][1] == pytest.approx(1 / (1 + 1 / 5), abs=1e-3)

    # A process's cache keeps its index while the day stays the same; as days go by, with no version
    # bump, the award fades (linearly over a year) and then counts for nothing.
    cache = CandidateCache()
    async with db.reader() as session:
        version = await RegistryRepository(session).current()
        today = await cache.index(session, ITEM, now=NOW)
        midnight = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
        assert await cache.index(session, ITEM, now=midnight) is today  # the same day: nothing to do
        half = await cache.index(session, ITEM, now=NOW + timedelta(days=182))
        gone = await cache.index(session, ITEM, now=NOW + timedelta(days=396))
        assert await RegistryRepository(session).current() == version
    row = today.row_of(winner)
    assert today.candidates[row].recent_wins == pytest.approx(1.0, abs=0.003)
    assert half.candidates[row].recent_wins == pytest.approx(1 - 182.5 / 365, abs=0.003)
    assert gone.candidates[row].recent_wins == 0.0
    assert half.tree is today.tree and gone.tree is today.tree  # refreshed, not rebuilt
    assert all(c.recent_wins == 0.0 for c in today.candidates if c.workshop_id != winner)

    # The order itself 13 months old: it does not count, the tie is back.
    await _move_orders(db, winner, created_at=NOW - timedelta(days=396))
    aged = await _ranked(db, settings, second_id, cache=CandidateCache())
    assert [(w, f) for w, f, _r in aged] == [(winner, 1.0), (other, 1.0)]
    assert aged[0][2] == NO_AWARD
    assert await _ranked(db, settings, second_id) == aged

    # Six months old: it counts about half, enough to rank the winner second again.
    await _move_orders(db, winner, created_at=NOW - timedelta(days=182))
    halved = await _ranked(db, settings, second_id, cache=CandidateCache())
    assert [w for w, _f, _r in halved] == [other, winner]
    assert halved[1][1] == pytest.approx(1 / (1 + (1 - 182.5 / 365) / 5), abs=1e-3)
    assert halved[1][2].startswith("0,5 commande remportée sur les 12 derniers mois")

    # A process's cache sums the awards made before the day began once (they only change when an
    # order is cancelled): a plain booking re-reads today's awards alone; a cancellation, through the
    # API, makes it sum again, and a cancelled order was no work won: it does not count.
    cache = CandidateCache()
    assert [w for w, _f, _r in await _ranked(db, settings, second_id, cache=cache)] == [other, winner]
    history = cache._history
    async with db.writer() as session:
        assert await WorkshopRepository(session).reserve(other, 1, capacity=10_000)
        await session.commit()
    booked = await _ranked(db, settings, second_id, cache=cache)
    assert [(w, f) for w, f, _r in booked] == [(w, f) for w, f, _r in halved]
    assert cache._history is history
    order_id = awarded.json()["orders"][0]["id"]
    cancelled = await client.post(f"/v1/orders/{order_id}/transitions", headers=bearer(buyer),
                                  json={"to": "cancelled", "note": "Besoin annulé par la collectivité"})
    assert cancelled.status_code == 200, cancelled.text
    after = await _ranked(db, settings, second_id, cache=cache)
    assert [(w, f) for w, f, _r in after] == [(winner, 1.0), (other, 1.0)]
    assert cache._history is not history
    assert await _ranked(db, settings, second_id) == after
