"""Crisis calls: the coordinator creates a call with its delivery points (typed, with as many rows
as needed without losing what is typed, or imported from a CSV file) and follows a dashboard that
refreshes by itself while the call is open (totals, per point, per workshop with every commitment,
its decline reason and last progress report, rebalances, an offline map), exported as CSV; makers
accept, decline and report on their commitments."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from broker.api.context import RequestContext
from broker.api.crisis_schemas import CommitmentDeclineIn, CommitmentProgressIn, CrisisCallIn, DeliveryPointsIn
from broker.domain.access import Role
from broker.domain.crisis import AGREED, LIVE, MAX_QUANTITY, CallStatus, NewPoint
from broker.errors import NotFound
from broker.services import commitments as commitment_service
from broker.services import crisis as crisis_service
from broker.services import workshops
from broker.services.crisis_allocation import point_totals
from broker.web import crisis_csv
from broker.web.forms import Form, deadline_at
from broker.web.labels import PARIS
from broker.web.map import Mark, backdrop_svg, coverage, frame, parse_frame, place_labels, projection
from broker.web.pages.common import Cursor, Id, attempt, cursor_after, next_cursor
from broker.web.render import page, redirect
from broker.web.security import web_access

COORDINATOR = web_access(Role.COORDINATOR)
READERS = web_access(Role.COORDINATOR, Role.ADMIN)
MAKER = web_access(Role.MAKER)
PRIORITY = {"1": "1 — vitale", "2": "2 — très urgente", "3": "3 — urgente", "4": "4 — importante", "5": "5 — normale"}
COMMITMENT_STATUS = {"proposed": "Proposé — à accepter", "accepted": "Accepté", "declined": "Décliné",
                     "expired": "Expiré sans réponse", "cancelled": "Annulé", "completed": "Livré en totalité"}
REBALANCE_REASON = {"allocation": "Répartition initiale", "decline": "Après un refus", "expiry": "Proposition expirée",
                    "lag": "Atelier en retard", "points_added": "Points de livraison ajoutés",
                    "quantity_raised": "Quantité augmentée"}
COVERAGE = {"covered": "Couvert", "proposed": "Proposé, en attente de réponse", "short": "Non couvert"}
ROWS_DEFAULT, ROWS_MAX, ADD_ROWS, MORE_ROWS = 5, 40, 3, 5
Rows = Annotated[int | None, QueryParameter(name="lignes", ge=1, le=ROWS_MAX)]
Frame = Annotated[str, QueryParameter(name="cadre", max_length=120)]
Export = Annotated[Literal["csv"] | None, QueryParameter(name="format")]
Table = Annotated[Literal["points", "engagements"], QueryParameter(name="tableau")]
CSV_FIELD, FILE_FIELD = "points_csv", "fichier_points"


def _call_fields(origins: Sequence[int | None]) -> dict[str, str]:
    """Where a refusal shows: the call's fields, and for the k-th point the row it was typed in
    (``origins[k]``) or, for an imported one (None), the import field."""
    fields = {"/item": "article", "/deadline": "echeance", "/priority": "priorite", "/max_distance_km": "distance_max",
              "/name": "nom", "/delivery_points": "label_1", "code:crisis-call-closed": "__all__"}
    for k, row in enumerate(origins):
        for key, name in (("label", "label"), ("commune_insee", "commune"), ("quantity", "quantite"),
                          ("priority", "priorite")):
            fields[f"/delivery_points/{k}/{key}"] = f"{name}_{row}" if row else CSV_FIELD
        fields[f"/delivery_points/{k}"] = f"label_{row}" if row else CSV_FIELD
    return fields


class CrisisPages(Controller):
    path = "/crises"
    include_in_schema = False

    @get("/", opt=READERS)
    async def calls(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                    curseur: Cursor = None) -> Response[Any]:
        rows = await crisis_service.list_calls(ctx.session, actor=ctx.principal, limit=51, status=None,
                                               after=cursor_after(ctx, curseur, "web-calls"))
        rows, more = next_cursor(ctx, rows, "web-calls", lambda r: (r[0].created_at, r[0].id))
        return page(request, "crisis_calls.html.j2", title="Appels de crise", rows=rows, more=more)

    @get("/nouvel-appel", opt=COORDINATOR)
    async def new_call(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                       lignes: Rows = None) -> Response[Any]:
        form = Form({"priorite": "2", "echeance": (ctx.now + timedelta(days=10)).date().isoformat(),
                     **{f"priorite_{i}": "3" for i in range(1, ROWS_MAX + 1)}})
        return await _new_call_page(request, ctx, form, rows=lignes or ROWS_DEFAULT)

    @post("/nouvel-appel", opt=COORDINATOR, status_code=303)
    async def create_call(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext]) -> Response[Any]:
        """Launch the call; « Ajouter des lignes » posts here too and only shows the form again with
        what was typed and more empty rows. Points come from the rows and from the CSV file or pasted
        text; one bad line in it and nothing is created."""
        data = await request.form()
        form = Form(data)
        rows = min(ROWS_MAX, max(ROWS_DEFAULT, form.integer("lignes", low=1, high=ROWS_MAX, required=False) or 0))
        upload = data.get(FILE_FIELD)
        if isinstance(upload, UploadFile) and upload.filename:
            text = crisis_csv.decode(await upload.read())
            if text is None:
                form.error(CSV_FIELD, "Ce fichier n'est pas en UTF-8 : enregistrez-le au format « CSV UTF-8 » et "
                           "choisissez-le de nouveau.")
            elif text.strip():
                form.values[CSV_FIELD] = text  # shown again in the text box: no need to choose the file twice
        if form.raw("action") == "lignes":
            return await _new_call_page(request, ctx, form, rows=min(ROWS_MAX, rows + MORE_ROWS))
        items = {i.slug: i for i in await workshops.catalogue(ctx.session)}
        slug = form.choice("article", list(items))
        name = form.text("nom", required=False, max_length=200)
        deadline = form.day("echeance")
        if deadline is not None and deadline_at(deadline) <= ctx.now:
            form.error("echeance", "La date limite doit être dans le futur.")
        priority = form.choice("priorite", PRIORITY)
        max_km = form.integer("distance_max", low=1, high=2000, required=False)
        points, origins = _points(form, ctx, rows)
        csv_errors: list[str] = []
        if form.raw(CSV_FIELD) and CSV_FIELD not in form.errors:
            imported, csv_errors = crisis_csv.read_points(str(form.values[CSV_FIELD]), ctx.geocoder)
            if csv_errors:
                form.error(CSV_FIELD, f"{len(csv_errors)} erreur(s) dans les points importés (détail ci-dessous) : "
                           "aucun point n'est créé tant qu'il en reste une.")
            points += imported
            origins += [None] * len(imported)
        if not points and form.ok:
            form.error("label_1", "Indiquez au moins un point de livraison (nom, commune, quantité), ou importez "
                       "un fichier.")
        fields = _call_fields(origins)
        body = None
        if form.ok:
            assert deadline is not None
            body = form.convert({"item": slug, "deadline": deadline_at(deadline), "priority": int(priority or 3),
                                 "delivery_points": points, **({"name": name} if name else {}),
                                 **({"max_distance_km": float(max_km)} if max_km else {})},
                                CrisisCallIn, fields)
        call = None
        if body is not None:
            new = crisis_service.NewCall(
                item=body.item, deadline=body.deadline, priority=body.priority, max_distance_km=body.max_distance_km,
                name=body.name,
                points=tuple(NewPoint(label=p.label, commune_insee=p.commune_insee.upper(), quantity=p.quantity,
                                      priority=p.priority) for p in body.delivery_points))
            call = await attempt(ctx, form, fields, crisis_service.create_call(
                ctx.session, actor=ctx.principal, new=new, geocoder=ctx.geocoder,
                settings=ctx.runtime.settings.crisis, now=ctx.now))
        if call is None:
            ctx.status = 422
            return await _new_call_page(request, ctx, form, rows=rows, status=422, csv_errors=csv_errors)
        ctx.resource = ("crisis_call", call.id)
        return redirect(request, f"/app/crises/{call.id}", flash=f"Appel lancé («\u00a0{call.name}\u00a0»)\u00a0: "
                        "les ateliers capables ont reçu leurs propositions d'engagement.")

    @get("/fond-de-carte.svg", opt=READERS)
    async def map_backdrop(self, ctx: NamedDependency[RequestContext], cadre: Frame) -> Response[Any]:
        """The land of the map's frame, drawn from the commune table (public data; cached a day)."""
        box = parse_frame(cadre)
        if box is None:
            raise NotFound(f"no map frame {cadre!r}")
        return Response(backdrop_svg(ctx.geocoder, box), media_type="image/svg+xml",
                        headers={"Cache-Control": "private, max-age=86400"})

    @get("/{call_id:str}", opt=READERS)
    async def dashboard(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                        call_id: Id, export: Export = None, tableau: Table = "points") -> Response[Any]:
        """The dashboard; ``?format=csv`` exports its delivery points, ``&tableau=engagements`` its
        commitments (for a spreadsheet: UTF-8 with BOM, « ; », French headers)."""
        if export == "csv":
            return await _export(ctx, call_id, tableau)
        context = await _dashboard(ctx, call_id)
        return page(request, "crisis_call.html.j2", title=f"Appel de crise : {context['call'].name}", **context)

    @get("/{call_id:str}/tableau", opt=READERS)
    async def live(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                   call_id: Id) -> Response[Any]:
        """The dashboard's live part alone, fetched by the page every few seconds."""
        context = await _dashboard(ctx, call_id)
        return page(request, "crisis_live.html.j2", title="Tableau de bord", **context)

    @post("/{call_id:str}/points", opt=COORDINATOR, status_code=303)
    async def add_points(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                         call_id: Id) -> Response[Any]:
        """New delivery points mid-crisis: what is promised stays, only the new demand is allocated."""
        form = Form(await request.form())
        points, origins = _points(form, ctx, ADD_ROWS)
        if not points:
            form.error("label_1", "Indiquez au moins un point de livraison (nom, commune, quantité).")
        fields = _call_fields(origins)
        body = form.convert({"delivery_points": points}, DeliveryPointsIn, fields) if form.ok else None
        call = None
        if body is not None:
            call = await attempt(ctx, form, fields, crisis_service.add_points(
                ctx.session, actor=ctx.principal, call_id=call_id, geocoder=ctx.geocoder,
                settings=ctx.runtime.settings.crisis, now=ctx.now,
                points=[NewPoint(label=p.label, commune_insee=p.commune_insee.upper(), quantity=p.quantity,
                                 priority=p.priority) for p in body.delivery_points]))
        if call is None:
            ctx.status = 422
            context = await _dashboard(ctx, call_id)
            return page(request, "crisis_call.html.j2", status=422, title=f"Appel de crise : {context['call'].name}",
                        **{**context, "points_form": form})
        ctx.resource = ("crisis_call", call_id)
        count = len(body.delivery_points) if body else 0
        return redirect(request, f"/app/crises/{call_id}", flash=f"{count} point(s) de livraison ajouté(s) ; "
                        "leur demande est répartie entre les ateliers.")

    @post("/{call_id:str}/cloture", opt=COORDINATOR, status_code=303)
    async def close(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                    call_id: Id) -> Response[Any]:
        form = Form(await request.form())
        cancel = form.raw("annuler") == "oui"
        if not form.checked("confirmer"):  # never in one click, with or without JavaScript (issue 21 item 3)
            return redirect(request, f"/app/crises/{call_id}", error=True,
                            flash="Cochez la case de confirmation pour " + ("annuler" if cancel else "clore")
                            + " l'appel : c'est définitif.")
        done = await attempt(ctx, form, {}, crisis_service.close_call(
            ctx.session, actor=ctx.principal, call_id=call_id, now=ctx.now, cancel=cancel))
        if done is None:
            return redirect(request, f"/app/crises/{call_id}", flash=form.errors.get("__all__"), error=True)
        ctx.resource = ("crisis_call", call_id)
        return redirect(request, f"/app/crises/{call_id}",
                        flash="Appel annulé." if cancel else "Appel clos : plus de nouvelles propositions ; les "
                        "engagements acceptés continuent.")


