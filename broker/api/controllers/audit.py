"""The append-only audit log: admins read all of it, other keys their organisation's."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import Controller, Response, get
from litestar.di import NamedDependency

from broker.api.context import RequestContext
from broker.api.controllers.common import Cursor, Limit, next_link, page_size
from broker.api.problems import problems
from broker.api.schemas import AuditEntryOut, AuditPage
from broker.api.security import access
from broker.domain.access import Role
from broker.services import maintenance

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class AuditController(Controller):
    path = "/v1/audit-log"
    tags = ["audit"]

    @get(
        "/",
        opt=access(Role.ADMIN, Role.COORDINATOR, Role.BUYER, Role.MAKER, Role.INTEGRATION),
        operation_id="list_audit_log",
        responses=problems(400, 401, 403, 429),
    )
    async def list_(
        self, ctx: NamedDependency[RequestContext], limit: Limit = None, cursor: Cursor = None
    ) -> Response[AuditPage]:
        after = int(ctx.runtime.cursors.decode(cursor, filters="audit")[1]) if cursor else None
        size = page_size(ctx, limit)
        rows = await maintenance.audit_page(ctx.session, actor=ctx.principal, after_id=after, limit=size + 1)
        more = len(rows) > size
        rows = rows[:size]
        nxt = ctx.runtime.cursors.encode((_EPOCH, str(rows[-1].id)), filters="audit") if more else None
        items = [
            AuditEntryOut(
                id=r.id,
                at=r.at,
                org_id=r.org_id,
                key_prefix=r.key_prefix,
                role=r.role,
                action=r.action,
                resource_type=r.resource_type,
                resource_id=r.resource_id,
                status_code=r.status_code,
                request_id=r.request_id,
                detail=r.detail,
            )
            for r in rows
        ]
        return Response(AuditPage(items=items, next_cursor=nxt), headers=next_link(ctx.request, nxt))
