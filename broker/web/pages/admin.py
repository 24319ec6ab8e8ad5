"""The platform operator's pages: organisations, their keys and the people invited to them, workshop
verification, the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from adapters.notifications.log import mask_address
from broker.api.context import RequestContext
from broker.api.controllers.accounts import AccountIn, mailer, send
from broker.api.runtime import bump_keys_generation
from broker.api.schemas import ApiKeyIn, OrganizationIn, VerificationIn
from broker.domain.access import ROLES_BY_KIND, OrgKind, Role
from broker.errors import BrokerError, NotFound
from broker.services import access as access_service
from broker.services import accounts, audit_journal, organisations, read_models, workshops
from broker.web import journal
from broker.web.forms import Form
from broker.web.labels import ORG_KIND, PARIS, ROLE
from broker.web.pages.common import PAGE, Cursor, Id, attempt, next_cursor
from broker.web.render import page, redirect
from broker.web.security import web_access

ADMIN = web_access(Role.ADMIN)
ORG_FIELDS = {"/kind": "type", "/name": "nom", "/siret": "siret", "/commune_insee": "commune",
              "code:siret-taken": "siret"}
KEY_FIELDS = {"/role": "role", "/label": "libelle"}
ACCOUNT_FIELDS = {"/email": "courriel", "/name": "nom_personne", "/role": "role_personne"}
INVITE_REFUSALS = {
    "account-exists": ("courriel", "Cette adresse a déjà un compte (ici ou dans une autre organisation)."),
    "role-not-allowed": ("role_personne", "Ce rôle n'est pas possible pour ce type d'organisation."),
}
CREATABLE_KINDS = {k: v for k, v in ORG_KIND.items() if k != "operator"}
Before = Annotated[int | None, QueryParameter(name="avant", ge=1)]
Filter = Annotated[str | None, QueryParameter(max_length=64)]
Export = Annotated[str | None, QueryParameter(name="format", max_length=8)]
EXPORT_LIMIT = 10_000  # entries in one CSV export (a year of a busy platform's writes is far fewer per filter)


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

    @post("/organisations/{org_id:str}/comptes", opt=ADMIN, status_code=303)
    async def invite_person(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                            org_id: Id) -> Response[Any]:
        """Invite a person: the account is created and the link to choose a password e-mailed (after the commit)."""
        form = Form(await request.form())
        org = await organisations.get_organisation(ctx.session, actor=ctx.principal, org_id=org_id)
        role = form.choice("role_personne", _people_roles(org.kind))
        name = form.text("nom_personne", max_length=200)
        email = form.text("courriel", max_length=254)
        if email is not None and "@" not in email:
            form.error("courriel", "Saisissez une adresse e-mail, par exemple prenom.nom@mairie.fr.")
        body = (form.convert({"email": email, "name": name, "role": role}, AccountIn, ACCOUNT_FIELDS)
                if form.ok else None)
        invited = None
        if body is not None:
            try:
                invited = await accounts.invite(ctx.session, actor=ctx.principal, org_id=org_id, email=body.email,
                                                name=body.name, role=body.role, now=ctx.now,
                                                public_url=ctx.runtime.settings.api.public_url)
            except NotFound:
                raise
            except BrokerError as exc:
                await ctx.session.rollback()
                field, refusal = INVITE_REFUSALS.get(exc.code, ("__all__", "Invitation refusée : " + exc.detail))
                form.error(field, refusal)
        if invited is None:
            ctx.status = 422
            return await _organisation(request, ctx, org_id, Form(), invite_form=form, status=422)
        account, message = invited
        ctx.resource = ("account", account.id)
        ctx.audit_detail = {"email": mask_address(account.email), "role": account.role}
        notifier = mailer(request.app.state)
        ctx.after_commit.append(lambda: send(notifier, message))
        return redirect(request, f"/app/admin/organisations/{org_id}#personnes",
                        flash=f"Invitation envoyée à {account.email} : le lien vaut 72 heures.")

    @post("/comptes/{account_id:str}/desactivation", opt=ADMIN, status_code=303)
    async def disable_person(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                             account_id: Id) -> Response[Any]:
        """Disable a person's account (confirmation box checked on the server): their sessions end at
        their next request and their sign-in is refused."""
        return await _set_disabled(request, ctx, account_id, disable=True)

    @post("/comptes/{account_id:str}/reactivation", opt=ADMIN, status_code=303)
    async def enable_person(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                            account_id: Id) -> Response[Any]:
        """Enable a disabled account again (confirmation box checked on the server)."""
        return await _set_disabled(request, ctx, account_id, disable=False)

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
                    avant: Before = None, organisation: Filter = None, action: Filter = None, du: Filter = None,
                    au: Filter = None, export: Export = None) -> Response[Any]:
        """The journal in sentences, filtered by organisation, kind of action and period (Paris days);
        ``?format=csv`` exports every entry the filters keep (newest first, at most `EXPORT_LIMIT`)."""
        form = Form({"organisation": organisation or "", "action": action or "", "du": du or "", "au": au or ""})
        orgs = await audit_journal.organisations_to_filter(ctx.session, actor=ctx.principal)
        org_id = form.choice("organisation", orgs, required=False)
        kind = form.choice("action", journal.KINDS, required=False)
        first, last = form.day("du", required=False), form.day("au", required=False)
        since = datetime.combine(first, time(0), tzinfo=PARIS).astimezone(UTC) if first else None
        until = datetime.combine(last + timedelta(days=1), time(0), tzinfo=PARIS).astimezone(UTC) if last else None
        csv = export == "csv"
        items = await audit_journal.journal(
            ctx.session, actor=ctx.principal, before_id=None if csv else avant,
            limit=EXPORT_LIMIT if csv else PAGE + 1, org_id=org_id,
            actions=journal.actions_of(kind) if kind else None, since=since, until=until)
        if csv:
            return Response(content=journal.to_csv(items), media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": 'attachment; filename="journal.csv"'})
        older = items[PAGE - 1].entry.id if len(items) > PAGE else None
        kept = {k: v for k, v in (("organisation", org_id), ("action", kind), ("du", first and first.isoformat()),
                                  ("au", last and last.isoformat())) if v}
        return page(request, "audit.html.j2", status=200 if form.ok else 422, title="Journal d'audit",
                    rows=[(i, journal.sentence(i), journal.result(i.entry.status_code)) for i in items[:PAGE]],
                    older=older, before=avant, form=form, orgs=orgs, kinds=journal.KINDS,
                    filters=urlencode(kept), csv_link="?" + urlencode({**kept, "format": "csv"}))


async def _set_disabled(request: Request[Any, Any, Any], ctx: RequestContext, account_id: str, *,
                        disable: bool) -> Response[Any]:
    form = Form(await request.form())
    account = await accounts.get_account(ctx.session, actor=ctx.principal, account_id=account_id)
    back = f"/app/admin/organisations/{account.org_id}#personnes"
    ctx.resource = ("account", account.id)
    verb = "désactiver" if disable else "réactiver"
    if not form.checked("confirmer"):  # never in one click, with or without JavaScript (issue 21 item 3)
        ctx.status = 422
        return redirect(request, back, error=True,
                        flash=f"Cochez la case de confirmation pour {verb} le compte de {account.name}.")
    call = (accounts.disable_account(ctx.session, actor=ctx.principal, account_id=account.id, now=ctx.now) if disable
            else accounts.enable_account(ctx.session, actor=ctx.principal, account_id=account.id))
    if await attempt(ctx, form, {}, call) is None:
        return redirect(request, back, error=True, flash=form.errors.get("__all__"))
    if disable:
        return redirect(request, back, flash=f"Compte de {account.name} désactivé : ses sessions sont fermées et "
                                             "il ne peut plus se connecter.")
    if account.invited:
        return redirect(request, back, flash=f"Compte de {account.name} réactivé : invitez de nouveau cette "
                                             "personne pour qu'elle choisisse son mot de passe.")
    return redirect(request, back, flash=f"Compte de {account.name} réactivé : la personne se connecte de nouveau "
                                         "avec son mot de passe.")


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


def _people_roles(kind: OrgKind) -> dict[str, str]:
    """The roles a person of an organisation of this kind may hold (none for an integrator)."""
    return {r.value: ROLE[r.value] for r in sorted(ROLES_BY_KIND[kind] & accounts.PEOPLE_ROLES)}


async def _organisation(request: Request[Any, Any, Any], ctx: RequestContext, org_id: str, form: Form, *,
                        status: int = 200, invite_form: Form | None = None) -> Response[Any]:
    org = await organisations.get_organisation(ctx.session, actor=ctx.principal, org_id=org_id)
    keys = await access_service.list_api_keys(ctx.session, actor=ctx.principal, org_id=org_id)
    people = await accounts.accounts_of(ctx.session, actor=ctx.principal, org_id=org_id)
    roles = {r.value: ROLE[r.value] for r in sorted(ROLES_BY_KIND[org.kind])}
    return page(request, "admin_org.html.j2", status=status, title=org.name, org=org, keys=keys, roles=roles,
                form=form, commune=ctx.geocoder.commune(org.commune_insee), people=people,
                people_roles=_people_roles(org.kind), invite_form=invite_form or Form())


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
