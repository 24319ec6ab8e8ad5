"""Issue 23 item 5 on the pages (in-process, signed in by session cookie): the maker issues, deposits
and credits an order's invoices from the order page; the buyer reads them, their due date and what a
late payment costs, and finds them under « Factures à payer »; the buttons are for the seller only,
another tenant gets the 404 page, and no page shows a status code or an id."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from factories import delivered_order, tenant
from sqlalchemy import update
from support_web import Browser, signed_in, visible

from broker.db.models import InvoiceRow
from broker.domain.invoicing import InvoiceStatus, late_charges
from broker.domain.procurement import paris_day
from broker.web.labels import cents, day, rate_bp

NNBSP, NBSP = "\u202f", "\u00a0"
def eur(amount: str) -> str:
    """``"7 920,00"`` as the pages write it: narrow no-break spaces between thousands and before « € »."""
    return amount.replace(" ", NNBSP) + f"{NNBSP}€"


CODES = [s.value for s in InvoiceStatus] + ["credit_note", "franchise_en_base", "not-delivered", "validation-error"]


def assert_no_codes(page: str, *ids: str) -> None:
    text = visible(page)
    for code in CODES:
        assert not re.search(rf"(?<![\w-]){re.escape(code)}(?![\w-])", text), (code, text)
    for identifier in ids:
        assert identifier not in text, identifier


async def world_of(client: Any, admin_key: str, **kw: Any) -> tuple[dict[str, Any], Browser, Browser]:
    world = await delivered_order(client, admin_key, **kw)
    maker = Browser(client, await signed_in(client, world["maker"]))
    buyer = Browser(client, await signed_in(client, world["buyer"]))
    for person in (maker, buyer):
        await person.get("/app/commandes")  # the session's CSRF token
    return world, maker, buyer


async def test_the_maker_issues_deposits_and_credits_and_the_buyer_only_reads(client, admin_key):
    world, maker, buyer = await world_of(client, admin_key)
    order = f"/app/commandes/{world['order']['id']}"

    page = await maker.get(order)
    assert "Émettre la facture" in page and "6 unités restant à facturer" in page
    buyer_page = await buyer.get(order)
    assert "Émettre la facture" not in buyer_page and 'id="factures"' not in buyer_page  # nothing issued yet
    await buyer.post(f"{order}/factures", status=403)  # a buyer does not issue

    too_many = await maker.post(f"{order}/factures", {"quantite": "7"}, status=422)
    assert "7 unités, c'est plus que les 6 unités restant à facturer." in html.unescape(too_many.text)
    issued = await maker.post(f"{order}/factures", {"quantite": "6"})
    assert issued.headers["location"] == f"{order}#factures"

    page = await maker.get(order)
    text = visible(page)
    assert f"Facture F-000001 émise{NBSP}: {eur('7 920,00')} TTC. Déposez-la sur Chorus Pro" in text  # the flash
    # 6 desks × 1 100,00 € HT + 20 % VAT = 7 920,00 € TTC; due 30 days after the deposit (provisional)
    assert "Facture F-000001" in text and "Émise, à déposer" in text
    assert eur("6 600,00") in text and eur("1 320,00") in text and eur("7 920,00") in text
    today = paris_day(datetime.now(UTC))
    assert f"{day(today + timedelta(days=30))} (prévisionnelle{NBSP}: 30 jours à compter du dépôt" in text
    assert "Déposer sur Chorus Pro" in text and "Établir un avoir" in text
    assert "Facture Factur-X (PDF)" in text and "UBL (XML)" in text
    assert "Émettre la facture" not in text  # every unit is invoiced
    invoice_id = re.search(r"/factures/([^/]+)/factur-x\.pdf", page).group(1)
    assert_no_codes(page, invoice_id, world["order"]["id"])

    buyer_page = await buyer.get(order)
    assert "Facture F-000001" in visible(buyer_page) and "Émise, à déposer" in visible(buyer_page)
    for button in ("Déposer sur Chorus Pro", "Établir un avoir", "Émettre la facture", "/depot", "/avoir"):
        assert button not in buyer_page, button
    await buyer.post(f"{order}/factures/{invoice_id}/depot", status=403)
    await buyer.post(f"{order}/factures/{invoice_id}/avoir", {"motif": "x"}, status=403)

    pdf = await client.get(f"{order}/factures/{invoice_id}/factur-x.pdf", headers={"Cookie": buyer.cookie})
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and "F-000001" in pdf.headers["content-disposition"]
    ubl = await client.get(f"{order}/factures/{invoice_id}/ubl.xml", headers={"Cookie": maker.cookie})
    assert ubl.status_code == 200 and ubl.headers["content-type"].startswith("application/xml")
    assert b"<cbc:ID>F-000001</cbc:ID>" in ubl.content

    no_reason = await maker.post(f"{order}/factures/{invoice_id}/avoir", {"motif": ""}, status=422)
    assert "Ce champ est obligatoire." in no_reason.text and 'id="f-av1-motif"' in no_reason.text
    await maker.post(f"{order}/factures/{invoice_id}/avoir", {"motif": "Erreur de quantité", "quantite_avoir": "2"})
    assert f"Avoir AV-000001 établi sur la facture F-000001{NBSP}: {eur('2 640,00')} TTC." in visible(
        await maker.get(order))
    await maker.post(f"{order}/factures/{invoice_id}/depot")
    page = await maker.get(order)
    text = visible(page)
    assert f"Facture F-000001{NBSP}: en cours de dépôt sur Chorus Pro." in text
    assert '<meta http-equiv="refresh" content="5">' in page  # until the worker has deposited it
    assert "Avoir AV-000001" in text and "Corrige la facture F-000001" in text and "Erreur de quantité" in text
    assert f"dont {eur('2 640,00')} annulés par avoir, reste {eur('5 280,00')}" in text
    assert "En cours de dépôt sur Chorus Pro" in text
    assert "Émettre la facture" in text and "2 unités restent à facturer" in text
    again = await maker.post(f"{order}/factures/{invoice_id}/depot", status=422)  # already on its way
    assert f"La facture est «{NBSP}en cours de dépôt sur Chorus Pro{NBSP}» : cette étape n'est plus possible." \
        in html.unescape(again.text)
    assert_no_codes(page, invoice_id)


async def test_another_tenant_gets_the_404_page(client, admin_key):
    world, maker, _buyer = await world_of(client, admin_key)
    order = f"/app/commandes/{world['order']['id']}"
    await maker.post(f"{order}/factures", {"quantite": "6"})
    invoice_id = re.search(r"/factures/([^/]+)/factur-x\.pdf", await maker.get(order)).group(1)

    stranger = Browser(client, await signed_in(client, (await tenant(client, admin_key, "collectivite", "buyer"))[1]))
    await stranger.get("/app/commandes")
    for path in (order, f"{order}/factures/{invoice_id}/factur-x.pdf", f"{order}/factures/{invoice_id}/ubl.xml"):
        assert "Introuvable" in await stranger.get(path, status=404)
    rival = Browser(client, await signed_in(client, (await tenant(client, admin_key, "manufacture", "maker"))[1]))
    await rival.get("/app/commandes")
    await rival.post(f"{order}/factures", {"quantite": "1"}, status=404)
    await rival.post(f"{order}/factures/{invoice_id}/depot", status=404)
    await rival.post(f"{order}/factures/{invoice_id}/avoir", {"motif": "Pour voir"}, status=404)
    # an invoice reached through another order of the same maker is not found either
    other = await delivered_order(client, admin_key, maker=(world["shop"], world["maker"]))
    assert "Introuvable" in await maker.get(f"/app/commandes/{other['order']['id']}/factures/{invoice_id}/ubl.xml",
                                            status=404)


async def test_a_rejected_invoice_says_why_and_suggests_the_credit_note(client, admin_key, db):
    world, maker, buyer = await world_of(client, admin_key)
    order = f"/app/commandes/{world['order']['id']}"
    await maker.post(f"{order}/factures", {"quantite": "6"})
    reason = "Code service inconnu ou inactif dans la structure destinataire"
    async with db.writer() as session:
        await session.execute(update(InvoiceRow).values(status="rejetee", status_reason=reason))
        await session.commit()
    page = await maker.get(order)
    text = visible(page)
    assert f"Chorus Pro a rejeté cette facture{NBSP}: «{NBSP}{reason}{NBSP}»" in text
    assert "Annulez-la par un avoir (ci-dessous), puis émettez une nouvelle facture corrigée." in text
    assert f"Rejet par Chorus Pro{NBSP}: {reason}" in page  # the credit note's reason, prefilled
    assert "Déposer sur Chorus Pro" not in text
    assert "Annulez-la" not in visible(await buyer.get(order))
    await maker.post(f"{order}/factures/{re.search(r'/factures/([^/]+)/avoir', page).group(1)}/avoir",
                     {"motif": f"Rejet par Chorus Pro : {reason}"})
    text = visible(await maker.get(order))
    assert "Annulée par avoir" in text and "Émettre la facture" in text
    assert_no_codes(text)


async def test_the_buyer_sees_a_late_invoice_its_interest_and_the_indemnity(client, admin_key, db):
    world, maker, buyer = await world_of(client, admin_key)
    order = f"/app/commandes/{world['order']['id']}"
    await maker.post(f"{order}/factures", {"quantite": "6"})
    today = paris_day(datetime.now(UTC))
    due = today - timedelta(days=12)
    async with db.writer() as session:  # as if Chorus Pro had received it 42 days ago
        await session.execute(update(InvoiceRow).values(
            status="mise_a_disposition", received_on=due - timedelta(days=30), due_on=due, chorus_id="FAKE-1-A-0",
            service_fait_on=due - timedelta(days=31)))
        await session.commit()
    charges = late_charges(792_000, due, until=today)
    assert charges.days_late == 12

    text = visible(await buyer.get(order))
    assert "En retard de 12 jours" in text and "en retard" in text
    assert f"intérêts moratoires de {cents(charges.interest_cents)}" in text
    assert f"soit {rate_bp(charges.rate_bp)} l'an" in text
    assert f"indemnité forfaitaire pour frais de recouvrement de {eur('40,00')}" in text
    assert "art. D.2192-35 du code de la commande publique" in text
    assert f"{day(due)} (30 jours après la réception le {day(due - timedelta(days=30))}" in text

    listing = await buyer.get("/app/commandes")
    text = visible(listing)
    assert "Factures à payer" in text and "F-000001" in text and "Mise à disposition de l’acheteur" in text
    assert f"{day(due)} en retard de 12 jours" in text and eur("7 920,00") in text
    assert_no_codes(listing, world["order"]["id"])
    assert "Factures à payer" not in await maker.get("/app/commandes")  # a maker pays nothing here
    home = visible(await buyer.get("/app/demandes"))  # the buyer's home page lists them too
    assert "Factures à payer" in home and f"{day(due)} en retard de 12 jours" in home


async def test_the_order_page_links_the_printed_purchase_order_and_delivery_note(client, admin_key):
    """Issue 21 item 6 from the order page: both sides download the « Bon de commande » and the « Bon de
    livraison » (PDF, with the order number and the buyer's SIRET); another tenant gets the 404 page."""
    import io

    from pypdf import PdfReader

    world, maker, buyer = await world_of(client, admin_key)
    order = f"/app/commandes/{world['order']['id']}"
    page = await buyer.get(order)
    assert "Bon de commande (PDF)" in page and "Bon de livraison (PDF)" in page
    for person, kind, title in ((buyer, "bon-de-commande", "Bon de commande"),
                                (maker, "bon-de-livraison", "Bon de livraison")):
        response = await client.get(f"{order}/documents/{kind}", headers={"Cookie": person.cookie})
        assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
        assert world["order"]["number"] in response.headers["content-disposition"]
        text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)
        assert title in text and world["order"]["number"] in text and world["buyer_siret"] in text
    stranger = Browser(client, await signed_in(client, (await tenant(client, admin_key, "collectivite", "buyer"))[1]))
    assert "Introuvable" in await stranger.get(f"{order}/documents/bon-de-commande", status=404)
