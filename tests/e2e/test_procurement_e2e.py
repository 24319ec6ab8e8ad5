"""Issue 17 against a real server and a real worker (`broker up`, matching in the worker): the
simulator's examples, the law's refusals at creation, an open MAPA consultation answered by a
workshop matching did not invite (201) and refused to an ineligible one (422), each award rule's
409 and its justified retry, the award record as PDF, and the DECP record validated against the
official JSON schema and XSD."""

from __future__ import annotations

import gzip
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import httpx
import jsonschema
from factories import FAB_LAB, WOOD_SHOP, bearer, make_siret, make_workshop, matched, tenant
from lxml import etree
from pypdf import PdfReader
from support_server import running_broker

WOOD = [("Menuiserie du Pays de Rennes", "35238"), ("Atelier Bois de Vitré", "35360"),
        ("Ébénisterie de Fougères", "35115"), ("Les Ateliers de Redon", "35236"), ("Menuiserie de Guingamp", "22070")]


def idem() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def plain(text: str) -> str:
    return text.replace("\u202f", " ").replace("\u00a0", " ")


def desk(buyer_siret: str, *, quantity: int, estimate: str, days: int = 30, **extra: Any) -> dict[str, Any]:
    return {"item": "france-services-desk", "quantity": quantity,
            "deadline": (datetime.now(UTC) + timedelta(days=days)).isoformat(),
            "delivery": {"commune_insee": "35238", "address": "Maison France Services, place de la Mairie"},
            "procurement": {"buyer_siret": buyer_siret, "estimated_value_eur_ht": estimate}, **extra}


def quote(unit: str, quantity: int, days: int) -> dict[str, Any]:
    return {"unit_price_eur_ht": unit, "vat_rate": "20", "quantity": quantity,
            "delivery_date": (datetime.now(UTC).date() + timedelta(days=days)).isoformat()}


def decp_schemas() -> tuple[dict[str, Any], etree.XMLSchema]:
    data = resources.files("broker.domain") / "data" / "decp"
    schema = json.loads(gzip.decompress((data / "schema_decp_v2.0.3.json.gz").read_bytes()))
    xsd = etree.XMLSchema(etree.fromstring(gzip.decompress((data / "schema_decp_v2.0.2.xsd.gz").read_bytes())))
    return schema, xsd


async def test_procurement_with_a_real_server_and_worker(tmp_path):
    with running_broker(tmp_path, BROKER_MATCHING_INVITATIONS="2") as broker:
        async with httpx.AsyncClient(base_url=broker.url, timeout=60) as client:
            await _journey(client, broker.admin_key)


