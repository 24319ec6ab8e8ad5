"""A partial award leaves the rest awardable (issue 21 item 3): 600 of 1 500 visors awarded, the other
quotes stay open; the rest awarded later rejects them; never more than the units left, even under two
concurrent awards; a request that may not be split is done after one award; a request still
awardable is not closed; the DECP record follows the second award."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from factories import FAB_LAB, WOOD_SHOP, bearer, make_siret, make_workshop, tenant
from sqlalchemy import select

from broker.db.models import DecpRecordRow, RequestRow
from broker.domain.awarding import awardable, remaining_units
from broker.domain.fabrication import Order, Quote

LABS = (("Fab lab de Lannion", "22113"), ("Le Bocal, Saint-Brieuc", "22278"), ("Fab lab de Vannes", "56260"))
DESKS = (("Menuiserie du Pays de Rennes", "35238"), ("Atelier Bois de Vitré", "35360"),
         ("Ébénisterie de Fougères", "35115"))
WHY = "Livraison échelonnée demandée par les écoles"


def idem() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture
async def labs(client, admin_key) -> list[str]:
    """Three fab labs able to make 1 500 visors each by the deadline: their maker keys."""
    keys = []
    for name, insee in LABS:
        _shop, key = await make_workshop(client, admin_key, name=name, commune_insee=insee, machines=FAB_LAB,
                                         capacities={"face-visor": 200})
        keys.append(key)
    return keys


@pytest.fixture
async def buyer(client, admin_key) -> str:
    _org, key = await tenant(client, admin_key, "collectivite", "buyer", name="Commune de Ploërmel",
                             commune_insee="56165")
    return key


async def _visors(client: Any, buyer: str, makers: list[str], quantities: list[int], *,
                  allow_split: bool = True) -> tuple[str, list[str]]:
    """A request of 1 500 visors (split allowed), one quote per maker: 2,80 €, 2,90 €, 3,00 € HT a unit."""
    body = {"item": "face-visor", "quantity": 1500, "allow_split": allow_split,
            "deadline": (datetime.now(UTC) + timedelta(days=21)).isoformat(),
            "delivery": {"commune_insee": "22113", "address": "Centre hospitalier, 1 rue de Kergomar"},
            "procurement": {"buyer_siret": make_siret()}, "budget_eur_ht": "4500.00"}
    request = await _ok(await client.post("/v1/requests", json=body, headers={**bearer(buyer), **idem()}), 201)
    delivery = (datetime.now(UTC).date() + timedelta(days=14)).isoformat()
    quote_ids = []
    for key, quantity, price in zip(makers, quantities, ("2.80", "2.90", "3.00"), strict=True):
        quote = await _ok(await client.post(
            f"/v1/requests/{request['id']}/quotes", headers={**bearer(key), **idem()},
            json={"unit_price_eur_ht": price, "vat_rate": "5.5", "quantity": quantity, "delivery_date": delivery}),
            201)
        quote_ids.append(quote["id"])
    return request["id"], quote_ids


async def _award(client: Any, buyer: str, request_id: str, quote_ids: list[str]) -> Any:
    return await client.post(f"/v1/requests/{request_id}/award", headers={**bearer(buyer), **idem()},
                             json={"quote_ids": quote_ids, "justification": WHY})


async def _quote_statuses(client: Any, buyer: str, request_id: str) -> list[str]:
    """The request's quotes' statuses, in the order they were submitted."""
    listed = await _ok(await client.get(f"/v1/requests/{request_id}/quotes", headers=bearer(buyer)))
    return [item["quote"]["status"] for item in listed["items"]]


async def _status(client: Any, buyer: str, request_id: str) -> str:
    return str((await _ok(await client.get(f"/v1/requests/{request_id}", headers=bearer(buyer))))["status"])


async def test_the_rest_of_a_partial_award_is_awarded_later(client, buyer, labs, db):
    request_id, (six, nine, whole) = await _visors(client, buyer, labs, [600, 900, 1500])
    first = await _award(client, buyer, request_id, [six])
    assert first.status_code == 201, first.text
    assert await _status(client, buyer, request_id) == "awarded"
    assert await _quote_statuses(client, buyer, request_id) == ["accepted", "submitted", "submitted"]

    over = await _award(client, buyer, request_id, [whole])
    assert over.status_code == 422, over.text
    assert over.json()["code"] == "award-over-remaining"
    assert "1500 units, more than the 900 left" in over.json()["detail"]

    second = await _award(client, buyer, request_id, [nine])
    assert second.status_code == 201, second.text
    assert [o["quantity"] for o in second.json()["orders"]] == [900]
    assert await _quote_statuses(client, buyer, request_id) == ["accepted", "accepted", "rejected"]
    assert await _status(client, buyer, request_id) == "awarded"
    done = await _award(client, buyer, request_id, [whole])
    assert done.status_code == 409 and done.json()["code"] == "not-awardable"
    orders = await _ok(await client.get("/v1/orders", params={"request_id": request_id}, headers=bearer(buyer)))
    assert sorted(o["quantity"] for o in orders["items"]) == [600, 900]


async def test_each_award_appends_its_justifications(client, buyer, labs, db):
    request_id, (_cheapest, nine, dearest) = await _visors(client, buyer, labs, [600, 900, 600])
    await _ok(await _award(client, buyer, request_id, [nine]), 201)  # passes over the 2,80 € quote
    await _ok(await _award(client, buyer, request_id, [dearest]), 201)  # and again
    async with db.reader() as session:
        stored = (await session.execute(select(RequestRow.award_justifications)
                                        .where(RequestRow.id == request_id))).scalar_one()
    assert [j["code"] for j in stored] == ["not-lowest", "not-lowest"] and {j["text"] for j in stored} == {WHY}
    assert await _quote_statuses(client, buyer, request_id) == ["rejected", "accepted", "accepted"]


async def test_a_request_that_may_not_be_split_is_done_after_its_award(client, buyer, labs):
    request_id, (first, second, _third) = await _visors(client, buyer, labs, [1500, 1500, 1500], allow_split=False)
    assert (await _award(client, buyer, request_id, [first])).status_code == 201
    again = await _award(client, buyer, request_id, [second])
    assert again.status_code == 409 and again.json()["code"] == "not-awardable"
    assert await _quote_statuses(client, buyer, request_id) == ["accepted", "rejected", "rejected"]


async def test_a_request_still_awardable_is_not_closed(client, buyer, labs):
    request_id, (six, nine, _whole) = await _visors(client, buyer, labs, [600, 900, 1500])
    [order] = (await _ok(await _award(client, buyer, request_id, [six]), 201))["orders"]
    await _ok(await client.post(f"/v1/orders/{order['id']}/transitions", headers=bearer(buyer),
                                json={"to": "cancelled", "note": "Atelier fermé pour travaux"}))
    assert await _status(client, buyer, request_id) == "awarded"  # every order finished, but quotes are open
    [order] = (await _ok(await _award(client, buyer, request_id, [nine]), 201))["orders"]
    assert await _quote_statuses(client, buyer, request_id) == ["accepted", "accepted", "submitted"]


async def test_two_concurrent_second_awards_never_over_award(client, buyer, labs):
    request_id, (six, nine, other) = await _visors(client, buyer, labs, [600, 900, 900])
    await _ok(await _award(client, buyer, request_id, [six]), 201)
    responses = await asyncio.gather(_award(client, buyer, request_id, [nine]),
                                     _award(client, buyer, request_id, [other]))
    codes = sorted(r.status_code for r in responses)
    assert codes[0] == 201 and codes[1] in (409, 422), [r.text for r in responses]
    orders = await _ok(await client.get("/v1/orders", params={"request_id": request_id}, headers=bearer(buyer)))
    assert sum(o["quantity"] for o in orders["items"]) == 1500


@pytest.fixture
async def carpenters(client, admin_key) -> list[str]:
    """Three wood workshops able to make 30 desks by the deadline: their maker keys."""
    keys = []
    for name, insee in DESKS:
        _shop, key = await make_workshop(client, admin_key, name=name, commune_insee=insee, machines=WOOD_SHOP,
                                         capacities={"france-services-desk": 5})
        keys.append(key)
    return keys


async def _desks(client: Any, buyer: str, makers: list[str], quantities: list[int]) -> tuple[str, list[str]]:
    """30 desks (45 000 € HT budget, split allowed), one quote per maker at 1 500 € then 1 550 € HT."""
    body = {"item": "france-services-desk", "quantity": 30, "allow_split": True,
            "deadline": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
            "delivery": {"commune_insee": "35238", "address": "Maison France Services, 2 rue de la Mairie"},
            "procurement": {"buyer_siret": make_siret()}, "budget_eur_ht": "45000.00"}
    request = await _ok(await client.post("/v1/requests", json=body, headers={**bearer(buyer), **idem()}), 201)
    delivery = (datetime.now(UTC).date() + timedelta(days=25)).isoformat()
    quote_ids = []
    for key, quantity, price in zip(makers, quantities, ("1500.00", "1550.00"), strict=False):
        quote = await _ok(await client.post(
            f"/v1/requests/{request['id']}/quotes", headers={**bearer(key), **idem()},
            json={"unit_price_eur_ht": price, "vat_rate": "20", "quantity": quantity, "delivery_date": delivery}),
            201)
        quote_ids.append(quote["id"])
    return request["id"], quote_ids


async def _record(db: Any, request_id: str) -> DecpRecordRow | None:
    async with db.reader() as session:
        found: DecpRecordRow | None = (await session.execute(
            select(DecpRecordRow).where(DecpRecordRow.request_id == request_id))).scalar_one_or_none()
        return found


async def test_the_decp_record_follows_the_second_award(client, buyer, carpenters, db):
    request_id, (first, second) = await _desks(client, buyer, carpenters, [28, 2])
    await _ok(await _award(client, buyer, request_id, [first]), 201)  # 28 × 1 500 € = 42 000 € HT
    record = await _record(db, request_id)
    assert record is not None and record.amount_cents == 42_000_00
    await _ok(await _award(client, buyer, request_id, [second]), 201)  # + 2 × 1 550 €
    updated = await _record(db, request_id)
    assert updated is not None and updated.id == record.id and updated.amount_cents == 45_100_00
    assert updated.marche["montant"] == 45100 and len(updated.marche["titulaires"]) == 2


async def test_the_decp_record_is_created_when_the_second_award_reaches_the_threshold(client, buyer, carpenters, db):
    request_id, (first, second) = await _desks(client, buyer, carpenters, [20, 10])
    await _ok(await _award(client, buyer, request_id, [first]), 201)  # 30 000 € HT: below the threshold
    assert await _record(db, request_id) is None
    await _ok(await _award(client, buyer, request_id, [second]), 201)  # + 15 500 €
    record = await _record(db, request_id)
    assert record is not None and record.amount_cents == 45_500_00 and len(record.marche["titulaires"]) == 2


def test_awardable_is_one_pure_rule():
    now = datetime.now(UTC)
    day = timedelta(days=1)

    def order(quantity: int, status: str = "awarded") -> Order:
        return Order(id="o", number="BC", request_id="r", quote_id="q", buyer_org_id="b", workshop_id="w",
                     maker_org_id="m", quantity=quantity, unit_price_cents=280, vat_rate_bp=550,
                     delivery_date=now.date(), status=status, units_done=0, tracking=None, late=False, created_at=now)

    def quote(status: str = "submitted", valid: timedelta = day) -> Quote:
        return Quote(id="q", request_id="r", workshop_id="w", unit_price_cents=290, vat_rate_bp=550, quantity=900,
                     delivery_date=now.date(), valid_until=now + valid, note="", status=status, created_at=now)

    def rule(status: str = "awarded", split: bool = True, orders=(order(600),), quotes=(quote(),)) -> bool:
        return awardable(status=status, allow_split=split, quantity=1500, orders=orders, quotes=quotes, now=now)

    assert rule(status="quoting", orders=(), quotes=())
    assert rule()
    assert not rule(split=False)
    assert not rule(orders=(order(600), order(900)))
    assert rule(orders=(order(600), order(900, "cancelled")))
    assert not rule(quotes=(quote(valid=-day),)) and not rule(quotes=(quote("expired"),))
    assert not rule(status="closed") and not rule(status="open")
    assert remaining_units(1500, [order(600), order(900, "cancelled")]) == 900
