"""Invoices on the pages (issue 23): what the order page shows of an order's invoices (amounts, status,
due date, the payment clock) and what each side may do with them; the buyer's invoices to pay."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from broker.api.context import RequestContext
from broker.domain.access import Role
from broker.domain.fabrication import Order
from broker.domain.invoicing import Invoice, InvoiceKind, InvoiceStatus, LateCharges, delay_of
from broker.domain.lifecycle import Side
from broker.services import invoices as invoice_service
from broker.services.invoices import Clock
from broker.web.forms import Form

# The credit note's reason, prefilled when Chorus Pro rejected the invoice (the usual correction).
REJECTED_REASON = "Rejet par Chorus Pro\u00a0: {}"


@dataclass(frozen=True)
class InvoiceCard:
    """One invoice or credit note as the order page shows it, with its own action form."""

    invoice: Invoice
    charges: LateCharges  # to today while unpaid, to the day of payment once paid
    owed_cents: int  # TTC less what credit notes gave back
    corrects: str | None  # a credit note: the number of the invoice it corrects
    may_submit: bool
    may_credit: bool
    form: Form  # the credit note's (reason prefilled after a rejection), or the refused action's

    @property
    def provisional_due(self) -> bool:
        """The due date counts from the deposit on Chorus Pro: an estimate until then."""
        return self.invoice.received_on is None

    @property
    def delay_rule(self) -> str:
        return delay_of(self.invoice.delay_days).text


@dataclass(frozen=True)
class InvoiceSection:
    """The order page's invoices part."""

    cards: list[InvoiceCard]
    service_fait_on: date | None
    remaining: int  # units not invoiced yet (credit notes give units back)
    may_issue: bool
    interest_cents: int
    indemnity_cents: int
    issue_form: Form

    @property
    def shown(self) -> bool:
        return bool(self.cards) or self.may_issue

    @property
    def depositing(self) -> bool:
        """The worker is depositing one on Chorus Pro: the page reloads itself to show the answer."""
        return any(c.invoice.status is InvoiceStatus.SUBMITTING for c in self.cards)


async def invoice_section(ctx: RequestContext, order: Order, side: Side | None, *, issue_form: Form | None = None,
                          action_form: Form | None = None, action_for: str | None = None) -> InvoiceSection:
    """The invoices of ``order`` with their clocks; buttons only for its maker (``side``). A refused
    form (422) is shown again as typed: ``issue_form``, or ``action_form`` on invoice ``action_for``."""
    _order, served, clocks = await invoice_service.payment(ctx.session, actor=ctx.principal, order_id=order.id,
                                                           now=ctx.now)
    numbers = {c.invoice.id: c.invoice.number for c in clocks}
    maker = side == Side.MAKER
    cards = []
    for clock in clocks:
        invoice = clock.invoice
        form = action_form if action_form is not None and invoice.id == action_for else Form(
            {"motif": REJECTED_REASON.format(invoice.status_reason or "motif non précisé")}
            if invoice.status is InvoiceStatus.REJETEE else None)
        cards.append(InvoiceCard(
            invoice=invoice, charges=clock.charges, owed_cents=invoice.total_cents - invoice.credited_cents,
            corrects=numbers.get(invoice.preceding_id or ""), form=form,
            may_submit=maker and invoice.status is InvoiceStatus.ISSUED,
            may_credit=(maker and invoice.kind is InvoiceKind.INVOICE and invoice.status is not InvoiceStatus.CREDITED
                        and invoice.credited_cents < invoice.total_cents),
        ))
    invoiced = sum(c.invoice.quantity if c.invoice.kind is InvoiceKind.INVOICE else -c.invoice.quantity
                   for c in clocks)
    remaining = max(order.quantity - invoiced, 0)
    return InvoiceSection(
        cards=cards, service_fait_on=served, remaining=remaining,
        may_issue=maker and served is not None and remaining > 0,
        interest_cents=sum(c.charges.interest_cents for c in clocks),
        indemnity_cents=sum(c.charges.indemnity_cents for c in clocks),
        issue_form=issue_form or Form({"quantite": str(remaining)}),
    )


async def payables(ctx: RequestContext) -> list[Clock]:
    """A buyer's invoices to pay, soonest due first (nobody else has any)."""
    if ctx.principal.role != Role.BUYER:
        return []
    return await invoice_service.payables(ctx.session, buyer_org_id=ctx.principal.org_id, now=ctx.now)
