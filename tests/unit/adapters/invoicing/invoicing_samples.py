"""Sample invoice documents for the invoicing adapter tests: an invoice at 20 %, its credit note, and an invoice of
a seller under the franchise en base (CGI art. 293 B). Real-looking French data with valid SIRETs (Luhn)."""

from __future__ import annotations

from datetime import date

import msgspec
from lxml import etree

from adapters.invoicing.base import InvoiceDocument, Party
from adapters.procurement.base import Address
from broker.domain.identifiers import siret_problem
from broker.domain.invoicing import FRANCHISE_MENTION, InvoiceKind, Line, VatRegime, french_vat_number, totals

SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)

BUYER_SIRET = "21350238800019"  # Commune de Rennes, hôtel de ville
SELLER_SIRET = "81234567600017"  # a fab lab (SAS)
MICRO_SIRET = "90215738700017"  # a maker under the franchise en base (micro-entreprise)
ENGAGEMENT = "EJ-2025-0001234"
SERVICE_CODE = "DSI-FABLAB"
IBAN = "FR7630006000011234567890189"
PAYMENT_TERMS = (
    "Paiement à 30 jours à compter de la réception de la facture (art. R.2192-10 du code de la commande "
    "publique). En cas de retard : intérêts moratoires au taux BCE majoré de 8 points (art. R.2192-31) et "
    "indemnité forfaitaire de 40 € pour frais de recouvrement (art. D.2192-35)."
)

for _siret in (BUYER_SIRET, SELLER_SIRET, MICRO_SIRET):
    assert siret_problem(_siret) is None, _siret

BUYER = Party(
    name="Commune de Rennes",
    siret=BUYER_SIRET,
    address=Address(line="Place de la Mairie", postcode="35000", commune="Rennes", insee="35238"),
)
SELLER = Party(
    name="Fab Lab des Champs Libres",
    siret=SELLER_SIRET,
    address=Address(line="10 cours des Alliés", postcode="35000", commune="Rennes", insee="35238"),
    vat_number=french_vat_number(SELLER_SIRET[:9]),
)
MICRO = Party(
    name="Atelier Lemoine — découpe laser",
    siret=MICRO_SIRET,
    address=Address(line="4 rue de la Forge", postcode="35510", commune="Cesson-Sévigné", insee="35051"),
)
LINES = (
    Line(name="Panneau de signalétique en bois gravé", quantity=12, unit_price_cents=4_850, vat_rate_bp=2000,
         item="panneau-grave"),
    Line(name="Support imprimé en 3D (PETG)", quantity=40, unit_price_cents=325, vat_rate_bp=2000,
         item="support-3d"),
    Line(name="Heure d'usinage CNC", quantity=3, unit_price_cents=6_500, vat_rate_bp=2000, unit_code="HUR"),
)


def invoice(**changes: object) -> InvoiceDocument:
    """F-000042 of the fab lab to the Commune de Rennes: 907,00 € HT, 181,40 € TVA, 1 088,40 € TTC."""
    document = InvoiceDocument(
        kind=InvoiceKind.INVOICE,
        number="F-000042",
        issue_date=date(2025, 6, 20),
        seller=SELLER,
        seller_vat_regime=VatRegime.NORMAL,
        buyer=BUYER,
        lines=LINES,
        totals=totals(LINES, VatRegime.NORMAL),
        order_number="CMD-2025-0815",
        order_reference=ENGAGEMENT,
        service_code=SERVICE_CODE,
        engagement_number=ENGAGEMENT,
        due_on=date(2025, 7, 20),
        payment_terms=PAYMENT_TERMS,
        delivered_on=date(2025, 6, 18),
        delivery_address=Address(line="Médiathèque des Champs Libres, 10 cours des Alliés", postcode="35000",
                                 commune="Rennes"),
        iban=IBAN,
    )
    return msgspec.structs.replace(document, **changes)


def credit_note(**changes: object) -> InvoiceDocument:
    """AV-000003 cancelling the CNC hours of F-000042."""
    lines = (LINES[2],)
    document = msgspec.structs.replace(
        invoice(),
        kind=InvoiceKind.CREDIT_NOTE,
        number="AV-000003",
        issue_date=date(2025, 7, 2),
        lines=lines,
        totals=totals(lines, VatRegime.NORMAL),
        preceding_number="F-000042",
        preceding_issue_date=date(2025, 6, 20),
        notes=("Avoir sur la facture F-000042 : heures d'usinage non réalisées.",),
        due_on=None,
        iban=None,
    )
    return msgspec.structs.replace(document, **changes)


def franchise_invoice(**changes: object) -> InvoiceDocument:
    """F-000007 of a micro-entrepreneur: 930,00 € HT, no VAT (art. 293 B du CGI)."""
    lines = (
        Line(name="Découpe laser de lettrages en contreplaqué", quantity=60, unit_price_cents=1_200, vat_rate_bp=2000),
        Line(name="Frais de mise en place", quantity=1, unit_price_cents=21_000, vat_rate_bp=2000),
    )
    document = msgspec.structs.replace(
        invoice(),
        number="F-000007",
        seller=MICRO,
        seller_vat_regime=VatRegime.FRANCHISE_EN_BASE,
        lines=lines,
        totals=totals(lines, VatRegime.FRANCHISE_EN_BASE),
        notes=(FRANCHISE_MENTION,),
        iban=None,
    )
    return msgspec.structs.replace(document, **changes)