class CommitmentPages(Controller):
    path = "/engagements"
    include_in_schema = False

    @get("/", opt=MAKER)
    async def commitments(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                          curseur: Cursor = None) -> Response[Any]:
        return await _commitments_page(request, ctx, curseur=curseur)

    @post("/{commitment_id:str}/acceptation", opt=MAKER, status_code=303)
    async def accept(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                     commitment_id: Id) -> Response[Any]:
        form = Form(await request.form())
        done = await attempt(ctx, form, {}, commitment_service.accept(
            ctx.session, actor=ctx.principal, commitment_id=commitment_id, now=ctx.now))
        if done is None:
            return await _commitments_page(request, ctx, failed=(commitment_id, form), status=422)
        ctx.resource = ("commitment", commitment_id)
        return redirect(request, f"/app/engagements#engagement-{commitment_id}",
                        flash=f"Engagement accepté : {done.quantity} unités à fabriquer.")

    @post("/{commitment_id:str}/refus", opt=MAKER, status_code=303)
    async def decline(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                      commitment_id: Id) -> Response[Any]:
        form = Form(await request.form())
        reason = form.text("motif", max_length=1000)
        body = form.convert({"reason": reason}, CommitmentDeclineIn, {"/reason": "motif"}) if form.ok else None
        done = None
        if body is not None:
            done = await attempt(ctx, form, {"/reason": "motif"}, commitment_service.decline(
                ctx.session, actor=ctx.principal, commitment_id=commitment_id, reason=body.reason, now=ctx.now))
        if done is None:
            ctx.status = 422
            return await _commitments_page(request, ctx, failed=(commitment_id, form), status=422)
        ctx.resource = ("commitment", commitment_id)
        return redirect(request, "/app/engagements", flash="Engagement décliné : les unités sont proposées à "
                        "d'autres ateliers.")

    @post("/{commitment_id:str}/avancement", opt=MAKER, status_code=303)
    async def progress(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                       commitment_id: Id) -> Response[Any]:
        form = Form(await request.form())
        produced = form.integer("produites", low=0, high=MAX_QUANTITY)
        delivered = form.integer("livrees", low=0, high=MAX_QUANTITY)
        fields = {"/units_produced": "produites", "/units_delivered": "livrees"}
        body = form.convert({"units_produced": produced, "units_delivered": delivered}, CommitmentProgressIn,
                            fields) if form.ok else None
        done = None
        if body is not None:
            done = await attempt(ctx, form, fields, commitment_service.report_progress(
                ctx.session, actor=ctx.principal, commitment_id=commitment_id, produced=body.units_produced,
                delivered=body.units_delivered, now=ctx.now))
        if done is None:
            ctx.status = 422
            return await _commitments_page(request, ctx, failed=(commitment_id, form), status=422)
        ctx.resource = ("commitment", commitment_id)
        return redirect(request, f"/app/engagements#engagement-{commitment_id}",
                        flash=f"Avancement enregistré : {done.produced} fabriquées, {done.delivered} livrées.")


