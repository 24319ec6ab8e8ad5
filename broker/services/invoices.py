"""Invoices of delivered orders: issue (a gapless number per seller), credit notes, submission to
Chorus Pro, the statuses it reports, and the legal payment clock (``broker.domain.invoicing``).

The maker issues and submits; the buyer, its integration keys and administrators read. Submitting
only marks the invoice ``submitting``: the worker deposits it (`deposit_submitted`) and follows its
status (`check_statuses`), outside any transaction, then records each answer in a short one."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.chorus.base import ChorusPro, ChorusRefused, ChorusUnavailable, Submission
from adapters.geocoding.base import Geocoder
from broker.db.fabrication import OrderRepository, RequestRepository
from broker.db.invoices import InvoiceRepository
from broker.db.models import InvoiceRow
from broker.db.repositories import OrganisationRepository
from broker.db.session import Database
from broker.db.status import INVOICES, ORDERS, lock
from broker.domain.access import Principal, Role
from broker.domain.events import InvoiceIssued, InvoiceOverdue, InvoiceStatusChanged
from broker.domain.fabrication import Order, OrderEvent
from broker.domain.invoicing import (
    CLOCK_RUNS,
    INVOICE,
    RECOVERY_INDEMNITY_CENTS,
    SERIES,
    Invoice,
    InvoiceEvent,
    InvoiceKind,
    InvoiceStatus,
    LateCharges,
    Line,
    VatRegime,
    due_on,
    invoice_number,
    late_charges,
    late_rate_bp,
    payment_delay,
    steps,
    totals,
)
from broker.domain.lifecycle import OrderStatus, check
from broker.domain.procurement import PARIS
from broker.errors import Conflict, NotFound, Rejected
from broker.services.events import emit, lost_race
from broker.services.invoice_documents import DocumentKind, file_name, render
from broker.services.orders import get_order

log = logging.getLogger("broker.invoices")


def paris_day(moment: datetime) -> date:
    return moment.astimezone(PARIS).date()


# ---- reads --------------------------------------------------------------------------------------------


def _visible(actor: Principal, invoice: Invoice) -> bool:
    if actor.is_admin:
        return True
    if actor.role == Role.MAKER:
        return invoice.seller_org_id == actor.org_id
    if actor.role in (Role.BUYER, Role.INTEGRATION):
        return invoice.buyer_org_id == actor.org_id
    return False


async def get_invoice(
    session: AsyncSession, *, actor: Principal, invoice_id: str
) -> tuple[Invoice, list[InvoiceEvent]]:
    repo = InvoiceRepository(session)
    invoice = await repo.get(invoice_id)
    if invoice is None or not _visible(actor, invoice):
        raise NotFound(f"invoice {invoice_id} not found")
    return invoice, await repo.history(invoice_id)


async def list_invoices(session: AsyncSession, *, actor: Principal, after: tuple[datetime, str] | None, limit: int,
                        status: InvoiceStatus | None = None) -> list[Invoice]:
    seller = buyer = None
    if not actor.is_admin:
        if actor.role == Role.MAKER:
            seller = actor.org_id
        else:
            buyer = actor.org_id
    return await InvoiceRepository(session).page(seller_org_id=seller, buyer_org_id=buyer, after=after, limit=limit,
                                                 status=status)


async def order_invoices(session: AsyncSession, *, actor: Principal, order_id: str) -> tuple[Order, list[Invoice]]:
    """An order (visible to the caller) and its invoices and credit notes, oldest first."""
    order, _history = await get_order(session, actor=actor, order_id=order_id)
    return order, await InvoiceRepository(session).for_order(order_id)


async def document(session: AsyncSession, *, actor: Principal, invoice_id: str, kind: DocumentKind,
                   geocoder: Geocoder) -> tuple[bytes, str]:
    invoice, _ = await get_invoice(session, actor=actor, invoice_id=invoice_id)
    return await render(session, invoice, kind, geocoder=geocoder), file_name(invoice, kind)


# ---- issue and credit -----------------------------------------------------------------------------


def _service_fait_on(history: list[OrderEvent]) -> date | None:
    """The day the buyer confirmed delivery (the service fait), Paris calendar; None before."""
    return next((paris_day(e.at) for e in history if e.to_status == OrderStatus.DELIVERED), None)


def _invoiced_quantity(invoices: list[Invoice]) -> int:
    """Units invoiced and not credited back."""
    return sum(i.quantity if i.kind is InvoiceKind.INVOICE else -i.quantity for i in invoices)


async def issue_invoice(session: AsyncSession, *, actor: Principal, order_id: str, quantity: int | None,
                        now: datetime) -> Invoice:
    """The order's maker invoices ``quantity`` units (all those not yet invoiced by default), once the
    buyer confirmed delivery. The order row is locked so that two concurrent invoices of one order
    never invoice more than it holds."""
    order, history = await get_order(session, actor=actor, order_id=order_id)
    if actor.role != Role.MAKER or order.maker_org_id != actor.org_id:
        raise Conflict("only the order's maker issues its invoices", code="not-the-seller")
    served = _service_fait_on(history)
    if served is None:
        raise Conflict(f"the order is '{order.status}': an invoice follows the service fait, when the buyer "
                       "has confirmed delivery ('delivered')", code="not-delivered")
    await lock(session, ORDERS, order_id)
    repo = InvoiceRepository(session)
    remaining = order.quantity - _invoiced_quantity(await repo.for_order(order_id))
    quantity = remaining if quantity is None else quantity
    if remaining <= 0:
        raise Conflict(f"the order's {order.quantity} units are all invoiced; a credit note gives units back",
                       code="already-invoiced")
    if quantity > remaining:
        raise Rejected(f"quantity {quantity} is more than the {remaining} units not yet invoiced",
                       pointer="/quantity", code="quantity-over-uninvoiced",
                       figures={"quantity": quantity, "remaining": remaining})
    orgs = OrganisationRepository(session)
    seller = await orgs.get(order.maker_org_id, scope_org_id=None)
    buyer = await orgs.get(order.buyer_org_id, scope_org_id=None)
    request = await RequestRepository(session).get(order.request_id, scope_org_id=None)
    if seller is None or buyer is None or request is None:
        raise NotFound(f"order {order_id} is incomplete")
    regime = VatRegime(seller.vat_regime)
    line = Line(name=request.name, item=request.item_slug, quantity=quantity, unit_price_cents=order.unit_price_cents,
                vat_rate_bp=0 if regime is VatRegime.FRANCHISE_EN_BASE else order.vat_rate_bp)
    today = paris_day(now)
    delay = payment_delay(buyer.legal_form)
    return await _write(session, kind=InvoiceKind.INVOICE, order=order, seller_org_id=seller.id,
                        regime=regime, lines=(line,), quantity=quantity, served=served, delay_days=delay.days,
                        due=due_on(today, served, delay), preceding=None, reason=None, today=today, now=now)


async def credit_invoice(session: AsyncSession, *, actor: Principal, invoice_id: str, reason: str,
                         quantity: int | None, now: datetime) -> Invoice:
    """A credit note (*avoir*) of ``quantity`` units of an invoice (all not yet credited by default),
    issued by its seller: to correct it, or to cancel a rejected one before invoicing again. An
    invoice not yet deposited, or rejected, that is wholly credited becomes ``credited``."""
    invoice, _ = await get_invoice(session, actor=actor, invoice_id=invoice_id)
    if actor.role != Role.MAKER or invoice.seller_org_id != actor.org_id:
        raise Conflict("only the invoice's seller issues its credit notes", code="not-the-seller")
    if invoice.kind is not InvoiceKind.INVOICE:
        raise Conflict("a credit note corrects an invoice, not another credit note", code="not-an-invoice")
    if not reason.strip():
        raise Rejected("say why the invoice is credited", pointer="/reason", code="credit-reason-required")
    await lock(session, INVOICES, invoice_id)
    repo = InvoiceRepository(session)
    credited = sum(c.quantity for c in await repo.credit_notes_of(invoice_id))
    remaining = invoice.quantity - credited
    quantity = remaining if quantity is None else quantity
    if remaining <= 0:
        raise Conflict(f"invoice {invoice.number} is already wholly credited", code="already-credited")
    if quantity > remaining:
        raise Rejected(f"quantity {quantity} is more than the {remaining} units of the invoice not yet credited",
                       pointer="/quantity", code="quantity-over-uncredited",
                       figures={"quantity": quantity, "remaining": remaining})
    order = await OrderRepository(session).get(invoice.order_id)
    if order is None:
        raise NotFound(f"invoice {invoice_id} is incomplete")
    credit_line = msgspec.structs.replace(invoice.lines[0], quantity=quantity)  # an invoice has one line
    today = paris_day(now)
    note = await _write(session, kind=InvoiceKind.CREDIT_NOTE, order=order, seller_org_id=invoice.seller_org_id,
                        regime=invoice.vat_regime, lines=(credit_line,), quantity=quantity,
                        served=invoice.service_fait_on, delay_days=invoice.delay_days, due=None,
                        preceding=invoice, reason=reason.strip(), today=today, now=now)
    await repo.add_credit(invoice_id, note.total_cents, now=now)
    if quantity == remaining and invoice.status in (InvoiceStatus.ISSUED, InvoiceStatus.REJETEE):
        await _move(session, invoice, InvoiceStatus.CREDITED, now=now, reason=f"avoir {note.number}")
    return note


async def _write(session: AsyncSession, *, kind: InvoiceKind, order: Order, seller_org_id: str, regime: VatRegime,
                 lines: tuple[Line, ...], quantity: int, served: date, delay_days: int, due: date | None,
                 preceding: Invoice | None, reason: str | None, today: date, now: datetime) -> Invoice:
    repo = InvoiceRepository(session)
    number = invoice_number(kind, await repo.next_number(seller_org_id, SERIES[kind]))
    amounts = totals(lines, regime)
    row = InvoiceRow(
        kind=kind, number=number, order_id=order.id, preceding_id=None if preceding is None else preceding.id,
        seller_org_id=seller_org_id, buyer_org_id=order.buyer_org_id, issue_date=today,
        status=InvoiceStatus.ISSUED, vat_regime=regime, lines=[msgspec.to_builtins(line) for line in lines],
        quantity=quantity, net_cents=amounts.net_cents, vat_cents=amounts.vat_cents,
        total_cents=amounts.total_cents, credited_cents=0, reason=reason, service_fait_on=served,
        delay_days=delay_days, due_on=due, status_on=today, created_at=now, updated_at=now,
    )
    repo.add(row)
    await session.flush()
    repo.add_event(row.id, at=now, from_status=None, to=InvoiceStatus.ISSUED, reason=reason)
    invoice = await repo.get(row.id)
    assert invoice is not None
    await emit(session, InvoiceIssued(id=invoice.id, kind=kind, number=number, order_id=order.id,
                                      maker_org_id=order.maker_org_id, total_cents=amounts.total_cents,
                                      due_on=None if due is None else due.isoformat(),
                                      preceding_id=None if preceding is None else preceding.id),
               org_id=order.buyer_org_id, resource_id=invoice.id, now=now, first=True)
    return invoice


async def _move(session: AsyncSession, invoice: Invoice, to: InvoiceStatus, *, now: datetime,
                reason: str | None = None, values: dict[str, object] | None = None,
                expected: InvoiceStatus | None = None) -> None:
    """One status change of an invoice: compare-and-set, its history row, its event."""
    current = expected or invoice.status
    repo = InvoiceRepository(session)
    extra: dict[str, object] = {"status_on": paris_day(now), "status_reason": reason, **(values or {})}
    if not await repo.move(invoice.id, expected=current, to=to, now=now, values=extra):
        raise lost_race("invoice")
    repo.add_event(invoice.id, at=now, from_status=current, to=to, reason=reason)
    due = extra.get("due_on", invoice.due_on)
    order = await OrderRepository(session).get(invoice.order_id)
    assert order is not None
    await emit(session, InvoiceStatusChanged(id=invoice.id, number=invoice.number, order_id=invoice.order_id,
                                             maker_org_id=order.maker_org_id, from_=current, to=to, reason=reason,
                                             due_on=due.isoformat() if isinstance(due, date) else None),
               org_id=invoice.buyer_org_id, resource_id=invoice.id, now=now)


async def submit_invoice(session: AsyncSession, *, actor: Principal, invoice_id: str, now: datetime) -> Invoice:
    """The seller sends an issued invoice (or credit note) to Chorus Pro: the worker deposits it."""
    invoice, _ = await get_invoice(session, actor=actor, invoice_id=invoice_id)
    if actor.role != Role.MAKER or invoice.seller_org_id != actor.org_id:
        raise Conflict("only the invoice's seller submits it", code="not-the-seller")
    check(INVOICE, invoice.status, InvoiceStatus.SUBMITTING)
    await _move(session, invoice, InvoiceStatus.SUBMITTING, now=now)
    moved, _ = await get_invoice(session, actor=actor, invoice_id=invoice_id)
    return moved


# ---- the worker: deposit, statuses, overdue --------------------------------------------------------


async def deposit_submitted(db: Database, *, chorus: ChorusPro, geocoder: Geocoder, syntax: str, now: datetime,
                            limit: int = 20) -> int:
    """Deposit every invoice waiting in ``submitting`` on Chorus Pro (one call each, outside any
    transaction), then record each answer: ``deposee`` with the receipt date (the payment clock
    starts), or ``rejetee`` with Chorus Pro's reason. Unreachable: left for the next run."""
    async with db.reader() as session:
        waiting = await InvoiceRepository(session).to_deposit(limit)
        prepared: list[tuple[Invoice, Submission]] = []
        for invoice in waiting:
            kind: DocumentKind = "factur-x" if syntax == "factur-x" else "ubl"
            content = await render(session, invoice, kind, geocoder=geocoder)
            order = await OrderRepository(session).get(invoice.order_id)
            request = None if order is None else await RequestRepository(session).get(order.request_id,
                                                                                      scope_org_id=None)
            seller = await OrganisationRepository(session).get(invoice.seller_org_id, scope_org_id=None)
            if request is None or seller is None:
                continue
            p = request.procurement
            prepared.append((invoice, Submission(
                invoice_id=invoice.id, number=invoice.number, syntax="factur-x" if kind == "factur-x" else "ubl",
                content=content, file_name=file_name(invoice, kind), seller_siret=seller.siret,
                buyer_siret=p.buyer_siret, service_code=p.service_code, engagement_number=p.engagement_number,
                total_cents=invoice.total_cents)))
    done = 0
    for invoice, submission in prepared:
        today = paris_day(now)
        try:
            deposit = await chorus.deposit(submission, today=today)
        except ChorusUnavailable as exc:
            log.warning("invoice %s: Chorus Pro unavailable (%s); tried again later", invoice.id, exc)
            continue
        except ChorusRefused as exc:
            async with db.writer() as session:
                await _move(session, invoice, InvoiceStatus.REJETEE, now=now, reason=exc.reason,
                            expected=InvoiceStatus.SUBMITTING)
                await session.commit()
            done += 1
            continue
        async with db.reader() as session:
            buyer = await OrganisationRepository(session).get(invoice.buyer_org_id, scope_org_id=None)
        delay = payment_delay(None if buyer is None else buyer.legal_form)
        due = due_on(deposit.deposited_on, invoice.service_fait_on, delay)
        async with db.writer() as session:
            await _move(session, invoice, InvoiceStatus.DEPOSEE, now=now, expected=InvoiceStatus.SUBMITTING,
                        values={"chorus_id": deposit.chorus_id, "chorus_syntax": submission.syntax,
                                "received_on": deposit.deposited_on, "due_on": due, "delay_days": delay.days,
                                "checked_at": now})
            await session.commit()
        done += 1
    return done


