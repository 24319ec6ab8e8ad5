"""The platform operator's pages: organisations and their keys, workshop verification, the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from broker.api.context import RequestContext
from broker.api.runtime import bump_keys_generation
from broker.api.schemas import ApiKeyIn, OrganizationIn, VerificationIn
from broker.domain.access import ROLES_BY_KIND, OrgKind, Role
from broker.services import access as access_service
from broker.services import organisations, read_models, workshops
from broker.web.forms import Form
from broker.web.labels import ORG_KIND, ROLE
from broker.web.pages.common import PAGE, Cursor, Id, attempt, next_cursor
from broker.web.render import page, redirect
from broker.web.security import web_access

ADMIN = web_access(Role.ADMIN)
ORG_FIELDS = {"/kind": "type", "/name": "nom", "/siret": "siret", "/commune_insee": "commune",
              "code:siret-taken": "siret"}
KEY_FIELDS = {"/role": "role", "/label": "libelle"}
CREATABLE_KINDS = {k: v for k, v in ORG_KIND.items() if k != "operator"}
Before = Annotated[int | None, QueryParameter(name="avant", ge=1)]


class AdminPages(Controller):
    path = "/admin"
    include_in_schema = False

    @get("/organisations", opt=ADMIN)
    async def organisations_page(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                                 curseur: Cursor = None) -> Response[Any]:
        return await _organisations(request, ctx, Form({"type": "collectivite"}), curseur=curseur)

    @post("/organisations", opt=ADMIN, status_code=303)
    async def create_organisation(self, request: Request[Any, Any, Any],
                                  ctx: NamedDependency[RequestContext]) -> Response[Any]:
        form = Form(await request.form())
        kind = form.choice("type", CREATABLE_KINDS)
        name = form.text("nom", max_length=200)
        siret = form.siret("siret")
        insee = form.commune("commune", ctx.geocoder)
        body = form.convert({"kind": kind, "name": name, "siret": siret, "commune_insee": insee}, OrganizationIn,
                            ORG_FIELDS) if form.ok else None
        org = None
        if body is not None:
            org = await attempt(ctx, form, ORG_FIELDS, _create_and_flush(ctx, body))
        if org is None:
            ctx.status = 422
            return await _organisations(request, ctx, form, status=422)
        ctx.resource = ("organization", org.id)
        return redirect(request, f"/app/admin/organisations/{org.id}",
                        flash=f"Organisation créée : {org.name}. Créez-lui maintenant une clé.")

    @get("/organisations/{org_id:str}", opt=ADMIN)
    async def organisation(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                           org_id: Id) -> Response[Any]:
        return await _organisation(request, ctx, org_id, Form())

    @post("/organisations/{org_id:str}/cles", opt=ADMIN, status_code=303)
    async def create_key(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                         org_id: Id) -> Response[Any]:
        form = Form(await request.form())
        org = await organisations.get_organisation(ctx.session, actor=ctx.principal, org_id=org_id)
        role = form.choice("role", [r.value for r in ROLES_BY_KIND[org.kind]])
        label = form.text("libelle", required=False, max_length=200) or ""
        body = form.convert({"role": role, "label": label}, ApiKeyIn, KEY_FIELDS) if form.ok else None
        created = None
        if body is not None:
            created = await attempt(ctx, form, KEY_FIELDS, access_service.issue_api_key(
                ctx.session, actor=ctx.principal, org_id=org_id, role=body.role, label=body.label, now=ctx.now))
        if created is None:
            ctx.status = 422
            return await _organisation(request, ctx, org_id, form, status=422)
        key, token = created
        ctx.resource = ("api_key", key.id)
        # Shown once, on the next page only: sealed in the one-shot flash cookie (never stored in
        # plain text); a reload of that page does not create another key.
        return redirect(request, f"/app/admin/organisations/{org_id}",
                        flash=f"Clé créée ({ROLE[key.role].lower()}, préfixe {key.prefix}).", secret=token)

    @post("/cles/{key_id:str}/revocation", opt=ADMIN, status_code=303)
    async def revoke_key(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                         key_id: Id) -> Response[Any]:
        key = await access_service.revoke_api_key(ctx.session, actor=ctx.principal, key_id=key_id, now=ctx.now)
        ctx.resource = ("api_key", key.id)
        ctx.after_commit.append(lambda: bump_keys_generation(ctx.runtime.redis))
        return redirect(request, f"/app/admin/organisations/{key.org_id}",
                        flash=f"Clé {key.prefix} révoquée : elle est refusée dès la prochaine requête.")

    @get("/ateliers", opt=ADMIN)
    async def workshops_page(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                             curseur: Cursor = None) -> Response[Any]:
        return await _workshops(request, ctx, curseur=curseur)

    @post("/ateliers/{workshop_id:str}/verification", opt=ADMIN, status_code=303)
    async def verify(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                     workshop_id: Id) -> Response[Any]:
        form = Form(await request.form())
        body = form.convert({"labels": form.many("labels"), "certifications": form.many("certifications")},
                            VerificationIn, {"/labels": "labels", "/certifications": "certifications"})
        done = None
        if body is not None:
            done = await attempt(ctx, form, {"/labels": "labels"}, workshops.verify_workshop(
                ctx.session, actor=ctx.principal, workshop_id=workshop_id, labels=body.labels,
                certifications=body.certifications, now=ctx.now))
        if done is None:
            ctx.status = 422
            return await _workshops(request, ctx, failed=(workshop_id, form), status=422)
        ctx.resource = ("workshop", workshop_id)
        return redirect(request, f"/app/admin/ateliers#atelier-{workshop_id}",
                        flash=f"Vérification enregistrée pour {done.name}.")

    @get("/journal", opt=ADMIN)
    async def audit(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                    avant: Before = None) -> Response[Any]:
        rows = await read_models.audit_newest(ctx.session, actor=ctx.principal, before_id=avant, limit=PAGE + 1)
        older = rows[PAGE - 1].id if len(rows) > PAGE else None
        return page(request, "audit.html.j2", title="Journal d'audit", rows=rows[:PAGE], older=older, before=avant)


async def _create_and_flush(ctx: RequestContext, body: OrganizationIn) -> Any:
    org = await organisations.create_organisation(
        ctx.session, actor=ctx.principal, kind=OrgKind(body.kind), name=body.name, siret=body.siret,
        commune_insee=body.commune_insee, geocoder=ctx.geocoder, now=ctx.now)
    await read_models.flush_or_conflict(ctx.session)  # a taken SIRET is shown next to the field
    return org


async def _organisations(request: Request[Any, Any, Any], ctx: RequestContext, form: Form, *, status: int = 200,
                         curseur: str | None = None) -> Response[Any]:
    after = ctx.runtime.cursors.decode(curseur, filters="web-orgs") if curseur else None
    rows = await organisations.list_organisations(ctx.session, actor=ctx.principal, after=after, limit=PAGE + 1,
                                                  kind=None)
    rows, more = next_cursor(ctx, rows, "web-orgs", lambda r: r[1])
    return page(request, "admin_orgs.html.j2", status=status, title="Organisations", orgs=[o for o, _ in rows],
                more=more, form=form, kinds=CREATABLE_KINDS)


async def _organisation(request: Request[Any, Any, Any], ctx: RequestContext, org_id: str, form: Form, *,
                        status: int = 200) -> Response[Any]:
    org = await organisations.get_organisation(ctx.session, actor=ctx.principal, org_id=org_id)
    keys = await access_service.list_api_keys(ctx.session, actor=ctx.principal, org_id=org_id)
    roles = {r.value: ROLE[r.value] for r in sorted(ROLES_BY_KIND[org.kind])}
    return page(request, "admin_org.html.j2", status=status, title=org.name, org=org, keys=keys, roles=roles,
                form=form, commune=ctx.geocoder.commune(org.commune_insee))


async def _workshops(request: Request[Any, Any, Any], ctx: RequestContext, *, status: int = 200,
                     curseur: str | None = None, failed: tuple[str, Form] | None = None) -> Response[Any]:
    after = ctx.runtime.cursors.decode(curseur, filters="web-workshops") if curseur else None
    rows = await workshops.list_workshops(ctx.session, actor=ctx.principal, after=after, limit=PAGE + 1)
    rows, more = next_cursor(ctx, rows, "web-workshops", lambda w: (w.created_at, w.id))
    machines = await workshops.machines_of(ctx.session, [w.id for w in rows])
    communes = {w.id: ctx.geocoder.commune(w.commune_insee) for w in rows}
    return page(request, "admin_workshops.html.j2", status=status, title="Ateliers et vérification",
                workshops=rows, machines=machines, communes=communes, more=more,
                failed_id=failed[0] if failed else None, form=failed[1] if failed else None)