def _points(form: Form, ctx: RequestContext, rows: int) -> tuple[list[dict[str, Any]], list[int | None]]:
    """The delivery points typed in rows ``label_i``, ``commune_i``, ``quantite_i``, ``priorite_i``
    (blank rows are skipped), and the row of each."""
    points: list[dict[str, Any]] = []
    origins: list[int | None] = []
    for i in range(1, rows + 1):
        if not any(form.raw(f"{name}_{i}") for name in ("label", "commune", "quantite")):
            continue
        label = form.text(f"label_{i}", max_length=200)
        insee = form.commune(f"commune_{i}", ctx.geocoder)
        quantity = form.integer(f"quantite_{i}", low=1, high=MAX_QUANTITY)
        point_priority = form.choice(f"priorite_{i}", PRIORITY)
        points.append({"label": label, "commune_insee": insee, "quantity": quantity,
                       "priority": int(point_priority or 3)})
        origins.append(i)
    return points, origins


async def _new_call_page(request: Request[Any, Any, Any], ctx: RequestContext, form: Form, *, rows: int,
                         status: int = 200, csv_errors: Sequence[str] = ()) -> Response[Any]:
    items = await workshops.catalogue(ctx.session)
    for i in range(1, rows + 1):  # rows added by « Ajouter des lignes » start at the usual priority
        form.values.setdefault(f"priorite_{i}", "3")
    return page(request, "crisis_new.html.j2", status=status, title="Nouvel appel de crise", form=form,
                items={i.slug: i.name for i in items}, priorities=PRIORITY, rows=range(1, rows + 1), row_count=rows,
                can_add=rows < ROWS_MAX, csv_errors=csv_errors, csv_field=CSV_FIELD, file_field=FILE_FIELD)


