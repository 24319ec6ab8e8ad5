"""Organisations (tenants) and their API keys."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter

from broker.api.context import RequestContext
from broker.api.controllers.common import Cursor, IdempotencyKey, Limit, next_link, page_size
from broker.api.problems import problems
from broker.api.runtime import bump_keys_generation
from broker.api.schemas import (
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyList,
    ApiKeyOut,
    OrganizationIn,
    OrganizationKindIn,
    OrganizationOut,
    OrganizationPage,
    OrganizationPatch,
)
from broker.api.security import ANY_ROLE, access
from broker.domain.access import OrgKind, Role
from broker.services import access as access_service
from broker.services import organisations

OrgId = Annotated[str, PathParameter(max_length=64, description="organisation id")]


class OrganizationController(Controller):
    path = "/v1/organizations"
    tags = ["organizations"]

    @post(
        "/",
        opt=access(Role.ADMIN, idempotent=True),
        operation_id="create_organization",
        responses=problems(400, 401, 403, 409, 413, 422, 429),
    )
    async def create(
        self,
        data: JSONBody[OrganizationIn],
        ctx: NamedDependency[RequestContext],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[OrganizationOut]:
        org = await organisations.create_organisation(
            ctx.session,
            actor=ctx.principal,
            kind=OrgKind(data.kind),
            name=data.name,
            siret=data.siret,
            commune_insee=data.commune_insee,
            geocoder=ctx.geocoder,
            now=ctx.now,
            contact_email=data.contact_email,
            vat_regime=data.vat_regime,
            legal_form=data.legal_form,
            iban=data.iban,
        )
        return await ctx.respond(OrganizationOut.of(org), resource=("organization", org.id))

    @patch(
        "/{org_id:str}",
        opt=access(Role.ADMIN, Role.BUYER, Role.MAKER, Role.COORDINATOR, idempotent=True),
        operation_id="update_organization",
        responses=problems(400, 401, 403, 404, 413, 422, 429),
    )
    async def update(
        self,
        org_id: OrgId,
        data: JSONBody[OrganizationPatch],
        ctx: NamedDependency[RequestContext],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[OrganizationOut]:
        """The organisation's own details: its contact address, and what its invoices need (VAT regime,
        INSEE legal form, IBAN). Its own keys change their organisation; an administrator any."""
        values = {f: v for f in OrganizationPatch.__struct_fields__ if (v := getattr(data, f)) is not msgspec.UNSET}
        org = await organisations.update_organisation(ctx.session, actor=ctx.principal, org_id=org_id, values=values)
        return await ctx.respond(OrganizationOut.of(org), status=200, resource=("organization", org.id))

    @get(
        "/",
        opt=access(*ANY_ROLE),
        operation_id="list_organizations",
        responses=problems(400, 401, 403, 429),
    )
    async def list_(
        self,
        ctx: NamedDependency[RequestContext],
        limit: Limit = None,
        cursor: Cursor = None,
        kind: Annotated[OrganizationKindIn | None, QueryParameter(name="kind")] = None,
    ) -> Response[OrganizationPage]:
        filters = f"kind={kind or ''}"
        after = ctx.runtime.cursors.decode(cursor, filters=filters) if cursor else None
        size = page_size(ctx, limit)
        rows = await organisations.list_organisations(
            ctx.session, actor=ctx.principal, after=after, limit=size + 1, kind=OrgKind(kind) if kind else None
        )
        more = len(rows) > size
        rows = rows[:size]
        nxt = ctx.runtime.cursors.encode(rows[-1][1], filters=filters) if more else None
        page = OrganizationPage(items=[OrganizationOut.of(o) for o, _ in rows], next_cursor=nxt)
        return Response(page, headers=next_link(ctx.request, nxt))

    @get(
        "/{org_id:str}",
        opt=access(*ANY_ROLE),
        operation_id="get_organization",
        responses=problems(400, 401, 403, 404, 429),
    )
    async def get_one(self, org_id: OrgId, ctx: NamedDependency[RequestContext]) -> OrganizationOut:
        """Admins read any organisation; other keys only their own (any other id is a 404)."""
        return OrganizationOut.of(await organisations.get_organisation(ctx.session, actor=ctx.principal, org_id=org_id))

    @post(
        "/{org_id:str}/api-keys",
        opt=access(Role.ADMIN, idempotent=True),
        operation_id="create_api_key",
        responses=problems(400, 401, 403, 404, 409, 413, 422, 429),
    )
    async def create_key(
        self,
        org_id: OrgId,
        data: JSONBody[ApiKeyIn],
        ctx: NamedDependency[RequestContext],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ApiKeyCreated]:
        """The key is in this answer only; it is stored as a SHA-256 hash. Replays of this request
        (same Idempotency-Key) return a problem instead of the key again."""
        key, token = await access_service.issue_api_key(
            ctx.session, actor=ctx.principal, org_id=org_id, role=data.role, label=data.label, now=ctx.now
        )
        created = ApiKeyCreated(id=key.id, key=token, prefix=key.prefix, role=key.role, label=key.label)
        return await ctx.respond(created, resource=("api_key", key.id), store=False)

    @get(
        "/{org_id:str}/api-keys",
        opt=access(*ANY_ROLE),
        operation_id="list_api_keys",
        responses=problems(400, 401, 403, 404, 429),
    )
    async def list_keys(self, org_id: OrgId, ctx: NamedDependency[RequestContext]) -> ApiKeyList:
        keys = await access_service.list_api_keys(ctx.session, actor=ctx.principal, org_id=org_id)
        return ApiKeyList(items=[ApiKeyOut.of(k) for k in keys])


class ApiKeyController(Controller):
    path = "/v1/api-keys"
    tags = ["organizations"]

    @delete(
        "/{key_id:str}",
        opt=access(*ANY_ROLE),
        operation_id="revoke_api_key",
        responses=problems(400, 401, 403, 404, 429),
        status_code=204,
    )
    async def revoke(
        self, key_id: Annotated[str, PathParameter(max_length=64)], ctx: NamedDependency[RequestContext]
    ) -> None:
        """Admins revoke any key; a key's own organisation may revoke it. Effective on the next request."""
        key = await access_service.revoke_api_key(ctx.session, actor=ctx.principal, key_id=key_id, now=ctx.now)
        ctx.resource = ("api_key", key.id)
        ctx.status = 204
        ctx.after_commit.append(lambda: bump_keys_generation(ctx.runtime.redis))


__all__: list[Any] = ["ApiKeyController", "OrganizationController"]