async def check_statuses(db: Database, *, chorus: ChorusPro, now: datetime, poll_s: float, limit: int = 100) -> int:
    """Ask Chorus Pro the status of each followed invoice not asked for ``poll_s`` seconds, and record
    every change (each intermediate status too, with its event). Returns how many invoices moved."""
    async with db.reader() as session:
        followed = await InvoiceRepository(session).to_check(checked_before=now - timedelta(seconds=poll_s),
                                                             limit=limit)
    moved = 0
    for invoice in followed:
        if invoice.chorus_id is None:
            continue
        try:
            report = await chorus.status(invoice.chorus_id, today=paris_day(now))
        except ChorusUnavailable as exc:
            log.warning("invoice %s: Chorus Pro unavailable (%s)", invoice.id, exc)
            continue
        walk = steps(invoice.status, InvoiceStatus(report.status))
        async with db.writer() as session:
            current = invoice
            for status in walk:
                values: dict[str, object] = {"checked_at": now}
                if status is InvoiceStatus.MISE_EN_PAIEMENT:
                    values["paid_on"] = report.on
                reason = report.reason if status in (InvoiceStatus.SUSPENDUE, InvoiceStatus.REJETEE) else None
                await _move(session, current, status, now=now, reason=reason, values=values,
                            expected=current.status)
                current = msgspec.structs.replace(current, status=status)
            if not walk:
                await InvoiceRepository(session).set_values(invoice.id, {"checked_at": now})
            await session.commit()
        moved += bool(walk)
    return moved


