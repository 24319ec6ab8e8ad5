"""Request and response Structs of invoices, credit notes and the payment clock (API.md, invoicing)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from broker.api.presenters import percent
from broker.api.schemas import Input
from broker.domain.fabrication import euros
from broker.domain.invoicing import Invoice, InvoiceEvent, InvoiceKind, InvoiceStatus, VatRegime, delay_of, totals
from broker.services.invoices import Clock

Units = Annotated[int, Meta(ge=1, le=10_000_000)]


class InvoiceIn(Input):
    quantity: Units | None = None  # the units not yet invoiced, by default


class CreditNoteIn(Input):
    reason: Annotated[str, Meta(min_length=1, max_length=500, description="why the invoice is corrected")]
    quantity: Units | None = None  # the units of the invoice not yet credited, by default


class InvoiceLineOut(msgspec.Struct, kw_only=True):
    name: str
    item: str | None
    quantity: int
    unit_code: str
    unit_price_eur_ht: str
    vat_rate: str
    net_eur_ht: str


class VatOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    category: str  # EN 16931 (UNCL 5305): S standard rate, E exempt (franchise en base)
    rate: str
    basis_eur: str
    amount_eur: str
    exemption_reason: str | None = None


class TotalsOut(msgspec.Struct, kw_only=True):
    net_eur_ht: str
    vat_eur: str
    total_eur_ttc: str


class InvoiceHistoryOut(msgspec.Struct, kw_only=True):
    at: datetime
    from_status: InvoiceStatus | None
    to_status: InvoiceStatus
    reason: str | None


class InvoiceOut(msgspec.Struct, kw_only=True):
    id: str
    kind: InvoiceKind
    number: str
    order_id: str
    preceding_id: str | None
    seller_org_id: str
    buyer_org_id: str
    issue_date: date
    status: InvoiceStatus
    status_reason: str | None
    vat_regime: VatRegime
    lines: list[InvoiceLineOut]
    totals: TotalsOut
    vat: list[VatOut]
    credited_eur_ttc: str
    reason: str | None
    service_fait_on: date
    delay_days: int
    received_on: date | None
    due_on: date | None  # provisional until Chorus Pro receives the invoice
    paid_on: date | None
    chorus_id: str | None
    created_at: datetime
    history: list[InvoiceHistoryOut]


class InvoicePage(msgspec.Struct, kw_only=True):
    items: list[InvoiceOut]
    next_cursor: str | None


class ClockOut(msgspec.Struct, kw_only=True):
    invoice_id: str
    number: str
    kind: InvoiceKind
    status: InvoiceStatus
    total_eur_ttc: str
    owed_eur_ttc: str  # less what credit notes gave back
    received_on: date | None
    due_on: date | None
    delay_days: int
    delay_rule: str
    paid_on: date | None
    running: bool
    days_late: int
    late_rate: str | None  # ECB rate + 8 points, percent a year
    interest_eur: str
    indemnity_eur: str


class PaymentOut(msgspec.Struct, kw_only=True):
    order_id: str
    service_fait_on: date | None
    invoices: list[ClockOut]
    interest_eur: str
    indemnity_eur: str


def invoice_out(invoice: Invoice, history: list[InvoiceEvent]) -> InvoiceOut:
    amounts = totals(invoice.lines, invoice.vat_regime)
    return InvoiceOut(
        id=invoice.id, kind=invoice.kind, number=invoice.number, order_id=invoice.order_id,
        preceding_id=invoice.preceding_id, seller_org_id=invoice.seller_org_id, buyer_org_id=invoice.buyer_org_id,
        issue_date=invoice.issue_date, status=invoice.status, status_reason=invoice.status_reason,
        vat_regime=invoice.vat_regime,
        lines=[InvoiceLineOut(name=line.name, item=line.item, quantity=line.quantity, unit_code=line.unit_code,
                              unit_price_eur_ht=euros(line.unit_price_cents), vat_rate=percent(line.vat_rate_bp),
                              net_eur_ht=euros(line.net_cents)) for line in invoice.lines],
        totals=TotalsOut(net_eur_ht=euros(invoice.net_cents), vat_eur=euros(invoice.vat_cents),
                         total_eur_ttc=euros(invoice.total_cents)),
        vat=[VatOut(category=v.category, rate=percent(v.rate_bp), basis_eur=euros(v.basis_cents),
                    amount_eur=euros(v.amount_cents), exemption_reason=v.exemption_reason) for v in amounts.vat],
        credited_eur_ttc=euros(invoice.credited_cents), reason=invoice.reason,
        service_fait_on=invoice.service_fait_on, delay_days=invoice.delay_days, received_on=invoice.received_on,
        due_on=invoice.due_on, paid_on=invoice.paid_on, chorus_id=invoice.chorus_id, created_at=invoice.created_at,
        history=[InvoiceHistoryOut(at=e.at, from_status=e.from_status, to_status=e.to_status, reason=e.reason)
                 for e in history],
    )


def clock_out(clock: Clock) -> ClockOut:
    invoice, charges = clock.invoice, clock.charges
    return ClockOut(
        invoice_id=invoice.id, number=invoice.number, kind=invoice.kind, status=invoice.status,
        total_eur_ttc=euros(invoice.total_cents), owed_eur_ttc=euros(invoice.total_cents - invoice.credited_cents),
        received_on=invoice.received_on, due_on=invoice.due_on, delay_days=invoice.delay_days,
        delay_rule=delay_of(invoice.delay_days).text, paid_on=invoice.paid_on, running=clock.running,
        days_late=charges.days_late, late_rate=None if charges.rate_bp is None else percent(charges.rate_bp),
        interest_eur=euros(charges.interest_cents), indemnity_eur=euros(charges.indemnity_cents),
    )
