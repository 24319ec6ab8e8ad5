"""The maker's pages: the workshop profile, machines (added, edited, removed; process and materials
picked from lists) and capacities (declared, changed, withdrawn); invitations with the reason the
workshop was chosen and where each stands (broker.domain.invitation_state); the quote form, which
says before sending when the buyer's award rules will flag the quote (late, partial); declining;
withdrawing a quote; « Mes devis », newest first, and its CSV export."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter

from broker.api.context import RequestContext
from broker.api.schemas import DeclineIn, QuoteIn, WorkshopIn
from broker.domain.access import Role
from broker.domain.award_rules import PARTIAL, flags_of
from broker.domain.catalogue import Process
from broker.domain.fabrication import Machine, Quote
from broker.domain.fabrication import Request as BuyerRequest
from broker.errors import NotFound
from broker.services import consultations as consultation_service
from broker.services import maker_quotes, read_models, workshops
from broker.services import quotes as quote_service
from broker.services.consultations import Consultation
from broker.web.forms import Form, deadline_at
from broker.web.labels import PARIS, PROCESS, QUOTE_FLAG, number, paris
from broker.web.pages import maker_forms
from broker.web.pages.common import PAGE, Cursor, Id, attempt, cursor_after, next_cursor
from broker.web.pages.maker_forms import MACHINE_FIELDS
from broker.web.render import page, redirect
from broker.web.security import safe_next, web_access

MAKER = web_access(Role.MAKER)
PROFILE_FIELDS = {"/commune_insee": "commune", "/delivery_radius_km": "rayon", "/trades": "metiers",
                  "/labels": "labels", "/certifications": "certifications", "code:not-a-workshop": "__all__"}
QUOTE_FIELDS = {"/unit_price_eur_ht": "prix", "/vat_rate": "tva", "/quantity": "quantite",
                "/delivery_date": "livraison", "/valid_until": "validite", "/note": "note"}
VAT_RATES = {"20": "20 % (taux normal)", "10": "10 %", "5.5": "5,5 % (équipements de protection, taux réduit)",
             "2.1": "2,1 %", "0": "0 % (exonéré)"}
Slug = Annotated[str, PathParameter(max_length=60)]
CapacityQuery = Annotated[str | None, QueryParameter(name="capacite", max_length=60)]
Export = Annotated[Literal["csv"] | None, QueryParameter(name="format")]
EXPORT_LIMIT = 5000  # quotes in one CSV export (years of a busy workshop's answers)
CONFIRM_FIRST = "Ce devis appelle votre attention (ci-dessous) : envoyez-le à nouveau pour confirmer."
CONSULTATION_QUOTE_FIELDS = {**QUOTE_FIELDS, "code:not-eligible": "__all__", "code:match-pending": "__all__"}
CONSULTATIONS_SCANNED = 2000  # open consultations read to find one by its request (a page of 200 at a time)


class MakerController(Controller):
    path = "/"
    include_in_schema = False

    # ---- workshop ---------------------------------------------------------------------------------

    @get("/atelier", opt=MAKER)
    async def workshop(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                       capacite: CapacityQuery = None) -> Response[Any]:
        """The profile, the machines and the capacities; ``?capacite=<slug>`` fills the capacity form
        with that item's declared capacity, to change it."""
        return await _workshop_page(request, ctx, capacity_slug=capacite)

    @post("/atelier", opt=MAKER, status_code=303)
    async def save_workshop(self, request: Request[Any, Any, Any],
                            ctx: NamedDependency[RequestContext]) -> Response[Any]:
        form = Form(await request.form())
        insee = form.commune("commune", ctx.geocoder)
        radius = form.decimal("rayon", low=Decimal(0), high=Decimal(1000), places=1, strict_low=True)
        body = None
        trades, labels, certifications = form.tags("metiers"), form.tags("labels"), form.tags("certifications")
        if form.ok:
            body = form.convert({"commune_insee": insee, "delivery_radius_km": float(radius or 0), "trades": trades,
                                 "labels": labels, "certifications": certifications,
                                 "paused": form.checked("en_pause")}, WorkshopIn, PROFILE_FIELDS)
        saved = None
        if body is not None:
            saved = await attempt(ctx, form, PROFILE_FIELDS, workshops.save_my_workshop(
                ctx.session, actor=ctx.principal, commune_insee=body.commune_insee,
                delivery_radius_km=body.delivery_radius_km, trades=body.trades, labels=body.labels,
                certifications=body.certifications, paused=body.paused, geocoder=ctx.geocoder, now=ctx.now))
        if saved is None:
            ctx.status = 422
            return await _workshop_page(request, ctx, profile_form=form, status=422)
        ctx.resource = ("workshop", saved.id)
        return redirect(request, "/app/atelier", flash="Profil de l'atelier enregistré.")

    @post("/atelier/machines", opt=MAKER, status_code=303)
    async def add_machine(self, request: Request[Any, Any, Any],
                          ctx: NamedDependency[RequestContext]) -> Response[Any]:
        form = Form(await request.form())
        body = maker_forms.read_machine(form, maker_forms.material_options(await workshops.catalogue(ctx.session)))
        machine = None
        if body is not None:
            machine = await attempt(ctx, form, MACHINE_FIELDS, workshops.add_machine(
                ctx.session, actor=ctx.principal, process=body.process, envelope_mm=maker_forms.envelope(body),
                materials=maker_forms.limits(body), hours_per_week=body.hours_per_week, now=ctx.now))
        if machine is None:
            ctx.status = 422
            return await _workshop_page(request, ctx, machine_form=form, status=422)
        ctx.resource = ("machine", machine.id)
        return redirect(request, "/app/atelier#machines",
                        flash=f"Machine ajoutée : {PROCESS.get(machine.process, machine.process)}.")

    @get("/atelier/machines/{machine_id:str}", opt=MAKER)
    async def machine(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                      machine_id: Id) -> Response[Any]:
        """One machine's form, filled with what it is, to change it (or remove it)."""
        current = await workshops.my_machine(ctx.session, actor=ctx.principal, machine_id=machine_id)
        return await _machine_page(request, ctx, current, Form(maker_forms.machine_values(current)))

    @post("/atelier/machines/{machine_id:str}", opt=MAKER, status_code=303)
    async def save_machine(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                           machine_id: Id) -> Response[Any]:
        current = await workshops.my_machine(ctx.session, actor=ctx.principal, machine_id=machine_id)
        form = Form(await request.form())
        options = maker_forms.material_options(await workshops.catalogue(ctx.session), [current])
        body = maker_forms.read_machine(form, options)
        machine = None
        if body is not None:
            machine = await attempt(ctx, form, MACHINE_FIELDS, workshops.update_machine(
                ctx.session, actor=ctx.principal, machine_id=machine_id, process=body.process,
                envelope_mm=maker_forms.envelope(body), materials=maker_forms.limits(body),
                hours_per_week=body.hours_per_week, now=ctx.now))
        if machine is None:
            ctx.status = 422
            return await _machine_page(request, ctx, current, form, status=422)
        ctx.resource = ("machine", machine.id)
        return redirect(request, "/app/atelier#machines",
                        flash=f"Machine modifiée : {PROCESS.get(machine.process, machine.process)}.")

    @post("/atelier/machines/{machine_id:str}/retrait", opt=MAKER, status_code=303)
    async def remove_machine(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                             machine_id: Id) -> Response[Any]:
        removed = await workshops.remove_machine(ctx.session, actor=ctx.principal, machine_id=machine_id,
                                                 now=ctx.now)
        ctx.resource = ("machine", removed.id)
        return redirect(request, "/app/atelier#machines",
                        flash=f"Machine retirée : {PROCESS.get(removed.process, removed.process)}.")

    @post("/atelier/capacites", opt=MAKER, status_code=303)
    async def capacity(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext]) -> Response[Any]:
        """Declare a capacity, or change one (the same item again)."""
        form = Form(await request.form())
        items = {i.slug: i for i in await workshops.catalogue(ctx.session)}
        slug = form.choice("article", list(items))
        units = form.decimal("unites_par_jour", low=Decimal(0), high=Decimal(1_000_000), places=1)
        done = None
        if form.ok and slug is not None and units is not None:
            done = await attempt(ctx, form, {"code:workshop-profile-missing": "__all__"}, workshops.declare_capacity(
                ctx.session, actor=ctx.principal, slug=slug, units_per_day=float(units), now=ctx.now))
        if done is None or slug is None:  # `done` is None whenever `slug` is
            ctx.status = 422
            return await _workshop_page(request, ctx, capacity_form=form, status=422)
        ctx.resource = ("workshop", done[0].id)
        return redirect(request, "/app/atelier#capacites",
                        flash=f"Capacité déclarée : {form.raw('unites_par_jour')} par jour "
                              f"pour « {items[slug].name} ».")

    @post("/atelier/capacites/{slug:str}/retrait", opt=MAKER, status_code=303)
    async def remove_capacity(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                              slug: Slug) -> Response[Any]:
        """Withdraw a declared capacity (matching estimates it from the machine hours again); one
        already withdrawn (a second click) is said on the page, not as a 404."""
        name = {i.slug: i.name for i in await workshops.catalogue(ctx.session)}.get(slug, slug)
        try:
            done = await workshops.remove_capacity(ctx.session, actor=ctx.principal, slug=slug, now=ctx.now)
        except NotFound as exc:
            if exc.code != NotFound.code:
                raise
            ctx.status = 404
            return redirect(request, "/app/atelier#capacites", error=True,
                            flash=f"Aucune capacité n'est déclarée pour « {name} » : rien à retirer.")
        ctx.resource = ("workshop", done.id)
        return redirect(request, "/app/atelier#capacites",
                        flash=f"Capacité retirée pour « {name} » : elle sera estimée d'après les heures machines.")

    # ---- invitations and quotes -------------------------------------------------------------------

    @get("/invitations", opt=MAKER)
    async def invitations(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                          curseur: Cursor = None) -> Response[Any]:
        try:
            rows = await read_models.my_invitations_with_state(ctx.session, actor=ctx.principal, limit=51,
                                                               after=cursor_after(ctx, curseur, "web-invitations"))
        except NotFound:
            return page(request, "no_workshop.html.j2", title="Invitations")
        rows, more = next_cursor(ctx, rows, "web-invitations",
                                 lambda r: (r.invitation.created_at, r.invitation.id))
        return page(request, "invitations.html.j2", title="Invitations à chiffrer", rows=rows, more=more)

    @get("/invitations/{invitation_id:str}", opt=MAKER)
    async def invitation(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                         invitation_id: Id) -> Response[Any]:
        return await _invitation_page(request, ctx, invitation_id)

    @post("/invitations/{invitation_id:str}/devis", opt=MAKER, status_code=303)
    async def quote(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                    invitation_id: Id) -> Response[Any]:
        form = Form(await request.form())
        _invitation, buyer_request, _quotes = await read_models.my_invitation(
            ctx.session, actor=ctx.principal, invitation_id=invitation_id)
        quote = await _submit_quote(ctx, form, buyer_request, QUOTE_FIELDS)
        if quote is None:
            ctx.status = 422
            return await _invitation_page(request, ctx, invitation_id, quote_form=form, status=422)
        ctx.resource = ("quote", quote.id)
        return redirect(request, f"/app/invitations/{invitation_id}", flash=_sent(ctx, buyer_request, quote))

    # ---- open consultations (adapted procedure, issue 17) ---------------------------------------

    @get("/consultations", opt=MAKER)
    async def consultations(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                            curseur: Cursor = None) -> Response[Any]:
        try:
            rows = await consultation_service.my_consultations(
                ctx.session, actor=ctx.principal, after=cursor_after(ctx, curseur, "web-consultations"), limit=51,
                now=ctx.now, settings=ctx.runtime.settings.matching)
        except NotFound:
            return page(request, "no_workshop.html.j2", title="Consultations ouvertes")
        rows, more = next_cursor(ctx, rows, "web-consultations", lambda c: (c.request.created_at, c.request.id))
        return page(request, "consultations.html.j2", title="Consultations ouvertes", rows=rows, more=more)

    @get("/consultations/{request_id:str}", opt=MAKER)
    async def consultation(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                           request_id: Id) -> Response[Any]:
        return await _consultation_page(request, ctx, request_id)

    @post("/consultations/{request_id:str}/devis", opt=MAKER, status_code=303)
    async def consultation_quote(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                                 request_id: Id) -> Response[Any]:
        form = Form(await request.form())
        found = await _find_consultation(ctx, request_id)
        if found.invitation is not None:
            return redirect(request, f"/app/invitations/{found.invitation.id}")
        quote = await _submit_quote(ctx, form, found.request, CONSULTATION_QUOTE_FIELDS)
        if quote is None:
            ctx.status = 422
            return await _consultation_page(request, ctx, request_id, quote_form=form, status=422)
        ctx.resource = ("quote", quote.id)
        sent = _sent(ctx, found.request, quote)
        try:
            answered = await _find_consultation(ctx, request_id)
        except NotFound:  # the window closed meanwhile: the quote is there all the same
            return redirect(request, "/app/invitations", flash=sent)
        where = f"/app/invitations/{answered.invitation.id}" if answered.invitation else "/app/invitations"
        return redirect(request, where, flash=sent)

    @post("/invitations/{invitation_id:str}/refus", opt=MAKER, status_code=303)
    async def decline(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                      invitation_id: Id) -> Response[Any]:
        form = Form(await request.form())
        reason = form.text("motif", max_length=1000)
        body = form.convert({"reason": reason}, DeclineIn, {"/reason": "motif"}) if form.ok else None
        done = None
        if body is not None:
            done = await attempt(ctx, form, {"/reason": "motif"}, quote_service.decline_invitation(
                ctx.session, actor=ctx.principal, invitation_id=invitation_id, reason=body.reason, now=ctx.now))
        if done is None:
            ctx.status = 422
            return await _invitation_page(request, ctx, invitation_id, decline_form=form, status=422)
        ctx.resource = ("invitation", invitation_id)
        return redirect(request, "/app/invitations", flash="Invitation déclinée ; l'acheteur en est informé.")

    @post("/devis/{quote_id:str}/retrait", opt=MAKER, status_code=303)
    async def withdraw(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                       quote_id: Id) -> Response[Any]:
        form = Form(await request.form())
        back = safe_next(form.raw("retour")) or "/app/invitations"
        done = await attempt(ctx, form, {}, quote_service.withdraw_quote(
            ctx.session, actor=ctx.principal, quote_id=quote_id, now=ctx.now))
        if done is None:
            return redirect(request, back, flash=form.errors.get("__all__"), error=True)
        ctx.resource = ("quote", quote_id)
        return redirect(request, back, flash="Devis retiré.")

    @get("/devis", opt=MAKER)
    async def quotes(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                     curseur: Cursor = None, export: Export = None) -> Response[Any]:
        """« Mes devis »: the workshop's quotes, newest first, with the flags the buyer sees;
        ``?format=csv`` exports them all (at most `EXPORT_LIMIT`)."""
        csv = export == "csv"
        try:
            rows = await maker_quotes.my_quotes(
                ctx.session, actor=ctx.principal, now=ctx.now, limit=EXPORT_LIMIT if csv else PAGE + 1,
                before=None if csv else cursor_after(ctx, curseur, "web-quotes"))
        except NotFound:
            return page(request, "no_workshop.html.j2", title="Mes devis")
        if csv:
            return Response(content=maker_forms.quotes_csv(rows), media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": 'attachment; filename="mes-devis.csv"'})
        rows, more = next_cursor(ctx, rows, "web-quotes", lambda r: (r.quote.created_at, r.quote.id))
        return page(request, "quotes.html.j2", title="Mes devis", rows=rows, more=more)


async def _workshop_page(request: Request[Any, Any, Any], ctx: RequestContext, *, status: int = 200,
                         profile_form: Form | None = None, machine_form: Form | None = None,
                         capacity_form: Form | None = None, capacity_slug: str | None = None) -> Response[Any]:
    try:
        workshop = await workshops.my_workshop(ctx.session, actor=ctx.principal)
    except NotFound:
        workshop = None
    machines = (await workshops.machines_of(ctx.session, [workshop.id]))[workshop.id] if workshop else []
    capacities = await workshops.capacities_of(ctx.session, workshop.id) if workshop else {}
    if profile_form is None:
        profile_form = Form({
            "commune": workshop.commune_insee, "rayon": f"{workshop.delivery_radius_km:g}",
            "metiers": ", ".join(workshop.trades), "labels": ", ".join(workshop.labels),
            "certifications": ", ".join(workshop.certifications), "en_pause": "on" if workshop.paused else "",
        } if workshop else {"rayon": "50"})
    editing = capacity_form is None and capacity_slug in capacities
    if editing and capacity_slug is not None:
        capacity_form = Form({"article": capacity_slug, "unites_par_jour": f"{capacities[capacity_slug]:g}"})
    commune = ctx.geocoder.commune(workshop.commune_insee) if workshop else None
    items = await workshops.catalogue(ctx.session)
    return page(request, "workshop.html.j2", status=status, title="Mon atelier", workshop=workshop,
                commune=commune, machines=machines, capacities=capacities, items=items,
                item_names={i.slug: i.name for i in items}, profile_form=profile_form,
                machine_form=machine_form or Form({"heures": "35"}), capacity_form=capacity_form or Form(),
                capacity_editing=editing, processes=maker_forms.PROCESSES,
                materials=maker_forms.material_options(items))


async def _machine_page(request: Request[Any, Any, Any], ctx: RequestContext, machine: Machine, form: Form, *,
                        status: int = 200) -> Response[Any]:
    items = await workshops.catalogue(ctx.session)
    name = PROCESS.get(machine.process, machine.process)
    return page(request, "machine.html.j2", status=status, title=f"Machine : {name}", machine=machine,
                machine_form=form, processes=maker_forms.PROCESSES,
                materials=maker_forms.material_options(items, [machine]))


async def _submit_quote(ctx: RequestContext, form: Form, buyer_request: BuyerRequest,
                        fields: dict[str, str]) -> Quote | None:
    """Read the quote form and send the quote (None, with the errors on the form, when refused).
    A quote the buyer's award rules will flag (late, partial) is held back once, with the warnings
    shown: sending it again with the same figures confirms it."""
    price = form.decimal("prix", low=Decimal(0), high=Decimal("999999999.99"), strict_low=True)
    vat = form.choice("tva", VAT_RATES)
    quantity = form.integer("quantite", low=1, high=10_000_000)
    delivery = form.day("livraison")
    if delivery is not None and delivery < ctx.now.astimezone(PARIS).date():
        form.error("livraison", "La date de livraison est déjà passée.")
    valid = form.day("validite", required=False)
    note = form.text("note", required=False, max_length=2000) or ""
    warnings = maker_forms.quote_warnings(buyer_request, quantity=quantity, delivery=delivery, now=ctx.now)
    confirmed = form.raw("confirme")
    form.values["confirme"] = maker_forms.confirmation(warnings, form)
    # A partial quote on a request that may not be split is refused below, whatever the maker confirms.
    held = [w for w in warnings if w.flag != PARTIAL or buyer_request.allow_split]
    if form.ok and held and confirmed != form.values["confirme"]:
        form.error("__all__", CONFIRM_FIRST)
    body = None
    if form.ok:
        body = form.convert({"unit_price_eur_ht": str(price), "vat_rate": vat, "quantity": quantity,
                             "delivery_date": delivery, "note": note,
                             **({"valid_until": deadline_at(valid)} if valid else {})}, QuoteIn, fields)
    if body is None:
        return None
    return await attempt(ctx, form, fields, quote_service.submit_quote(
        ctx.session, actor=ctx.principal, request_id=buyer_request.id,
        unit_price_cents=int(Decimal(body.unit_price_eur_ht) * 100),
        vat_rate_bp=int(Decimal(body.vat_rate) * 100), quantity=body.quantity,
        delivery_date=body.delivery_date, valid_until=body.valid_until, note=body.note, now=ctx.now,
        settings=ctx.runtime.settings.matching))


def _sent(ctx: RequestContext, buyer_request: BuyerRequest, quote: Quote) -> str:
    """The flash of a quote sent: the flags the buyer's award sees on it (`flags_of`), and a partial
    quote said as such (valid on a request that may be split, so not flagged there)."""
    flags = flags_of(buyer_request, quote, now=ctx.now)
    text = "Devis envoyé à l'acheteur"
    text += f", qui le verra signalé : {' ; '.join(QUOTE_FLAG[f].lower() for f in flags)}." if flags else "."
    if quote.quantity < buyer_request.quantity:
        text += f" Devis partiel : {number(quote.quantity)} sur {number(buyer_request.quantity)} unités."
    return text


async def _find_consultation(ctx: RequestContext, request_id: str) -> Consultation:
    """One open consultation of the caller's workshop, by its request (404 when it is not one)."""
    after = None
    scanned = 0
    while scanned < CONSULTATIONS_SCANNED:
        rows = await consultation_service.my_consultations(ctx.session, actor=ctx.principal, after=after, limit=200,
                                                           now=ctx.now, settings=ctx.runtime.settings.matching)
        for row in rows:
            if row.request.id == request_id:
                return row
        if len(rows) < 200:
            break
        scanned += len(rows)
        after = (rows[-1].request.created_at, rows[-1].request.id)
    raise NotFound(f"request {request_id} not found")


async def _consultation_page(request: Request[Any, Any, Any], ctx: RequestContext, request_id: str, *,
                             status: int = 200, quote_form: Form | None = None) -> Response[Any]:
    found = await _find_consultation(ctx, request_id)
    if found.invitation is not None and quote_form is None:
        return redirect(request, f"/app/invitations/{found.invitation.id}")
    buyer_request = found.request
    items = {i.slug: i for i in await workshops.catalogue(ctx.session)}
    default_day = min(paris(buyer_request.deadline).date(),
                      (ctx.now + timedelta(days=21)).astimezone(PARIS).date())
    quote_form = quote_form or Form({"quantite": str(buyer_request.quantity), "tva": "20",
                                     "livraison": default_day.isoformat()})
    return page(request, "consultation.html.j2", status=status, title=f"Consultation : {buyer_request.name}",
                c=found, r=buyer_request, item=items.get(buyer_request.item_slug or ""),
                delivery=ctx.geocoder.commune(buyer_request.delivery_insee), vat_rates=VAT_RATES,
                quote_form=quote_form, **_quote_checks(ctx, buyer_request, quote_form))


async def _invitation_page(request: Request[Any, Any, Any], ctx: RequestContext, invitation_id: str, *,
                           status: int = 200, quote_form: Form | None = None,
                           decline_form: Form | None = None) -> Response[Any]:
    invitation, buyer_request, quotes = await read_models.my_invitation(
        ctx.session, actor=ctx.principal, invitation_id=invitation_id)
    items = {i.slug: i for i in await workshops.catalogue(ctx.session)}
    delivery = ctx.geocoder.commune(buyer_request.delivery_insee)
    default_day = min(paris(buyer_request.deadline).date(),
                      (ctx.now + timedelta(days=21)).astimezone(PARIS).date())
    can_quote = (invitation.status == "invited" and buyer_request.status in ("open", "quoting")
                 and not buyer_request.window_closed and not any(q.status == "submitted" for q in quotes))
    quote_form = quote_form or Form({"quantite": str(buyer_request.quantity), "tva": "20",
                                     "livraison": default_day.isoformat()})
    return page(request, "invitation.html.j2", status=status, title=f"Invitation : {buyer_request.name}",
                invitation=invitation, state=read_models.state_of(invitation, buyer_request, quotes),
                r=buyer_request, item=items.get(buyer_request.item_slug or ""),
                delivery=delivery, quotes=quotes, can_quote=can_quote, vat_rates=VAT_RATES,
                quote_flags={q.id: flags_of(buyer_request, q, now=ctx.now) for q in quotes},
                quote_form=quote_form, decline_form=decline_form or Form(),
                **_quote_checks(ctx, buyer_request, quote_form))


def _quote_checks(ctx: RequestContext, buyer_request: BuyerRequest, quote_form: Form) -> dict[str, Any]:
    """The quote form's warnings (those of what was posted; none before) and what app.js needs to
    say them as the maker types."""
    warnings = maker_forms.typed_warnings(quote_form, buyer_request, ctx.now) if quote_form.posted else []
    return {"quote_warnings": warnings, "quote_live": maker_forms.live_data(buyer_request)}


__all__ = ("MakerController", "Process")
