"""The buyer's pages: the catalogue, posting a request, following its matching, comparing quotes
side by side and awarding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from broker.api.context import RequestContext
from broker.api.presenters import percent
from broker.api.schemas import AwardIn, RequestIn
from broker.domain.access import Role
from broker.domain.award_rules import is_valid, quote_flags
from broker.domain.fabrication import Procurement, euros, totals_cents
from broker.domain.fabrication import Request as BuyerRequest
from broker.domain.lifecycle import RequestStatus
from broker.services import award_record as award_record_service
from broker.services import consultations as consultation_service
from broker.services import orders as order_service
from broker.services import organisations, read_models, workshops
from broker.services import quotes as quote_service
from broker.services import requests as request_service
from broker.web.forms import Form, deadline_at
from broker.web.labels import CHORUS, NATURE, PARIS, REQUEST_STATUS, THREE_QUOTES, number
from broker.web.pages.common import Id, attempt
from broker.web.pages.invoices import payables
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
    csv_day,
)
from broker.web.pages.procurement import cpv_text, default_cpv, procedure_context, rule_explanation
from broker.web.render import page, redirect
from broker.web.security import web_access
from matching.geo import haversine_km

BUYER = web_access(Role.BUYER)
BUYER_OR_ADMIN = web_access(Role.BUYER, Role.ADMIN)

# JSON pointer of the API body (and of the services' errors) -> the form field it is about.
REQUEST_FIELDS = {
    "/item": "article",
    "/quantity": "quantite",
    "/deadline": "echeance",
    "/delivery/commune_insee": "commune",
    "/delivery/address": "adresse",
    "/delivery": "commune",
    "/budget_eur_ht": "budget",
    "/min_quotes": "min_devis",
    "/quote_window_hours": "consultation_heures",
    "/max_distance_km": "distance_max",
    "/procurement/buyer_siret": "siret",
    "/procurement/chorus_requirement": "chorus",
    "/procurement/service_code": "code_service",
    "/procurement/engagement_number": "engagement",
    "/procurement/nature": "nature",
    "/procurement/cpv": "cpv",
    "/procurement/estimated_value_eur_ht": "estimation",
    "/procurement/publicity_reference": "reference_publicite",
    "/procurement": "siret",
    "code:procedure-unknown-date": "estimation",
    "code:estimate-required": "estimation",
}
AWARD_FIELDS = {"/quote_ids": "devis", "/justification": "justification", "code:min-quotes-not-met": "justification",
                "code:justification-required": "justification",
                "code:rotation-justification-required": "justification",
                "code:quote-not-valid": "devis", "code:capacity-exhausted": "devis"}
INVITE_FIELDS = {"/workshop_id": "atelier", "code:not-eligible": "atelier", "code:already-invited": "atelier",
                 "code:workshop-not-found": "atelier"}
REMATCH_FIELDS = {"/max_distance_km": "distance_max", "code:already-invited": "__all__",
                  "code:match-pending": "__all__", "code:deadline-past": "__all__"}
KNOWN_WORKSHOPS = 500  # read at most this many workshops to offer in the buyer's list (nearest first)
OFFERED_WORKSHOPS = 100
#: The list's sortable columns: the address's word -> the service's sort.
REQUEST_SORTS = {"creation": "created", "objet": "name", "quantite": "quantity", "echeance": "deadline",
                 "etat": "status"}
REQUEST_CSV = ("Objet", "Quantité", "Commune de livraison", "Date limite", "État", "Créée le", "Référence")
Article = Annotated[str | None, QueryParameter(name="article", max_length=60)]
Typed = Annotated[str, QueryParameter(max_length=40)]


class BuyerController(Controller):
    path = "/"
    include_in_schema = False

    @get("/catalogue", opt=web_access(Role.BUYER, Role.ADMIN, Role.COORDINATOR, Role.MAKER))
    async def catalogue(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext]) -> Response[Any]:
        items = await workshops.catalogue(ctx.session)
        return page(request, "catalogue.html.j2", title="Catalogue des modèles ouverts", items=items)

    @get("/demandes", opt=BUYER_OR_ADMIN)
    async def requests(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                       curseur: ListCursor = None, recherche: Search = None, etat: StatusParam = None,
                       dates: DatedParam = None, du: Since = None, au: Until = None, commune: CommuneParam = None,
                       commune_choix: CommuneChoice = None, tri: SortParam = None,
                       export: Export = None) -> Response[Any]:
        """Newest first unless sorted otherwise; searched and filtered in the query; ``?format=csv``
        exports every row the filters keep."""
        params = {"recherche": recherche, "etat": etat, "dates": dates, "du": du, "au": au, "commune": commune,
                 "commune_choix": commune_choix, "tri": tri}
        view = ListView("demandes", params, export=export == "csv", sorts=REQUEST_SORTS, statuses=REQUEST_STATUS,
                        geocoder=ctx.geocoder)
        rows: list[Any] = []
        more = None
        if view.query is None:
            ctx.status = 422
        elif view.csv:
            found = await request_service.search_requests(ctx.session, actor=ctx.principal, query=view.query,
                                                          geocoder=ctx.geocoder, after=None, limit=EXPORT_CAP + 1)
            return view.export("demandes", REQUEST_CSV, (_request_line(ctx, r.request) for r in found[:EXPORT_CAP]),
                               capped=len(found) > EXPORT_CAP)
        else:
            found = await request_service.search_requests(ctx.session, actor=ctx.principal, query=view.query,
                                                          geocoder=ctx.geocoder, after=view.after(ctx, curseur),
                                                          limit=PAGE + 1)
            rows, more = view.page(ctx, found)
        return page(request, "requests.html.j2", status=ctx.status, title="Mes demandes",
                    requests=[r.request for r in rows], more=more, view=view, form=view.form,
                    statuses=REQUEST_STATUS, dates=DATES, payables=await payables(ctx))

    @get("/demandes/nouvelle", opt=BUYER)
    async def new_request(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                          article: Article = None) -> Response[Any]:
        org = await organisations.get_organisation(ctx.session, actor=ctx.principal, org_id=ctx.principal.org_id)
        in_a_month = (datetime.now(PARIS) + timedelta(days=30)).date()
        form = Form({"article": article or "", "commune": org.commune_insee, "siret": org.siret,
                     "min_devis": "3", "consultation_heures": "72", "echeance": in_a_month.isoformat(),
                     "chorus": "none", "nature": "fournitures", "cpv": default_cpv(article)})
        return await _request_form(request, ctx, form)

    @post("/demandes/nouvelle", opt=BUYER, status_code=303)
    async def create_request(self, request: Request[Any, Any, Any],
                             ctx: NamedDependency[RequestContext]) -> Response[Any]:
        form = Form(await request.form())
        items = {i.slug: i for i in await workshops.catalogue(ctx.session)}
        slug = form.choice("article", list(items))
        quantity = form.integer("quantite", low=1, high=10_000_000)
        deadline = form.day("echeance")
        if deadline is not None and deadline_at(deadline) <= ctx.now:
            form.error("echeance", "La date limite doit être dans le futur.")
        insee = form.commune("commune", ctx.geocoder)
        address = form.text("adresse", required=False, max_length=300) or ""
        budget = form.decimal("budget", low=Decimal(0), high=Decimal(999_999_999), required=False, strict_low=True)
        min_quotes = form.integer("min_devis", low=1, high=20)
        window = form.integer("consultation_heures", low=1, high=24 * 60)
        max_km = form.decimal("distance_max", low=Decimal(0), high=Decimal(2000), places=1, required=False,
                              strict_low=True)
        siret = form.siret("siret")
        chorus = form.choice("chorus", CHORUS)
        service_code = form.text("code_service", required=False, max_length=100)
        engagement = form.text("engagement", required=False, max_length=50)
        nature = form.choice("nature", NATURE)
        cpv = form.text("cpv", required=False, max_length=12)
        estimate = form.decimal("estimation", low=Decimal(0), high=Decimal(999_999_999), required=False,
                                strict_low=True)
        publicity = form.text("reference_publicite", required=False, max_length=200)
        body = None
        if form.ok:
            assert deadline is not None
            body = form.convert({
                "item": slug, "quantity": quantity, "deadline": deadline_at(deadline),
                "delivery": {"commune_insee": insee, "address": address},
                **({"budget_eur_ht": str(budget)} if budget is not None else {}),
                "min_quotes": min_quotes, "quote_window_hours": window, "allow_split": form.checked("fractionnable"),
                **({"max_distance_km": float(max_km)} if max_km is not None else {}),
                "procurement": {"buyer_siret": siret, "chorus_requirement": chorus, "nature": nature,
                                **({"service_code": service_code} if service_code else {}),
                                **({"engagement_number": engagement} if engagement else {}),
                                **({"cpv": cpv} if cpv else {}),
                                **({"estimated_value_eur_ht": str(estimate)} if estimate is not None else {}),
                                **({"publicity_reference": publicity} if publicity else {})},
            }, RequestIn, REQUEST_FIELDS)
        created = None
        if body is not None:
            assert body.delivery is not None
            new = request_service.NewRequest(
                item=body.item, custom_name=None, custom_steps=(), custom_certifications=(),
                quantity=body.quantity, deadline=body.deadline, delivery_insee=body.delivery.commune_insee,
                delivery_address=body.delivery.address,
                budget_cents=int(Decimal(body.budget_eur_ht) * 100) if body.budget_eur_ht else None,
                min_quotes=body.min_quotes, quote_window_hours=body.quote_window_hours,
                allow_split=body.allow_split, max_distance_km=body.max_distance_km,
                procurement=_procurement(body),
                estimated_cents=(int(Decimal(body.procurement.estimated_value_eur_ht) * 100)
                                 if body.procurement.estimated_value_eur_ht is not None else None),
            )
            settings = ctx.runtime.settings.matching
            created = await attempt(ctx, form, REQUEST_FIELDS, request_service.create_request(
                ctx.session, actor=ctx.principal, new=new, geocoder=ctx.geocoder, settings=settings, now=ctx.now,
                cache=ctx.runtime.candidates, match_now=settings.inline))
        if created is None:
            ctx.status = 422
            return await _request_form(request, ctx, form, status=422, items=items)
        new_request, invited = created
        ctx.resource = ("request", new_request.id)
        if invited is None:  # matching runs in the worker, right after the commit
            message = "Demande publiée : la recherche des ateliers capables de la fabriquer est en cours."
        elif invited:
            message = f"Demande publiée : {invited} atelier(s) invité(s) à chiffrer."
        else:
            message = "Demande publiée, mais aucun atelier ne répond aux critères : voyez pourquoi ci-dessous."
        return redirect(request, f"/app/demandes/{new_request.id}", flash=message)

    @get("/demandes/procedure", opt=BUYER)
    async def procedure(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                        nature: Typed = "fournitures", estimation: Typed = "", budget: Typed = "", cpv: Typed = "",
                        article: Typed = "") -> Response[Any]:
        """The procedure panel alone, for what the buyer typed so far (fetched by app.js as they type)."""
        procedure = await procedure_context(ctx, nature=nature, estimate=estimation, budget=budget, cpv=cpv,
                                            item=article)
        return page(request, "_procedure.html.j2", title="Procédure applicable", p=procedure,
                    three_quotes=THREE_QUOTES)

    @get("/demandes/{request_id:str}", opt=BUYER_OR_ADMIN)
    async def request_detail(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                             request_id: Id) -> Response[Any]:
        return page(request, "request.html.j2", **await _detail(ctx, request_id, Form()))

    @post("/demandes/{request_id:str}/attribution", opt=BUYER, status_code=303)
    async def award(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                    request_id: Id) -> Response[Any]:
        form = Form(await request.form())
        buyer_request = await request_service.get_request(ctx.session, actor=ctx.principal, request_id=request_id)
        chosen = form.many("devis")
        if not chosen:
            form.error("devis", "Cochez le devis à retenir." if not buyer_request.allow_split
                       else "Cochez au moins un devis à retenir.")
        justification = form.text("justification", required=False, max_length=4000)
        body = form.convert({"quote_ids": chosen, "justification": justification}, AwardIn, AWARD_FIELDS) \
            if form.ok else None
        orders = None
        if body is not None:
            orders = await attempt(ctx, form, AWARD_FIELDS, quote_service.award(
                ctx.session, actor=ctx.principal, request_id=request_id, quote_ids=body.quote_ids,
                justification=body.justification, now=ctx.now,
                decp_threshold_cents=ctx.runtime.settings.decp_threshold_eur_ht * 100))
        if orders is None:
            ctx.status = 422
            return page(request, "request.html.j2", status=422, **await _detail(ctx, request_id, form))
        ctx.resource = ("request", request_id)
        count = len(orders)
        return redirect(request, f"/app/demandes/{request_id}#commandes",
                        flash=f"Attribution enregistrée : {count} commande{'s' if count > 1 else ''} créée"
                              f"{'s' if count > 1 else ''}.")

    @get("/demandes/{request_id:str}/note-de-choix.pdf", opt=BUYER_OR_ADMIN)
    async def award_record(self, ctx: NamedDependency[RequestContext], request_id: Id) -> Response[Any]:
        """The award record (« rapport de présentation / note de choix ») as PDF."""
        record = await award_record_service.award_record(ctx.session, actor=ctx.principal, request_id=request_id,
                                                         geocoder=ctx.geocoder, now=ctx.now)
        pdf = await award_record_service.award_record_pdf(record)
        return Response(pdf, media_type="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="note-de-choix-{record.reference}.pdf"',
            "Cache-Control": "no-store"})

    @post("/demandes/{request_id:str}/ateliers", opt=BUYER, status_code=303)
    async def invite(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                     request_id: Id) -> Response[Any]:
        """The buyer invites a workshop it knows (a purchase without publicity, issue 17)."""
        form = Form(await request.form())
        await request_service.get_request(ctx.session, actor=ctx.principal, request_id=request_id)
        chosen = form.text("atelier", max_length=64)
        added = None
        if chosen is not None:
            added = await attempt(ctx, form, INVITE_FIELDS, consultation_service.invite_workshop(
                ctx.session, actor=ctx.principal, request_id=request_id, workshop_id=chosen, now=ctx.now,
                settings=ctx.runtime.settings.matching))
        if added is None:
            ctx.status = 422
            return page(request, "request.html.j2", status=422,
                        **await _detail(ctx, request_id, Form(), invite_form=form))
        invitation, _request, workshop = added
        ctx.resource = ("invitation", invitation.id)
        return redirect(request, f"/app/demandes/{request_id}#ateliers",
                        flash=f"{workshop.name} est invité à chiffrer ; l'atelier en est informé.")

    @post("/demandes/{request_id:str}/relance", opt=BUYER, status_code=303)
    async def rematch(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                      request_id: Id) -> Response[Any]:
        """Matching invited nobody: the buyer allows splitting or widens the distance, and the
        request is matched again (issue 21 item 3)."""
        form = Form(await request.form())
        max_km = form.decimal("distance_max", low=Decimal(0), high=Decimal(2000), places=1, required=False,
                              strict_low=True)
        done = None
        if form.ok:
            settings = ctx.runtime.settings.matching
            done = await attempt(ctx, form, REMATCH_FIELDS, request_service.rematch_request(
                ctx.session, actor=ctx.principal, request_id=request_id, allow_split=form.checked("fractionnable"),
                max_distance_km=float(max_km) if max_km is not None else None, settings=settings, now=ctx.now,
                cache=ctx.runtime.candidates, match_now=settings.inline))
        if done is None:
            ctx.status = 422
            return page(request, "request.html.j2", status=422,
                        **await _detail(ctx, request_id, Form(), rematch_form=form))
        _again, invited = done
        ctx.resource = ("request", request_id)
        if invited is None:
            message = "Demande relancée : la recherche des ateliers capables de la fabriquer est en cours."
        elif invited:
            message = f"Demande relancée : {invited} atelier(s) invité(s) à chiffrer."
        else:
            message = ("Demande relancée, mais toujours aucun atelier ne répond aux critères : "
                       "voyez pourquoi ci-dessous.")
        return redirect(request, f"/app/demandes/{request_id}#ateliers", flash=message)

    @post("/demandes/{request_id:str}/annulation", opt=BUYER, status_code=303)
    async def cancel(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                     request_id: Id) -> Response[Any]:
        form = Form(await request.form())
        done = await attempt(ctx, form, {}, request_service.cancel_request(
            ctx.session, actor=ctx.principal, request_id=request_id, now=ctx.now))
        if done is None:
            return page(request, "request.html.j2", status=422, **await _detail(ctx, request_id, form))
        ctx.resource = ("request", request_id)
        return redirect(request, f"/app/demandes/{request_id}",
                        flash="La demande est annulée ; les ateliers le voient.")


def _request_line(ctx: RequestContext, r: BuyerRequest) -> list[str]:
    """A request as a line of the CSV export (the list's columns, and its reference)."""
    commune = ctx.geocoder.commune(r.delivery_insee)
    return [r.name, str(r.quantity), f"{commune.name} ({commune.department})" if commune else r.delivery_insee,
            csv_day(r.deadline), REQUEST_STATUS.get(r.status, r.status), csv_day(r.created_at), r.id]


def _procurement(body: RequestIn) -> Procurement:
    return Procurement(buyer_siret=body.procurement.buyer_siret, service_code=body.procurement.service_code,
                       engagement_number=body.procurement.engagement_number,
                       chorus_requirement=body.procurement.chorus_requirement, nature=body.procurement.nature,
                       cpv=body.procurement.cpv, publicity_reference=body.procurement.publicity_reference)


async def _request_form(request: Request[Any, Any, Any], ctx: RequestContext, form: Form, *, status: int = 200,
                        items: dict[str, Any] | None = None) -> Response[Any]:
    if items is None:
        items = {i.slug: i for i in await workshops.catalogue(ctx.session)}
    procedure = await procedure_context(ctx, nature=form.raw("nature"), estimate=form.raw("estimation"),
                                        budget=form.raw("budget"), cpv=form.raw("cpv"), item=form.raw("article"))
    decided = procedure["decision"].procedure if procedure["decision"] else ""
    return page(request, "request_new.html.j2", status=status, title="Nouvelle demande de fabrication", form=form,
                items=items, selected=items.get(form.raw("article")), chorus=CHORUS, natures=NATURE,
                p=procedure, three_quotes=THREE_QUOTES,
                default_cpvs=",".join(f"{slug}={default_cpv(slug)}" for slug in items if default_cpv(slug)),
                show_publicity=(decided == "mapa_publicite" or bool(form.raw("reference_publicite"))
                                or "reference_publicite" in form.errors))


async def _detail(ctx: RequestContext, request_id: str, form: Form, *,
                  invite_form: Form | None = None, rematch_form: Form | None = None) -> dict[str, Any]:
    """Everything the request page shows: the request, who was invited and why, who was not and why,
    the quotes side by side, the orders."""
    buyer_request, result = await request_service.matches(ctx.session, actor=ctx.principal, request_id=request_id)
    _, compared = await quote_service.quotes_for_buyer(ctx.session, actor=ctx.principal, request_id=request_id)
    orders = await order_service.list_orders(ctx.session, actor=ctx.principal, after=None, limit=100,
                                             request_id=request_id)
    included = list(result.get("included", []))
    excluded = list(result.get("excluded", []))
    invitations = ctx.runtime.settings.matching.invitations
    names = await read_models.workshops_by_id(
        ctx.session, [i["workshop_id"] for i in included] + [e["workshop_id"] for e in excluded]
        + [o.workshop_id for o in orders])
    compared = [(row[0], row[1], row[2]) for row in compared]
    received = sum(1 for q, _w, _d in compared if q.status in ("submitted", "accepted"))
    flags = {q.id: quote_flags(status=q.status, valid_until=q.valid_until, delivery_date=q.delivery_date,
                               quantity=q.quantity, request_quantity=buyer_request.quantity,
                               request_deadline=buyer_request.deadline, allow_split=buyer_request.allow_split,
                               now=ctx.now)
             for q, _w, _d in compared}
    valid = {q.id for q, _w, _d in compared if is_valid(q.status, flags[q.id])}
    open_quotes = [q for q, _w, _d in compared if q.id in valid] or [q for q, _w, _d in compared
                                                                      if q.status == "submitted"]
    cheapest = min(open_quotes, default=None,
                   key=lambda q: (q.unit_price_cents * q.quantity * (10_000 + q.vat_rate_bp), q.id))
    totals = {}
    for q, _w, _d in compared:
        ht, vat, ttc = totals_cents(q.unit_price_cents, q.quantity, q.vat_rate_bp)
        totals[q.id] = {"ht": euros(ht), "vat": euros(vat), "ttc": euros(ttc), "rate": percent(q.vat_rate_bp)}
    names_of = {q.id: w.name for q, w, _d in compared}
    chosen = [{"name": names_of[i], "ttc": totals[i]["ttc"], "flags": flags[i]} for i in form.many("devis")
              if i in names_of]
    lowest = ({"name": names_of[cheapest.id], "ttc": totals[cheapest.id]["ttc"]}
              if cheapest is not None and cheapest.id in valid else None)
    open_window = not buyer_request.window_closed and buyer_request.quote_deadline > datetime.now(UTC)
    answers = await read_models.invited_workshops(ctx.session, actor=ctx.principal, request_id=request_id)
    return {
        "title": buyer_request.name,
        "r": buyer_request,
        "item": await _item_or_none(ctx, buyer_request),
        "answers": answers,
        "nobody": _nobody_invited(buyer_request, result, answers, rematch_form),
        "rematch_refused": rematch_form if rematch_form is not None and rematch_form.errors else None,
        "eligible_not_invited": included[invitations:],
        "excluded": excluded,
        "exclusion_counts": {k: v for k, v in result.get("exclusion_counts", {}).items() if v},
        "more_excluded": sum(result.get("exclusion_counts", {}).values()) > len(excluded),
        "considered": result.get("considered", 0),
        "working_days": result.get("working_days", 0),
        "workshops": names,
        "compared": compared,
        "totals": totals,
        "cheapest_id": cheapest.id if cheapest else None,
        "flags": flags,
        "valid": valid,
        "rule": rule_explanation(form.refusal, chosen=chosen, cheapest=lowest),
        "cpv_text": cpv_text(buyer_request.procurement.cpv),
        "received": received,
        "needs_justification": received < buyer_request.min_quotes and open_window,
        "orders": orders,
        "awardable": buyer_request.status == RequestStatus.QUOTING,
        "awarded": bool(orders) or buyer_request.status in (RequestStatus.AWARDED, RequestStatus.CLOSED),
        "invite_form": invite_form or Form(),
        "known_workshops": (await _known_workshops(ctx, buyer_request, included)
                            if _may_invite(ctx, buyer_request, open_window) else None),
        "cancellable": buyer_request.status in (RequestStatus.OPEN, RequestStatus.QUOTING),
        "form": form,
        "refresh_seconds": 2 if buyer_request.match_state == "pending" else None,
    }


def _nobody_invited(buyer_request: BuyerRequest, result: dict[str, Any], answers: list[Any],
                    rematch_form: Form | None) -> dict[str, Any] | None:
    """Why a matching invited nobody, and what the buyer may change to try again (issue 21 item 3):
    the exclusions counted by reason, most frequent first; splitting when workshops lacked the
    capacity for the whole quantity; a wider distance when workshops were too far."""
    if (buyer_request.match_state != "done" or buyer_request.status != RequestStatus.OPEN or answers
            or buyer_request.deadline <= datetime.now(UTC)):
        return None
    counts = {k: v for k, v in result.get("exclusion_counts", {}).items() if v}
    values = {"fractionnable": "on" if buyer_request.allow_split else "",
              "distance_max": number(buyer_request.max_distance_km, 1).replace("\u202f", "")
              if buyer_request.max_distance_km else ""}
    return {
        "counts": sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])),
        "split": not buyer_request.allow_split and counts.get("insufficient_capacity", 0) > 0,
        # The request's own limit is what the buyer can widen (a workshop's delivery radius is its own).
        "distance": counts.get("out_of_radius", 0) > 0 and buyer_request.max_distance_km is not None,
        "form": rematch_form or Form(values),
    }


