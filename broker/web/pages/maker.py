"""The maker's pages: the workshop profile, machines and capacities; invitations with the reason
the workshop was chosen and where each stands (broker.domain.invitation_state); the quote form;
declining; withdrawing a quote."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency

from broker.api.context import RequestContext
from broker.api.schemas import DeclineIn, MachineIn, QuoteIn, WorkshopIn
from broker.domain.access import Role
from broker.domain.catalogue import Process
from broker.domain.fabrication import MaterialLimit
from broker.errors import NotFound
from broker.services import consultations as consultation_service
from broker.services import quotes as quote_service
from broker.services import read_models, workshops
from broker.services.consultations import Consultation
from broker.web.forms import Form, deadline_at
from broker.web.labels import MATERIAL, PARIS, PROCESS, paris
from broker.web.pages.common import Cursor, Id, attempt, cursor_after, next_cursor
from broker.web.render import page, redirect
from broker.web.security import safe_next, web_access

MAKER = web_access(Role.MAKER)
PROFILE_FIELDS = {"/commune_insee": "commune", "/delivery_radius_km": "rayon", "/trades": "metiers",
                  "/labels": "labels", "/certifications": "certifications", "code:not-a-workshop": "__all__"}
MACHINE_FIELDS = {"/process": "procede", "/envelope_mm": "enveloppe_x", "/envelope_mm/0": "enveloppe_x",
                  "/envelope_mm/1": "enveloppe_y", "/envelope_mm/2": "enveloppe_z", "/materials": "materiau_1",
                  "/hours_per_week": "heures", "code:workshop-profile-missing": "__all__"}
QUOTE_FIELDS = {"/unit_price_eur_ht": "prix", "/vat_rate": "tva", "/quantity": "quantite",
                "/delivery_date": "livraison", "/valid_until": "validite", "/note": "note"}
VAT_RATES = {"20": "20 % (taux normal)", "10": "10 %", "5.5": "5,5 % (équipements de protection, taux réduit)",
             "2.1": "2,1 %", "0": "0 % (exonéré)"}
MATERIAL_ROWS = 3
CONSULTATION_QUOTE_FIELDS = {**QUOTE_FIELDS, "code:not-eligible": "__all__", "code:match-pending": "__all__"}
CONSULTATIONS_SCANNED = 2000  # open consultations read to find one by its request (a page of 200 at a time)


class MakerController(Controller):
    path = "/"
    include_in_schema = False

    # ---- workshop ---------------------------------------------------------------------------------

    @get("/atelier", opt=MAKER)
    async def workshop(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext]) -> Response[Any]:
        return await _workshop_page(request, ctx)

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
        process = form.choice("procede", PROCESS)
        envelope = [form.decimal(f"enveloppe_{axis}", low=Decimal(0), high=Decimal(20_000), places=1,
                                 strict_low=True) for axis in "xyz"]
        materials = []
        for index in range(1, MATERIAL_ROWS + 1):
            name = form.raw(f"materiau_{index}")
            if not name and not form.raw(f"epaisseur_{index}"):
                continue
            material = form.tags(f"materiau_{index}", max_items=1)
            if not material and f"materiau_{index}" not in form.errors:
                form.error(f"materiau_{index}", "Indiquez le matériau de cette ligne.")
            thickness = form.decimal(f"epaisseur_{index}", low=Decimal(0), high=Decimal(500), places=1,
                                     strict_low=True)
            if material and thickness is not None:
                materials.append({"material": material[0], "max_thickness_mm": float(thickness)})
        if not materials and "materiau_1" not in form.errors:
            form.error("materiau_1", "Indiquez au moins un matériau et son épaisseur maximale.")
        hours = form.decimal("heures", low=Decimal(0), high=Decimal(168), places=1)
        body = None
        if form.ok:
            body = form.convert({"process": process, "envelope_mm": [float(v or 0) for v in envelope],
                                 "materials": materials, "hours_per_week": float(hours or 0)},
                                MachineIn, MACHINE_FIELDS)
        machine = None
        if body is not None:
            machine = await attempt(ctx, form, MACHINE_FIELDS, workshops.add_machine(
                ctx.session, actor=ctx.principal, process=body.process,
                envelope_mm=(body.envelope_mm[0], body.envelope_mm[1], body.envelope_mm[2]),
                materials=[MaterialLimit(material=m.material, max_thickness_mm=m.max_thickness_mm)
                           for m in body.materials],
                hours_per_week=body.hours_per_week, now=ctx.now))
        if machine is None:
            ctx.status = 422
            return await _workshop_page(request, ctx, machine_form=form, status=422)
        ctx.resource = ("machine", machine.id)
        return redirect(request, "/app/atelier#machines",
                        flash=f"Machine ajoutée : {PROCESS.get(machine.process, machine.process)}.")

    @post("/atelier/capacites", opt=MAKER, status_code=303)
    async def capacity(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext]) -> Response[Any]:
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
        return redirect(request, "/app/atelier#capacites",
                        flash=f"Capacité déclarée : {form.raw('unites_par_jour')} par jour "
                              f"pour « {items[slug].name} ».")

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
        quote = await _submit_quote(ctx, form, buyer_request.id, QUOTE_FIELDS)
        if quote is None:
            ctx.status = 422
            return await _invitation_page(request, ctx, invitation_id, quote_form=form, status=422)
        ctx.resource = ("quote", quote.id)
        return redirect(request, f"/app/invitations/{invitation_id}", flash="Devis envoyé à l'acheteur.")

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
        quote = await _submit_quote(ctx, form, request_id, CONSULTATION_QUOTE_FIELDS)
        if quote is None:
            ctx.status = 422
            return await _consultation_page(request, ctx, request_id, quote_form=form, status=422)
        ctx.resource = ("quote", quote.id)
        try:
            answered = await _find_consultation(ctx, request_id)
        except NotFound:  # the window closed meanwhile: the quote is there all the same
            return redirect(request, "/app/invitations", flash="Devis envoyé à l'acheteur.")
        where = f"/app/invitations/{answered.invitation.id}" if answered.invitation else "/app/invitations"
        return redirect(request, where, flash="Devis envoyé à l'acheteur.")

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


async def _workshop_page(request: Request[Any, Any, Any], ctx: RequestContext, *, status: int = 200,
                         profile_form: Form | None = None, machine_form: Form | None = None,
                         capacity_form: Form | None = None) -> Response[Any]:
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
    commune = ctx.geocoder.commune(workshop.commune_insee) if workshop else None
    return page(request, "workshop.html.j2", status=status, title="Mon atelier", workshop=workshop,
                commune=commune, machines=machines, capacities=capacities,
                items=await workshops.catalogue(ctx.session), profile_form=profile_form,
                machine_form=machine_form or Form({"heures": "35"}), capacity_form=capacity_form or Form(),
                processes=PROCESS, material_rows=range(1, MATERIAL_ROWS + 1), materials=MATERIAL)


async def _submit_quote(ctx: RequestContext, form: Form, request_id: str, fields: dict[str, str]) -> Any:
    """Read the quote form and send the quote (None, with the errors on the form, when refused)."""
    price = form.decimal("prix", low=Decimal(0), high=Decimal("999999999.99"), strict_low=True)
    vat = form.choice("tva", VAT_RATES)
    quantity = form.integer("quantite", low=1, high=10_000_000)
    delivery = form.day("livraison")
    if delivery is not None and delivery < ctx.now.astimezone(PARIS).date():
        form.error("livraison", "La date de livraison est déjà passée.")
    valid = form.day("validite", required=False)
    note = form.text("note", required=False, max_length=2000) or ""
    body = None
    if form.ok:
        body = form.convert({"unit_price_eur_ht": str(price), "vat_rate": vat, "quantity": quantity,
                             "delivery_date": delivery, "note": note,
                             **({"valid_until": deadline_at(valid)} if valid else {})}, QuoteIn, fields)
    if body is None:
        return None
    return await attempt(ctx, form, fields, quote_service.submit_quote(
        ctx.session, actor=ctx.principal, request_id=request_id,
        unit_price_cents=int(Decimal(body.unit_price_eur_ht) * 100),
        vat_rate_bp=int(Decimal(body.vat_rate) * 100), quantity=body.quantity,
        delivery_date=body.delivery_date, valid_until=body.valid_until, note=body.note, now=ctx.now,
        settings=ctx.runtime.settings.matching))


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
    return page(request, "consultation.html.j2", status=status, title=f"Consultation : {buyer_request.name}",
                c=found, r=buyer_request, item=items.get(buyer_request.item_slug or ""),
                delivery=ctx.geocoder.commune(buyer_request.delivery_insee), vat_rates=VAT_RATES,
                quote_form=quote_form or Form({"quantite": str(buyer_request.quantity), "tva": "20",
                                               "livraison": default_day.isoformat()}))


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
    return page(request, "invitation.html.j2", status=status, title=f"Invitation : {buyer_request.name}",
                invitation=invitation, state=read_models.state_of(invitation, buyer_request, quotes),
                r=buyer_request, item=items.get(buyer_request.item_slug or ""),
                delivery=delivery, quotes=quotes, can_quote=can_quote, vat_rates=VAT_RATES,
                quote_form=quote_form or Form({"quantite": str(buyer_request.quantity), "tva": "20",
                                               "livraison": default_day.isoformat()}),
                decline_form=decline_form or Form())


__all__ = ("MakerController", "Process")
