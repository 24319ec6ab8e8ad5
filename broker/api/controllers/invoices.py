"""Invoices: the maker issues one for a delivered order, corrects it by credit note and submits it to
Chorus Pro; both sides read it, its documents (Factur-X, UBL) and the order's payment clock."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter

from broker.api.context import RequestContext
from broker.api.controllers.common import Cursor, IdempotencyKey, Limit, keyset_page, next_link, page_size
from broker.api.invoice_schemas import (
    CreditNoteIn,
    InvoiceIn,
    InvoiceOut,
    InvoicePage,
    PaymentOut,
    clock_out,
    invoice_out,
)
from broker.api.problems import problems
from broker.api.security import access
from broker.domain.access import Role
from broker.domain.fabrication import euros
from broker.domain.invoicing import InvoiceStatus
from broker.services import invoices as invoice_service

Id = Annotated[str, PathParameter(max_length=64)]
READERS = (Role.BUYER, Role.MAKER, Role.INTEGRATION, Role.ADMIN)


class OrderInvoiceController(Controller):
    path = "/v1/orders/{order_id:str}"
    tags = ["invoices"]

    @post("/invoices", opt=access(Role.MAKER, idempotent=True), operation_id="issue_invoice",
          responses=problems(400, 401, 403, 404, 409, 413, 422, 429))
    async def issue(self, order_id: Id, data: JSONBody[InvoiceIn], ctx: NamedDependency[RequestContext],
                    idempotency_key: IdempotencyKey = None) -> Response[InvoiceOut]:
        """The order's maker invoices it once the buyer confirmed delivery (the service fait; before,
        409 `not-delivered`): the next number of its series, the order's price, VAT at the order's rate
        (none under the franchise en base), and a provisional due date (final once Chorus Pro has it)."""
        invoice = await invoice_service.issue_invoice(ctx.session, actor=ctx.principal, order_id=order_id,
                                                      quantity=data.quantity, now=ctx.now)
        _, history = await invoice_service.get_invoice(ctx.session, actor=ctx.principal, invoice_id=invoice.id)
        return await ctx.respond(invoice_out(invoice, history), resource=("invoice", invoice.id))

    @get("/invoices", opt=access(*READERS), operation_id="list_order_invoices",
         responses=problems(400, 401, 403, 404, 429))
    async def of_order(self, order_id: Id, ctx: NamedDependency[RequestContext]) -> list[InvoiceOut]:
        _order, found = await invoice_service.order_invoices(ctx.session, actor=ctx.principal, order_id=order_id)
        return [invoice_out(i, []) for i in found]

    @get("/payment", opt=access(*READERS), operation_id="get_order_payment",
         responses=problems(400, 401, 403, 404, 429))
    async def payment(self, order_id: Id, ctx: NamedDependency[RequestContext]) -> PaymentOut:
        """The payment clock of each invoice of the order: received on, due on (30 days, or 50 for a
        public health establishment), days late, interest at the ECB rate + 8 points and the 40 €
        indemnity (R.2192-31 and D.2192-35 of the code de la commande publique)."""
        order, served, clocks = await invoice_service.payment(ctx.session, actor=ctx.principal, order_id=order_id,
                                                              now=ctx.now)
        out = [clock_out(c) for c in clocks]
        return PaymentOut(order_id=order.id, service_fait_on=served, invoices=out,
                          interest_eur=euros(sum(c.charges.interest_cents for c in clocks)),
                          indemnity_eur=euros(sum(c.charges.indemnity_cents for c in clocks)))


class InvoiceController(Controller):
    path = "/v1/invoices"
    tags = ["invoices"]

    @get("/", opt=access(*READERS), operation_id="list_invoices", responses=problems(400, 401, 403, 429))
    async def list_(self, ctx: NamedDependency[RequestContext], limit: Limit = None, cursor: Cursor = None,
                    status: Annotated[InvoiceStatus | None, QueryParameter(name="status")] = None,
                    ) -> Response[InvoicePage]:
        """A maker's invoices, or those addressed to a buyer, oldest first."""
        filters = f"invoices:{status or ''}"
        after = ctx.runtime.cursors.decode(cursor, filters=filters) if cursor else None
        size = page_size(ctx, limit)
        rows = await invoice_service.list_invoices(ctx.session, actor=ctx.principal, after=after, limit=size + 1,
                                                   status=status)
        rows, nxt = keyset_page(ctx, rows, size, filters, lambda i: (i.created_at, i.id))
        return Response(InvoicePage(items=[invoice_out(i, []) for i in rows], next_cursor=nxt),
                        headers=next_link(ctx.request, nxt))

    @get("/{invoice_id:str}", opt=access(*READERS), operation_id="get_invoice",
         responses=problems(400, 401, 403, 404, 429))
    async def get_one(self, invoice_id: Id, ctx: NamedDependency[RequestContext]) -> InvoiceOut:
        invoice, history = await invoice_service.get_invoice(ctx.session, actor=ctx.principal, invoice_id=invoice_id)
        return invoice_out(invoice, history)

    @post("/{invoice_id:str}/credit-notes", opt=access(Role.MAKER, idempotent=True), operation_id="credit_invoice",
          responses=problems(400, 401, 403, 404, 409, 413, 422, 429))
    async def credit(self, invoice_id: Id, data: JSONBody[CreditNoteIn], ctx: NamedDependency[RequestContext],
                     idempotency_key: IdempotencyKey = None) -> Response[InvoiceOut]:
        """A credit note (avoir, type 381) of the invoice's units not yet credited (or ``quantity`` of
        them), with its reason: to correct an invoice, or to cancel a rejected one and invoice again."""
        note = await invoice_service.credit_invoice(ctx.session, actor=ctx.principal, invoice_id=invoice_id,
                                                    reason=data.reason, quantity=data.quantity, now=ctx.now)
        _, history = await invoice_service.get_invoice(ctx.session, actor=ctx.principal, invoice_id=note.id)
        return await ctx.respond(invoice_out(note, history), resource=("invoice", note.id))

    @post("/{invoice_id:str}/submit", opt=access(Role.MAKER, idempotent=True), status_code=202,
          operation_id="submit_invoice", responses=problems(400, 401, 403, 404, 409, 413, 422, 429))
    async def submit(self, invoice_id: Id, ctx: NamedDependency[RequestContext],
                     idempotency_key: IdempotencyKey = None) -> Response[InvoiceOut]:
        """202: the invoice is `submitting`; the worker deposits it on Chorus Pro within seconds, then
        follows its status (`invoice.status_changed` at each step)."""
        invoice = await invoice_service.submit_invoice(ctx.session, actor=ctx.principal, invoice_id=invoice_id,
                                                       now=ctx.now)
        _, history = await invoice_service.get_invoice(ctx.session, actor=ctx.principal, invoice_id=invoice_id)
        return await ctx.respond(invoice_out(invoice, history), status=202, resource=("invoice", invoice_id))

    @get("/{invoice_id:str}/factur-x", opt=access(*READERS), operation_id="get_invoice_factur_x",
         media_type="application/pdf", responses=problems(400, 401, 403, 404, 429))
    async def factur_x(self, invoice_id: Id, ctx: NamedDependency[RequestContext]) -> Response[bytes]:
        """The invoice as a Factur-X PDF/A-3 (profile EN 16931): a readable PDF with its CII XML embedded."""
        pdf, name = await invoice_service.document(ctx.session, actor=ctx.principal, invoice_id=invoice_id,
                                                   kind="factur-x", geocoder=ctx.geocoder)
        return Response(pdf, media_type="application/pdf",
                        headers={"content-disposition": f'attachment; filename="{name}"'})

    @get("/{invoice_id:str}/ubl", opt=access(*READERS), operation_id="get_invoice_ubl",
         media_type="application/xml", responses=problems(400, 401, 403, 404, 429))
    async def ubl(self, invoice_id: Id, ctx: NamedDependency[RequestContext]) -> Response[bytes]:
        """The invoice as PEPPOL BIS Billing 3 (UBL 2.1 Invoice, or CreditNote), validated against the
        OASIS UBL 2.1 schema."""
        xml, _name = await invoice_service.document(ctx.session, actor=ctx.principal, invoice_id=invoice_id,
                                                    kind="ubl", geocoder=ctx.geocoder)
        return Response(xml, media_type="application/xml")
