"""Issue 23 through HTTP: an invoice follows the service fait (409 before), numbers without gaps under
50 concurrent creations, credit notes, the Factur-X PDF and the UBL invoice (their schemas, the buyer's
SIRET and engagement number inside), the franchise en base (category E and the 293 B mention), the
fake Chorus Pro walking one invoice to payment and rejecting another (each step's event), and the
payment clock of a late invoice to the cent. The worker's rounds run here as the worker runs them."""

from __future__ import annotations

import asyncio
import io
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import facturx
import pytest
from factories import bearer, delivered_order, tenant
from lxml import etree
from pypdf import PdfReader
from sqlalchemy import select, update

from adapters.chorus.fake import FakeChorusPro
from adapters.geocoding import load_communes
from adapters.invoicing.schemas import validate_ubl
from broker.db.models import InvoiceRow, OutboxRow
from broker.services.invoices import check_statuses, deposit_submitted, flag_overdue

UBL_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"


def idem() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def invoice(client: Any, world: dict[str, Any], **body: Any) -> Any:
    return await client.post(f"/v1/orders/{world['order']['id']}/invoices", json=body,
                             headers={**bearer(world["maker"]), **idem()})


async def events(db: Any, kind: str, resource_id: str) -> list[dict[str, Any]]:
    async with db.reader() as session:
        rows = (await session.execute(select(OutboxRow).where(OutboxRow.type == kind,
                                                              OutboxRow.resource_id == resource_id)
                                      .order_by(OutboxRow.id))).scalars().all()
    return [dict(r.payload) for r in rows]


async def test_an_invoice_follows_the_service_fait_and_numbers_have_no_gap(client, admin_key, db):
    world = await delivered_order(client, admin_key, deliver=False)
    early = await invoice(client, world)
    assert early.status_code == 409 and early.json()["code"] == "not-delivered", early.text
    buyer_try = await client.post(f"/v1/orders/{world['order']['id']}/invoices", json={},
                                  headers={**bearer(world["buyer"]), **idem()})
    assert buyer_try.status_code == 403
    await ok(await client.post(f"/v1/orders/{world['order']['id']}/transitions", json={"to": "delivered"},
                               headers=bearer(world["buyer"])))
    first = await ok(await invoice(client, world, quantity=2), 201)
    assert first["number"] == "F-000001" and first["kind"] == "invoice" and first["status"] == "issued"
    # 2 × 1 100,00 € HT, VAT 20 %: 2 200,00 + 440,00 = 2 640,00 € TTC; 30 days (commune, R.2192-10)
    assert first["totals"] == {"net_eur_ht": "2200.00", "vat_eur": "440.00", "total_eur_ttc": "2640.00"}
    assert first["vat"] == [{"category": "S", "rate": "20", "basis_eur": "2200.00", "amount_eur": "440.00"}]
    assert first["delay_days"] == 30 and first["due_on"] == (date.fromisoformat(first["issue_date"])
                                                             + timedelta(days=30)).isoformat()
    rest = await ok(await invoice(client, world), 201)  # the 4 units left
    assert rest["number"] == "F-000002" and rest["lines"][0]["quantity"] == 4
    full = await invoice(client, world)
    assert full.status_code == 409 and full.json()["code"] == "already-invoiced"
    too_many = await client.post(f"/v1/invoices/{first['id']}/credit-notes", json={"reason": "x", "quantity": 3},
                                 headers={**bearer(world["maker"]), **idem()})
    assert too_many.status_code == 422 and too_many.json()["errors"][0]["pointer"] == "/quantity"
    note = await ok(await client.post(f"/v1/invoices/{first['id']}/credit-notes",
                                      json={"reason": "Erreur de quantité"},
                                      headers={**bearer(world["maker"]), **idem()}), 201)
    assert note["number"] == "AV-000001" and note["kind"] == "credit_note" and note["preceding_id"] == first["id"]
    assert (await ok(await client.get(f"/v1/invoices/{first['id']}", headers=bearer(world["buyer"]))))["status"] \
        == "credited"
    again = await ok(await invoice(client, world), 201)  # the 2 units given back
    assert again["number"] == "F-000003" and again["lines"][0]["quantity"] == 2
    assert [e["number"] for e in await events(db, "invoice.issued", again["id"])] == ["F-000003"]


async def test_fifty_concurrent_invoices_take_fifty_numbers_without_gap(client, admin_key, db):
    world = await delivered_order(client, admin_key, quantity=50, unit_price="12.50")
    answers = await asyncio.gather(*[invoice(client, world, quantity=1) for _ in range(50)])
    assert [a.status_code for a in answers] == [201] * 50, [a.text for a in answers if a.status_code != 201]
    numbers = sorted(a.json()["number"] for a in answers)
    assert numbers == [f"F-{n:06d}" for n in range(1, 51)]
    over = await invoice(client, world, quantity=1)
    assert over.status_code == 409
    async with db.reader() as session:
        stored = (await session.execute(select(InvoiceRow.number))).scalars().all()
    assert sorted(stored) == numbers


