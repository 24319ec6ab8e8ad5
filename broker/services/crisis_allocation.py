"""Allocating a crisis call and re-allocating it: who can make the item, how many units each
workshop can still give by the deadline, the exact solver (`matching.allocate` / `rebalance`), and
the commitments, bookings and events that turn its answer into state.

One re-allocation at a time per call: ``start_allocation`` bumps the call's revision first (a row
lock on PostgreSQL, the single writer on SQLite), then everything is read and written in that
transaction. Every commitment it changes is changed by compare-and-set, and every unit it books
passes the workshop's conditional UPDATE: if a maker accepted or declined meanwhile, or an award
took the capacity, the whole re-allocation rolls back and is tried again (409 in a request; the
call keeps its rebalance flag for the worker)."""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

import matching
from broker.db.base import new_id
from broker.db.crisis import CrisisRepository
from broker.db.fabrication import WorkshopRepository
from broker.db.models import CommitmentRow, RebalanceRow
from broker.domain.catalogue import CatalogueItem
from broker.domain.crisis import (
    AGREED,
    LIVE,
    CallStatus,
    Commitment,
    CommitmentStatus,
    CrisisCall,
    DeliveryPoint,
    Lag,
    Rebalance,
    RebalanceReason,
    lag,
)
from broker.domain.events import (
    CommitmentCancelled,
    CommitmentCreated,
    CommitmentExpired,
    CommitmentResized,
    CrisisCallAllocated,
    CrisisCallRebalanced,
)
from broker.domain.fabrication import Workshop
from broker.errors import Conflict, NotFound
from broker.services.events import emit, lost_race
from broker.services.matching import KM_PER_DEGREE, candidate, match_steps
from broker.services.workshops import catalogue_item
from broker.settings import CrisisSettings
from matching.constraints import evaluate

#: Reasons that say a workshop cannot make the item at all (pause and capacity are passing states).
_UNABLE = frozenset({"process_missing", "part_too_large", "material_unsupported", "too_thick", "certification_missing"})


class Supplier(msgspec.Struct, frozen=True, kw_only=True):
    """A workshop able to make the item, and its units by the deadline before any booking."""

    workshop: Workshop
    gross: int


class Suppliers(msgspec.Struct, frozen=True, kw_only=True):
    """The workshops within reach that can take units now (able, not paused), how many within
    reach are able at all, and how many workshops are registered."""

    active: list[Supplier]
    able: int
    considered: int


async def suppliers_for(
    session: AsyncSession,
    item: CatalogueItem,
    *,
    deadline: datetime,
    now: datetime,
    near: Sequence[tuple[float, float]] = (),
    max_distance_km: float | None = None,
) -> Suppliers:
    """The workshops that could reach one of the ``near`` points (every workshop when none is
    given), judged by the matching filters for the item (process, envelope, material, thickness,
    verified certifications, pause), with their capacity by the deadline: declared units per day,
    else machine hours at the bottleneck step (`matching.capacity`). The reach is a bounding box of
    the points widened by the largest delivery radius (capped by the call's maximum distance); the
    solver then applies each workshop's exact radius."""
    repo = WorkshopRepository(session)
    considered, max_radius = await repo.count_and_max_radius()
    if near:
        reach = min(max_radius, max_distance_km if max_distance_km is not None else math.inf)
        lats = [lat for lat, _lon in near]
        dlat = reach / KM_PER_DEGREE + 0.01
        coslat = max(min(math.cos(math.radians(x)) for x in (min(lats) - dlat, max(lats) + dlat)), 0.01)
        dlon = reach / (KM_PER_DEGREE * coslat) + 0.01
        workshops = await repo.within_box(
            lat_min=min(lats) - dlat,
            lat_max=max(lats) + dlat,
            lon_min=min(lon for _lat, lon in near) - dlon,
            lon_max=max(lon for _lat, lon in near) + dlon,
        )
    else:
        workshops = await repo.everything()
    ids = [w.id for w in workshops]
    machines = await repo.machines(ids)
    declared = await repo.capacities(ids, item.slug)
    probe = matching.MatchRequest(
        steps=match_steps(item.steps),
        quantity=1,
        deadline=deadline,
        delivery_lat=0.0,
        delivery_lon=0.0,
        certifications_required=tuple(item.certifications_required),
        allow_split=True,
        item=item.slug,
    )
    days = matching.working_days(now, deadline)
    active: list[Supplier] = []
    able = 0
    for w in workshops:
        # Distance is the solver's business (each workshop's radius, the call's maximum): judged at 0 km here.
        ev = evaluate(probe, candidate(w, machines[w.id], declared.get(w.id), reserved_units=0), days=days,
                      distance_km=0.0)
        codes = {r.code for r in ev.reasons}
        if codes & _UNABLE:
            continue
        able += 1
        if "paused" not in codes:
            active.append(Supplier(workshop=w, gross=ev.capacity_units))
    return Suppliers(active=active, able=able, considered=considered)


