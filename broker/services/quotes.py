"""Invitations, quotes and the award: the public-procurement rule, compare-and-set on quotes and
an atomic capacity reservation per workshop."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.base import new_id
from broker.db.fabrication import (
    InvitationRepository,
    Keyset,
    OrderRepository,
    QuoteRepository,
    RequestRepository,
    WorkshopRepository,
)
from broker.db.models import OrderEventRow, OrderRow, QuoteRow
from broker.db.procurement import recent_awards
from broker.db.repositories import ApiKeyRepository
from broker.domain import award_rules, events
from broker.domain.access import Principal
from broker.domain.events import InvitationDeclined, OrderCreated, QuoteAccepted, QuoteSubmitted, QuoteWithdrawn
from broker.domain.fabrication import Invitation, Order, Quote, Request, Workshop
from broker.domain.lifecycle import (
    INVITATION,
    InvitationStatus,
    OrderStatus,
    QuoteStatus,
    RequestStatus,
    allows,
    check_quote,
)
from broker.errors import Conflict, NotFound, Rejected
from broker.services import decp as decp_service
from broker.services import matching as matching_service
from broker.services.consultations import admit_to_consultation
from broker.services.events import emit
from broker.services.requests import get_request, raise_lost_race
from broker.services.workshops import my_workshop
from broker.settings import MatchingSettings

QUOTE_VALIDITY_DEFAULT = timedelta(days=30)


async def my_invitations(
    session: AsyncSession, *, actor: Principal, after: Keyset | None, limit: int
) -> list[tuple[Invitation, Request]]:
    workshop = await my_workshop(session, actor=actor)
    rows = await InvitationRepository(session).page_for_workshop(workshop.id, after=after, limit=limit)
    return [(msgspec.convert(i, Invitation, from_attributes=True), msgspec.convert(r, Request, from_attributes=True))
            for i, r in rows]


async def decline_invitation(
    session: AsyncSession, *, actor: Principal, invitation_id: str, reason: str, now: datetime
) -> Invitation:
    workshop = await my_workshop(session, actor=actor)
    invitation = await InvitationRepository(session).get(invitation_id, workshop_id=workshop.id)
    if invitation is None:
        raise NotFound(f"invitation {invitation_id} not found")
    if not allows(INVITATION, InvitationStatus(invitation.status), InvitationStatus.DECLINED):
        raise Conflict(f"the invitation is already '{invitation.status}'", code="invitation-closed")
    if not await InvitationRepository(session).decline(invitation, reason=reason):
        raise_lost_race("invitation")
    request = await RequestRepository(session).get(invitation.request_id, scope_org_id=None)
    assert request is not None
    await emit(session, InvitationDeclined(id=invitation.id, request_id=request.id, workshop_id=workshop.id,
                                           reason=reason),
               org_id=request.org_id, resource_id=invitation.id, now=now)
    await session.flush()
    return msgspec.convert(invitation, Invitation, from_attributes=True)


async def invitation_request(session: AsyncSession, *, invitation: Invitation) -> Request:
    request = await RequestRepository(session).get(invitation.request_id, scope_org_id=None)
    assert request is not None
    return request


async def submit_quote(
    session: AsyncSession,
    *,
    actor: Principal,
    request_id: str,
    unit_price_cents: int,
    vat_rate_bp: int,
    quantity: int,
    delivery_date: date,
    valid_until: datetime | None,
    note: str,
    now: datetime,
    settings: MatchingSettings | None = None,
) -> Quote:
    workshop = await my_workshop(session, actor=actor)
    invitation = await InvitationRepository(session).of(request_id, workshop.id)
    if invitation is None:
        # Not invited: an open consultation (MAPA) admits an eligible workshop (422 `not-eligible`
        # otherwise); any other request does not exist for this maker (404).
        invitation = await admit_to_consultation(session, workshop=workshop, request_id=request_id, now=now,
                                                 settings=settings)
    request = await RequestRepository(session).get(request_id, scope_org_id=None)
    assert request is not None
    if invitation.status != InvitationStatus.INVITED:
        raise Conflict("this workshop declined the invitation", code="invitation-closed")
    if request.status not in (RequestStatus.OPEN, RequestStatus.QUOTING) or request.window_closed:
        raise Conflict(f"the request is '{request.status}' and its quote window is closed", code="quote-window-closed")
    if quantity > request.quantity:
        raise Rejected(f"quantity {quantity} is more than the {request.quantity} requested", pointer="/quantity",
                       code="quantity-over-requested", figures={"quantity": quantity, "requested": request.quantity})
    if quantity < request.quantity and not request.allow_split:
        raise Rejected(f"this request may not be split: quote the full {request.quantity} units", pointer="/quantity",
                       code="split-not-allowed", figures={"requested": request.quantity})
    if delivery_date < now.date():
        raise Rejected("the delivery date is in the past", pointer="/delivery_date", code="delivery-date-past")
    valid = valid_until or now + QUOTE_VALIDITY_DEFAULT
    if valid <= now:
        raise Rejected("valid_until must be in the future", pointer="/valid_until", code="validity-past")
    # The request's row first, as every writer of its quotes takes it (withdraw, award, cancel): a
    # quote never lands on a request awarded or cancelled meanwhile, and two quotes of one workshop
    # never pass the check below together.
    current = await RequestRepository(session).lock(request_id)
    if current not in (RequestStatus.OPEN, RequestStatus.QUOTING):
        raise Conflict(f"the request is '{current}' and its quote window is closed", code="quote-window-closed")
    existing = [
        q
        for q in await QuoteRepository(session).for_request(request_id)
        if q.workshop_id == workshop.id and q.status == QuoteStatus.SUBMITTED
    ]
    if existing:
        raise Conflict(
            f"this workshop already has quote {existing[0].id} on the request; withdraw it first", code="quote-exists"
        )
    row = QuoteRow(
        id=new_id(),
        request_id=request_id,
        workshop_id=workshop.id,
        unit_price_cents=unit_price_cents,
        vat_rate_bp=vat_rate_bp,
        quantity=quantity,
        delivery_date=delivery_date,
        valid_until=valid,
        note=note,
        status=QuoteStatus.SUBMITTED,
        created_at=now,
    )
    QuoteRepository(session).add(row)
    if current == RequestStatus.OPEN and not await RequestRepository(session).set_status(
        request_id, expected=RequestStatus.OPEN, status=RequestStatus.QUOTING, now=now
    ):
        raise_lost_race("request")
    await emit(session, QuoteSubmitted(id=row.id, request_id=request_id, workshop_id=workshop.id, quantity=quantity,
                                       unit_price_cents=unit_price_cents),
               org_id=request.org_id, resource_id=row.id, now=now, first=True)
    return msgspec.convert(row, Quote, from_attributes=True)


async def withdraw_quote(session: AsyncSession, *, actor: Principal, quote_id: str, now: datetime) -> Quote:
    workshop = await my_workshop(session, actor=actor)
    repo = QuoteRepository(session)
    quote = await repo.get(quote_id)
    if quote is None or quote.workshop_id != workshop.id:
        raise NotFound(f"quote {quote_id} not found")
    check_quote(QuoteStatus(quote.status), QuoteStatus.WITHDRAWN)
    # The request's row before the quote (the award's order): an award running now has counted
    # this quote among those received; it must not commit on a count this withdraw makes wrong.
    await RequestRepository(session).lock(quote.request_id)
    if not await repo.set_status(quote_id, expected=QuoteStatus.SUBMITTED, status=QuoteStatus.WITHDRAWN):
        raise_lost_race("quote")
    request = await RequestRepository(session).get(quote.request_id, scope_org_id=None)
    assert request is not None
    await emit(session, QuoteWithdrawn(id=quote_id, request_id=quote.request_id), org_id=request.org_id,
               resource_id=quote_id, now=now)
    return msgspec.structs.replace(quote, status=QuoteStatus.WITHDRAWN)


async def quotes_for_buyer(
    session: AsyncSession, *, actor: Principal, request_id: str
) -> tuple[Request, list[tuple[Quote, Workshop, float | None]]]:
    request = await get_request(session, actor=actor, request_id=request_id)
    quotes = await QuoteRepository(session).for_request(request_id)
    workshops = await WorkshopRepository(session).many([q.workshop_id for q in quotes])
    distances = {i.workshop_id: i.distance_km for i in await InvitationRepository(session).for_request(request_id)}
    return request, [(q, workshops[q.workshop_id], distances.get(q.workshop_id)) for q in quotes]


def _justification_required(request: Request, quotes: list[Quote], breaches: list[award_rules.Breach]) -> Conflict:
    """The award's refusal: the first rule's code, every rule in ``rules`` (one justification
    answers them all). The minimum-quotes rule alone keeps its historic detail."""
    first = breaches[0]
    if {b.reason for b in breaches} == {award_rules.MIN_QUOTES}:
        received = sum(1 for q in quotes if q.status in (QuoteStatus.SUBMITTED, QuoteStatus.ACCEPTED))
        detail = (f"{received} quote(s) received of the {request.min_quotes} required while the quote window is open "
                  f"(until {request.quote_deadline.isoformat()}): wait, or give a justification")
    else:
        detail = award_rules.refusal_detail(breaches)
    members = {"reason": first.reason, "quote_id": first.quote_id, "workshop_id": first.workshop_id,
               "rules": [msgspec.to_builtins(b) for b in breaches]}
    figures = {"received": sum(1 for q in quotes if q.status in (QuoteStatus.SUBMITTED, QuoteStatus.ACCEPTED)),
               "required": request.min_quotes}
    return Conflict(detail, code=first.code, extensions={k: v for k, v in members.items() if v is not None},
                    figures=figures)


async def award(
    session: AsyncSession,
    *,
    actor: Principal,
    request_id: str,
    quote_ids: list[str],
    justification: str | None,
    now: datetime,
    decp_threshold_cents: int = decp_service.DEFAULT_THRESHOLD_CENTS,
) -> list[Order]:
    """Accept ``quote_ids`` and create one order per quote, reserving each workshop's capacity.

    The award rules (`broker.domain.award_rules`, issue 17), in any procedure: choosing a late (or
    partial) quote, passing over a cheaper valid quote (for a split award: leaving out a valid
    quote whose unit price TTC is lower than a chosen one's), choosing a workshop that won 2 of
    the buyer's last 5 awards in the CPV group over 24 months while another valid quote exists,
    and fewer than ``min_quotes`` received while the window is open each need a written
    ``justification`` (409 `justification-required` with ``reason`` `invalid-quote` or
    `not-lowest`, `rotation-justification-required`, `min-quotes-not-met`; the problem lists every
    rule in ``rules``). One justification answers them all; each rule it answered is stored as
    ``{code, text}`` in the request's award record, with the deciding key's label and the time,
    and carried by the ``order.created`` events.

    Every write is conditional: a quote is accepted only if still ``submitted``, a workshop booked
    only if it has room — a lost race is a 409 and the whole award rolls back. Two awards of one
    buyer at the same moment do not see each other's orders for the rotation count."""
    request = await get_request(session, actor=actor, request_id=request_id)
    if request.status != RequestStatus.QUOTING:
        raise Conflict(
            f"the request is '{request.status}': only a request with quotes ('quoting') can be awarded",
            code="not-awardable",
        )
    if len(set(quote_ids)) != len(quote_ids):
        raise Rejected("a quote is listed twice", pointer="/quote_ids", code="quote-listed-twice")
    # quoting → awarded before reading the quotes: a submit or withdraw of this request's quotes
    # (they take the request's row first) either committed before, and is read below, or waits for
    # this award and then finds the request awarded. Any refusal below rolls the move back.
    if not await RequestRepository(session).set_status(
        request.id,
        expected=RequestStatus.QUOTING,
        status=RequestStatus.AWARDED,
        now=now,
        award_justification=(justification or None),
    ):
        raise_lost_race("request")
    all_quotes = await QuoteRepository(session).for_request(request_id)
    by_id = {q.id: q for q in all_quotes}
    chosen = []
    for index, quote_id in enumerate(quote_ids):
        quote = by_id.get(quote_id)
        if quote is None:
            raise Rejected(f"quote {quote_id} is not a quote of this request", pointer=f"/quote_ids/{index}",
                           code="quote-not-of-request")
        if quote.status != QuoteStatus.SUBMITTED or quote.valid_until <= now:
            state = "expired" if quote.status == QuoteStatus.SUBMITTED else quote.status
            raise Conflict(f"quote {quote_id} is {state}; it can no longer be accepted", code="quote-not-valid")
        chosen.append(quote)
    total = sum(q.quantity for q in chosen)
    if not request.allow_split and (len(chosen) != 1 or total != request.quantity):
        raise Rejected(
            "this request may not be split: award exactly one quote for the full quantity", pointer="/quote_ids",
            code="award-not-whole",
        )
    if total > request.quantity:
        raise Rejected(
            f"the quotes add up to {total} units, more than the {request.quantity} requested", pointer="/quote_ids",
            code="award-over-quantity", figures={"total": total, "requested": request.quantity},
        )
    shops = await WorkshopRepository(session).many(sorted({q.workshop_id for q in all_quotes}))
    past = None
    if request.cpv_group is not None and award_rules.needs_history(request, all_quotes, quote_ids, now=now):
        past = await recent_awards(session, org_id=request.org_id, cpv_group=request.cpv_group,
                                   since=award_rules.rotation_since(now), limit=award_rules.ROTATION_AWARDS,
                                   exclude_request_id=request.id)
    breaches = award_rules.assess(request, all_quotes, quote_ids, now=now,
                                  names={i: w.name for i, w in shops.items()}, past_awards=past)
    text = (justification or "").strip()
    if breaches and not text:
        raise _justification_required(request, all_quotes, breaches)
    justified = award_rules.justifications(breaches, text)
    key = await ApiKeyRepository(session).get(actor.key_id, scope_org_id=None)
    await RequestRepository(session).record_award(
        request.id, justifications=[{"code": j.code, "text": j.text} for j in justified],
        awarded_by=key.label if key is not None else actor.key_prefix, awarded_at=now,
    )
    event_justifications = [events.Justification(code=j.code, text=j.text) for j in justified] or None
    quotes = QuoteRepository(session)
    workshops = WorkshopRepository(session)
    orders_repo = OrderRepository(session)
    owners = shops
    orders: list[Order] = []
    for quote in chosen:
        if not await quotes.set_status(quote.id, expected=QuoteStatus.SUBMITTED, status=QuoteStatus.ACCEPTED):
            raise Conflict(f"quote {quote.id} was changed meanwhile (withdrawn or awarded)", code="quote-not-valid")
        capacity = await matching_service.gross_capacity(session, request, quote.workshop_id, now=now)
        if capacity is None or not await workshops.reserve(quote.workshop_id, quote.quantity, capacity=capacity):
            raise Conflict(
                f"workshop {quote.workshop_id} has no capacity left for {quote.quantity} units by the deadline",
                code="capacity-exhausted",
            )
        order_id = new_id()
        row = OrderRow(
            id=order_id,
            number=f"BC-{now:%Y%m%d}-{order_id[:8].upper()}",
            request_id=request.id,
            quote_id=quote.id,
            buyer_org_id=request.org_id,
            workshop_id=quote.workshop_id,
            maker_org_id=owners[quote.workshop_id].org_id,
            quantity=quote.quantity,
            unit_price_cents=quote.unit_price_cents,
            vat_rate_bp=quote.vat_rate_bp,
            delivery_date=quote.delivery_date,
            status=OrderStatus.AWARDED,
            units_done=0,
            late=False,
            created_at=now,
            updated_at=now,
        )
        orders_repo.add(row)
        orders_repo.add_event(
            OrderEventRow(
                order_id=order_id,
                at=now,
                kind="status",
                from_status=None,
                to_status=OrderStatus.AWARDED,
                actor_org_id=actor.org_id,
                note=justification,
            )
        )
        await emit(session, QuoteAccepted(id=quote.id, request_id=request.id, order_id=order_id),
                   org_id=row.maker_org_id, resource_id=quote.id, now=now)
        # Order events are the buyer's; they name the maker's organisation so that delivery can
        # notify both parties.
        await emit(session, OrderCreated(id=order_id, number=row.number, request_id=request.id,
                                         workshop_id=row.workshop_id, maker_org_id=row.maker_org_id,
                                         quantity=row.quantity, justifications=event_justifications),
                   org_id=row.buyer_org_id, resource_id=order_id, now=now, first=True)
        orders.append(msgspec.convert(row, Order, from_attributes=True))
    await quotes.reject_others(request.id, keep=[q.id for q in chosen])
    await decp_service.record_award(session, request=request, orders=orders, now=now, threshold=decp_threshold_cents)
    return orders