async def test_the_documents_carry_the_references_and_pass_their_schemas(client, admin_key):
    world = await delivered_order(client, admin_key, engagement_number="EJ-2026-000412", service_code="FS-VITRE")
    made = await ok(await invoice(client, world), 201)
    pdf = await client.get(f"/v1/invoices/{made['id']}/factur-x", headers=bearer(world["buyer"]))
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    _name, xml = facturx.get_xml_from_pdf(pdf.content, check_xsd=True)
    assert facturx.get_flavor(etree.fromstring(xml)) == "factur-x"
    assert facturx.get_level(etree.fromstring(xml)) == "en16931"
    text = xml.decode()
    assert world["buyer_siret"] in text and "EJ-2026-000412" in text and "FS-VITRE" in text
    assert "Facture" in "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    ubl = await client.get(f"/v1/invoices/{made['id']}/ubl", headers=bearer(world["maker"]))
    assert ubl.status_code == 200 and validate_ubl(ubl.content, "Invoice") == []
    root = etree.fromstring(ubl.content)
    assert root.findtext(f"{{{UBL_CBC}}}BuyerReference") == "FS-VITRE"
    assert world["buyer_siret"] in ubl.text and "EJ-2026-000412" in ubl.text
    peppol_order = await client.get(f"/v1/orders/{world['order']['id']}/documents/peppol",
                                    headers=bearer(world["buyer"]))
    assert validate_ubl(peppol_order.content, "Order") == []
    stranger = (await tenant(client, admin_key, "collectivite", "buyer"))[1]
    for path in ("", "/factur-x", "/ubl"):
        assert (await client.get(f"/v1/invoices/{made['id']}{path}", headers=bearer(stranger))).status_code == 404


async def test_a_franchise_seller_invoices_without_vat_with_the_293_b_mention(client, admin_key):
    world = await delivered_order(client, admin_key, quantity=3, unit_price="240.00",
                                  maker_name="Fab lab associatif de Vitré")
    maker_org = (await ok(await client.get("/v1/organizations", headers=bearer(world["maker"]))))["items"][0]
    patched = await ok(await client.patch(f"/v1/organizations/{maker_org['id']}",
                                          json={"vat_regime": "franchise_en_base",
                                                "iban": "FR76 3000 6000 0112 3456 7890 189"},
                                          headers=bearer(world["maker"])))
    assert patched["vat_regime"] == "franchise_en_base" and patched["iban"] == "FR7630006000011234567890189"
    made = await ok(await invoice(client, world), 201)
    assert made["totals"] == {"net_eur_ht": "720.00", "vat_eur": "0.00", "total_eur_ttc": "720.00"}
    assert made["vat"] == [{"category": "E", "rate": "0", "basis_eur": "720.00", "amount_eur": "0.00",
                            "exemption_reason": "TVA non applicable, art. 293 B du CGI"}]
    ubl = (await client.get(f"/v1/invoices/{made['id']}/ubl", headers=bearer(world["maker"]))).text
    assert "<cbc:ID>E</cbc:ID>" in ubl and "TVA non applicable, art. 293 B du CGI" in ubl
    pdf = (await client.get(f"/v1/invoices/{made['id']}/factur-x", headers=bearer(world["maker"]))).content
    _name, xml = facturx.get_xml_from_pdf(pdf, check_xsd=True)
    assert b"<ram:CategoryCode>E</ram:CategoryCode>" in xml and b"293 B" in xml
    bad_iban = await client.patch(f"/v1/organizations/{maker_org['id']}", json={"iban": "FR7630006000011234567890188"},
                                  headers=bearer(world["maker"]))
    assert bad_iban.status_code == 422 and bad_iban.json()["errors"][0]["pointer"] == "/iban"


class Clock:
    def __init__(self) -> None:
        self.t = datetime.now(UTC).timestamp()

    def __call__(self) -> float:
        return self.t