async def _dashboard(ctx: RequestContext, call_id: str) -> dict[str, Any]:
    d = await crisis_service.call_detail(ctx.session, actor=ctx.principal, call_id=call_id)
    per_point = point_totals(d.points, d.commitments)
    per_workshop: dict[str, dict[str, Any]] = {}
    for c in sorted(d.commitments, key=lambda c: (c.created_at, c.id)):
        w = per_workshop.setdefault(c.workshop_id, {"committed": 0, "accepted": 0, "produced": 0, "delivered": 0,
                                                    "proposed": 0, "declined": 0, "points": set(),
                                                    "commitments": [], "last_report_at": None})
        w["commitments"].append(c)
        if c.last_report_at and (w["last_report_at"] is None or c.last_report_at > w["last_report_at"]):
            w["last_report_at"] = c.last_report_at
        if c.status in LIVE:
            w["committed"] += c.quantity
            w["points"].add(c.delivery_point_id)
        if c.status in AGREED:
            w["accepted"] += c.quantity
            w["produced"] += c.produced
            w["delivered"] += c.delivered
        if c.status == "proposed":
            w["proposed"] += c.quantity
        if c.status in ("declined", "expired"):
            w["declined"] += c.quantity
    live_workshops = [d.workshops[w] for w in per_workshop if w in d.workshops]
    box = projection([(p.lat, p.lon) for p in d.points] + [(w.lat, w.lon) for w in live_workshops])
    biggest = max((p.quantity for p in d.points), default=1)
    state = {p.id: coverage(requested=p.quantity, committed=per_point[p.id]["committed"],
                            accepted=per_point[p.id]["accepted"]) for p in d.points}
    xy = {p.id: box.xy(p.lat, p.lon) for p in d.points}
    size = {p.id: round(5 + 9 * math.sqrt(p.quantity / biggest), 1) for p in d.points}
    map_workshops = [{"w": w, "xy": box.xy(w.lat, w.lon)} for w in live_workshops]
    # Labels of the most urgent, then biggest points first: those are the ones kept when space runs out.
    ranked = sorted(d.points, key=lambda p: (p.priority, -p.quantity, p.label))
    placed = place_labels([Mark(xy[p.id][0], xy[p.id][1], size[p.id], p.label) for p in ranked],
                          width=box.width, height=box.height,
                          obstacles=[Mark(*box.xy(w.lat, w.lon), 6.0) for w in live_workshops])
    labels = {p.id: label for p, label in zip(ranked, placed, strict=True)}
    map_points = [{"p": p, "xy": xy[p.id], "r": size[p.id], "t": per_point[p.id], "state": state[p.id],
                   "label": labels[p.id]} for p in d.points]
    points_by_id = {p.id: p for p in d.points}
    most = max((c.quantity for c in d.commitments if c.status in LIVE), default=1)
    lines = [{"c": c, "a": box.xy(d.workshops[c.workshop_id].lat, d.workshops[c.workshop_id].lon),
              "b": box.xy(points_by_id[c.delivery_point_id].lat, points_by_id[c.delivery_point_id].lon),
              "width": round(1 + 4 * c.quantity / most, 1)}
             for c in d.commitments if c.status in LIVE and c.workshop_id in d.workshops
             and c.delivery_point_id in points_by_id]
    return {
        "call": d.call, "totals": d.totals, "points": d.points, "per_point": per_point, "state": state,
        "coverage": COVERAGE, "points_by_id": points_by_id,
        "per_workshop": sorted(per_workshop.items(), key=lambda kv: -kv[1]["committed"]),
        "workshops": d.workshops, "rebalances": list(reversed(d.rebalances)), "commitments": d.commitments,
        "box": box, "frame": frame(box), "map_points": map_points, "labels_left_out": placed.count(None),
        "map_workshops": map_workshops, "lines": lines, "priorities": PRIORITY, "reasons": REBALANCE_REASON,
        "commitment_status": COMMITMENT_STATUS, "is_open": d.call.status == CallStatus.OPEN,
        "can_manage": ctx.principal.role == Role.COORDINATOR,
        "now_label": ctx.now.astimezone(PARIS).strftime("%H:%M:%S"),
        "points_form": Form({f"priorite_{i}": "3" for i in range(1, ADD_ROWS + 1)}), "add_rows": range(1, ADD_ROWS + 1),
    }


