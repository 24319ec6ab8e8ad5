"""Orders, for both sides: the list, the order with its history, one-click status moves, production
progress, the buyer's receipt, the Order-X / PEPPOL documents, and the order's invoices (issue 23):
the maker issues, deposits on Chorus Pro and corrects them; both sides read them and their payment clock."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import PathParameter

from broker.api.context import RequestContext
from broker.api.invoice_schemas import CreditNoteIn, InvoiceIn
from broker.api.presenters import percent
from broker.api.schemas import ProgressIn, TransitionIn
from broker.domain.access import Role
from broker.domain.fabrication import euros, totals_cents
from broker.domain.invoicing import LABELS, Invoice
from broker.domain.lifecycle import ORDER_MOVERS, ORDER_TRANSITIONS, OrderStatus, Side
from broker.domain.listing import ListedOrder
from broker.errors import NotFound
from broker.services import documents, read_models
from broker.services import invoices as invoice_service
from broker.services import orders as order_service
from broker.web.forms import Form
from broker.web.labels import INVOICE_KIND, ORDER_NEXT_STEP, ORDER_STATUS, cents
from broker.web.pages.common import Id, attempt
from broker.web.pages.invoices import invoice_section, payables
from broker.web.pages.lists import (
    DATES,
    EXPORT_CAP,
    PAGE,
    CommuneChoice,
    CommuneParam,
    DatedParam,
    Export,
    ListCursor,
    ListView,
    Search,
    Since,
    SortParam,
    StatusParam,
    Until,
    csv_cents,
    csv_day,
)
from broker.web.render import page, redirect
from broker.web.security import web_access

Kind = Annotated[str, PathParameter(max_length=20)]
READERS = web_access(Role.BUYER, Role.MAKER, Role.ADMIN)
MOVERS = web_access(Role.BUYER, Role.MAKER)
MAKER = web_access(Role.MAKER)
MOVE_FIELDS = {"/to": "vers", "/note": "note", "/tracking": "suivi"}
PROGRESS_FIELDS = {"/units_done": "unites"}
ISSUE_FIELDS = {"/quantity": "quantite"}
CREDIT_FIELDS = {"/reason": "motif", "/quantity": "quantite_avoir"}
#: The list's sortable columns: the address's word -> the service's sort (no « atelier » for a maker).
ORDER_SORTS = {"creation": "created", "numero": "number", "objet": "name", "atelier": "workshop",
               "quantite": "quantity", "total": "total", "livraison": "delivery", "etat": "status"}
ORDER_CSV = ("Numéro", "Objet", "Atelier", "Commune de livraison", "Quantité", "Prix unitaire HT", "Total HT",
             "TVA", "Total TTC", "Livraison promise", "Date limite", "État", "Unités fabriquées", "Créée le")


class OrderPages(Controller):
    path = "/commandes"
    include_in_schema = False

    @get("/", opt=READERS)
    async def orders(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                     curseur: ListCursor = None, recherche: Search = None, etat: StatusParam = None,
                     dates: DatedParam = None, du: Since = None, au: Until = None, commune: CommuneParam = None,
                     commune_choix: CommuneChoice = None, tri: SortParam = None,
                     export: Export = None) -> Response[Any]:
        """Either side's orders, newest first unless sorted otherwise; searched and filtered in the
        query; ``?format=csv`` exports every row the filters keep."""
        sorts = ORDER_SORTS if ctx.principal.role != Role.MAKER else {
            k: v for k, v in ORDER_SORTS.items() if k != "atelier"}
        params = {"recherche": recherche, "etat": etat, "dates": dates, "du": du, "au": au, "commune": commune,
                 "commune_choix": commune_choix, "tri": tri}
        view = ListView("commandes", params, export=export == "csv", sorts=sorts, statuses=ORDER_STATUS,
                        geocoder=ctx.geocoder)
        rows: list[ListedOrder] = []
        more = None
        if view.query is None:
            ctx.status = 422
        elif view.csv:
            found = await order_service.search_orders(ctx.session, actor=ctx.principal, query=view.query,
                                                      geocoder=ctx.geocoder, after=None, limit=EXPORT_CAP + 1)
            return view.export("commandes", ORDER_CSV, (_order_line(ctx, o) for o in found[:EXPORT_CAP]),
                               capped=len(found) > EXPORT_CAP)
        else:
            found = await order_service.search_orders(ctx.session, actor=ctx.principal, query=view.query,
                                                      geocoder=ctx.geocoder, after=view.after(ctx, curseur),
                                                      limit=PAGE + 1)
            rows, more = view.page(ctx, found)
        ttc = {o.order.id: euros(totals_cents(o.order.unit_price_cents, o.order.quantity, o.order.vat_rate_bp)[2])
               for o in rows}
        return page(request, "orders.html.j2", status=ctx.status, title="Commandes", orders=rows, more=more,
                    ttc=ttc, view=view, form=view.form, statuses=ORDER_STATUS, dates=DATES,
                    payables=await payables(ctx))

    @get("/{order_id:str}", opt=READERS)
    async def order(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                    order_id: Id) -> Response[Any]:
        return await _order_page(request, ctx, order_id)

    @post("/{order_id:str}/statut", opt=MOVERS, status_code=303)
    async def move(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                   order_id: Id) -> Response[Any]:
        form = Form(await request.form())
        target = form.choice("vers", ORDER_STATUS)
        note = form.text("note", required=target in ("cancelled", "disputed"), max_length=2000)
        if target == "cancelled" and not form.checked("confirmer"):  # never in one click (issue 21 item 3)
            form.error("confirmer", "Cochez la case pour confirmer l'annulation : elle est définitive.")
        tracking = form.text("suivi", required=target == "shipped", max_length=200)
        body = form.convert({"to": target, "note": note, "tracking": tracking}, TransitionIn, MOVE_FIELDS) \
            if form.ok else None
        moved = None
        if body is not None:
            moved = await attempt(ctx, form, MOVE_FIELDS, order_service.move_order(
                ctx.session, actor=ctx.principal, order_id=order_id, to=body.to, note=body.note,
                tracking=body.tracking, now=ctx.now))
        if moved is None:
            ctx.status = 422
            return await _order_page(request, ctx, order_id, move_form=form, status=422)
        ctx.resource = ("order", order_id)
        return redirect(request, f"/app/commandes/{order_id}",
                        flash=f"Commande {moved.number} : {ORDER_STATUS[moved.status].lower()}.")

    @post("/{order_id:str}/avancement", opt=web_access(Role.MAKER), status_code=303)
    async def progress(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                       order_id: Id) -> Response[Any]:
        form = Form(await request.form())
        units = form.integer("unites", low=0, high=10_000_000)
        body = form.convert({"units_done": units}, ProgressIn, PROGRESS_FIELDS) if form.ok else None
        moved = None
        if body is not None:
            moved = await attempt(ctx, form, PROGRESS_FIELDS, order_service.report_progress(
                ctx.session, actor=ctx.principal, order_id=order_id, units_done=body.units_done, now=ctx.now))
        if moved is None:
            ctx.status = 422
            return await _order_page(request, ctx, order_id, progress_form=form, status=422)
        ctx.resource = ("order", order_id)
        return redirect(request, f"/app/commandes/{order_id}",
                        flash=f"Avancement enregistré : {moved.units_done} sur {moved.quantity}.")

    @post("/{order_id:str}/factures", opt=MAKER, status_code=303)
    async def issue_invoice(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                            order_id: Id) -> Response[Any]:
        """« Émettre la facture »: the units not yet invoiced, or those typed."""
        form = Form(await request.form())
        quantity = form.integer("quantite", low=1, high=10_000_000, required=False)
        body = form.convert({"quantity": quantity}, InvoiceIn, ISSUE_FIELDS) if form.ok else None
        made = None
        if body is not None:
            made = await attempt(ctx, form, ISSUE_FIELDS, invoice_service.issue_invoice(
                ctx.session, actor=ctx.principal, order_id=order_id, quantity=body.quantity, now=ctx.now))
        if made is None:
            ctx.status = 422
            return await _order_page(request, ctx, order_id, status=422, issue_form=form)
        ctx.resource = ("invoice", made.id)
        return redirect(request, f"/app/commandes/{order_id}#factures",
                        flash=f"Facture {made.number} émise\u00a0: {cents(made.total_cents)} TTC. Déposez-la sur "
                              "Chorus Pro\u00a0: le délai de paiement court à partir du dépôt.")

    @post("/{order_id:str}/factures/{invoice_id:str}/depot", opt=MAKER, status_code=303)
    async def submit_invoice(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                             order_id: Id, invoice_id: Id) -> Response[Any]:
        """« Déposer sur Chorus Pro »: the worker deposits it within seconds, then follows its status."""
        form = Form(await request.form())
        await _invoice_of_order(ctx, order_id, invoice_id)
        sent = await attempt(ctx, form, {}, invoice_service.submit_invoice(
            ctx.session, actor=ctx.principal, invoice_id=invoice_id, now=ctx.now))
        if sent is None:
            ctx.status = 422
            return await _order_page(request, ctx, order_id, status=422, action_form=form, action_for=invoice_id)
        ctx.resource = ("invoice", invoice_id)
        return redirect(request, f"/app/commandes/{order_id}#factures",
                        flash=f"{INVOICE_KIND[sent.kind]} {sent.number}\u00a0: {LABELS[sent.status]}. Le courtier en "
                              "suivra ensuite l'instruction jusqu'au paiement.")

    @post("/{order_id:str}/factures/{invoice_id:str}/avoir", opt=MAKER, status_code=303)
    async def credit_invoice(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                             order_id: Id, invoice_id: Id) -> Response[Any]:
        """« Établir un avoir »: its reason is required; all the units not yet credited by default."""
        form = Form(await request.form())
        invoice = await _invoice_of_order(ctx, order_id, invoice_id)
        reason = form.text("motif", max_length=500)
        quantity = form.integer("quantite_avoir", low=1, high=10_000_000, required=False)
        body = form.convert({"reason": reason, "quantity": quantity}, CreditNoteIn, CREDIT_FIELDS) \
            if form.ok else None
        note = None
        if body is not None:
            note = await attempt(ctx, form, CREDIT_FIELDS, invoice_service.credit_invoice(
                ctx.session, actor=ctx.principal, invoice_id=invoice_id, reason=body.reason,
                quantity=body.quantity, now=ctx.now))
        if note is None:
            ctx.status = 422
            return await _order_page(request, ctx, order_id, status=422, action_form=form, action_for=invoice_id)
        ctx.resource = ("invoice", note.id)
        return redirect(request, f"/app/commandes/{order_id}#factures",
                        flash=f"Avoir {note.number} établi sur la facture {invoice.number}\u00a0: "
                              f"{cents(note.total_cents)} TTC. Déposez-le sur Chorus Pro.")

    @get("/{order_id:str}/factures/{invoice_id:str}/factur-x.pdf", opt=READERS)
    async def invoice_pdf(self, ctx: NamedDependency[RequestContext], order_id: Id, invoice_id: Id) -> Response[Any]:
        """The invoice as Factur-X (a readable PDF with its XML inside), as the API serves it."""
        return await _invoice_document(ctx, order_id, invoice_id, "factur-x", "application/pdf")

    @get("/{order_id:str}/factures/{invoice_id:str}/ubl.xml", opt=READERS)
    async def invoice_ubl(self, ctx: NamedDependency[RequestContext], order_id: Id, invoice_id: Id) -> Response[Any]:
        """The invoice as UBL 2.1 (PEPPOL BIS Billing 3), for the buyer's financial software."""
        return await _invoice_document(ctx, order_id, invoice_id, "ubl", "application/xml")

    @get("/{order_id:str}/documents/{kind:str}", opt=READERS)
    async def document(self, ctx: NamedDependency[RequestContext], order_id: Id, kind: Kind) -> Response[Any]:
        if kind in PRINTED:
            printed = await documents.printed_order(ctx.session, actor=ctx.principal, order_id=order_id,
                                                    geocoder=ctx.geocoder)
            pdf = await documents.order_pdf(printed, kind=PRINTED[kind])
            return Response(pdf, media_type="application/pdf", headers={
                "Content-Disposition": f'attachment; filename="{kind}-{printed.document.order_number}.pdf"',
                "Cache-Control": "no-store"})
        if kind not in ("order-x", "peppol"):
            raise_not_found(kind)
        xml = await documents.order_document(ctx.session, actor=ctx.principal, order_id=order_id, kind=kind,
                                             geocoder=ctx.geocoder)
        view = await read_models.order_view(ctx.session, actor=ctx.principal, order_id=order_id)
        return Response(xml, media_type="application/xml", headers={
            "Content-Disposition": f'attachment; filename="{view.order.number}-{kind}.xml"',
            "Cache-Control": "no-store"})