async def test_the_fake_chorus_walks_one_invoice_to_payment_and_rejects_another(client, admin_key, db):
    paid = await delivered_order(client, admin_key, service_code="FS-VITRE")
    refused = await delivered_order(client, admin_key, service_code="SERVICE-FERME", buyer_name="Commune de Fougères",
                                    maker=(paid["shop"], paid["maker"]))
    clock = Clock()
    chorus = FakeChorusPro(step_s=60, closed_services=frozenset({"SERVICE-FERME"}), clock=clock)
    geocoder = load_communes()
    made = [await ok(await invoice(client, w), 201) for w in (paid, refused)]
    for m in made:
        submitted = await ok(await client.post(f"/v1/invoices/{m['id']}/submit",
                                               headers={**bearer(paid["maker"]), **idem()}), 202)
        assert submitted["status"] == "submitting"
    now = datetime.now(UTC)
    assert await deposit_submitted(db, chorus=chorus, geocoder=geocoder, syntax="factur-x", now=now) == 2
    deposited = await ok(await client.get(f"/v1/invoices/{made[0]['id']}", headers=bearer(paid["buyer"])))
    assert deposited["status"] == "deposee" and deposited["received_on"] == now.date().isoformat()
    assert deposited["due_on"] == (now.date() + timedelta(days=30)).isoformat()
    for step in range(1, 6):  # one status a minute, asked each round
        clock.t += 60
        await check_statuses(db, chorus=chorus, now=now + timedelta(minutes=step), poll_s=0)
    final = await ok(await client.get(f"/v1/invoices/{made[0]['id']}", headers=bearer(paid["maker"])))
    assert final["status"] == "mise_en_paiement" and final["paid_on"]
    walked = [e["to"] for e in await events(db, "invoice.status_changed", made[0]["id"])]
    assert walked == ["submitting", "deposee", "mise_a_disposition", "service_fait", "mandatee", "mise_en_paiement"]
    rejected = await ok(await client.get(f"/v1/invoices/{made[1]['id']}", headers=bearer(refused["buyer"])))
    assert rejected["status"] == "rejetee" and "service" in rejected["status_reason"].lower()
    assert [e["to"] for e in await events(db, "invoice.status_changed", made[1]["id"])][-1] == "rejetee"
    # corrected by a credit note, then invoiced again
    await ok(await client.post(f"/v1/invoices/{made[1]['id']}/credit-notes", json={"reason": "Rejet Chorus Pro"},
                               headers={**bearer(paid["maker"]), **idem()}), 201)
    assert (await ok(await client.get(f"/v1/invoices/{made[1]['id']}", headers=bearer(paid["maker"]))))["status"] \
        == "credited"
    await ok(await invoice(client, refused), 201)


async def test_a_late_invoice_accrues_interest_to_the_cent(client, admin_key, db):
    """6 desks at 1 100 € HT + 20 %: 7 920,00 € TTC, due on 2026-07-10, paid 10 days late: the rate of
    the second half of 2026 is the ECB's 2,15 % + 8 = 10,15 %; 7 920 × 10,15 % × 10 / 365 = 22,02 €."""
    world = await delivered_order(client, admin_key)
    made = await ok(await invoice(client, world), 201)
    async with db.writer() as session:  # as if Chorus Pro had received it on 2026-06-10
        await session.execute(update(InvoiceRow).where(InvoiceRow.id == made["id"]).values(
            status="mise_a_disposition", received_on=date(2026, 6, 10), due_on=date(2026, 7, 10),
            chorus_id="FAKE-test", service_fait_on=date(2026, 6, 1)))
        await session.commit()
    async with db.writer() as session:
        assert await flag_overdue(session, now=datetime(2026, 7, 11, 10, tzinfo=UTC)) == 1
        assert await flag_overdue(session, now=datetime(2026, 7, 12, 10, tzinfo=UTC)) == 0  # once
        await session.commit()
    [overdue] = await events(db, "invoice.overdue", made["id"])
    assert overdue["due_on"] == "2026-07-10" and overdue["rate_bp"] == 1015 and overdue["indemnity_cents"] == 4000
    async with db.writer() as session:
        await session.execute(update(InvoiceRow).where(InvoiceRow.id == made["id"]).values(
            status="mise_en_paiement", paid_on=date(2026, 7, 20)))
        await session.commit()
    clock = await ok(await client.get(f"/v1/orders/{world['order']['id']}/payment", headers=bearer(world["buyer"])))
    [line] = clock["invoices"]
    assert line["days_late"] == 10 and line["late_rate"] == "10.15"
    assert line["interest_eur"] == "22.02" and line["indemnity_eur"] == "40.00"
    assert clock["interest_eur"] == "22.02"


@pytest.mark.parametrize(("legal_form", "days"), [("7364", 50), ("7210", 30)])
async def test_a_public_hospital_has_fifty_days(client, admin_key, legal_form, days):
    world = await delivered_order(client, admin_key, buyer_name="Centre hospitalier de Vitré",
                                  buyer_legal_form=legal_form)
    made = await ok(await invoice(client, world), 201)
    assert made["delay_days"] == days
