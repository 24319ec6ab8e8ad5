"""The award record (issue 17, item 6) over HTTP: JSON and the PDF « note de choix », tenant scoping."""

from __future__ import annotations

import io
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from factories import WOOD_SHOP, bearer, create_key, make_siret, make_workshop, tenant
from pypdf import PdfReader

from adapters.documents.award_pdf import money

SHOPS = [("Menuiserie du Pays de Rennes", "35238"), ("Atelier Bois de Vitré", "35360"),
         ("Ébénisterie de Quimper", "29232")]
KEY_LABEL = "Service achats — Mme Le Goff"


def idem() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def pdf_text(pdf: bytes) -> str:
    """The PDF's text, every run of spaces (no-break ones included) and line breaks as one space."""
    raw = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return re.sub(r"[\s\u00a0\u202f]+", " ", raw)


def spaced(text: str) -> str:
    return re.sub(r"[\s\u00a0\u202f]+", " ", text)


@pytest.fixture
async def scene(client, admin_key):
    """Three wood workshops around Rennes and a fresh buyer whose key has a telling label."""
    shops = [await make_workshop(client, admin_key, name=n, commune_insee=c, machines=WOOD_SHOP) for n, c in SHOPS]
    org, _ = await tenant(client, admin_key, "collectivite", "buyer", name="Commune de Ploërmel",
                          commune_insee="56165")
    key = await client.post(f"/v1/organizations/{org['id']}/api-keys", json={"role": "buyer", "label": KEY_LABEL},
                            headers=bearer(admin_key))
    assert key.status_code == 201, key.text
    return shops, org, key.json()["key"]


async def create_desk_request(client, buyer: str, **overrides) -> dict:
    body = {
        "item": "france-services-desk", "quantity": 6,
        "deadline": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        "delivery": {"commune_insee": "35238", "address": "Maison France Services, 2 rue de la Mairie"},
        "procurement": {"buyer_siret": make_siret(), "service_code": "SERV-ACHATS"},
        "budget_eur_ht": "9000.00",
    } | overrides
    created = await client.post("/v1/requests", json=body, headers={**bearer(buyer), **idem()})
    assert created.status_code == 201, created.text
    return dict(created.json())


async def invitation_of(client, maker: str, request_id: str) -> dict:
    items = (await client.get("/v1/invitations", headers=bearer(maker))).json()["items"]
    return next(i for i in items if i["request_id"] == request_id)


async def quote(client, maker: str, request_id: str, unit: str) -> str:
    answer = await client.post(
        f"/v1/requests/{request_id}/quotes", headers={**bearer(maker), **idem()},
        json={"unit_price_eur_ht": unit, "vat_rate": "20", "quantity": 6,
              "delivery_date": (datetime.now(UTC).date() + timedelta(days=25)).isoformat()})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def get_record(client, key: str, request_id: str, *, pdf: bool = False):
    headers = bearer(key) | ({"Accept": "application/pdf"} if pdf else {})
    return await client.get(f"/v1/requests/{request_id}/award-record", headers=headers)


async def test_the_record_of_an_award_as_json_and_pdf(client, admin_key, scene):
    shops, org, buyer = scene
    (rennes, rennes_key), (vitre, vitre_key), (quimper, quimper_key) = shops
    request = await create_desk_request(client, buyer, min_quotes=2)
    assert request["invited"] == 3
    cheapest = await quote(client, rennes_key, request["id"], "1100.00")
    other = await quote(client, vitre_key, request["id"], "1150.00")
    invitation = await invitation_of(client, quimper_key, request["id"])
    declined = await client.post(f"/v1/invitations/{invitation['id']}/decline",
                                 json={"reason": "Carnet de commandes plein jusqu'en juin"},
                                 headers={**bearer(quimper_key), **idem()})
    assert declined.status_code == 200, declined.text
    awarded = await client.post(f"/v1/requests/{request['id']}/award", json={"quote_ids": [cheapest]},
                                headers={**bearer(buyer), **idem()})
    assert awarded.status_code == 201, awarded.text
    order = awarded.json()["orders"][0]

    answer = await get_record(client, buyer, request["id"])
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    record = answer.json()
    assert record["request_id"] == request["id"] and record["status"] == "awarded" and record["awarded"] is True
    assert record["buyer"] == {"name": "Commune de Ploërmel", "siret": org["siret"],
                               "purchasing_siret": request["procurement"]["buyer_siret"],
                               "service_code": "SERV-ACHATS", "engagement_number": None}
    assert record["object"]["name"] == request["name"] and record["object"]["quantity"] == 6
    assert record["object"]["item"] == "france-services-desk" and record["object"]["deadline"] == request["deadline"]
    assert record["object"]["delivery"]["commune_name"] == "Rennes"
    procurement = record["procurement"]
    assert procurement["nature"] == "fournitures" and procurement["cpv"] == "39121100-7"
    assert procurement["cpv_label"] and procurement["estimated_value_eur_ht"] == "9000.00"
    assert procurement["procedure"] == "sans_publicite" and "sans publicité" in procurement["procedure_label"]
    assert procurement["threshold_eur_ht"] == request["procurement"]["threshold_eur_ht"]
    assert "R.2122-8" in procurement["rule"] and procurement["cumulative"]["cpv_group"] == "391"

    invitations = {i["workshop_id"]: i for i in record["invitations"]}
    assert set(invitations) == {rennes["id"], vitre["id"], quimper["id"]}
    assert {i["source"] for i in invitations.values()} == {"matching"}
    assert all(i["rank"] >= 1 and i["reasons"] and i["distance_km"] >= 0 for i in invitations.values())
    assert invitations[rennes["id"]]["answer"] == invitations[vitre["id"]]["answer"] == "quoted"
    assert invitations[quimper["id"]]["answer"] == "declined"
    assert invitations[quimper["id"]]["decline_reason"] == "Carnet de commandes plein jusqu'en juin"
    assert invitations[quimper["id"]]["workshop_name"] == "Ébénisterie de Quimper"

    quotes = record["quotes"]
    assert [q["quote_id"] for q in quotes] == [cheapest, other]  # cheapest first
    first, second = quotes
    assert (first["total_eur_ht"], first["total_vat_eur"], first["total_eur_ttc"]) == ("6600.00", "1320.00", "7920.00")
    assert second["total_eur_ttc"] == "8280.00" and second["unit_price_eur_ht"] == "1150.00"
    assert first["workshop_name"] == "Menuiserie du Pays de Rennes" and first["distance_km"] is not None
    assert first["flags"] == [] and first["valid"] and first["lowest"] and first["chosen"]
    assert second["valid"] and not second["lowest"] and not second["chosen"] and second["status"] == "rejected"
    assert [(o["order_id"], o["total_eur_ttc"]) for o in record["orders"]] == [(order["id"], "7920.00")]
    assert record["justifications"] == []
    assert record["awarded_at"] is not None and record["awarded_by"] == KEY_LABEL

    pdf = await get_record(client, buyer, request["id"], pdf=True)
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF-")
    short = request["id"][:8].lower()
    assert pdf.headers["content-disposition"] == f'attachment; filename="note-de-choix-{short}.pdf"'
    text = pdf_text(pdf.content)
    assert "Rapport de présentation — note de choix" in text
    assert "Commune de Ploërmel" in text and org["siret"] in text
    assert spaced(procurement["procedure_label"]) in text
    assert "39121100-7" in text and "Carnet de commandes plein jusqu'en juin" in text
    assert "bonne pratique, non une règle" in text
    for cents in (792_000, 828_000):  # each quote's TTC total as the PDF prints it: « 7 920,00 € »
        assert spaced(money(cents)) in text, money(cents)
    assert "7 920,00 €" in text and "8 280,00 €" in text


