"""Read-only views for the web interface: names behind ids, an order with its request and its two
parties, a maker's invitation and own quotes. Each view checks visibility through the use-case
services first (another tenant's object stays a NotFound), then reads the related rows."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.audit_read import AuditReader
from broker.db.constraints import conflict_for
from broker.db.fabrication import InvitationRepository, QuoteRepository, RequestRepository, WorkshopRepository
from broker.db.repositories import OrganisationRepository
from broker.domain.access import Organisation, Principal
from broker.domain.audit import AuditEntry
from broker.domain.fabrication import Invitation, Order, OrderEvent, Quote, Request, Workshop
from broker.errors import NotFound
from broker.services.orders import get_order
from broker.services.workshops import my_workshop


class OrderView(msgspec.Struct, frozen=True, kw_only=True):
    order: Order
    history: list[OrderEvent]
    request: Request
    workshop: Workshop
    buyer: Organisation


async def workshops_by_id(session: AsyncSession, ids: Sequence[str]) -> dict[str, Workshop]:
    """Workshops by id, for names and communes next to ids the caller may already see."""
    return await WorkshopRepository(session).many(list(dict.fromkeys(ids)))


async def order_view(session: AsyncSession, *, actor: Principal, order_id: str) -> OrderView:
    """An order the caller may read, with its request, its workshop and the buying organisation."""
    order, history = await get_order(session, actor=actor, order_id=order_id)
    request = await RequestRepository(session).get(order.request_id, scope_org_id=None)
    workshop = await WorkshopRepository(session).get(order.workshop_id)
    buyer = await OrganisationRepository(session).get(order.buyer_org_id, scope_org_id=None)
    if request is None or workshop is None or buyer is None:  # foreign keys make this impossible
        raise NotFound(f"order {order_id} not found")
    return OrderView(order=order, history=history, request=request, workshop=workshop, buyer=buyer)


async def my_invitation(
    session: AsyncSession, *, actor: Principal, invitation_id: str
) -> tuple[Invitation, Request, list[Quote]]:
    """One of this maker's invitations, its request and the quotes this workshop made on it."""
    workshop = await my_workshop(session, actor=actor)
    invitation = await InvitationRepository(session).get(invitation_id, workshop_id=workshop.id)
    if invitation is None:
        raise NotFound(f"invitation {invitation_id} not found")
    request = await RequestRepository(session).get(invitation.request_id, scope_org_id=None)
    if request is None:
        raise NotFound(f"invitation {invitation_id} not found")
    quotes = [q for q in await QuoteRepository(session).for_request(request.id) if q.workshop_id == workshop.id]
    return msgspec.convert(invitation, Invitation, from_attributes=True), request, quotes


async def audit_newest(
    session: AsyncSession, *, actor: Principal, before_id: int | None, limit: int
) -> list[AuditEntry]:
    """The audit log newest first: every entry for admins, the caller's organisation's otherwise."""
    rows = await AuditReader(session).newest(
        scope_org_id=None if actor.is_admin else actor.org_id, before_id=before_id, limit=limit
    )
    return [msgspec.convert(row, AuditEntry, from_attributes=True) for row in rows]


async def flush_or_conflict(session: AsyncSession) -> None:
    """Write now, so that a unique rule (a taken SIRET…) surfaces as its domain Conflict here, while
    the form that caused it can still be shown again, rather than at commit."""
    try:
        await session.flush()
    except IntegrityError as exc:
        conflict = conflict_for(exc)
        if conflict is None:
            raise
        raise conflict from exc