async def _journey(client: httpx.AsyncClient, admin: str) -> None:
    shops: dict[str, tuple[str, str]] = {}  # workshop id -> (name, maker key)
    for name, insee in WOOD:
        shop, key = await make_workshop(client, admin, name=name, commune_insee=insee, machines=WOOD_SHOP,
                                        capacities={"france-services-desk": 4})
        shops[shop["id"]] = (name, key)
    _lab, fab_lab = await make_workshop(client, admin, name="Fab lab de Lannion", commune_insee="22113",
                                        machines=FAB_LAB)
    buyer_org, buyer = await tenant(client, admin, "collectivite", "buyer", name="Rennes Métropole",
                                    commune_insee="35238")
    siret = make_siret()

    # Item 2: the simulator's examples.
    for query, expected in [("nature=fournitures&estimated_value_eur_ht=50000&on=2026-03-31", ("mapa", "40000.00")),
                            ("nature=fournitures&estimated_value_eur_ht=50000&on=2026-04-01",
                             ("sans_publicite", "60000.00")),
                            ("nature=travaux&estimated_value_eur_ht=90000&on=2026-06-01",
                             ("sans_publicite", "100000.00")),
                            ("nature=fournitures&estimated_value_eur_ht=250000&on=2026-06-01",
                             ("formalisee", "60000.00"))]:
        answer = (await client.get(f"/v1/procurement/procedure?{query}", headers=bearer(buyer))).json()
        assert (answer["procedure"], answer["threshold_eur_ht"]) == expected, answer

    # Item 3: what the law refuses at creation changes nothing.
    for body, code in [(desk(siret, quantity=4, estimate="250000"), "procedure-formalisee"),
                       (desk(siret, quantity=4, estimate="70000"), "mapa-window-too-short"),
                       (desk(siret, quantity=4, estimate="95000", quote_window_hours=168),
                        "publicity-reference-required")]:
        refused = await client.post("/v1/requests", json=body, headers={**bearer(buyer), **idem()})
        assert (refused.status_code, refused.json()["code"]) == (422, code), refused.text
    assert (await client.get("/v1/requests", headers=bearer(buyer))).json()["items"] == []

    # Item 4: a MAPA consultation (62 000 € HT > 60 000 €) is open to every eligible workshop.
    created = await client.post("/v1/requests", headers={**bearer(buyer), **idem()},
                                json=desk(siret, quantity=20, estimate="62000", quote_window_hours=168))
    assert created.status_code == 201, created.text
    request = created.json()
    assert request["procurement"]["procedure"] == "mapa"
    matches = await matched(client, buyer, request["id"])  # the worker's job
    invited = [m["workshop_id"] for m in matches["included"] if m["invited"]]
    outsiders = [w for w in shops if w not in invited]
    assert len(invited) == 2 and outsiders
    outsider = outsiders[0]
    listed = (await client.get("/v1/consultations", headers=bearer(shops[outsider][1]))).json()["items"]
    assert [c["request_id"] for c in listed] == [request["id"]] and listed[0]["reasons"]
    ineligible = await client.post(f"/v1/requests/{request['id']}/quotes", json=quote("3000", 20, 20),
                                   headers={**bearer(fab_lab), **idem()})
    assert (ineligible.status_code, ineligible.json()["code"]) == (422, "not-eligible"), ineligible.text
    prices = {outsider: ("3000", 20), invited[0]: ("3100", 20), invited[1]: ("2900", 40)}  # the last one is late
    quotes = {}
    for workshop, (unit, days) in prices.items():
        sent = await client.post(f"/v1/requests/{request['id']}/quotes", json=quote(unit, 20, days),
                                 headers={**bearer(shops[workshop][1]), **idem()})
        assert sent.status_code == 201, sent.text
        quotes[workshop] = sent.json()["id"]

    # Item 5: the late quote, then the dearer valid one, each ask for a justification.
    for chosen, reason in [(invited[1], "invalid-quote"), (invited[0], "not-lowest")]:
        refused = await client.post(f"/v1/requests/{request['id']}/award", json={"quote_ids": [quotes[chosen]]},
                                    headers={**bearer(buyer), **idem()})
        assert refused.status_code == 409, refused.text
        problem = refused.json()
        assert (problem["code"], problem["reason"]) == ("justification-required", reason), problem
    text = "Atelier déjà équipé du plateau de 1 600 mm : délai tenu sans sous-traitance"
    awarded = await client.post(f"/v1/requests/{request['id']}/award", headers={**bearer(buyer), **idem()},
                                json={"quote_ids": [quotes[invited[0]]], "justification": text})
    assert awarded.status_code == 201, awarded.text
    state = (await client.get(f"/v1/requests/{request['id']}", headers=bearer(buyer))).json()
    assert state["award_justifications"] == [{"code": "not-lowest", "text": text}]

    # Item 6: the award record, as PDF.
    pdf = await client.get(f"/v1/requests/{request['id']}/award-record",
                           headers={**bearer(buyer), "Accept": "application/pdf"})
    assert pdf.status_code == 200 and pdf.headers["content-type"].startswith("application/pdf")
    page_text = plain("\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages))
    assert "Rennes Métropole" in page_text and "procédure adaptée" in page_text.lower()
    for total in ("72 000,00", "74 400,00", "69 600,00"):  # TTC of 20 × 3 000, 3 100 and 2 900 € HT
        assert total in page_text, (total, page_text[:2000])
    assert text in page_text.replace("\n", " ")

    # Item 7: 62 000 € HT ≥ 40 000 €: one DECP record, valid against the official schemas.
    schema, xsd = decp_schemas()
    year = datetime.now(UTC).year
    document = (await client.get(f"/v1/decp?year={year}", headers=bearer(buyer))).json()
    jsonschema.validate(document, schema)
    (marche,) = document["marches"]["marche"]
    assert marche["montant"] in (62000, 62000.0, "62000.00") and marche["acheteur"]["id"] == siret
    xml = await client.get(f"/v1/decp?year={year}&format=xml", headers=bearer(buyer))
    assert xml.status_code == 200, xml.text
    xsd.assertValid(etree.fromstring(xml.content))
    other = (await tenant(client, admin, "collectivite", "buyer", name="Commune de Vitré"))[1]
    assert (await client.get(f"/v1/decp?year={year}", headers=bearer(other))).json()["marches"]["marche"] == []

    # The year's 62 000 € of desks make any further desk of this buyer a MAPA (one need, R.2121-1).
    more = await client.post("/v1/requests", json=desk(siret, quantity=2, estimate="1500"),
                             headers={**bearer(buyer), **idem()})
    assert (more.status_code, more.json()["code"]) == (422, "mapa-window-too-short"), more.text

    # Item 5, rotation: another buyer's third award to the same workshop in its last five (group 391).
    _cesson, buyer = await tenant(client, admin, "collectivite", "buyer", name="Cesson-Sévigné",
                                  commune_insee="35051")
    siret = make_siret()
    winner, second = invited[0], outsider
    for round_ in range(3):
        small = await client.post("/v1/requests", json=desk(siret, quantity=2, estimate="1500", min_quotes=2),
                                  headers={**bearer(buyer), **idem()})
        assert small.status_code == 201, small.text
        small_id = small.json()["id"]
        await matched(client, buyer, small_id)
        for workshop, unit in ((winner, "700"), (second, "720")):
            added = await client.post(f"/v1/requests/{small_id}/invitations", json={"workshop_id": workshop},
                                      headers={**bearer(buyer), **idem()})
            assert added.status_code in (201, 409), added.text  # 409: matching invited it already
            sent = await client.post(f"/v1/requests/{small_id}/quotes", json=quote(unit, 2, 15),
                                     headers={**bearer(shops[workshop][1]), **idem()})
            assert sent.status_code == 201, sent.text
            if workshop == winner:
                chosen = sent.json()["id"]
        body: dict[str, Any] = {"quote_ids": [chosen], "justification": None}
        answer = await client.post(f"/v1/requests/{small_id}/award", json=body, headers={**bearer(buyer), **idem()})
        if round_ < 2:
            assert answer.status_code == 201, answer.text
            continue
        # Two wins in the buyer's last awards of the group, and another valid quote: justify.
        assert answer.status_code == 409 and answer.json()["code"] == "rotation-justification-required", answer.text
        body["justification"] = "Seul atelier à livrer avant l'ouverture ; l'autre offre arrive trop tard"
        answer = await client.post(f"/v1/requests/{small_id}/award", json=body, headers={**bearer(buyer), **idem()})
        assert answer.status_code == 201, answer.text
        assert (await client.get(f"/v1/requests/{small_id}", headers=bearer(buyer))).json()[
            "award_justifications"][0]["code"] == "rotation"
        break
    assert buyer_org["name"] == "Rennes Métropole"