class _Plan(msgspec.Struct, kw_only=True):
    """What a re-allocation did: proposals created, resized and cancelled, lagging accepted
    commitments trimmed (stored as the rebalance's ``moved``)."""

    created: list[dict[str, Any]] = msgspec.field(default_factory=list)
    changed: list[dict[str, Any]] = msgspec.field(default_factory=list)
    cancelled: list[dict[str, Any]] = msgspec.field(default_factory=list)
    trimmed: list[dict[str, Any]] = msgspec.field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.created or self.changed or self.cancelled or self.trimmed)


class _Released(msgspec.Struct, kw_only=True):
    """Units trimmed off lagging commitments: to release per workshop, to give back per point."""

    workshops: dict[str, int] = msgspec.field(default_factory=dict)
    points: dict[str, int] = msgspec.field(default_factory=dict)


def _key(c: Commitment) -> tuple[str, str]:
    return (c.workshop_id, c.delivery_point_id)


def _aggregate(commitments: list[Commitment]) -> list[matching.Assignment]:
    units: dict[tuple[str, str], int] = defaultdict(int)
    dist: dict[tuple[str, str], float] = {}
    for c in commitments:
        units[_key(c)] += c.quantity
        dist[_key(c)] = c.distance_km
    return [matching.Assignment(w, p, u, dist[(w, p)]) for (w, p), u in sorted(units.items()) if u > 0]


async def _trim_lagging(
    session: AsyncSession,
    call: CrisisCall,
    commitments: list[Commitment],
    *,
    settings: CrisisSettings,
    now: datetime,
    plan: _Plan,
    released: _Released,
) -> list[Commitment]:
    """Lower every lagging accepted commitment to what its workshop is expected to make; the units
    taken off go back to the pool (``released``: units per workshop and per point, applied by
    `_apply` after every commitment change, in the lock order call → commitments → points →
    workshops). Returns the commitments as they now are."""
    repo = CrisisRepository(session)
    out: list[Commitment] = []
    for c in commitments:
        found: Lag | None = None
        if c.status == CommitmentStatus.ACCEPTED and c.accepted_at is not None:
            found = lag(quantity=c.quantity, produced=c.produced, delivered=c.delivered, accepted_at=c.accepted_at,
                        last_report_at=c.last_report_at, deadline=call.deadline, now=now, margin=settings.lag_margin,
                        silence_hours=settings.silence_hours)
        if found is None:
            out.append(c)
            continue
        keep = found.expected_units
        note = f"lag: {found.reason}"
        if keep == 0:
            status = CommitmentStatus.CANCELLED
            ok = await repo.set_status(c.id, expected=CommitmentStatus.ACCEPTED, status=status, now=now,
                                       decline_reason=note)
        else:
            status = CommitmentStatus.COMPLETED if c.delivered >= keep else CommitmentStatus.ACCEPTED
            ok = await repo.set_quantity(c.id, expected_status=CommitmentStatus.ACCEPTED, seen=c.quantity,
                                         quantity=keep, now=now, status=status, decline_reason=note)
        if not ok:
            raise lost_race("commitment")
        freed = c.quantity - keep + (keep if status == CommitmentStatus.COMPLETED else 0)
        released.workshops[c.workshop_id] = released.workshops.get(c.workshop_id, 0) + freed
        released.points[c.delivery_point_id] = released.points.get(c.delivery_point_id, 0) + c.quantity - keep
        plan.trimmed.append({"commitment_id": c.id, "workshop_id": c.workshop_id,
                             "delivery_point_id": c.delivery_point_id, "from": c.quantity, "to": keep,
                             "status": str(status), "why": found.reason})
        await emit(session, _shrunk(c, keep, reason=note), org_id=call.org_id, resource_id=c.id, now=now)
        out.append(msgspec.structs.replace(c, quantity=keep, status=status, decline_reason=note))
    return out


