"""Documents of an order built from the stored order: the procurement XML (Order-X CII, PEPPOL BIS 3 UBL) and
the printed « Bon de commande » and « Bon de livraison » (PDF), all from the same ``OrderDocument``."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from adapters.documents.order_pdf import DeliveryNotePdf, PrintedOrder, PrintedOrderRenderer, PurchaseOrderPdf
from adapters.geocoding.base import Commune, Geocoder
from adapters.procurement.base import (
    Address,
    Buyer,
    ChorusRequirement,
    DocumentRenderer,
    OrderDocument,
    OrderLine,
    Seller,
)
from adapters.procurement.orderx import OrderXRenderer
from adapters.procurement.peppol import PeppolOrderRenderer
from broker.db.fabrication import RequestRepository, WorkshopRepository
from broker.db.repositories import OrganisationRepository
from broker.domain import procurement as law
from broker.domain.access import Principal
from broker.domain.fabrication import Order, OrderEvent, Request
from broker.domain.lifecycle import OrderStatus
from broker.errors import NotFound
from broker.services.orders import get_order

RENDERERS: dict[str, DocumentRenderer] = {"order-x": OrderXRenderer(), "peppol": PeppolOrderRenderer()}
PDFS: dict[str, PrintedOrderRenderer] = {"purchase-order": PurchaseOrderPdf(), "delivery-note": DeliveryNotePdf()}


def commune_address(commune: Commune | None, line: str | None = None) -> Address:
    if commune is None:
        raise NotFound("the order's commune is no longer in the commune table")
    postcode = commune.postcodes[0] if commune.postcodes else f"{commune.department[:2]}000"
    return Address(line=line or None, postcode=postcode, commune=commune.name, insee=commune.insee)


class _Gathered(NamedTuple):
    """The stored order, its history and request, and the document every form of the order is made of."""

    order: Order
    history: list[OrderEvent]
    request: Request
    document: OrderDocument


async def _gather(session: AsyncSession, *, actor: Principal, order_id: str, geocoder: Geocoder) -> _Gathered:
    """Visible to both parties, the buyer's integrations and admins; anyone else gets NotFound."""
    order, history = await get_order(session, actor=actor, order_id=order_id)
    request = await RequestRepository(session).get(order.request_id, scope_org_id=None)
    workshop = await WorkshopRepository(session).get(order.workshop_id)
    orgs = OrganisationRepository(session)
    buyer_org = await orgs.get(order.buyer_org_id, scope_org_id=None)
    maker_org = await orgs.get(order.maker_org_id, scope_org_id=None)
    if request is None or workshop is None or buyer_org is None or maker_org is None:  # FKs make this impossible
        raise NotFound(f"order {order_id} is incomplete")
    procurement = request.procurement
    document = OrderDocument(
        order_id=order.id,
        order_number=order.number,
        issue_date=order.created_at.date(),
        buyer=Buyer(
            name=buyer_org.name,
            siret=procurement.buyer_siret,
            address=commune_address(geocoder.commune(buyer_org.commune_insee)),
            service_code=procurement.service_code, engagement_number=procurement.engagement_number,
            chorus_requirement=ChorusRequirement(procurement.chorus_requirement),
        ),
        seller=Seller(name=maker_org.name, siret=maker_org.siret,
                      address=commune_address(geocoder.commune(workshop.commune_insee))),
        lines=(
            OrderLine(item_slug=request.item_slug or "custom", name=request.name, quantity=Decimal(order.quantity),
                      unit_price=Decimal(order.unit_price_cents) / 100, vat_rate=Decimal(order.vat_rate_bp) / 100),
        ),
        delivery_date=order.delivery_date,
        delivery_address=commune_address(geocoder.commune(request.delivery_insee), request.delivery_address),
    )
    return _Gathered(order=order, history=history, request=request, document=document)


async def order_document(
    session: AsyncSession, *, actor: Principal, order_id: str, kind: str, geocoder: Geocoder
) -> bytes:
    """The order as XML of ``kind`` (``order-x`` or ``peppol``), visible to both parties, the
    buyer's integrations and admins; a missing Chorus reference is a 422 naming the field."""
    gathered = await _gather(session, actor=actor, order_id=order_id, geocoder=geocoder)
    return RENDERERS[kind].render(gathered.document)


def _procedure_words(request: Request) -> str | None:
    """The procedure the request was placed under, in French."""
    return law.procedure_words(request.procedure or request.procurement.procedure)


def _last_move(history: list[OrderEvent], to: OrderStatus) -> OrderEvent | None:
    return next((e for e in reversed(history) if e.to_status == to), None)


async def printed_order(session: AsyncSession, *, actor: Principal, order_id: str, geocoder: Geocoder) -> PrintedOrder:
    """The order as its « Bon de commande » and « Bon de livraison » print it, for the same readers as the XML.
    Shipping and receipt dates are those of the last move to ``shipped`` and ``delivered``."""
    gathered = await _gather(session, actor=actor, order_id=order_id, geocoder=geocoder)
    shipped = _last_move(gathered.history, OrderStatus.SHIPPED)
    delivered = _last_move(gathered.history, OrderStatus.DELIVERED)
    return PrintedOrder(
        document=gathered.document, procedure=_procedure_words(gathered.request), tracking=gathered.order.tracking,
        shipped_at=None if shipped is None else shipped.at, delivered_at=None if delivered is None else delivered.at,
    )


async def order_pdf(order: PrintedOrder, *, kind: str) -> bytes:
    """The order as the PDF of ``kind`` (``purchase-order`` or ``delivery-note``), rendered off the event loop
    (reportlab is CPU-bound, tens of ms)."""
    return await asyncio.to_thread(PDFS[kind].render, order)
