"""Read-only views for the web interface: names behind ids, an order with its request and its two
parties, a maker's invitations with its own quotes and where each stands, the invited workshops of a
buyer's request with their answers. Each view checks visibility through the use-case services first
(another tenant's object stays a NotFound), then reads the related rows."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.audit_read import AuditReader
from broker.db.constraints import conflict_for
from broker.db.fabrication import (
    InvitationRepository,
    Keyset,
    QuoteRepository,
    RequestRepository,
    WorkshopRepository,
)
from broker.db.repositories import OrganisationRepository
from broker.domain.access import Organisation, Principal
from broker.domain.audit import AuditEntry
from broker.domain.fabrication import Invitation, Order, OrderEvent, Quote, Request, Workshop
from broker.domain.invitation_state import InvitationState, invitation_state
from broker.domain.lifecycle import QuoteStatus
from broker.errors import NotFound
from broker.services.orders import get_order
from broker.services.quotes import my_invitations
from broker.services.requests import get_request
from broker.services.workshops import my_workshop


class OrderView(msgspec.Struct, frozen=True, kw_only=True):
    order: Order
    history: list[OrderEvent]
    request: Request
    workshop: Workshop
    buyer: Organisation


class MakerInvitation(msgspec.Struct, frozen=True, kw_only=True):
    """One of the maker's invitations, its request, the maker's own quotes on it and where it stands."""

    invitation: Invitation
    request: Request
    quotes: list[Quote]
    state: InvitationState


class InvitedWorkshop(msgspec.Struct, frozen=True, kw_only=True):
    """A workshop invited on the buyer's request and its answer (the decline reason is on ``invitation``)."""

    invitation: Invitation
    workshop: Workshop
    state: InvitationState
    withdrawn: int  # quotes it sent and took back


def state_of(invitation: Invitation, request: Request, quotes: Sequence[Quote]) -> InvitationState:
    """Where ``invitation`` stands, from its status, ``request`` and its workshop's ``quotes`` on it."""
    return invitation_state(invitation=invitation.status, quotes=[q.status for q in quotes], request=request.status,
                            window_closed=request.window_closed)


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


async def my_invitations_with_state(
    session: AsyncSession, *, actor: Principal, after: Keyset | None, limit: int
) -> list[MakerInvitation]:
    """A page of the maker's invitations (oldest first, as `my_invitations`), each with the maker's
    quotes on its request and where it stands. One quote read per request of the page (``limit`` of them)."""
    rows = await my_invitations(session, actor=actor, after=after, limit=limit)
    repo = QuoteRepository(session)
    views = []
    for invitation, request in rows:
        quotes = [q for q in await repo.for_request(request.id) if q.workshop_id == invitation.workshop_id]
        views.append(MakerInvitation(invitation=invitation, request=request, quotes=quotes,
                                     state=state_of(invitation, request, quotes)))
    return views


async def invited_workshops(session: AsyncSession, *, actor: Principal, request_id: str) -> list[InvitedWorkshop]:
    """Every workshop invited on a request the caller may read (by the matching, by the buyer, or that
    answered an open consultation), by rank, with where its invitation stands."""
    request = await get_request(session, actor=actor, request_id=request_id)
    invitations = [msgspec.convert(i, Invitation, from_attributes=True)
                   for i in await InvitationRepository(session).for_request(request_id)]
    quotes = await QuoteRepository(session).for_request(request_id)
    shops = await WorkshopRepository(session).many([i.workshop_id for i in invitations])
    views = []
    for invitation in invitations:
        own = [q for q in quotes if q.workshop_id == invitation.workshop_id]
        views.append(InvitedWorkshop(
            invitation=invitation, workshop=shops[invitation.workshop_id], state=state_of(invitation, request, own),
            withdrawn=sum(1 for q in own if q.status == QuoteStatus.WITHDRAWN)))
    return views


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
