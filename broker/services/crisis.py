"""Crisis calls, the coordinator's side: create (allocated in the same transaction), read with
totals, add delivery points or raise a quantity (only the difference is allocated), close, cancel."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.geocoding.base import Geocoder
from broker.db.base import new_id
from broker.db.crisis import CrisisRepository
from broker.db.fabrication import Keyset, WorkshopRepository
from broker.db.models import CrisisCallRow, DeliveryPointRow
from broker.domain.access import Principal
from broker.domain.catalogue import CatalogueItem
from broker.domain.crisis import (
    AGREED,
    PRIORITIES,
    CallStatus,
    Commitment,
    CommitmentFigures,
    CommitmentStatus,
    CrisisCall,
    DeliveryPoint,
    NewPoint,
    Rebalance,
    RebalanceReason,
    Totals,
    check_call,
    check_points,
    check_raise,
    default_call_name,
    totals,
)
from broker.domain.events import CommitmentCancelled, CrisisCallClosed, CrisisCallCreated, CrisisCallUpdated
from broker.domain.fabrication import Workshop
from broker.errors import Conflict, NotFound, Rejected
from broker.services.crisis_allocation import reallocate, suppliers_for
from broker.services.events import emit, lost_race
from broker.services.workshops import catalogue_item
from broker.settings import CrisisSettings

PARIS = ZoneInfo("Europe/Paris")  # the calendar of a call's default name


class NewCall(msgspec.Struct, frozen=True, kw_only=True):
    item: str
    deadline: datetime
    priority: int
    max_distance_km: float | None
    points: tuple[NewPoint, ...]
    name: str | None = None  # blank or None: the item and the day (« Visières — 3 décembre 2026 »)


class CallDetail(msgspec.Struct, frozen=True, kw_only=True):
    call: CrisisCall
    totals: Totals
    points: list[DeliveryPoint]
    commitments: list[Commitment]
    rebalances: list[Rebalance]
    workshops: dict[str, Workshop]


def _scope(actor: Principal) -> str | None:
    return None if actor.is_admin else actor.org_id


def _point_rows(
    call_id: str, points: Sequence[NewPoint], geocoder: Geocoder, *, now: datetime, pointer: str
) -> list[DeliveryPointRow]:
    rows = []
    for i, p in enumerate(points):
        commune = geocoder.commune(p.commune_insee)
        if commune is None:
            raise Rejected(f"commune_insee {p.commune_insee!r} is not a French commune code",
                           pointer=f"{pointer}/{i}/commune_insee", code="commune-unknown",
                           figures={"commune": p.commune_insee})
        rows.append(DeliveryPointRow(id=new_id(), call_id=call_id, label=p.label.strip(), commune_insee=commune.insee,
                                     lat=commune.lat, lon=commune.lon, quantity=p.quantity, priority=p.priority,
                                     accepted_units=0, created_at=now, updated_at=now))
    return rows


async def _item(session: AsyncSession, slug: str) -> CatalogueItem:
    try:
        return await catalogue_item(session, slug=slug)
    except NotFound as exc:
        raise Rejected(f"no catalogue item {slug!r}", pointer="/item", code="catalogue-item-unknown",
                       figures={"item": slug}) from exc


async def create_call(
    session: AsyncSession,
    *,
    actor: Principal,
    new: NewCall,
    geocoder: Geocoder,
    settings: CrisisSettings,
    now: datetime,
) -> CrisisCall:
    """Validate, store and allocate, all in the caller's transaction (crisis_call.created,
    crisis_call.allocated and one commitment.created per proposal go to the outbox)."""
    if new.deadline <= now:
        raise Rejected("the deadline must be in the future", pointer="/deadline", code="deadline-past")
    if new.priority not in PRIORITIES:
        raise Rejected("priority must be 1 (most urgent) to 5", pointer="/priority", code="priority-out-of-range")
    points = check_points(new.points)
    item = await _item(session, new.item)
    call_id = new_id()
    rows = _point_rows(call_id, points, geocoder, now=now, pointer="/delivery_points")
    found = await suppliers_for(session, item, deadline=new.deadline, now=now,
                                near=[(r.lat, r.lon) for r in rows], max_distance_km=new.max_distance_km)
    if found.able == 0:
        raise Rejected(
            f"no workshop within reach of the delivery points can make {item.name!r} ({found.considered} "
            "registered; it takes the item's processes, materials and part size, and verified certifications: "
            f"{', '.join(item.certifications_required) or 'none'})",
            pointer="/item", code="no-workshop-in-reach",
            figures={"item": item.name, "considered": found.considered,
                     "certifications": list(item.certifications_required)},
        )
    call = CrisisCallRow(
        id=call_id,
        org_id=actor.org_id,
        item_slug=item.slug,
        name=(new.name or "").strip() or default_call_name(item.name, now.astimezone(PARIS).date()),
        deadline=new.deadline,
        priority=new.priority,
        max_distance_km=new.max_distance_km,
        status=CallStatus.OPEN,
        revision=0,
        created_at=now,
        updated_at=now,
    )
    repo = CrisisRepository(session)
    repo.add(call)
    await repo.flush()  # the call before its points (foreign keys)
    for row in rows:
        repo.add(row)
    await repo.flush()
    await emit(session, CrisisCallCreated(id=call_id, item=item.slug, deadline=new.deadline.isoformat(),
                                          priority=new.priority, delivery_points=len(rows),
                                          requested=sum(p.quantity for p in points), name=call.name),
               org_id=actor.org_id, resource_id=call_id, now=now, first=True)
    created = msgspec.convert(call, CrisisCall, from_attributes=True)
    await reallocate(session, created, reason=RebalanceReason.ALLOCATION, settings=settings, now=now, item=item)
    return await get_call(session, actor=actor, call_id=call_id)


async def get_call(session: AsyncSession, *, actor: Principal, call_id: str) -> CrisisCall:
    call = await CrisisRepository(session).get(call_id, scope_org_id=_scope(actor))
    if call is None:
        raise NotFound(f"crisis call {call_id} not found")
    return call


async def call_detail(session: AsyncSession, *, actor: Principal, call_id: str) -> CallDetail:
    call = await get_call(session, actor=actor, call_id=call_id)
    repo = CrisisRepository(session)
    points = await repo.points(call_id)
    commitments = await repo.commitments(call_id)
    figures = [CommitmentFigures(c.status, c.quantity, c.produced, c.delivered) for c in commitments]
    return CallDetail(
        call=call,
        totals=totals(sum(p.quantity for p in points), figures),
        points=points,
        commitments=commitments,
        rebalances=await repo.rebalances(call_id),
        workshops=await WorkshopRepository(session).many(list({c.workshop_id for c in commitments})),
    )


async def list_calls(
    session: AsyncSession, *, actor: Principal, after: Keyset | None, limit: int, status: str | None
) -> list[tuple[CrisisCall, Totals]]:
    repo = CrisisRepository(session)
    calls = await repo.page(scope_org_id=_scope(actor), after=after, limit=limit, status=status)
    requested, figures = await repo.figures([c.id for c in calls])
    return [(c, totals(requested.get(c.id, 0), figures.get(c.id, []))) for c in calls]


async def add_points(
    session: AsyncSession,
    *,
    actor: Principal,
    call_id: str,
    points: Sequence[NewPoint],
    geocoder: Geocoder,
    settings: CrisisSettings,
    now: datetime,
) -> CrisisCall:
    """New delivery points mid-crisis: every live commitment stays, the new demand is allocated."""
    call = await _open(session, actor=actor, call_id=call_id, now=now)
    checked = check_points(points)
    repo = CrisisRepository(session)
    taken = {p.label.casefold() for p in await repo.points(call_id)}
    for i, p in enumerate(checked):
        if p.label.strip().casefold() in taken:
            raise Rejected(f"the call already has a delivery point {p.label!r}", pointer=f"/delivery_points/{i}/label",
                           code="delivery-point-twice", figures={"label": p.label})
    rows = _point_rows(call_id, checked, geocoder, now=now, pointer="/delivery_points")
    for row in rows:
        repo.add(row)
    await repo.flush()
    await reallocate(session, call, reason=RebalanceReason.POINTS_ADDED, settings=settings, now=now)
    await emit(session, CrisisCallUpdated(id=call_id, change="points_added", delivery_points=[r.id for r in rows],
                                          added_units=sum(r.quantity for r in rows)),
               org_id=call.org_id, resource_id=call_id, now=now)
    return await get_call(session, actor=actor, call_id=call_id)


async def raise_quantity(
    session: AsyncSession,
    *,
    actor: Principal,
    call_id: str,
    point_id: str,
    quantity: int,
    settings: CrisisSettings,
    now: datetime,
) -> CrisisCall:
    """A point needs more: only the extra units are allocated (a quantity is never lowered, so no
    promised unit is taken back)."""
    call = await _open(session, actor=actor, call_id=call_id, now=now)
    repo = CrisisRepository(session)
    point = await repo.point(point_id, call_id=call_id)
    if point is None:
        raise NotFound(f"delivery point {point_id} not found")
    check_raise(point.quantity, quantity)
    if not await repo.raise_quantity(point_id, seen=point.quantity, quantity=quantity, now=now):
        raise lost_race("delivery point")
    await reallocate(session, call, reason=RebalanceReason.QUANTITY_RAISED, settings=settings, now=now)
    await emit(session, CrisisCallUpdated(id=call_id, change="quantity_raised", delivery_point=point_id,
                                          previous_quantity=point.quantity, quantity=quantity),
               org_id=call.org_id, resource_id=call_id, now=now)
    return await get_call(session, actor=actor, call_id=call_id)


async def _open(session: AsyncSession, *, actor: Principal, call_id: str, now: datetime) -> CrisisCall:
    """The open call, its row taken first (every writer of a call locks it before anything else)."""
    call = await get_call(session, actor=actor, call_id=call_id)
    if call.status != CallStatus.OPEN:
        raise Conflict(f"the crisis call is '{call.status}': it no longer changes", code="crisis-call-closed")
    if not await CrisisRepository(session).lock(call_id, seen_revision=call.revision, now=now):
        raise lost_race("crisis call")
    return call


async def close_call(
    session: AsyncSession, *, actor: Principal, call_id: str, now: datetime, cancel: bool = False
) -> CrisisCall:
    """Stop recruiting: proposals are cancelled (their capacity released); accepted commitments
    are still produced, reported and delivered. ``cancel`` withdraws a call nobody accepted yet."""
    call = await get_call(session, actor=actor, call_id=call_id)
    target = CallStatus.CANCELLED if cancel else CallStatus.CLOSED
    check_call(CallStatus(call.status), target)
    repo = CrisisRepository(session)
    commitments = await repo.commitments(call_id)
    if cancel and any(c.status in AGREED for c in commitments):
        raise Conflict(
            "makers already accepted commitments of this call: close it instead", code="crisis-call-accepted"
        )
    if not await repo.set_call_status(call_id, expected=CallStatus.OPEN, status=target, now=now, closed_at=now):
        raise lost_race("crisis call")
    released = 0
    for c in commitments:
        if c.status != CommitmentStatus.PROPOSED:
            continue
        if not await repo.set_status(c.id, expected=CommitmentStatus.PROPOSED, status=CommitmentStatus.CANCELLED,
                                     now=now, decided_at=now):
            # Accepted meanwhile: a cancelled call must have none; a closed call keeps it.
            if cancel:
                raise lost_race("commitment")
            continue
        released += c.quantity
        await repo.unbook(c.workshop_id, c.quantity)
        await emit(session, CommitmentCancelled(id=c.id, call_id=call_id, maker_org_id=c.maker_org_id,
                                                quantity=c.quantity, reason=f"call {target}"),
                   org_id=call.org_id, resource_id=c.id, now=now)
    if released:
        await repo.bookings_changed()
    await emit(session, CrisisCallClosed(id=call_id, status=target, released_units=released),
               org_id=call.org_id, resource_id=call_id, now=now)
    return await get_call(session, actor=actor, call_id=call_id)
