"""Procurement documents of an order (Order-X CII, PEPPOL BIS 3 UBL) built from the stored order."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

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
from broker.domain.access import Principal
from broker.errors import NotFound
from broker.services.orders import get_order

RENDERERS: dict[str, DocumentRenderer] = {"order-x": OrderXRenderer(), "peppol": PeppolOrderRenderer()}


def commune_address(commune: Commune | None, line: str | None = None) -> Address:
    if commune is None:
        raise NotFound("the order's commune is no longer in the commune table")
    postcode = commune.postcodes[0] if commune.postcodes else f"{commune.department[:2]}000"
    return Address(line=line or None, postcode=postcode, commune=commune.name, insee=commune.insee)


async def order_document(
    session: AsyncSession, *, actor: Principal, order_id: str, kind: str, geocoder: Geocoder
) -> bytes:
    """The order as XML of ``kind`` (``order-x`` or ``peppol``), visible to both parties, the
    buyer's integrations and admins; a missing Chorus reference is a 422 naming the field."""
    order, _history = await get_order(session, actor=actor, order_id=order_id)
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
    return RENDERERS[kind].render(document)
