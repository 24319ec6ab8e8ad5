"""DECP over HTTP (issue 17, item 7): an award at or above 40 000 € HT produces a record valid against
the official JSON schema and, as XML, the XSD; below it none; the year's document, the overdue list,
marking a record published, the events, and another buyer seeing nothing."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
import pytest
from factories import WOOD_SHOP, bearer, make_siret, make_workshop, tenant
from jsonschema import Draft7Validator
from lxml import etree
from sqlalchemy import update

from broker.db.models import DecpRecordRow
from broker.domain.procurement import decp_deadline, paris_day

SANS_PUBLICITE = "Marché passé sans publicité ni mise en concurrence préalable"


def idem() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def _data(name: str) -> bytes:
    return gzip.decompress((resources.files("broker.domain") / "data" / "decp" / name).read_bytes())


@cache
def _json_schema() -> Draft7Validator:
    return Draft7Validator(json.loads(_data("schema_decp_v2.0.3.json.gz")))


@cache
def _xsd() -> etree.XMLSchema:
    return etree.XMLSchema(etree.fromstring(_data("schema_decp_v2.0.2.xsd.gz")))


async def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture
async def shops(client, admin_key):
    """Three wood workshops able to make 30 desks by the deadline, with their organisations' SIRET."""
    found = []
    for name, insee in (("Menuiserie du Pays de Rennes", "35238"), ("Atelier Bois de Vitré", "35360"),
                        ("Ébénisterie de Fougères", "35115")):
        shop, key = await make_workshop(client, admin_key, name=name, commune_insee=insee, machines=WOOD_SHOP,
                                        capacities={"france-services-desk": 5})
        org = await _ok(await client.get(f"/v1/organizations/{shop['org_id']}", headers=bearer(admin_key)))
        found.append({"id": shop["id"], "key": key, "siret": org["siret"]})
    return found


async def _award(client: Any, shops: list[dict[str, Any]], buyer: str, *, quantity: int,
                 prices: tuple[str, ...] = ("1500.00", "1550.00")) -> dict[str, Any]:
    """A desk request of ``quantity``, a quote per price (one workshop each), the cheapest awarded."""
    siret = make_siret()
    body = {"item": "france-services-desk", "quantity": quantity,
            "deadline": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
            "delivery": {"commune_insee": "35238", "address": "Maison France Services, 2 rue de la Mairie"},
            "procurement": {"buyer_siret": siret}, "budget_eur_ht": f"{int(float(prices[0]) * quantity)}.00"}
    request = await _ok(await client.post("/v1/requests", json=body, headers={**bearer(buyer), **idem()}), 201)
    assert request["procurement"]["procedure"] == "sans_publicite", request["procurement"]
    delivery = (datetime.now(UTC).date() + timedelta(days=25)).isoformat()
    quotes = [await _ok(await client.post(
        f"/v1/requests/{request['id']}/quotes", headers={**bearer(shop["key"]), **idem()},
        json={"unit_price_eur_ht": price, "vat_rate": "20", "quantity": quantity, "delivery_date": delivery}), 201)
        for shop, price in zip(shops, prices, strict=False)]
    cheapest = min(quotes, key=lambda q: float(q["unit_price_eur_ht"]))
    awarded = await _ok(await client.post(
        f"/v1/requests/{request['id']}/award", headers={**bearer(buyer), **idem()},
        json={"quote_ids": [cheapest["id"]], "justification": "Délai de livraison tenu pour la réouverture"}), 201)
    return {"request": request, "siret": siret, "orders": awarded["orders"],
            "winner": next(s for s in shops if s["id"] == cheapest["workshop_id"])}


async def _document(client: Any, key: str, year: int, **params: Any) -> Any:
    return await client.get("/v1/decp", params={"year": year, **params}, headers=bearer(key))


async def _events(client: Any, key: str, kind: str) -> list[dict[str, Any]]:
    items = (await _ok(await client.get("/v1/events", params={"limit": 200}, headers=bearer(key))))["items"]
    return [e for e in items if e["type"] == kind]