def _order_line(ctx: RequestContext, listed: ListedOrder) -> list[str]:
    """An order as a line of the CSV export."""
    o = listed.order
    ht, vat, ttc = totals_cents(o.unit_price_cents, o.quantity, o.vat_rate_bp)
    commune = ctx.geocoder.commune(listed.delivery_insee)
    return [o.number, listed.name, listed.workshop_name,
            f"{commune.name} ({commune.department})" if commune else listed.delivery_insee, str(o.quantity),
            csv_cents(o.unit_price_cents), csv_cents(ht), csv_cents(vat), csv_cents(ttc), csv_day(o.delivery_date),
            csv_day(listed.deadline), ORDER_STATUS.get(o.status, o.status), str(o.units_done), csv_day(o.created_at)]


#: The printed documents of an order, by the name their web address gives them.
PRINTED = {"bon-de-commande": "purchase-order", "bon-de-livraison": "delivery-note"}


def raise_not_found(kind: str) -> None:
    raise NotFound(f"no document kind {kind!r}")


async def _invoice_of_order(ctx: RequestContext, order_id: str, invoice_id: str) -> Invoice:
    """The invoice, when the caller may read it and it belongs to this order (else the 404 page)."""
    invoice, _history = await invoice_service.get_invoice(ctx.session, actor=ctx.principal, invoice_id=invoice_id)
    if invoice.order_id != order_id:
        raise NotFound(f"invoice {invoice_id} not found")
    return invoice