def _may_invite(ctx: RequestContext, buyer_request: BuyerRequest, open_window: bool) -> bool:
    """Without publicity the buyer may add a workshop it knows, while the request takes quotes."""
    return (ctx.principal.role == Role.BUYER and buyer_request.procurement.procedure == "sans_publicite"
            and buyer_request.status in (RequestStatus.OPEN, RequestStatus.QUOTING) and open_window
            and buyer_request.match_state == "done")


async def _known_workshops(ctx: RequestContext, buyer_request: BuyerRequest,
                           included: list[dict[str, Any]]) -> dict[str, str]:
    """Verified workshops not invited yet, nearest first: ``{id: "name — commune (km)"}``."""
    invited = {i["workshop_id"] for i in included if i.get("invited")}
    rows = await workshops.list_workshops(ctx.session, actor=ctx.principal, after=None, limit=KNOWN_WORKSHOPS)
    found = []
    for w in rows:
        if w.id in invited or w.paused or not (w.verified_labels or w.verified_certifications):
            continue
        km = haversine_km(w.lat, w.lon, buyer_request.delivery_lat, buyer_request.delivery_lon)
        commune = ctx.geocoder.commune(w.commune_insee)
        where = commune.name if commune else w.commune_insee
        found.append((km, w.name, w.id, where))
    found.sort()
    return {wid: f"{name} — {where} ({number(km)}\u202fkm)" for km, name, wid, where in found[:OFFERED_WORKSHOPS]}


async def _item_or_none(ctx: RequestContext, buyer_request: BuyerRequest) -> Any:
    if buyer_request.item_slug is None:
        return None
    items = {i.slug: i for i in await workshops.catalogue(ctx.session)}
    return items.get(buyer_request.item_slug)