async def test_an_award_over_the_threshold_is_recorded_in_the_official_forms(client, admin_key, shops):
    _org, buyer = await tenant(client, admin_key, "collectivite", "buyer", name="Commune de Ploërmel",
                               commune_insee="56165")
    award = await _award(client, shops, buyer, quantity=30)  # 30 × 1 500 € = 45 000 € HT
    year = paris_day(datetime.now(UTC)).year

    document = await _ok(await _document(client, buyer, year))
    assert list(_json_schema().iter_errors(document)) == []
    [marche] = document["marches"]["marche"]
    today = paris_day(datetime.now(UTC)).isoformat()
    assert marche["acheteur"] == {"id": award["siret"]}
    assert [t["titulaire"] for t in marche["titulaires"]] == [{"id": award["winner"]["siret"],
                                                              "typeIdentifiant": "SIRET"}]
    assert (marche["montant"], marche["procedure"], marche["codeCPV"]) == (45000, SANS_PUBLICITE, "39121100")
    assert marche["offresRecues"] == 2 and marche["lieuExecution"] == {"code": "35238", "typeCode": "Code commune"}
    assert marche["dateNotification"] == marche["datePublicationDonnees"] == today
    assert len(marche["id"]) <= 16 and marche["id"].startswith(str(year))

    xml = await _document(client, buyer, year, format="xml")
    assert xml.status_code == 200 and xml.headers["content-type"].startswith("application/xml")
    root = etree.fromstring(xml.content)
    assert _xsd().validate(root), _xsd().error_log
    assert [m.findtext("id") for m in root] == [marche["id"]]
    assert root[0].find("titulaires/titulaire/id").text == award["winner"]["siret"]

    [created] = await _events(client, buyer, "decp.record_created")
    assert created["data"]["id"] == created["data"]["resource_id"] == marche["id"]
    assert created["data"]["request_id"] == award["request"]["id"] and created["data"]["amount_cents"] == 45_000_00
    assert created["data"]["marche"] == marche
    assert created["data"]["due_on"] == decp_deadline(date.fromisoformat(today)).isoformat()

    admin = await _ok(await _document(client, admin_key, year))
    assert [m["id"] for m in admin["marches"]["marche"]] == [marche["id"]]
    assert (await _ok(await _document(client, buyer, year + 1))) == {"marches": {"marche": []}}


async def test_an_award_below_the_threshold_is_not_recorded(client, admin_key, shops):
    _org, buyer = await tenant(client, admin_key, "collectivite", "buyer")
    await _award(client, shops, buyer, quantity=26)  # 26 × 1 500 € = 39 000 € HT
    year = paris_day(datetime.now(UTC)).year
    assert (await _ok(await _document(client, buyer, year))) == {"marches": {"marche": []}}
    assert await _events(client, buyer, "decp.record_created") == []
    assert await _events(client, buyer, "order.created")  # the award itself happened