async def reallocate(
    session: AsyncSession,
    call: CrisisCall,
    *,
    reason: RebalanceReason,
    settings: CrisisSettings,
    now: datetime,
    item: CatalogueItem | None = None,
) -> Rebalance | None:
    """Re-solve the call and apply the difference. ``allocation`` and ``decline``/``expiry``/``lag``
    keep accepted commitments fixed and move proposals only when that serves more (or nearer)
    units; ``points_added``/``quantity_raised`` keep every live commitment and allocate only the
    new demand. Returns the recorded rebalance, or None when nothing changed."""
    repo = CrisisRepository(session)
    if not await repo.start_allocation(call.id, seen_revision=call.revision, now=now):
        raise lost_race("crisis call")
    revision = call.revision + 1
    item = item or await catalogue_item(session, slug=call.item_slug)
    points = await repo.points(call.id)
    commitments = await repo.commitments(call.id)
    plan = _Plan()
    released = _Released()
    requested = sum(p.quantity for p in points)
    unmet_before = requested - sum(c.quantity for c in commitments if c.status in LIVE)
    if reason != RebalanceReason.ALLOCATION:
        commitments = await _trim_lagging(session, call, commitments, settings=settings, now=now, plan=plan,
                                          released=released)
    live = [c for c in commitments if c.status in LIVE]
    # A workshop that declined, let a proposal expire or lagged in this call gets nothing new in it.
    frozen = {c.workshop_id for c in commitments if c.decline_reason is not None}
    in_call: dict[str, int] = defaultdict(int)
    for c in live:
        in_call[c.workshop_id] += c.quantity
    found = await suppliers_for(session, item, deadline=call.deadline, now=now,
                                near=[(p.lat, p.lon) for p in points], max_distance_km=call.max_distance_km)
    gross = {s.workshop.id: s.gross for s in found.active}
    workshops = {s.workshop.id: s.workshop for s in found.active}
    missing = [w for w in in_call if w not in workshops]
    workshops.update(await WorkshopRepository(session).many(missing))
    supplies = []
    for wid, w in sorted(workshops.items()):
        units = in_call.get(wid, 0)
        if wid in gross and wid not in frozen:
            # Gross figures (matching.rebalance subtracts the fixed units): what is free now, plus
            # what this call already holds (booked while proposed or accepted; completed units
            # were released and are added back the same way).
            units += max(0, gross[wid] - w.reserved_units)
        if units > 0:
            supplies.append(matching.Supply(wid, w.lat, w.lon, units, w.delivery_radius_km))
    demand = [matching.DeliveryPoint(p.id, p.lat, p.lon, p.quantity, p.priority) for p in points]
    # The solver runs in a thread: seconds on national calls, and the API's event loop keeps serving.
    if not live:
        result = await asyncio.to_thread(matching.allocate, supplies, demand, max_distance_km=call.max_distance_km)
    else:
        # Fixed: accepted units always; everything live when only new demand is to be served; and
        # the open proposals of a frozen workshop, which may stay or be declined but never move.
        fixed = live if reason in (RebalanceReason.POINTS_ADDED, RebalanceReason.QUANTITY_RAISED) else [
            c for c in live if c.status in AGREED or c.workshop_id in frozen]
        previous = matching.Allocation(assignments=tuple(_aggregate(live)), unmet={}, covered_by_priority={},
                                       demand_by_priority={}, unit_metres=0)
        result = await asyncio.to_thread(matching.rebalance, previous, _aggregate(fixed), supplies, demand,
                                         max_distance_km=call.max_distance_km)
    await _apply(session, call, result, live, workshops, gross, revision=revision, reason=reason,
                 settings=settings, now=now, plan=plan, released=released)
    if plan.empty and reason != RebalanceReason.ALLOCATION:
        return None
    unmet_after = sum(result.unmet.values())
    units_moved = sum(x["units"] for x in plan.created)
    row = RebalanceRow(
        id=new_id(),
        call_id=call.id,
        revision=revision,
        reason=str(reason),
        moved=msgspec.to_builtins(plan),
        units_moved=units_moved,
        unmet_before=unmet_before,
        unmet_after=unmet_after,
        created_at=now,
    )
    repo.add(row)
    kind: type[CrisisCallAllocated | CrisisCallRebalanced] = (
        CrisisCallAllocated if reason == RebalanceReason.ALLOCATION else CrisisCallRebalanced
    )
    summary = kind(id=call.id, revision=revision, reason=reason, requested=requested,
                   committed=requested - unmet_after, unmet=unmet_after, units_moved=units_moved,
                   commitments_created=len(plan.created), workshops_able=found.able)
    await emit(session, summary, org_id=call.org_id, resource_id=call.id, now=now)
    return msgspec.convert(row, Rebalance, from_attributes=True)


