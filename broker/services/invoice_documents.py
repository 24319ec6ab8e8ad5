"""An invoice's documents (Factur-X PDF/A-3 with its CII XML, PEPPOL BIS Billing 3 UBL) built from what
is stored: the invoice, its order and request, both organisations, their communes."""

from __future__ import annotations

from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from adapters.geocoding.base import Geocoder
from adapters.invoicing.base import InvoiceDocument, InvoiceRenderer, Party
from adapters.invoicing.cii import CiiInvoiceRenderer
from adapters.invoicing.facturx_pdf import FacturXPdfRenderer
from adapters.invoicing.ubl import UblInvoiceRenderer
from broker.db.fabrication import OrderRepository, RequestRepository, WorkshopRepository
from broker.db.invoices import InvoiceRepository
from broker.db.repositories import OrganisationRepository
from broker.domain.access import Organisation
from broker.domain.invoicing import (
    FRANCHISE_MENTION,
    INDEMNITY_TEXT,
    INTEREST_TEXT,
    Invoice,
    InvoiceKind,
    VatRegime,
    delay_of,
    french_vat_number,
    totals,
)
from broker.errors import NotFound
from broker.services.documents import commune_address

DocumentKind = Literal["factur-x", "cii", "ubl"]
RENDERERS: dict[str, InvoiceRenderer] = {
    "factur-x": FacturXPdfRenderer(), "cii": CiiInvoiceRenderer(), "ubl": UblInvoiceRenderer(),
}
FILE_SUFFIX = {"factur-x": "pdf", "cii": "xml", "ubl": "xml"}


def payment_terms(delay_days: int, delay_text: str) -> str:
    """BT-20, with the mentions French law requires on an invoice (code de commerce, L.441-9): the
    delay, the late-payment interest and the 40 € indemnity."""
    return (f"Paiement à {delay_days} jours à compter de la réception de la facture ({delay_text}). "
            f"En cas de retard : intérêts moratoires au taux de la BCE majoré de 8 points ({INTEREST_TEXT}) "
            f"et indemnité forfaitaire pour frais de recouvrement de 40 € ({INDEMNITY_TEXT}).")


def _party(org: Organisation, geocoder: Geocoder, commune_insee: str) -> Party:
    return Party(name=org.name, siret=org.siret, address=commune_address(geocoder.commune(commune_insee)),
                 vat_number=french_vat_number(org.siret[:9]))


async def invoice_document(session: AsyncSession, invoice: Invoice, *, geocoder: Geocoder) -> InvoiceDocument:
    order = await OrderRepository(session).get(invoice.order_id)
    request = None if order is None else await RequestRepository(session).get(order.request_id, scope_org_id=None)
    workshop = None if order is None else await WorkshopRepository(session).get(order.workshop_id)
    orgs = OrganisationRepository(session)
    seller = await orgs.get(invoice.seller_org_id, scope_org_id=None)
    buyer = await orgs.get(invoice.buyer_org_id, scope_org_id=None)
    if order is None or request is None or workshop is None or seller is None or buyer is None:
        raise NotFound(f"invoice {invoice.id} is incomplete")  # the foreign keys make this impossible
    preceding = None if invoice.preceding_id is None else await InvoiceRepository(session).get(invoice.preceding_id)
    procurement = request.procurement
    regime = VatRegime(invoice.vat_regime)
    notes: list[str] = []
    if regime is VatRegime.FRANCHISE_EN_BASE:
        notes.append(FRANCHISE_MENTION)
    if invoice.kind is InvoiceKind.CREDIT_NOTE and invoice.reason:
        notes.append(f"Motif de l’avoir : {invoice.reason}")
    amounts = totals(invoice.lines, regime)  # what was stored at issue, recomputed from the same lines
    return InvoiceDocument(
        kind=invoice.kind, number=invoice.number, issue_date=invoice.issue_date,
        seller=_party(seller, geocoder, workshop.commune_insee), seller_vat_regime=regime,
        buyer=Party(name=buyer.name, siret=procurement.buyer_siret,
                    address=commune_address(geocoder.commune(buyer.commune_insee))),
        lines=invoice.lines, totals=amounts,
        order_number=order.number, order_reference=procurement.engagement_number or order.number,
        service_code=procurement.service_code, engagement_number=procurement.engagement_number,
        due_on=invoice.due_on, payment_terms=payment_terms(invoice.delay_days, delay_of(invoice.delay_days).text),
        delivered_on=invoice.service_fait_on,
        delivery_address=commune_address(geocoder.commune(request.delivery_insee), request.delivery_address),
        preceding_number=None if preceding is None else preceding.number,
        preceding_issue_date=None if preceding is None else preceding.issue_date,
        notes=tuple(notes), iban=seller.iban,
    )


async def render(session: AsyncSession, invoice: Invoice, kind: DocumentKind, *, geocoder: Geocoder) -> bytes:
    """The invoice's document of ``kind``, checked against its schema by the renderer."""
    return RENDERERS[kind].render(await invoice_document(session, invoice, geocoder=geocoder))


def file_name(invoice: Invoice, kind: DocumentKind) -> str:
    return f"{invoice.number}.{FILE_SUFFIX[kind]}"