async def test_overdue_until_published_and_only_for_its_buyer(client, admin_key, shops, db):
    _org, buyer = await tenant(client, admin_key, "collectivite", "buyer")
    _other_org, other = await tenant(client, admin_key, "collectivite", "buyer")
    await _award(client, shops, buyer, quantity=30)
    year = paris_day(datetime.now(UTC)).year
    [marche] = (await _ok(await _document(client, buyer, year)))["marches"]["marche"]
    record = marche["id"]
    assert (await _ok(await client.get("/v1/decp/overdue", headers=bearer(buyer))))["items"] == []

    # Two months and more after notification (the clock cannot move through HTTP: the dates can).
    notified = paris_day(datetime.now(UTC)) - timedelta(days=70)
    async with db.writer() as session:
        await session.execute(update(DecpRecordRow).where(DecpRecordRow.id == record)
                              .values(notified_on=notified, due_on=decp_deadline(notified)))
        await session.commit()
    overdue = (await _ok(await client.get("/v1/decp/overdue", headers=bearer(buyer))))["items"]
    assert [(r["id"], r["due_on"], r["published_at"]) for r in overdue] == [
        (record, decp_deadline(notified).isoformat(), None)]
    assert overdue[0]["amount_eur_ht"] == "45000.00" and overdue[0]["marche"]["id"] == record
    admin_overdue = (await _ok(await client.get("/v1/decp/overdue", headers=bearer(admin_key))))["items"]
    assert record in [r["id"] for r in admin_overdue]

    # another buyer sees nothing and cannot mark it
    assert (await _ok(await client.get("/v1/decp/overdue", headers=bearer(other))))["items"] == []
    assert (await _ok(await _document(client, other, year))) == {"marches": {"marche": []}}
    missing = await client.post(f"/v1/decp/{record}/published", headers={**bearer(other), **idem()})
    assert missing.status_code == 404, missing.text
    assert (await client.post("/v1/decp/2026AAAAAAAAAAAA/published", headers={**bearer(buyer), **idem()})
            ).status_code == 404

    # a publication date must lie between the notification and today
    for day in (notified - timedelta(days=1), paris_day(datetime.now(UTC)) + timedelta(days=1)):
        refused = await client.post(f"/v1/decp/{record}/published", json={"published_on": day.isoformat()},
                                    headers={**bearer(buyer), **idem()})
        assert refused.status_code == 422 and refused.json()["code"] == "decp-published-on-invalid", refused.text
    assert len((await _ok(await client.get("/v1/decp/overdue", headers=bearer(buyer))))["items"]) == 1

    published_on = (notified + timedelta(days=10)).isoformat()
    key = idem()
    done = await _ok(await client.post(f"/v1/decp/{record}/published", json={"published_on": published_on},
                                       headers={**bearer(buyer), **key}))
    assert done["published_at"] is not None and done["marche"]["datePublicationDonnees"] == published_on
    assert (await _ok(await client.get("/v1/decp/overdue", headers=bearer(buyer))))["items"] == []
    [again] = (await _ok(await _document(client, buyer, year)))["marches"]["marche"]
    assert again["datePublicationDonnees"] == published_on and list(_json_schema().iter_errors(
        {"marches": {"marche": [again]}})) == []

    replay = await client.post(f"/v1/decp/{record}/published", json={"published_on": published_on},
                               headers={**bearer(buyer), **key})
    assert replay.status_code == 200 and replay.headers.get("idempotent-replayed") == "true"
    second = await _ok(await client.post(f"/v1/decp/{record}/published", headers={**bearer(buyer), **idem()}))
    assert second == done  # already published: unchanged, the first date stands
    events = await _events(client, buyer, "decp.record_published")
    assert [(e["data"]["id"], e["data"]["published_on"], e["data"]["sequence"]) for e in events] == [
        (record, published_on, 2)]


async def test_the_year_document_comes_in_parts(client, admin_key, shops):
    # two buyers (one buyer's second 45 000 € need of the same CPV group would call for a MAPA)
    for _ in range(2):
        _org, buyer = await tenant(client, admin_key, "collectivite", "buyer")
        await _award(client, shops, buyer, quantity=30)
    year = paris_day(datetime.now(UTC)).year
    whole = [m["id"] for m in (await _ok(await _document(client, admin_key, year)))["marches"]["marche"]]
    assert len(whole) == 2

    first = await _document(client, admin_key, year, limit=1, format="xml")
    assert first.status_code == 200 and _xsd().validate(etree.fromstring(first.content))
    assert [m.findtext("id") for m in etree.fromstring(first.content)] == whole[:1]
    link = first.headers["link"]
    assert link.endswith('>; rel="next"')
    query = parse_qs(urlsplit(link[1:link.index(">")]).query)
    assert query["format"] == ["xml"] and query["limit"] == ["1"]
    rest = await _document(client, admin_key, year, limit=1, cursor=query["cursor"][0])
    assert [m["id"] for m in (await _ok(rest))["marches"]["marche"]] == whole[1:]
    assert "link" not in rest.headers


async def test_the_threshold_is_a_setting(make_settings, database_url, tmp_path, admin_key, shops):
    """BROKER_DECP_THRESHOLD_EUR_HT=50000 (e.g. following the 2026 change): 45 000 € is not published."""
    from litestar.testing import AsyncTestClient

    from broker.app import create_app

    settings = msgspec.structs.replace(make_settings(database_url, tmp_path / "var"), decp_threshold_eur_ht=50_000)
    async with AsyncTestClient(app=create_app(settings)) as client:
        _org, buyer = await tenant(client, admin_key, "collectivite", "buyer")
        await _award(client, shops, buyer, quantity=30)  # 45 000 € HT
        year = paris_day(datetime.now(UTC)).year
        assert (await _ok(await _document(client, buyer, year))) == {"marches": {"marche": []}}