async def flag_overdue(session: AsyncSession, *, now: datetime, limit: int = 500) -> int:
    """Invoices whose due date passed unpaid: ``invoice.overdue`` once each."""
    repo = InvoiceRepository(session)
    today = paris_day(now)
    flagged = 0
    for invoice in await repo.newly_overdue(today, limit):
        if invoice.due_on is None or not await repo.mark_overdue(invoice.id, now=now):
            continue
        order = await OrderRepository(session).get(invoice.order_id)
        assert order is not None
        await emit(session, InvoiceOverdue(
            id=invoice.id, number=invoice.number, order_id=invoice.order_id, maker_org_id=order.maker_org_id,
            due_on=invoice.due_on.isoformat(), total_cents=invoice.total_cents,
            rate_bp=late_rate_bp(invoice.due_on + timedelta(days=1)), indemnity_cents=RECOVERY_INDEMNITY_CENTS,
        ), org_id=invoice.buyer_org_id, resource_id=invoice.id, now=now)
        flagged += 1
    return flagged


# ---- the payment clock --------------------------------------------------------------------------------


class Clock(msgspec.Struct, frozen=True, kw_only=True):
    """One invoice's payment clock on ``today``."""

    invoice: Invoice
    running: bool  # the buyer holds it and has not paid
    charges: LateCharges  # to ``today`` while unpaid, to ``paid_on`` once paid


