"""Commitments, the maker's side: list, accept, decline, report progress. Only the maker of the
commitment's workshop sees it (anyone else gets a 404). Every write is a compare-and-set, and an
acceptance also counts the units at the delivery point with a conditional UPDATE, so concurrent
makers never promise a point more than it asked for."""

from __future__ import annotations

from datetime import datetime

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.crisis import CrisisRepository
from broker.db.fabrication import Keyset
from broker.domain.access import Principal
from broker.domain.crisis import (
    Commitment,
    CommitmentStatus,
    CrisisCall,
    DeliveryPoint,
    RebalanceReason,
    check_commitment,
    check_progress,
)
from broker.domain.events import (
    CommitmentAccepted,
    CommitmentCompleted,
    CommitmentDeclined,
    CrisisCallProgress,
)
from broker.errors import Conflict, NotFound
from broker.services import jobs
from broker.services.events import emit, lost_race


async def my_commitment(session: AsyncSession, *, actor: Principal, commitment_id: str) -> Commitment:
    found = await CrisisRepository(session).commitment(
        commitment_id, maker_org_id=None if actor.is_admin else actor.org_id
    )
    if found is None:
        raise NotFound(f"commitment {commitment_id} not found")
    return found


async def context_of(
    session: AsyncSession, commitments: list[Commitment]
) -> tuple[dict[str, CrisisCall], dict[str, DeliveryPoint]]:
    """The calls and delivery points the commitments belong to (what a maker needs to act)."""
    repo = CrisisRepository(session)
    calls = await repo.many([c.call_id for c in commitments])
    points = await repo.points_by_id([c.delivery_point_id for c in commitments])
    return calls, points


async def list_commitments(
    session: AsyncSession,
    *,
    actor: Principal,
    after: Keyset | None,
    limit: int,
    status: str | None,
    call_id: str | None,
) -> list[Commitment]:
    return await CrisisRepository(session).page_for_maker(
        maker_org_id=actor.org_id, after=after, limit=limit, status=status, call_id=call_id
    )


async def _call_org(session: AsyncSession, call_id: str) -> str:
    call = await CrisisRepository(session).get(call_id, scope_org_id=None)
    assert call is not None  # a foreign key
    return call.org_id


async def accept(session: AsyncSession, *, actor: Principal, commitment_id: str, now: datetime) -> Commitment:
    c = await my_commitment(session, actor=actor, commitment_id=commitment_id)
    check_commitment(CommitmentStatus(c.status), CommitmentStatus.ACCEPTED)
    if c.expires_at <= now:
        raise Conflict(
            f"the proposal expired at {c.expires_at.isoformat()}; its units are being offered to other workshops",
            code="commitment-expired",
        )
    repo = CrisisRepository(session)
    if not await repo.accept(c.id, now=now):
        raise lost_race("commitment")
    if not await repo.take_point_units(c.delivery_point_id, c.quantity):
        raise Conflict(
            "the delivery point already has every unit it asked for promised by accepted commitments",
            code="delivery-point-full",
        )
    await emit(session, CommitmentAccepted(id=c.id, call_id=c.call_id, maker_org_id=c.maker_org_id,
                                           workshop_id=c.workshop_id, delivery_point_id=c.delivery_point_id,
                                           quantity=c.quantity),
               org_id=await _call_org(session, c.call_id), resource_id=c.id, now=now)
    return await my_commitment(session, actor=actor, commitment_id=commitment_id)


async def decline(
    session: AsyncSession, *, actor: Principal, commitment_id: str, reason: str, now: datetime
) -> Commitment:
    """The units go back to the pool: the workshop's capacity is released and the call is flagged
    for a rebalance (its job runs after the commit; the worker's sweep runs any that was lost)."""
    c = await my_commitment(session, actor=actor, commitment_id=commitment_id)
    check_commitment(CommitmentStatus(c.status), CommitmentStatus.DECLINED)
    repo = CrisisRepository(session)
    note = reason.strip() or "declined"
    # The call first: the lock order of a rebalance (call → commitments → workshops → registry).
    await repo.mark_due(c.call_id, reason=RebalanceReason.DECLINE, now=now)
    if not await repo.set_status(c.id, expected=CommitmentStatus.PROPOSED, status=CommitmentStatus.DECLINED,
                                 now=now, decided_at=now, decline_reason=note):
        raise lost_race("commitment")
    await repo.unbook(c.workshop_id, c.quantity)
    await repo.bookings_changed()
    await emit(session, CommitmentDeclined(id=c.id, call_id=c.call_id, maker_org_id=c.maker_org_id,
                                           workshop_id=c.workshop_id, delivery_point_id=c.delivery_point_id,
                                           quantity=c.quantity, reason=note),
               org_id=await _call_org(session, c.call_id), resource_id=c.id, now=now)
    jobs.schedule(session, jobs.rebalance_job(c.call_id, commitment_id=c.id))
    return await my_commitment(session, actor=actor, commitment_id=commitment_id)


async def report_progress(
    session: AsyncSession,
    *,
    actor: Principal,
    commitment_id: str,
    produced: int,
    delivered: int,
    now: datetime,
) -> Commitment:
    """Units produced and delivered so far (monotonic, within the commitment). Delivering the last
    unit completes the commitment and releases the workshop's capacity."""
    c = await my_commitment(session, actor=actor, commitment_id=commitment_id)
    if c.status != CommitmentStatus.ACCEPTED:
        raise Conflict(
            f"the commitment is '{c.status}': progress is reported on an accepted commitment",
            code="invalid-state-transition", figures={"noun": "commitment", "current": str(c.status)},
        )
    check_progress(quantity=c.quantity, produced=c.produced, delivered=c.delivered, new_produced=produced,
                   new_delivered=delivered)
    repo = CrisisRepository(session)
    if not await repo.report(c.id, produced=produced, delivered=delivered, now=now):
        raise lost_race("commitment")
    org_id = await _call_org(session, c.call_id)
    progress = CrisisCallProgress(id=c.id, call_id=c.call_id, maker_org_id=c.maker_org_id, workshop_id=c.workshop_id,
                                  delivery_point_id=c.delivery_point_id, quantity=c.quantity,
                                  units_produced=produced, units_delivered=delivered)
    await emit(session, progress, org_id=org_id, resource_id=c.id, now=now)
    if delivered == c.quantity:
        check_commitment(CommitmentStatus(c.status), CommitmentStatus.COMPLETED)
        if not await repo.set_status(c.id, expected=CommitmentStatus.ACCEPTED, status=CommitmentStatus.COMPLETED,
                                     now=now):
            raise lost_race("commitment")
        await repo.unbook(c.workshop_id, c.quantity)
        await repo.bookings_changed()
        completed = CommitmentCompleted(**msgspec.structs.asdict(progress))  # the same fields
        await emit(session, completed, org_id=org_id, resource_id=c.id, now=now)
    return await my_commitment(session, actor=actor, commitment_id=commitment_id)
