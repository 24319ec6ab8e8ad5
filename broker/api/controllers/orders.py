"""Orders: each side reads its own; the maker moves production forward, the buyer confirms receipt."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter

from broker.api.context import RequestContext
from broker.api.controllers.common import Cursor, IdempotencyKey, Limit, keyset_page, next_link, page_size
from broker.api.presenters import order_out
from broker.api.problems import problems
from broker.api.schemas import OrderOut, OrderPage, ProgressIn, TransitionIn
from broker.api.security import access
from broker.domain.access import Role
from broker.services import documents
from broker.services import orders as order_service

Id = Annotated[str, PathParameter(max_length=64)]
READERS = (Role.BUYER, Role.MAKER, Role.INTEGRATION, Role.ADMIN)
PDF = "application/pdf"


class OrderController(Controller):
    path = "/v1/orders"
    tags = ["orders"]

    @get("/", opt=access(*READERS), operation_id="list_orders", responses=problems(400, 401, 403, 429))
    async def list_(
        self,
        ctx: NamedDependency[RequestContext],
        limit: Limit = None,
        cursor: Cursor = None,
        request_id: Annotated[str | None, QueryParameter(name="request_id", min_length=1, max_length=64)] = None,
    ) -> Response[OrderPage]:
        filters = f"orders:{request_id or ''}"
        after = ctx.runtime.cursors.decode(cursor, filters=filters) if cursor else None
        size = page_size(ctx, limit)
        rows = await order_service.list_orders(
            ctx.session, actor=ctx.principal, after=after, limit=size + 1, request_id=request_id
        )
        rows, nxt = keyset_page(ctx, rows, size, filters, lambda o: (o.created_at, o.id))
        return Response(
            OrderPage(items=[order_out(o, []) for o in rows], next_cursor=nxt), headers=next_link(ctx.request, nxt)
        )

    @get("/{order_id:str}", opt=access(*READERS), operation_id="get_order", responses=problems(400, 401, 403, 404, 429))
    async def get_one(self, order_id: Id, ctx: NamedDependency[RequestContext]) -> OrderOut:
        order, history = await order_service.get_order(ctx.session, actor=ctx.principal, order_id=order_id)
        return order_out(order, history)

    @post(
        "/{order_id:str}/transitions",
        opt=access(Role.MAKER, Role.BUYER, idempotent=True),
        status_code=200,
        operation_id="transition_order",
        responses=problems(400, 401, 403, 404, 409, 413, 422, 429),
    )
    async def transition(
        self,
        order_id: Id,
        data: JSONBody[TransitionIn],
        ctx: NamedDependency[RequestContext],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[OrderOut]:
        """Maker: confirmed → in_production → ready → shipped (with tracking); buyer: delivered,
        closed; either side: cancelled or disputed (with a note). Anything else is a 409 naming the
        current state and the allowed moves."""
        order = await order_service.move_order(
            ctx.session,
            actor=ctx.principal,
            order_id=order_id,
            to=data.to,
            note=data.note,
            tracking=data.tracking,
            now=ctx.now,
        )
        _order, history = await order_service.get_order(ctx.session, actor=ctx.principal, order_id=order_id)
        return await ctx.respond(order_out(order, history), status=200, resource=("order", order_id))

    @post(
        "/{order_id:str}/progress",
        opt=access(Role.MAKER, idempotent=True),
        status_code=200,
        operation_id="report_order_progress",
        responses=problems(400, 401, 403, 404, 409, 413, 422, 429),
    )
    async def progress(
        self,
        order_id: Id,
        data: JSONBody[ProgressIn],
        ctx: NamedDependency[RequestContext],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[OrderOut]:
        """Units made so far: never goes backwards, never above the quantity ordered."""
        order = await order_service.report_progress(
            ctx.session, actor=ctx.principal, order_id=order_id, units_done=data.units_done, now=ctx.now
        )
        _order, history = await order_service.get_order(ctx.session, actor=ctx.principal, order_id=order_id)
        return await ctx.respond(order_out(order, history), status=200, resource=("order", order_id))


class OrderDocumentController(Controller):
    path = "/v1/orders/{order_id:str}/documents"
    tags = ["orders"]

    @get("/order-x", opt=access(*READERS), operation_id="get_order_x", media_type="application/xml",
         responses=problems(400, 401, 403, 404, 422, 429))
    async def order_x(self, order_id: Id, ctx: NamedDependency[RequestContext]) -> Response[bytes]:
        """The order as Order-X BASIC (UN/CEFACT CII), with the buyer's SIRET (scheme 0009), service
        code and engagement number for the workshop's invoice to Chorus Pro."""
        xml = await documents.order_document(ctx.session, actor=ctx.principal, order_id=order_id, kind="order-x",
                                             geocoder=ctx.geocoder)
        return Response(xml, media_type="application/xml")

    @get("/peppol", opt=access(*READERS), operation_id="get_order_peppol", media_type="application/xml",
         responses=problems(400, 401, 403, 404, 422, 429))
    async def peppol(self, order_id: Id, ctx: NamedDependency[RequestContext]) -> Response[bytes]:
        """The order as a PEPPOL BIS 3 Order (OASIS UBL 2.1)."""
        xml = await documents.order_document(ctx.session, actor=ctx.principal, order_id=order_id, kind="peppol",
                                             geocoder=ctx.geocoder)
        return Response(xml, media_type="application/xml")

    @get("/purchase-order", opt=access(*READERS), operation_id="get_purchase_order_pdf", media_type=PDF,
         responses=problems(400, 401, 403, 404, 422, 429))
    async def purchase_order(self, order_id: Id, ctx: NamedDependency[RequestContext]) -> Response[bytes]:
        """The « Bon de commande » as a French A4 PDF: both parties with their SIRET, the buyer's service code
        and engagement number, the lines, totals HT / TVA / TTC, the delivery place and date, the procedure."""
        return await _printed(ctx, order_id, "purchase-order")

    @get("/delivery-note", opt=access(*READERS), operation_id="get_delivery_note_pdf", media_type=PDF,
         responses=problems(400, 401, 403, 404, 422, 429))
    async def delivery_note(self, order_id: Id, ctx: NamedDependency[RequestContext]) -> Response[bytes]:
        """The « Bon de livraison » as a French A4 PDF: the parties and the delivery address, the quantities
        (no prices), the carrier's tracking reference, the dates, and boxes for both signatures."""
        return await _printed(ctx, order_id, "delivery-note")


async def _printed(ctx: RequestContext, order_id: str, kind: str) -> Response[bytes]:
    """The PDF of ``kind`` as a download named after the document and the order number."""
    order = await documents.printed_order(ctx.session, actor=ctx.principal, order_id=order_id, geocoder=ctx.geocoder)
    pdf = await documents.order_pdf(order, kind=kind)
    filename = f"{documents.PDFS[kind].file_stem}-{order.document.order_number}.pdf"
    return Response(pdf, media_type=PDF, headers={"Content-Disposition": f'attachment; filename="{filename}"'})