async def _apply(
    session: AsyncSession,
    call: CrisisCall,
    result: matching.Allocation,
    live: list[Commitment],
    workshops: dict[str, Workshop],
    gross: dict[str, int],
    *,
    revision: int,
    reason: RebalanceReason,
    settings: CrisisSettings,
    now: datetime,
    plan: _Plan,
    released: _Released,
) -> None:
    """Turn the solver's answer into proposals: keep, resize, cancel or create; then give back the
    points' units of trimmed commitments, and book the net units of each workshop (conditional
    UPDATE) or release what it gave up. Locks are taken in one order everywhere (call →
    commitments → points → workshops → registry), so concurrent writers queue, never deadlock."""
    repo = CrisisRepository(session)
    target = {(a.workshop_id, a.point_id): a for a in result.assignments}
    fixed_units: dict[tuple[str, str], int] = defaultdict(int)
    proposals: dict[tuple[str, str], list[Commitment]] = defaultdict(list)
    for c in live:
        if c.status == CommitmentStatus.PROPOSED:
            proposals[_key(c)].append(c)
        else:
            fixed_units[_key(c)] += c.quantity
    delta: dict[str, int] = defaultdict(int)
    for wid, units in released.workshops.items():
        delta[wid] -= units
    expires = min(now + timedelta(hours=settings.commitment_expiry_hours), call.deadline)
    for key in sorted(set(target) | set(proposals)):
        want = (target[key].units if key in target else 0) - fixed_units.get(key, 0)
        mine = sorted(proposals.get(key, []), key=lambda c: (c.created_at, c.id))
        have = sum(c.quantity for c in mine)
        if want == have:
            continue
        delta[key[0]] += want - have
        if want > have:
            # Extra units are a new proposal: one the maker is deciding on never changes under it.
            await _create(session, call, workshops[key[0]], target[key], want - have, revision=revision,
                          reason=reason, expires=expires, now=now, plan=plan)
            continue
        excess = have - want
        for c in reversed(mine):  # the newest proposals give way first
            if excess == 0:
                break
            cut = min(excess, c.quantity)
            excess -= cut
            await _resize(session, call, c, c.quantity - cut, now=now, plan=plan)
    for point_id in sorted(released.points):
        await repo.give_back_point_units(point_id, released.points[point_id])
    # Release first, then book, each in id order.
    for wid in sorted(w for w, units in delta.items() if units < 0):
        await repo.unbook(wid, -delta[wid])
    wanted = [(wid, delta[wid], gross.get(wid, 0)) for wid in sorted(delta) if delta[wid] > 0]
    if not await repo.book_many(wanted):
        raise Conflict(
            "a workshop's capacity was booked meanwhile (an award, another call); the allocation is retried",
            code="capacity-exhausted",
        )
    if any(delta.values()):
        await repo.bookings_changed()


