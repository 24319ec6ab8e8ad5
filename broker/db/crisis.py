"""Queries of crisis calls: calls, delivery points, commitments, rebalances, and the bookings of
workshop capacity they make.

Every change that two parties may race on is one conditional UPDATE whose rowcount tells who won:
a commitment's status (``WHERE status = :expected``), a point's accepted units (``accepted_units +
n <= quantity``), a workshop's booked units (``reserved_units + n <= capacity``), a call's
allocation (``WHERE revision = :seen``: one re-allocation at a time per call)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.base import UTCDateTime
from broker.db.fabrication import Keyset, RegistryRepository, _after, _rowcount, _to
from broker.db.models import CommitmentRow, CrisisCallRow, DeliveryPointRow, RebalanceRow, WorkshopRow
from broker.db.status import CALLS, COMMITMENTS, compare_and_set
from broker.domain.crisis import (
    CallStatus,
    Commitment,
    CommitmentFigures,
    CommitmentStatus,
    CrisisCall,
    DeliveryPoint,
    Rebalance,
)


class CrisisRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: CrisisCallRow | DeliveryPointRow | CommitmentRow | RebalanceRow) -> None:
        self.session.add(row)

    async def flush(self) -> None:
        await self.session.flush()

    # ---- calls ----------------------------------------------------------------------------------

    async def get(self, call_id: str, *, scope_org_id: str | None) -> CrisisCall | None:
        query = select(CrisisCallRow).where(CrisisCallRow.id == call_id)
        if scope_org_id is not None:
            query = query.where(CrisisCallRow.org_id == scope_org_id)
        row = (await self.session.execute(query)).scalar_one_or_none()
        return None if row is None else _to(row, CrisisCall)

    async def many(self, call_ids: Sequence[str]) -> dict[str, CrisisCall]:
        if not call_ids:
            return {}
        query = select(CrisisCallRow).where(CrisisCallRow.id.in_(list(set(call_ids))))
        return {r.id: _to(r, CrisisCall) for r in (await self.session.execute(query)).scalars()}

    async def page(
        self, *, scope_org_id: str | None, after: Keyset | None, limit: int, status: str | None
    ) -> list[CrisisCall]:
        query = (
            select(CrisisCallRow)
            .where(_after(CrisisCallRow, after))
            .order_by(CrisisCallRow.created_at, CrisisCallRow.id)
        )
        if scope_org_id is not None:
            query = query.where(CrisisCallRow.org_id == scope_org_id)
        if status is not None:
            query = query.where(CrisisCallRow.status == status)
        return [_to(r, CrisisCall) for r in (await self.session.execute(query.limit(limit))).scalars()]

    async def start_allocation(self, call_id: str, *, seen_revision: int, now: datetime) -> bool:
        """Take the call's allocation for this transaction: bumps the revision and clears the
        rebalance flag. On PostgreSQL the row lock makes a concurrent re-allocation (or a flag being
        set) wait for this commit; a re-allocation that read an older revision then matches 0 rows."""
        statement = (
            update(CrisisCallRow)
            .where(
                CrisisCallRow.id == call_id,
                CrisisCallRow.revision == seen_revision,
                CrisisCallRow.status == CallStatus.OPEN,
            )
            .values(revision=seen_revision + 1, rebalance_due_at=None, rebalance_reason=None, updated_at=now)
        )
        return await _rowcount(self.session, statement) == 1

    async def lock(self, call_id: str, *, seen_revision: int, now: datetime) -> bool:
        """Take the call's row first (PostgreSQL row lock until commit), as every writer of a call
        does, so that writers queue on it instead of deadlocking on points and commitments."""
        statement = (
            update(CrisisCallRow)
            .where(
                CrisisCallRow.id == call_id,
                CrisisCallRow.revision == seen_revision,
                CrisisCallRow.status == CallStatus.OPEN,
            )
            .values(updated_at=now)
        )
        return await _rowcount(self.session, statement) == 1

    async def mark_due(self, call_id: str, *, reason: str, now: datetime) -> bool:
        """Ask for a rebalance (kept if one is already asked: the earliest time wins)."""
        statement = (
            update(CrisisCallRow)
            .where(CrisisCallRow.id == call_id, CrisisCallRow.status == CallStatus.OPEN)
            .values(
                rebalance_due_at=func.coalesce(CrisisCallRow.rebalance_due_at, literal(now, UTCDateTime())),
                rebalance_reason=func.coalesce(CrisisCallRow.rebalance_reason, reason),
            )
        )
        return await _rowcount(self.session, statement) == 1

    async def due(self, now: datetime, limit: int = 200) -> list[CrisisCall]:
        query = (
            select(CrisisCallRow)
            .where(CrisisCallRow.status == CallStatus.OPEN, CrisisCallRow.rebalance_due_at <= now)
            .order_by(CrisisCallRow.rebalance_due_at)
            .limit(limit)
        )
        return [_to(r, CrisisCall) for r in (await self.session.execute(query)).scalars()]

    async def set_call_status(
        self, call_id: str, *, expected: CallStatus, status: CallStatus, now: datetime, **values: Any
    ) -> bool:
        return await compare_and_set(self.session, CALLS, call_id, expected=expected, to=status, values={
            "updated_at": now, "rebalance_due_at": None, "rebalance_reason": None, **values})

    # ---- delivery points ------------------------------------------------------------------------

    async def points(self, call_id: str) -> list[DeliveryPoint]:
        query = (
            select(DeliveryPointRow)
            .where(DeliveryPointRow.call_id == call_id)
            .order_by(DeliveryPointRow.created_at, DeliveryPointRow.id)
        )
        return [_to(r, DeliveryPoint) for r in (await self.session.execute(query)).scalars()]

    async def point(self, point_id: str, *, call_id: str) -> DeliveryPoint | None:
        query = select(DeliveryPointRow).where(DeliveryPointRow.id == point_id, DeliveryPointRow.call_id == call_id)
        row = (await self.session.execute(query)).scalar_one_or_none()
        return None if row is None else _to(row, DeliveryPoint)

    async def points_by_id(self, point_ids: Sequence[str]) -> dict[str, DeliveryPoint]:
        if not point_ids:
            return {}
        query = select(DeliveryPointRow).where(DeliveryPointRow.id.in_(list(set(point_ids))))
        return {r.id: _to(r, DeliveryPoint) for r in (await self.session.execute(query)).scalars()}

    async def raise_quantity(self, point_id: str, *, seen: int, quantity: int, now: datetime) -> bool:
        statement = (
            update(DeliveryPointRow)
            .where(DeliveryPointRow.id == point_id, DeliveryPointRow.quantity == seen)
            .values(quantity=quantity, updated_at=now)
        )
        return await _rowcount(self.session, statement) == 1

    async def take_point_units(self, point_id: str, units: int) -> bool:
        """Count ``units`` as accepted at the point if it stays within its quantity (atomic)."""
        statement = (
            update(DeliveryPointRow)
            .where(
                DeliveryPointRow.id == point_id, DeliveryPointRow.accepted_units + units <= DeliveryPointRow.quantity
            )
            .values(accepted_units=DeliveryPointRow.accepted_units + units)
        )
        return await _rowcount(self.session, statement) == 1

    async def give_back_point_units(self, point_id: str, units: int) -> None:
        left = DeliveryPointRow.accepted_units - units
        statement = (
            update(DeliveryPointRow)
            .where(DeliveryPointRow.id == point_id)
            .values(accepted_units=case((left < 0, 0), else_=left))
        )
        await _rowcount(self.session, statement)

    # ---- commitments ----------------------------------------------------------------------------

    async def commitments(self, call_id: str) -> list[Commitment]:
        query = (
            select(CommitmentRow)
            .where(CommitmentRow.call_id == call_id)
            .order_by(CommitmentRow.created_at, CommitmentRow.id)
        )
        return [_to(r, Commitment) for r in (await self.session.execute(query)).scalars()]

    async def commitment(self, commitment_id: str, *, maker_org_id: str | None) -> Commitment | None:
        query = select(CommitmentRow).where(CommitmentRow.id == commitment_id)
        if maker_org_id is not None:
            query = query.where(CommitmentRow.maker_org_id == maker_org_id)
        row = (await self.session.execute(query)).scalar_one_or_none()
        return None if row is None else _to(row, Commitment)

    async def page_for_maker(
        self,
        *,
        maker_org_id: str,
        after: Keyset | None,
        limit: int,
        status: str | None,
        call_id: str | None,
    ) -> list[Commitment]:
        query = (
            select(CommitmentRow)
            .where(CommitmentRow.maker_org_id == maker_org_id, _after(CommitmentRow, after))
            .order_by(CommitmentRow.created_at, CommitmentRow.id)
        )
        if status is not None:
            query = query.where(CommitmentRow.status == status)
        if call_id is not None:
            query = query.where(CommitmentRow.call_id == call_id)
        return [_to(r, Commitment) for r in (await self.session.execute(query.limit(limit))).scalars()]

    async def set_status(
        self,
        commitment_id: str,
        *,
        expected: CommitmentStatus | Collection[CommitmentStatus],
        status: CommitmentStatus,
        now: datetime,
        **values: Any,
    ) -> bool:
        return await compare_and_set(self.session, COMMITMENTS, commitment_id, expected=expected, to=status,
                                     values={"updated_at": now, **values})

    async def accept(self, commitment_id: str, *, now: datetime) -> bool:
        """proposed → accepted, only before it expires."""
        return await compare_and_set(
            self.session, COMMITMENTS, commitment_id, expected=CommitmentStatus.PROPOSED,
            to=CommitmentStatus.ACCEPTED, values={"accepted_at": now, "decided_at": now, "updated_at": now},
            where=[CommitmentRow.expires_at > now],
        )

    async def set_quantity(
        self,
        commitment_id: str,
        *,
        expected_status: CommitmentStatus,
        seen: int,
        quantity: int,
        now: datetime,
        status: CommitmentStatus | None = None,
        **values: Any,
    ) -> bool:
        """Change the units of a commitment still in ``expected_status`` with ``seen`` units (and
        its status, when ``status`` is another one: a trimmed commitment already delivered)."""
        guards = [CommitmentRow.quantity == seen, CommitmentRow.produced <= quantity]
        changes = {"quantity": quantity, "updated_at": now, **values}
        if status is not None and status != expected_status:
            return await compare_and_set(self.session, COMMITMENTS, commitment_id, expected=expected_status,
                                         to=status, values=changes, where=guards)
        statement = (
            update(CommitmentRow)
            .where(CommitmentRow.id == commitment_id, CommitmentRow.status == expected_status, *guards)
            .values(**changes)
        )
        return await _rowcount(self.session, statement) == 1

    async def report(self, commitment_id: str, *, produced: int, delivered: int, now: datetime) -> bool:
        """Monotonic progress of an accepted commitment, within its quantity (atomic)."""
        statement = (
            update(CommitmentRow)
            .where(
                CommitmentRow.id == commitment_id,
                CommitmentRow.status == CommitmentStatus.ACCEPTED,
                CommitmentRow.produced <= produced,
                CommitmentRow.delivered <= delivered,
                CommitmentRow.quantity >= produced,
            )
            .values(produced=produced, delivered=delivered, last_report_at=now, updated_at=now)
        )
        return await _rowcount(self.session, statement) == 1

    async def calls_with_expired_proposals(self, now: datetime, limit: int = 200) -> list[str]:
        query = (
            select(CommitmentRow.call_id)
            .where(CommitmentRow.status == CommitmentStatus.PROPOSED, CommitmentRow.expires_at <= now)
            .distinct()
            .limit(limit)
        )
        return list((await self.session.execute(query)).scalars())

    async def expired_proposals(self, call_id: str, now: datetime) -> list[Commitment]:
        query = (
            select(CommitmentRow)
            .where(
                CommitmentRow.call_id == call_id,
                CommitmentRow.status == CommitmentStatus.PROPOSED,
                CommitmentRow.expires_at <= now,
            )
            .order_by(CommitmentRow.workshop_id, CommitmentRow.id)
        )
        return [_to(r, Commitment) for r in (await self.session.execute(query)).scalars()]

    async def accepted_in_open_calls(self, now: datetime) -> list[tuple[Commitment, datetime]]:
        """Accepted commitments of open calls before their deadline, with the deadline (lag watch)."""
        query = (
            select(CommitmentRow, CrisisCallRow.deadline)
            .join(CrisisCallRow, CrisisCallRow.id == CommitmentRow.call_id)
            .where(
                CommitmentRow.status == CommitmentStatus.ACCEPTED,
                CrisisCallRow.status == CallStatus.OPEN,
                CrisisCallRow.deadline > now,
                CrisisCallRow.rebalance_due_at.is_(None),
            )
        )
        return [(_to(c, Commitment), d) for c, d in (await self.session.execute(query)).all()]

    async def figures(
        self, call_ids: Sequence[str]
    ) -> tuple[dict[str, int], dict[str, list[CommitmentFigures]]]:
        """Per call: units requested, and commitment units per status (for list totals, 2 queries)."""
        if not call_ids:
            return {}, {}
        ids = list(set(call_ids))
        requested_q = (
            select(DeliveryPointRow.call_id, func.sum(DeliveryPointRow.quantity))
            .where(DeliveryPointRow.call_id.in_(ids))
            .group_by(DeliveryPointRow.call_id)
        )
        requested = {c: int(u or 0) for c, u in (await self.session.execute(requested_q)).all()}
        figures_q = (
            select(
                CommitmentRow.call_id,
                CommitmentRow.status,
                func.sum(CommitmentRow.quantity),
                func.sum(CommitmentRow.produced),
                func.sum(CommitmentRow.delivered),
            )
            .where(CommitmentRow.call_id.in_(ids))
            .group_by(CommitmentRow.call_id, CommitmentRow.status)
        )
        figures: dict[str, list[CommitmentFigures]] = {}
        for call_id, status, quantity, produced, delivered in (await self.session.execute(figures_q)).all():
            figures.setdefault(call_id, []).append(
                CommitmentFigures(status, int(quantity or 0), int(produced or 0), int(delivered or 0))
            )
        return requested, figures

    # ---- rebalances -----------------------------------------------------------------------------

    async def rebalances(self, call_id: str) -> list[Rebalance]:
        query = select(RebalanceRow).where(RebalanceRow.call_id == call_id).order_by(RebalanceRow.revision)
        return [_to(r, Rebalance) for r in (await self.session.execute(query)).scalars()]

    # ---- workshop capacity ----------------------------------------------------------------------

    async def book_many(self, bookings: Sequence[tuple[str, int, int]]) -> bool:
        """Book units of many workshops, ``(workshop_id, units, capacity)`` each, where every total
        stays within its capacity (the award's rule, ``reserved_units + n <= capacity``): one UPDATE
        per chunk of 300 with that condition per row. True only if every row was booked (the caller
        rolls back otherwise)."""
        for start in range(0, len(bookings), 300):
            chunk = bookings[start:start + 300]
            units = case({w: u for w, u, _c in chunk}, value=WorkshopRow.id)
            capacity = case({w: c for w, _u, c in chunk}, value=WorkshopRow.id)
            statement = (
                update(WorkshopRow)
                .where(WorkshopRow.id.in_([w for w, _u, _c in chunk]), WorkshopRow.reserved_units + units <= capacity)
                .values(reserved_units=WorkshopRow.reserved_units + units)
            )
            if await _rowcount(self.session, statement) != len(chunk):
                return False
        return True

    async def unbook(self, workshop_id: str, units: int) -> None:
        left = WorkshopRow.reserved_units - units
        statement = (
            update(WorkshopRow)
            .where(WorkshopRow.id == workshop_id)
            .values(reserved_units=case((left < 0, 0), else_=left))
        )
        await _rowcount(self.session, statement)

    async def bookings_changed(self) -> None:
        """Once per transaction that booked or released: cached candidate indexes refresh their bookings."""
        await RegistryRepository(self.session).bump(RegistryRepository.BOOKINGS)
