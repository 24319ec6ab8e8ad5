"""From request to delivery over HTTP (in-process): matching, invitations, quotes, award, orders."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from factories import FAB_LAB, WOOD_SHOP, bearer, make_siret, make_workshop, tenant

BRITTANY = [("Menuiserie du Pays de Rennes", "35238", WOOD_SHOP), ("Atelier Bois de Vitré", "35360", WOOD_SHOP),
            ("Fab lab de Lannion", "22113", FAB_LAB), ("Le Bocal, Saint-Brieuc", "22278", FAB_LAB),
            ("Fab lab de Vannes", "56260", FAB_LAB), ("Ébénisterie de Quimper", "29232", WOOD_SHOP)]


def idem() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def desk_request(**overrides):
    body = {
        "item": "france-services-desk", "quantity": 6,
        "deadline": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        "delivery": {"commune_insee": "35238", "address": "Maison France Services, 2 rue de la Mairie"},
        "procurement": {"buyer_siret": make_siret(), "service_code": "SERV-ACHATS",
                        "engagement_number": "EJ-2026-0042"},
        "budget_eur_ht": "9000.00",
    }
    return body | overrides


@pytest.fixture
async def network(client, admin_key):
    shops = {}
    for name, insee, machines in BRITTANY:
        shop, key = await make_workshop(client, admin_key, name=name, commune_insee=insee, machines=machines)
        shops[name] = (shop, key)
    _buyer_org, buyer = await tenant(client, admin_key, "collectivite", "buyer", name="Commune de Ploërmel",
                                     commune_insee="56165")
    return shops, buyer


async def test_catalogue_is_seeded(client, admin_key):
    items = (await client.get("/v1/catalogue", headers=bearer(admin_key))).json()["items"]
    slugs = {i["slug"] for i in items}
    assert {"france-services-desk", "monitor-stand", "face-visor", "uns1-mask", "door-opener"} <= slugs
    mask = next(i for i in items if i["slug"] == "uns1-mask")
    assert mask["certifications_required"] == ["afnor-spec-s76-001"]


async def test_desk_request_goes_from_matching_to_delivery(client, admin_key, network):
    shops, buyer = network
    created = await client.post("/v1/requests", json=desk_request(), headers={**bearer(buyer), **idem()})
    assert created.status_code == 201, created.text
    request = created.json()
    matches = (await client.get(f"/v1/requests/{request['id']}/matches", headers=bearer(buyer))).json()
    assert request["status"] == "open" and request["match_state"] == "done" and request["invited"] == 3, matches["excluded"]

    matches = (await client.get(f"/v1/requests/{request['id']}/matches", headers=bearer(buyer))).json()
    included = {m["workshop_id"] for m in matches["included"]}
    wood = {shops[n][0]["id"] for n, _, m in BRITTANY if m is WOOD_SHOP}
    assert included == wood
    assert all(m["reasons"] and m["components"] for m in matches["included"])
    fablab = next(e for e in matches["excluded"] if e["workshop_id"] == shops["Fab lab de Lannion"][0]["id"])
    assert fablab["reasons"][0]["code"] == "process_missing"

    wood_keys = [shops[n][1] for n, _, m in BRITTANY if m is WOOD_SHOP]
    invitations = (await client.get("/v1/invitations", headers=bearer(wood_keys[0]))).json()["items"]
    assert invitations[0]["request_id"] == request["id"] and invitations[0]["reasons"]
    quote_ids = []
    for i, key in enumerate(wood_keys):
        quote = await client.post(
            f"/v1/requests/{request['id']}/quotes", headers={**bearer(key), **idem()},
            json={"unit_price_eur_ht": f"{1100 + 50 * i}.00", "vat_rate": "20", "quantity": 6,
                  "delivery_date": (datetime.now(UTC).date() + timedelta(days=25)).isoformat()},
        )
        assert quote.status_code == 201, quote.text
        quote_ids.append(quote.json()["id"])
    compared = (await client.get(f"/v1/requests/{request['id']}/quotes", headers=bearer(buyer))).json()["items"]
    assert compared[0]["quote"]["total_eur_ht"] == "6600.00" and compared[0]["quote"]["total_eur_ttc"] == "7920.00"
    assert compared[0]["distance_km"] is not None

    awarded = await client.post(f"/v1/requests/{request['id']}/award", json={"quote_ids": [quote_ids[0]]},
                                headers={**bearer(buyer), **idem()})
    assert awarded.status_code == 201, awarded.text
    order = awarded.json()["orders"][0]
    maker = wood_keys[0]
    for step in ("confirmed", "in_production"):
        moved = await client.post(f"/v1/orders/{order['id']}/transitions", json={"to": step}, headers=bearer(maker))
        assert moved.status_code == 200, moved.text
    for done in (2, 6):
        progress = await client.post(f"/v1/orders/{order['id']}/progress", json={"units_done": done},
                                     headers=bearer(maker))
        assert progress.status_code == 200, progress.text
    back = await client.post(f"/v1/orders/{order['id']}/progress", json={"units_done": 5}, headers=bearer(maker))
    assert back.status_code == 422
    assert (await client.post(f"/v1/orders/{order['id']}/transitions", json={"to": "ready"},
                              headers=bearer(maker))).status_code == 200
    no_tracking = await client.post(f"/v1/orders/{order['id']}/transitions", json={"to": "shipped"},
                                    headers=bearer(maker))
    assert no_tracking.status_code == 422
    shipped = await client.post(f"/v1/orders/{order['id']}/transitions",
                                json={"to": "shipped", "tracking": "Colissimo 6A12345678901"}, headers=bearer(maker))
    assert shipped.status_code == 200
    not_maker = await client.post(f"/v1/orders/{order['id']}/transitions", json={"to": "delivered"},
                                  headers=bearer(maker))
    assert not_maker.status_code == 409
    delivered = await client.post(f"/v1/orders/{order['id']}/transitions", json={"to": "delivered"},
                                  headers=bearer(buyer))
    assert delivered.status_code == 200, delivered.text
    for kind in ("order-x", "peppol"):
        doc = await client.get(f"/v1/orders/{order['id']}/documents/{kind}", headers=bearer(buyer))
        assert doc.status_code == 200 and doc.headers["content-type"].startswith("application/xml")
        assert b"EJ-2026-0042" in doc.content and b"SERV-ACHATS" in doc.content
        if kind == "order-x":
            import facturx

            assert facturx.xml_check_xsd(doc.content, flavor="order-x", level="basic")
    maker_doc = await client.get(f"/v1/orders/{order['id']}/documents/peppol", headers=bearer(maker))
    assert maker_doc.status_code == 200
    stranger = shops["Fab lab de Lannion"][1]
    assert (await client.get(f"/v1/orders/{order['id']}/documents/peppol",
                             headers=bearer(stranger))).status_code == 404
    final = (await client.get(f"/v1/orders/{order['id']}", headers=bearer(buyer))).json()
    assert final["status"] == "delivered" and final["units_done"] == 6
    assert [h["to_status"] for h in final["history"] if h["kind"] == "status"] == [
        "awarded", "confirmed", "in_production", "ready", "shipped", "delivered"]
    assert (await client.get(f"/v1/requests/{request['id']}", headers=bearer(buyer))).json()["status"] == "closed"
    illegal = await client.post(f"/v1/orders/{order['id']}/transitions", json={"to": "in_production"},
                                headers=bearer(maker))
    assert illegal.status_code == 409
    assert "'delivered'" in illegal.json()["detail"] and "allowed" in illegal.json()["detail"]


async def test_visor_request_is_split_across_fab_labs(client, admin_key, network):
    shops, buyer = network
    body = desk_request(item="face-visor", quantity=300, allow_split=True, min_quotes=2,
                        deadline=(datetime.now(UTC) + timedelta(days=21)).isoformat())
    request = (await client.post("/v1/requests", json=body, headers={**bearer(buyer), **idem()})).json()
    labs = [shops[n][1] for n, _, m in BRITTANY if m is FAB_LAB]
    assert request["invited"] == 3
    quote_ids = []
    for key in labs[:2]:
        quote = await client.post(f"/v1/requests/{request['id']}/quotes", headers={**bearer(key), **idem()},
                                  json={"unit_price_eur_ht": "2.80", "vat_rate": "5.5", "quantity": 150,
                                        "delivery_date": (datetime.now(UTC).date() + timedelta(days=14)).isoformat()})
        assert quote.status_code == 201, quote.text
        quote_ids.append(quote.json()["id"])
    awarded = await client.post(f"/v1/requests/{request['id']}/award", json={"quote_ids": quote_ids},
                                headers={**bearer(buyer), **idem()})
    assert awarded.status_code == 201, awarded.text
    assert sorted(o["quantity"] for o in awarded.json()["orders"]) == [150, 150]
    assert awarded.json()["orders"][0]["total_eur_ttc"] == "443.10"


async def test_award_below_min_quotes_needs_a_justification(client, admin_key, network):
    shops, buyer = network
    request = (await client.post("/v1/requests", json=desk_request(), headers={**bearer(buyer), **idem()})).json()
    key = shops["Menuiserie du Pays de Rennes"][1]
    quote = (await client.post(f"/v1/requests/{request['id']}/quotes", headers={**bearer(key), **idem()},
                               json={"unit_price_eur_ht": "1200", "vat_rate": "20", "quantity": 6,
                                     "delivery_date": (datetime.now(UTC).date() + timedelta(days=20)).isoformat()})).json()
    refused = await client.post(f"/v1/requests/{request['id']}/award", json={"quote_ids": [quote["id"]]},
                                headers={**bearer(buyer), **idem()})
    assert refused.status_code == 409 and refused.json()["code"] == "min-quotes-not-met"
    justified = await client.post(
        f"/v1/requests/{request['id']}/award", headers={**bearer(buyer), **idem()},
        json={"quote_ids": [quote["id"]], "justification": "Urgence : ouverture de la maison France Services le 2 mars"})
    assert justified.status_code == 201
    stored = (await client.get(f"/v1/requests/{request['id']}", headers=bearer(buyer))).json()
    assert stored["award_justification"].startswith("Urgence")


async def test_bad_lifecycle_input_is_refused(client, admin_key, network, db):
    from sqlalchemy import text

    shops, buyer = network
    async def rows():
        async with db.reader() as s:
            return [(await s.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one()
                    for t in ("fab_request", "quote", "fab_order", "invitation")]
    before = await rows()
    for body, status in [
        (desk_request(quantity=-1), 400), (desk_request(quantity=0), 400),
        (desk_request(deadline=(datetime.now(UTC) - timedelta(days=1)).isoformat()), 422),
        (desk_request(item="chaise-longue"), 422),
        (desk_request(delivery={"commune_insee": "99999"}), 422),
        (desk_request(status="awarded"), 400), (desk_request(org_id="x"), 400),
        (desk_request(procurement={"buyer_siret": make_siret(), "chorus_requirement": "engagement"}), 422),
    ]:
        response = await client.post("/v1/requests", json=body, headers={**bearer(buyer), **idem()})
        assert response.status_code == status, (body, response.text)
    assert await rows() == before

    request = (await client.post("/v1/requests", json=desk_request(), headers={**bearer(buyer), **idem()})).json()
    outsider = shops["Fab lab de Lannion"][1]  # not invited to a desk request
    quote = {"unit_price_eur_ht": "1000", "vat_rate": "20", "quantity": 6,
             "delivery_date": (datetime.now(UTC).date() + timedelta(days=20)).isoformat()}
    response = await client.post(f"/v1/requests/{request['id']}/quotes", json=quote,
                                 headers={**bearer(outsider), **idem()})
    assert response.status_code == 404
    insider = shops["Menuiserie du Pays de Rennes"][1]
    missing_key = await client.post(f"/v1/requests/{request['id']}/quotes", json=quote, headers=bearer(insider))
    assert missing_key.status_code == 400 and missing_key.json()["code"] == "idempotency-key-missing", missing_key.text
    posted = (await client.post(f"/v1/requests/{request['id']}/quotes", json=quote,
                                headers={**bearer(insider), **idem()})).json()
    assert (await client.post(f"/v1/quotes/{posted['id']}/withdraw", headers=bearer(insider))).status_code == 200
    award = await client.post(f"/v1/requests/{request['id']}/award",
                              json={"quote_ids": [posted["id"]], "justification": "urgence"},
                              headers={**bearer(buyer), **idem()})
    assert award.status_code == 409 and award.json()["code"] == "quote-not-valid"


async def test_cached_candidates_follow_every_change(client, admin_key, network):
    """The API caches its candidate index per registry version: a new workshop, a pause or a
    booking is seen by the very next request."""
    _shops, buyer = network
    first = (await client.post("/v1/requests", json=desk_request(), headers={**bearer(buyer), **idem()})).json()
    assert first["invited"] == 3
    newcomer, key = await make_workshop(client, admin_key, name="Menuiserie de Saint-Malo", commune_insee="35288",
                                        machines=WOOD_SHOP)
    second = (await client.post("/v1/requests", json=desk_request(), headers={**bearer(buyer), **idem()})).json()
    assert second["invited"] == 4
    paused = await client.put("/v1/workshops/me", headers=bearer(key),
                              json={"commune_insee": "35288", "delivery_radius_km": 250, "paused": True})
    assert paused.status_code == 200
    third = (await client.post("/v1/requests", json=desk_request(), headers={**bearer(buyer), **idem()})).json()
    matches = (await client.get(f"/v1/requests/{third['id']}/matches", headers=bearer(buyer))).json()
    assert third["invited"] == 3
    reasons = {r["code"] for e in matches["excluded"] if e["workshop_id"] == newcomer["id"] for r in e["reasons"]}
    assert "paused" in reasons
