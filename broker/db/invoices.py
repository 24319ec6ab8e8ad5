"""Invoices and credit notes: their gapless numbers, their reads, and the queues the worker walks
(invoices to deposit, to ask Chorus Pro about, past their due date). Status changes go through
``broker.db.status`` (compare-and-set)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import msgspec
from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.models import InvoiceCounterRow, InvoiceEventRow, InvoiceRow
from broker.db.status import INVOICES, compare_and_set
from broker.domain.invoicing import CLOCK_RUNS, POLLED, Invoice, InvoiceEvent, InvoiceStatus

Keyset = tuple[datetime, str]
#: How many times a number is tried before giving up (each loss means another invoice of the same
#: seller took it first; the retry reads the new last number).
NUMBER_TRIES = 50


def _invoice(row: InvoiceRow) -> Invoice:
    return msgspec.convert(row, Invoice, from_attributes=True)


class InvoiceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def next_number(self, seller_org_id: str, series: str) -> int:
        """The next number of the seller's ``series``, taken by compare-and-set on its counter in the
        caller's transaction: a concurrent writer that took it first makes this one read again; a
        rolled-back transaction gives its number back (no gap)."""
        for _ in range(NUMBER_TRIES):
            key = (InvoiceCounterRow.seller_org_id == seller_org_id, InvoiceCounterRow.series == series)
            last = (await self.session.execute(select(InvoiceCounterRow.last).where(*key))).scalar_one_or_none()
            if last is None:
                inserted = await self.session.execute(
                    _insert_counter(self.session, seller_org_id, series))
                if int(inserted.rowcount or 0) == 1:  # type: ignore[attr-defined]
                    return 1
                continue
            moved = await self.session.execute(
                update(InvoiceCounterRow).where(*key, InvoiceCounterRow.last == last).values(last=last + 1)
                .execution_options(synchronize_session=False))
            if int(moved.rowcount or 0) == 1:  # type: ignore[attr-defined]
                return last + 1
        raise RuntimeError(f"no invoice number for {seller_org_id} after {NUMBER_TRIES} tries")

    def add(self, row: InvoiceRow) -> None:
        self.session.add(row)

    def add_event(self, invoice_id: str, *, at: datetime, from_status: InvoiceStatus | None, to: InvoiceStatus,
                  reason: str | None = None) -> None:
        self.session.add(InvoiceEventRow(invoice_id=invoice_id, at=at, from_status=from_status, to_status=to,
                                         reason=reason))

    async def get(self, invoice_id: str) -> Invoice | None:
        row = await self.session.get(InvoiceRow, invoice_id)
        return None if row is None else _invoice(row)

    async def history(self, invoice_id: str) -> list[InvoiceEvent]:
        query = select(InvoiceEventRow).where(InvoiceEventRow.invoice_id == invoice_id).order_by(InvoiceEventRow.id)
        return [msgspec.convert(r, InvoiceEvent, from_attributes=True)
                for r in (await self.session.execute(query)).scalars()]

    async def for_order(self, order_id: str) -> list[Invoice]:
        query = select(InvoiceRow).where(InvoiceRow.order_id == order_id).order_by(InvoiceRow.created_at,
                                                                                    InvoiceRow.id)
        return [_invoice(r) for r in (await self.session.execute(query)).scalars()]

    async def credit_notes_of(self, invoice_id: str) -> list[Invoice]:
        query = select(InvoiceRow).where(InvoiceRow.preceding_id == invoice_id).order_by(InvoiceRow.created_at)
        return [_invoice(r) for r in (await self.session.execute(query)).scalars()]

    async def page(self, *, seller_org_id: str | None, buyer_org_id: str | None, after: Keyset | None, limit: int,
                   status: InvoiceStatus | None = None) -> list[Invoice]:
        query = select(InvoiceRow).order_by(InvoiceRow.created_at, InvoiceRow.id)
        if after is not None:
            query = query.where((InvoiceRow.created_at > after[0])
                                | ((InvoiceRow.created_at == after[0]) & (InvoiceRow.id > after[1])))
        if seller_org_id is not None:
            query = query.where(InvoiceRow.seller_org_id == seller_org_id)
        if buyer_org_id is not None:
            query = query.where(InvoiceRow.buyer_org_id == buyer_org_id)
        if status is not None:
            query = query.where(InvoiceRow.status == status)
        return [_invoice(r) for r in (await self.session.execute(query.limit(limit))).scalars()]

    async def move(self, invoice_id: str, *, expected: InvoiceStatus | Sequence[InvoiceStatus], to: InvoiceStatus,
                   now: datetime, values: dict[str, Any] | None = None) -> bool:
        """``expected → to`` by compare-and-set, with ``values``; False: lost the race."""
        return await compare_and_set(self.session, INVOICES, invoice_id, expected=expected, to=to,
                                     values={"updated_at": now, **(values or {})})

    async def add_credit(self, invoice_id: str, cents: int, *, now: datetime) -> None:
        await self.session.execute(
            update(InvoiceRow).where(InvoiceRow.id == invoice_id)
            .values(credited_cents=InvoiceRow.credited_cents + cents, updated_at=now)
            .execution_options(synchronize_session=False))

    async def set_values(self, invoice_id: str, values: dict[str, Any]) -> None:
        """Columns outside the status (the last check with Chorus Pro, the overdue mark)."""
        await self.session.execute(update(InvoiceRow).where(InvoiceRow.id == invoice_id).values(values)
                                   .execution_options(synchronize_session=False))

    async def mark_overdue(self, invoice_id: str, *, now: datetime) -> bool:
        """Once per invoice: True for the caller that marked it."""
        result = await self.session.execute(
            update(InvoiceRow).where(InvoiceRow.id == invoice_id, InvoiceRow.overdue_at.is_(None))
            .values(overdue_at=now).execution_options(synchronize_session=False))
        return int(result.rowcount or 0) == 1  # type: ignore[attr-defined]

    # ---- the worker's queues ------------------------------------------------------------------------

    async def to_deposit(self, limit: int) -> list[Invoice]:
        query = (select(InvoiceRow).where(InvoiceRow.status == InvoiceStatus.SUBMITTING)
                 .order_by(InvoiceRow.updated_at).limit(limit))
        return [_invoice(r) for r in (await self.session.execute(query)).scalars()]

    async def to_check(self, *, checked_before: datetime, limit: int) -> list[Invoice]:
        query = (select(InvoiceRow)
                 .where(InvoiceRow.status.in_(sorted(POLLED)),
                        or_(InvoiceRow.checked_at.is_(None), InvoiceRow.checked_at < checked_before))
                 .order_by(InvoiceRow.checked_at.is_not(None), InvoiceRow.checked_at).limit(limit))
        return [_invoice(r) for r in (await self.session.execute(query)).scalars()]

    async def newly_overdue(self, today: date, limit: int) -> list[Invoice]:
        query = (select(InvoiceRow)
                 .where(InvoiceRow.status.in_(sorted(CLOCK_RUNS)), InvoiceRow.due_on < today,
                        InvoiceRow.overdue_at.is_(None))
                 .order_by(InvoiceRow.due_on).limit(limit))
        return [_invoice(r) for r in (await self.session.execute(query)).scalars()]

    async def due_for_buyer(self, buyer_org_id: str, *, limit: int) -> list[Invoice]:
        """The buyer's invoices it holds and has not paid, soonest due first."""
        query = (select(InvoiceRow)
                 .where(InvoiceRow.buyer_org_id == buyer_org_id, InvoiceRow.status.in_(sorted(CLOCK_RUNS)))
                 .order_by(InvoiceRow.due_on, InvoiceRow.number).limit(limit))
        return [_invoice(r) for r in (await self.session.execute(query)).scalars()]



def _insert_counter(session: AsyncSession, seller_org_id: str, series: str) -> Any:
    """The seller's first number of ``series``, inserted unless a concurrent writer did (no error)."""
    postgresql = session.bind is not None and session.bind.dialect.name == "postgresql"
    insert = pg_insert if postgresql else sqlite_insert
    return insert(InvoiceCounterRow).values(seller_org_id=seller_org_id, series=series, last=1).on_conflict_do_nothing()