async def _resize(
    session: AsyncSession, call: CrisisCall, c: Commitment, quantity: int, *, now: datetime, plan: _Plan
) -> None:
    repo = CrisisRepository(session)
    entry: dict[str, object] = {"commitment_id": c.id, "workshop_id": c.workshop_id,
                                "delivery_point_id": c.delivery_point_id, "from": c.quantity, "to": quantity}
    if quantity == 0:
        ok = await repo.set_status(c.id, expected=CommitmentStatus.PROPOSED, status=CommitmentStatus.CANCELLED,
                                   now=now, decided_at=now)
        plan.cancelled.append(entry)
    else:  # smaller: proposals only ever shrink in place
        ok = await repo.set_quantity(c.id, expected_status=CommitmentStatus.PROPOSED, seen=c.quantity,
                                     quantity=quantity, now=now)
        plan.changed.append(entry)
    if not ok:
        raise lost_race("commitment")
    await emit(session, _shrunk(c, quantity, reason="rebalance"), org_id=call.org_id, resource_id=c.id, now=now)


def _shrunk(c: Commitment, quantity: int, *, reason: str) -> CommitmentCancelled | CommitmentResized:
    """The event of commitment ``c`` cut to ``quantity`` units (cancelled at 0)."""
    if quantity == 0:
        return CommitmentCancelled(id=c.id, call_id=c.call_id, maker_org_id=c.maker_org_id, quantity=0,
                                   previous_quantity=c.quantity, reason=reason)
    return CommitmentResized(id=c.id, call_id=c.call_id, maker_org_id=c.maker_org_id, quantity=quantity,
                             previous_quantity=c.quantity, reason=reason)


async def _create(
    session: AsyncSession,
    call: CrisisCall,
    workshop: Workshop,
    assignment: matching.Assignment,
    units: int,
    *,
    revision: int,
    reason: RebalanceReason,
    expires: datetime,
    now: datetime,
    plan: _Plan,
) -> None:
    commitment_id = new_id()
    CrisisRepository(session).add(
        CommitmentRow(
            id=commitment_id,
            call_id=call.id,
            delivery_point_id=assignment.point_id,
            workshop_id=workshop.id,
            maker_org_id=workshop.org_id,
            quantity=units,
            distance_km=assignment.distance_km,
            status=CommitmentStatus.PROPOSED,
            origin="allocation" if reason == RebalanceReason.ALLOCATION else "rebalance",
            revision=revision,
            produced=0,
            delivered=0,
            expires_at=expires,
            created_at=now,
            updated_at=now,
        )
    )
    plan.created.append({"commitment_id": commitment_id, "workshop_id": workshop.id,
                         "delivery_point_id": assignment.point_id, "units": units,
                         "distance_km": round(assignment.distance_km, 1)})
    await emit(session, CommitmentCreated(id=commitment_id, call_id=call.id, item=call.item_slug,
                                          workshop_id=workshop.id, maker_org_id=workshop.org_id,
                                          delivery_point_id=assignment.point_id, quantity=units,
                                          distance_km=round(assignment.distance_km, 1),
                                          deadline=call.deadline.isoformat(), expires_at=expires.isoformat()),
               org_id=call.org_id, resource_id=commitment_id, now=now, first=True)


# ---- the worker's side ---------------------------------------------------------------------------