async def _invoice_document(ctx: RequestContext, order_id: str, invoice_id: str, kind: Literal["factur-x", "ubl"],
                            media_type: str) -> Response[Any]:
    await _invoice_of_order(ctx, order_id, invoice_id)
    content, name = await invoice_service.document(ctx.session, actor=ctx.principal, invoice_id=invoice_id,
                                                   kind=kind, geocoder=ctx.geocoder)
    return Response(content, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


def _moves(side: Side | None, status: str) -> list[str]:
    if side is None:
        return []
    current = OrderStatus(status)
    return [s.value for s in sorted(ORDER_TRANSITIONS[current]) if side in ORDER_MOVERS[s]]


async def _order_page(request: Request[Any, Any, Any], ctx: RequestContext, order_id: str, *, status: int = 200,
                      move_form: Form | None = None, progress_form: Form | None = None,
                      issue_form: Form | None = None, action_form: Form | None = None,
                      action_for: str | None = None) -> Response[Any]:
    view = await read_models.order_view(ctx.session, actor=ctx.principal, order_id=order_id)
    order = view.order
    side = None
    if ctx.principal.role == Role.MAKER and order.maker_org_id == ctx.principal.org_id:
        side = Side.MAKER
    elif ctx.principal.role == Role.BUYER and order.buyer_org_id == ctx.principal.org_id:
        side = Side.BUYER
    moves = _moves(side, order.status)
    next_step = ORDER_NEXT_STEP.get(order.status) if side == Side.MAKER else None
    invoices = await invoice_section(ctx, order, side, issue_form=issue_form, action_form=action_form,
                                     action_for=action_for)
    return page(request, "order.html.j2", status=status, title=f"Commande {order.number}", v=view, o=order,
                side=side, moves=moves, next_step=next_step,
                delivery=ctx.geocoder.commune(view.request.delivery_insee),
                workshop_commune=ctx.geocoder.commune(view.workshop.commune_insee),
                ttc=euros(totals_cents(order.unit_price_cents, order.quantity, order.vat_rate_bp)[2]),
                vat_rate=percent(order.vat_rate_bp), move_form=move_form or Form(),
                progress_form=progress_form or Form({"unites": str(order.units_done)}),
                producing=order.status in ("confirmed", "in_production", "ready"), invoices=invoices,
                refresh_seconds=5 if invoices.depositing else None)
