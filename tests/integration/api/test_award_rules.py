"""The award rules over HTTP (issue 17, item 5): each 409 with the figures and members the UI needs,
its justified retry, and the award record (justifications, deciding key, time) it leaves."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from factories import FAB_LAB, WOOD_SHOP, bearer, make_siret, make_workshop, tenant

SHOPS = [("Menuiserie du Pays de Rennes", "35238", WOOD_SHOP), ("Atelier Bois de Vitré", "35360", WOOD_SHOP),
         ("Ébénisterie de Quimper", "29232", WOOD_SHOP), ("Fab lab de Vannes", "56260", FAB_LAB)]
NNBSP, NBSP = "\u202f", "\u00a0"


def idem() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def desk(**overrides: Any) -> dict[str, Any]:
    body = {
        "item": "france-services-desk", "quantity": 6,
        "deadline": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        "delivery": {"commune_insee": "35238", "address": "Maison France Services, 2 rue de la Mairie"},
        "procurement": {"buyer_siret": make_siret()},
        "budget_eur_ht": "7000.00",
    }
    return body | overrides


@pytest.fixture
async def shops(client, admin_key) -> dict[str, tuple[dict[str, Any], str]]:
    made = {}
    for name, insee, machines in SHOPS:
        made[name] = await make_workshop(client, admin_key, name=name, commune_insee=insee, machines=machines,
                                         capacities={"france-services-desk": 5})
    return made


async def buyer(client, admin_key) -> str:
    """A fresh buyer per scenario: its awards and its cumulative need per CPV group are its own."""
    _org, key = await tenant(client, admin_key, "collectivite", "buyer", name=f"Commune {uuid.uuid4().hex[:6]}",
                             commune_insee="35238")
    return key


async def open_request(client, key: str, **overrides: Any) -> dict[str, Any]:
    created = await client.post("/v1/requests", json=desk(**overrides), headers={**bearer(key), **idem()})
    assert created.status_code == 201, created.text
    return dict(created.json())


async def quote(client, request_id: str, maker: str, price: str, *, days: int = 20, quantity: int = 6) -> str:
    posted = await client.post(
        f"/v1/requests/{request_id}/quotes", headers={**bearer(maker), **idem()},
        json={"unit_price_eur_ht": price, "vat_rate": "20", "quantity": quantity,
              "delivery_date": (datetime.now(UTC).date() + timedelta(days=days)).isoformat()})
    assert posted.status_code == 201, posted.text
    return str(posted.json()["id"])


async def award(client, key: str, request_id: str, quote_id: str, justification: str | None = None,
                headers: dict[str, str] | None = None) -> Any:
    body: dict[str, Any] = {"quote_ids": [quote_id]}
    if justification is not None:
        body["justification"] = justification
    return await client.post(f"/v1/requests/{request_id}/award", json=body,
                             headers={**bearer(key), **(headers or idem())})


def shop_id(shops, name: str) -> str:
    return str(shops[name][0]["id"])


@pytest.mark.parametrize("procedure", ["sans_publicite", "mapa"])
async def test_passing_over_the_lowest_valid_quote_needs_a_justification(client, admin_key, shops, procedure):
    key = await buyer(client, admin_key)
    extra: dict[str, Any] = {}
    if procedure == "mapa":  # 70 000 € HT of furniture: an adapted procedure, the same rules
        extra = {"quote_window_hours": 168,
                 "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "70000.00"}}
    request = await open_request(client, key, **extra)
    assert request["procurement"]["procedure"] == procedure
    rennes = await quote(client, request["id"], shops["Menuiserie du Pays de Rennes"][1], "1150.00")
    vitre = await quote(client, request["id"], shops["Atelier Bois de Vitré"][1], "1090.00")
    await quote(client, request["id"], shops["Ébénisterie de Quimper"][1], "1240.00")

    compared = (await client.get(f"/v1/requests/{request['id']}/quotes", headers=bearer(key))).json()
    assert compared["lowest_valid_quote_id"] == vitre
    assert all(c["valid"] and c["flags"] == [] for c in compared["items"])

    headers = idem()
    refused = await award(client, key, request["id"], rennes, headers=headers)
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert (problem["code"], problem["reason"]) == ("justification-required", "not-lowest")
    assert problem["quote_id"] == vitre and problem["workshop_id"] == shop_id(shops, "Atelier Bois de Vitré")
    assert f"«{NBSP}Atelier Bois de Vitré{NBSP}»" in problem["detail"]
    assert f"7{NNBSP}848,00{NBSP}€ TTC contre 8{NNBSP}280,00{NBSP}€ TTC" in problem["detail"]
    assert [r["reason"] for r in problem["rules"]] == ["not-lowest"]
    assert problem["rules"][0]["total_eur_ttc"] == "7848.00"
    replay = await award(client, key, request["id"], rennes, headers=headers)
    assert replay.status_code == 409 and replay.json() == problem  # the refusal is kept under its key

    pending = (await client.get(f"/v1/requests/{request['id']}", headers=bearer(key))).json()
    assert pending["status"] == "quoting" and pending["award_justifications"] is None

    text = "Délai de livraison de l'atelier retenu plus sûr pour l'ouverture de la maison France Services"
    justified = await award(client, key, request["id"], rennes, text)
    assert justified.status_code == 201, justified.text
    record = (await client.get(f"/v1/requests/{request['id']}", headers=bearer(key))).json()
    assert record["status"] == "awarded" and record["award_justification"] == text
    assert record["award_justifications"] == [{"code": "not-lowest", "text": text}]
    assert record["awarded_by"] == "test" and record["awarded_at"] is not None  # the key's label (factories)

    events = (await client.get("/v1/events", headers=bearer(key))).json()["items"]
    created = [e for e in events if e["type"] == "order.created" and e["data"]["request_id"] == request["id"]]
    assert [e["data"]["justifications"] for e in created] == [[{"code": "not-lowest", "text": text}]]
    audit = (await client.get("/v1/audit-log", headers=bearer(key), params={"limit": 100})).json()["items"]
    awards = [(a["resource_id"], a["status_code"]) for a in audit if a["action"].endswith("/award")]
    assert (request["id"], 201) in awards
    audited = next(a for a in audit if a["action"].endswith("/award") and a["status_code"] == 201
                   and a["resource_id"] == request["id"])
    assert audited["detail"]["justifications"] == [{"code": "not-lowest", "text": text}]


async def test_the_lowest_valid_quote_needs_no_justification(client, admin_key, shops):
    key = await buyer(client, admin_key)
    request = await open_request(client, key, min_quotes=2)
    await quote(client, request["id"], shops["Menuiserie du Pays de Rennes"][1], "1150.00")
    vitre = await quote(client, request["id"], shops["Atelier Bois de Vitré"][1], "1090.00")
    awarded = await award(client, key, request["id"], vitre)
    assert awarded.status_code == 201, awarded.text
    record = (await client.get(f"/v1/requests/{request['id']}", headers=bearer(key))).json()
    assert record["award_justifications"] == [] and record["awarded_by"] == "test"
    events = (await client.get("/v1/events", headers=bearer(key))).json()["items"]
    created = next(e for e in events if e["type"] == "order.created" and e["data"]["request_id"] == request["id"])
    assert "justifications" not in created["data"]


async def test_a_late_quote_needs_a_justification(client, admin_key, shops):
    key = await buyer(client, admin_key)
    request = await open_request(client, key, min_quotes=2)
    late = await quote(client, request["id"], shops["Menuiserie du Pays de Rennes"][1], "1000.00", days=40)
    await quote(client, request["id"], shops["Atelier Bois de Vitré"][1], "1100.00")
    compared = {c["quote"]["id"]: c for c in
                (await client.get(f"/v1/requests/{request['id']}/quotes", headers=bearer(key))).json()["items"]}
    assert (compared[late]["flags"], compared[late]["valid"]) == (["late"], False)

    refused = await award(client, key, request["id"], late)
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert (problem["code"], problem["reason"], problem["quote_id"]) == ("justification-required", "invalid-quote",
                                                                         late)
    assert problem["rules"][0]["flags"] == ["late"] and "après l'échéance" in problem["detail"]
    text = "Livraison en deux temps acceptée par le service"
    assert (await award(client, key, request["id"], late, text)).status_code == 201
    record = (await client.get(f"/v1/requests/{request['id']}", headers=bearer(key))).json()
    assert record["award_justifications"] == [{"code": "invalid-quote", "text": text}]


async def test_rotation_after_two_wins_of_the_same_workshop(client, admin_key, shops):
    key = await buyer(client, admin_key)
    rennes_key, vitre_key = shops["Menuiserie du Pays de Rennes"][1], shops["Atelier Bois de Vitré"][1]
    rennes = shop_id(shops, "Menuiserie du Pays de Rennes")

    async def round_(rennes_price: str) -> tuple[str, str]:
        request = await open_request(client, key, min_quotes=2, quantity=1, budget_eur_ht="1200.00")
        chosen = await quote(client, request["id"], rennes_key, rennes_price, quantity=1)
        await quote(client, request["id"], vitre_key, "1100.00", quantity=1)
        return request["id"], chosen

    for _ in range(2):  # two wins: no justification needed yet
        request_id, chosen = await round_("1000.00")
        assert (await award(client, key, request_id, chosen)).status_code == 201

    request_id, chosen = await round_("1000.00")
    refused = await award(client, key, request_id, chosen)
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert (problem["code"], problem["reason"]) == ("rotation-justification-required", "rotation")
    assert problem["workshop_id"] == rennes and problem["quote_id"] == chosen
    assert (problem["rules"][0]["wins"], problem["rules"][0]["awards"]) == (2, 2)
    assert f"«{NBSP}Menuiserie du Pays de Rennes{NBSP}» a remporté 2 des 2 dernières attributions" in problem["detail"]
    text = "Seul atelier à pouvoir livrer avant l'inauguration"
    assert (await award(client, key, request_id, chosen, text)).status_code == 201
    record = (await client.get(f"/v1/requests/{request_id}", headers=bearer(key))).json()
    assert record["award_justifications"] == [{"code": "rotation", "text": text}]

    # A fourth time, dearer: one justification answers both rules.
    request_id, chosen = await round_("1200.00")
    refused = await award(client, key, request_id, chosen)
    problem = refused.json()
    assert refused.status_code == 409 and (problem["code"], problem["reason"]) == ("justification-required",
                                                                                   "not-lowest")
    assert [r["reason"] for r in problem["rules"]] == ["not-lowest", "rotation"]
    assert problem["rules"][1]["wins"] == 3
    assert problem["detail"].endswith("Une seule justification suffit pour l'ensemble.")
    assert (await award(client, key, request_id, chosen, text)).status_code == 201
    record = (await client.get(f"/v1/requests/{request_id}", headers=bearer(key))).json()
    assert record["award_justifications"] == [{"code": "not-lowest", "text": text}, {"code": "rotation", "text": text}]

    # Another buyer's awards are not this buyer's: no rotation for it.
    other = await buyer(client, admin_key)
    request = await open_request(client, other, min_quotes=2, quantity=1, budget_eur_ht="1200.00")
    chosen = await quote(client, request["id"], rennes_key, "1000.00", quantity=1)
    await quote(client, request["id"], vitre_key, "1100.00", quantity=1)
    assert (await award(client, other, request["id"], chosen)).status_code == 201


async def test_rotation_needs_another_valid_quote(client, admin_key, shops):
    key = await buyer(client, admin_key)
    rennes_key = shops["Menuiserie du Pays de Rennes"][1]
    for _ in range(3):
        request = await open_request(client, key, min_quotes=1, quantity=1, budget_eur_ht="1200.00")
        chosen = await quote(client, request["id"], rennes_key, "1000.00", quantity=1)
        late = await quote(client, request["id"], shops["Atelier Bois de Vitré"][1], "1100.00", days=40, quantity=1)
        assert late  # the other quote is late: not a valid alternative
        awarded = await award(client, key, request["id"], chosen)
        assert awarded.status_code == 201, awarded.text