async def _export(ctx: RequestContext, call_id: str, table: str) -> Response[Any]:
    """A call's delivery points or commitments as a CSV file named after the call."""
    d = await crisis_service.call_detail(ctx.session, actor=ctx.principal, call_id=call_id)
    if table == "engagements":
        content = crisis_csv.commitments_csv(d.commitments, workshops=d.workshops,
                                             points={p.id: p for p in d.points}, statuses=COMMITMENT_STATUS,
                                             geocoder=ctx.geocoder)
    else:
        content = crisis_csv.points_csv(d.points, point_totals(d.points, d.commitments), ctx.geocoder)
    filename = f"appel-{call_id[:8]}-{'engagements' if table == 'engagements' else 'points'}.csv"
    return Response(content=content, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


async def _commitments_page(request: Request[Any, Any, Any], ctx: RequestContext, *, curseur: str | None = None,
                            failed: tuple[str, Form] | None = None, status: int = 200) -> Response[Any]:
    rows = await commitment_service.list_commitments(ctx.session, actor=ctx.principal, limit=51, status=None,
                                                     call_id=None, after=cursor_after(ctx, curseur, "web-commit"))
    rows, more = next_cursor(ctx, rows, "web-commit", lambda c: (c.created_at, c.id))
    calls, points = await commitment_service.context_of(ctx.session, rows)
    return page(request, "commitments.html.j2", status=status, title="Engagements de crise", rows=rows, calls=calls,
                points=points, more=more, commitment_status=COMMITMENT_STATUS, failed_id=failed[0] if failed else None,
                form=failed[1] if failed else None)