def clock_of(invoice: Invoice, today: date) -> Clock:
    if invoice.kind is not InvoiceKind.INVOICE or invoice.due_on is None or invoice.received_on is None:
        return Clock(invoice=invoice, running=False, charges=late_charges(0, today, until=today))
    until = invoice.paid_on or today
    owed = invoice.total_cents - invoice.credited_cents
    return Clock(invoice=invoice, running=invoice.status in CLOCK_RUNS,
                 charges=late_charges(owed, invoice.due_on, until=until))


async def payment(session: AsyncSession, *, actor: Principal, order_id: str, now: datetime
                  ) -> tuple[Order, date | None, list[Clock]]:
    """An order's payment: its service fait, and each invoice's clock (credit notes show, without one)."""
    order, history = await get_order(session, actor=actor, order_id=order_id)
    served = _service_fait_on(history)
    today = paris_day(now)
    return order, served, [clock_of(i, today) for i in await InvoiceRepository(session).for_order(order_id)]


async def payables(session: AsyncSession, *, buyer_org_id: str, now: datetime, limit: int = 200) -> list[Clock]:
    """A buyer's invoices to pay, soonest due first, each with its clock (for its dashboard)."""
    today = paris_day(now)
    return [clock_of(i, today) for i in await InvoiceRepository(session).due_for_buyer(buyer_org_id, limit=limit)]