async def due_calls(session: AsyncSession, *, now: datetime) -> list[str]:
    """Open calls flagged for a rebalance, the most urgent call first."""
    calls = await CrisisRepository(session).due(now)
    return [c.id for c in sorted(calls, key=lambda c: (c.priority, c.rebalance_due_at or now, c.id))]


async def rebalance_call(
    session: AsyncSession, *, call_id: str, settings: CrisisSettings, now: datetime
) -> Rebalance | None:
    """The rebalance job: re-allocate a flagged call. Idempotent: a call no longer flagged (already
    rebalanced, closed) is left alone, and the revision makes a second run a lost race."""
    call = await CrisisRepository(session).get(call_id, scope_org_id=None)
    if call is None:
        raise NotFound(f"crisis call {call_id} not found")
    if call.status != CallStatus.OPEN or call.rebalance_due_at is None:
        return None
    reason = RebalanceReason(call.rebalance_reason or RebalanceReason.DECLINE)
    return await reallocate(session, call, reason=reason, settings=settings, now=now)


async def calls_with_expired_proposals(session: AsyncSession, *, now: datetime) -> list[str]:
    return await CrisisRepository(session).calls_with_expired_proposals(now)


async def expire_proposals(session: AsyncSession, *, call_id: str, now: datetime) -> int:
    """The call's proposals not answered in time count as declined: released, and the call flagged
    (first, in the rebalance's lock order; one call per transaction)."""
    repo = CrisisRepository(session)
    proposals = await repo.expired_proposals(call_id, now)
    call = await repo.get(call_id, scope_org_id=None)
    if not proposals or call is None:
        return 0
    await repo.mark_due(call_id, reason=RebalanceReason.EXPIRY, now=now)
    expired = 0
    for c in proposals:
        if not await repo.set_status(c.id, expected=CommitmentStatus.PROPOSED, status=CommitmentStatus.EXPIRED,
                                     now=now, decided_at=now, decline_reason="expired: not answered in time"):
            continue
        expired += 1
        await repo.unbook(c.workshop_id, c.quantity)
        await emit(session, CommitmentExpired(id=c.id, call_id=c.call_id, maker_org_id=c.maker_org_id,
                                              quantity=c.quantity),
                   org_id=call.org_id, resource_id=c.id, now=now)
    if expired:
        await repo.bookings_changed()
    return expired


async def flag_lagging_calls(session: AsyncSession, *, settings: CrisisSettings, now: datetime) -> int:
    """Flag the open calls where an accepted commitment lags (`broker.domain.crisis.lag`)."""
    repo = CrisisRepository(session)
    flagged: set[str] = set()
    for c, deadline in await repo.accepted_in_open_calls(now):
        if c.call_id in flagged or c.accepted_at is None:
            continue
        if lag(quantity=c.quantity, produced=c.produced, delivered=c.delivered, accepted_at=c.accepted_at,
               last_report_at=c.last_report_at, deadline=deadline, now=now, margin=settings.lag_margin,
               silence_hours=settings.silence_hours) is not None and await repo.mark_due(
                   c.call_id, reason=RebalanceReason.LAG, now=now):
            flagged.add(c.call_id)
    return len(flagged)


def point_totals(points: list[DeliveryPoint], commitments: list[Commitment]) -> dict[str, dict[str, int]]:
    """Per point: requested, committed, accepted, produced, delivered, unmet."""
    out = {p.id: {"requested": p.quantity, "committed": 0, "accepted": 0, "produced": 0, "delivered": 0}
           for p in points}
    for c in commitments:
        t = out.get(c.delivery_point_id)
        if t is None:
            continue
        if c.status in LIVE:
            t["committed"] += c.quantity
        if c.status in AGREED:
            t["accepted"] += c.quantity
            t["produced"] += c.produced
            t["delivered"] += c.delivered
    for t in out.values():
        t["unmet"] = max(0, t["requested"] - t["committed"])
    return out
