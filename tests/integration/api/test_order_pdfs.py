"""The printed documents of an order (issue 21, item 6) over HTTP: « Bon de commande » and « Bon de livraison »
as PDF, who may read them."""

from __future__ import annotations

import io
import re
from datetime import date

from factories import bearer, delivered_order, tenant
from pypdf import PdfReader

from adapters.documents.award_pdf import french_date, money

PDF = "application/pdf"


def pdf_text(pdf: bytes) -> str:
    """The PDF's text, every run of spaces (no-break ones included) and line breaks as one space."""
    raw = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return re.sub(r"[\s\u00a0\u202f]+", " ", raw)


def spaced(text: str) -> str:
    return re.sub(r"[\s\u00a0\u202f]+", " ", text)


async def get_pdf(client, key: str, order_id: str, kind: str):
    return await client.get(f"/v1/orders/{order_id}/documents/{kind}", headers=bearer(key))


async def test_purchase_order_and_delivery_note_of_a_delivered_order(client, admin_key):
    world = await delivered_order(client, admin_key)
    order = world["order"]
    number = order["number"]
    due = french_date(date.fromisoformat(order["delivery_date"]))

    answer = await get_pdf(client, world["buyer"], order["id"], "purchase-order")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == PDF
    assert answer.headers["content-disposition"] == f'attachment; filename="bon-de-commande-{number}.pdf"'
    text = pdf_text(answer.content)
    for expected in ("Bon de commande", f"Commande n° {number}", "Commune de Vitré",
                     f"SIRET : {world['buyer_siret']}", "Code service : SERVICE-FS",
                     "N° d'engagement juridique : EJ-2026-000412", "Menuiserie du Pays de Rennes",
                     "Maison France Services, 2 rue de la Mairie", f"Date de livraison convenue : {due}",
                     "Procédure : "):
        assert expected in text, expected
    # 6 desks at 1 100,00 € HT, TVA 20 %: the amounts in French typography, as the award record prints them.
    for amount in (money(110_000), f"Total HT {money(660_000)}", f"TVA 20 % sur {money(660_000)} {money(132_000)}",
                   f"Total TTC {money(792_000)}"):
        assert spaced(amount) in text, amount
    assert "7 920,00 €" in text

    answer = await get_pdf(client, world["maker"], order["id"], "delivery-note")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == PDF
    assert answer.headers["content-disposition"] == f'attachment; filename="bon-de-livraison-{number}.pdf"'
    text = pdf_text(answer.content)
    for expected in ("Bon de livraison", f"Commande n° {number}", f"SIRET : {world['buyer_siret']}",
                     "N° d'engagement juridique : EJ-2026-000412", "Maison France Services, 2 rue de la Mairie",
                     "Référence de suivi du transporteur : Colissimo 6A12345678901", "Expédiée le",
                     f"Date de livraison convenue : {due}", "Réception confirmée par l'acheteur le",
                     "Reçu par (nom, date, signature)", "Livré par"):
        assert expected in text, expected
    assert "€" not in text  # a delivery note shows no price

    # The same input gives the same bytes.
    again = await get_pdf(client, world["maker"], order["id"], "delivery-note")
    assert again.content == answer.content


async def test_order_pdfs_are_the_parties_only(client, admin_key):
    world = await delivered_order(client, admin_key, deliver=False, engagement_number=None)
    order_id = world["order"]["id"]
    _org, stranger = await tenant(client, admin_key, "collectivite", "buyer", name="Commune de Fougères",
                                  commune_insee="35115")
    for kind in ("purchase-order", "delivery-note"):
        assert (await get_pdf(client, stranger, order_id, kind)).status_code == 404
        assert (await client.get(f"/v1/orders/{order_id}/documents/{kind}")).status_code == 401
        assert (await get_pdf(client, admin_key, order_id, kind)).status_code == 200
    note = await get_pdf(client, world["buyer"], order_id, "delivery-note")
    assert note.status_code == 200, note.text
    text = pdf_text(note.content)
    assert "Colissimo 6A12345678901" in text
    assert "Réception confirmée" not in text  # shipped, not yet received
    assert "engagement" not in text