async def test_before_and_after_a_justified_award(client, admin_key, scene):
    shops, _org, buyer = scene
    request = await create_desk_request(client, buyer)  # min_quotes 3 by default
    only = await quote(client, shops[0][1], request["id"], "1200.00")

    draft = await get_record(client, buyer, request["id"])
    assert draft.status_code == 200, draft.text
    body = draft.json()
    assert body["status"] == "quoting" and body["awarded"] is False and body["awarded_at"] is None
    assert body["orders"] == [] and body["justifications"] == []
    assert [(q["quote_id"], q["valid"], q["chosen"]) for q in body["quotes"]] == [(only, True, False)]
    draft_text = pdf_text((await get_record(client, buyer, request["id"], pdf=True)).content)
    assert "Document provisoire" in draft_text and "Aucune offre n'a été retenue à ce jour" in draft_text

    reason = "Urgence : ouverture de la maison France Services le 2 mars, un seul atelier disponible"
    awarded = await client.post(f"/v1/requests/{request['id']}/award",
                                json={"quote_ids": [only], "justification": reason},
                                headers={**bearer(buyer), **idem()})
    assert awarded.status_code == 201, awarded.text
    record = (await get_record(client, buyer, request["id"])).json()
    assert record["awarded"] is True and [j["text"] for j in record["justifications"]] == [reason]
    assert record["justifications"][0] == {"code": "min-quotes-not-met", "text": reason,
                                           "label": "moins d'offres que le minimum demandé"}
    text = pdf_text((await get_record(client, buyer, request["id"], pdf=True)).content)
    assert spaced(reason) in text and "Document provisoire" not in text
    assert "Moins d'offres que le minimum demandé" in text and KEY_LABEL in text
    assert spaced(money(720_000)) in text  # 6 × 1 200,00 € + 20 %


async def test_only_the_buyer_organisation_and_admins_read_the_record(client, admin_key, scene):
    shops, org, buyer = scene
    request = await create_desk_request(client, buyer)
    await quote(client, shops[0][1], request["id"], "1000.00")
    path = f"/v1/requests/{request['id']}/award-record"
    integration = await create_key(client, admin_key, org["id"], "integration")
    for key in (buyer, integration, admin_key):
        for accept in ("application/json", "application/pdf"):
            answer = await client.get(path, headers=bearer(key) | {"Accept": accept})
            assert answer.status_code == 200, (key, accept, answer.text)
            assert answer.headers["content-type"].startswith(accept)
    other_org, other_buyer = await tenant(client, admin_key, "collectivite", "buyer")
    other_integration = await create_key(client, admin_key, other_org["id"], "integration")
    for key in (other_buyer, other_integration):
        for accept in ("application/json", "application/pdf"):
            answer = await client.get(path, headers=bearer(key) | {"Accept": accept})
            assert answer.status_code == 404, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
    maker = shops[0][1]  # invited and quoted, still not a reader of the buyer's file
    assert (await client.get(path, headers=bearer(maker))).status_code == 403
    assert (await client.get("/v1/requests/nope/award-record", headers=bearer(buyer))).status_code == 404
