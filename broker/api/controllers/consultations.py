"""Open consultations for makers, and the workshops a buyer invites itself (issue 17)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter

from broker.api.context import RequestContext
from broker.api.controllers.common import Cursor, IdempotencyKey, Limit, keyset_page, next_link, page_size
from broker.api.problems import problems
from broker.api.schemas import (
    AddedInvitationOut,
    ConsultationOut,
    ConsultationPage,
    ConsultationRequestOut,
    InvitationAddIn,
)
from broker.api.security import access
from broker.domain.access import Role
from broker.domain.cpv import cpv_label
from broker.domain.fabrication import euros
from broker.services import consultations as consultation_service
from broker.services.consultations import Consultation

Id = Annotated[str, PathParameter(max_length=64)]


class ConsultationController(Controller):
    path = "/v1/consultations"
    tags = ["requests"]

    @get("/", opt=access(Role.MAKER), operation_id="list_consultations", responses=problems(400, 401, 403, 404, 429))
    async def list_(
        self, ctx: NamedDependency[RequestContext], limit: Limit = None, cursor: Cursor = None
    ) -> Response[ConsultationPage]:
        """Open consultations (adapted procedure, `mapa` or `mapa_publicite`, still taking quotes)
        this workshop may quote on, oldest first: every one it is eligible for (verified, and through
        matching's hard filters: machines, materials, certifications, distance, capacity by the
        deadline), with the engine's figures and explanation, and those it already holds an
        invitation to (`invited: true`; a declined invitation hides the consultation). Quote with
        `POST /v1/requests/{request_id}/quotes`."""
        after = ctx.runtime.cursors.decode(cursor, filters="consultations") if cursor else None
        size = page_size(ctx, limit)
        rows = await consultation_service.my_consultations(
            ctx.session, actor=ctx.principal, after=after, limit=size + 1, now=ctx.now,
            settings=ctx.runtime.settings.matching,
        )
        rows, nxt = keyset_page(ctx, rows, size, "consultations", lambda c: (c.request.created_at, c.request.id))
        return Response(
            ConsultationPage(items=[_consultation(c) for c in rows], next_cursor=nxt),
            headers=next_link(ctx.request, nxt),
        )


class RequestInvitationController(Controller):
    path = "/v1/requests"
    tags = ["requests"]

    @post(
        "/{request_id:str}/invitations",
        opt=access(Role.BUYER, idempotent=True),
        operation_id="invite_workshop",
        responses=problems(400, 401, 403, 404, 409, 413, 422, 429),
    )
    async def invite(
        self,
        request_id: Id,
        data: JSONBody[InvitationAddIn],
        ctx: NamedDependency[RequestContext],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[AddedInvitationOut]:
        """Invite a workshop the buyer knows to quote on its request (without publicity, or in a
        MAPA beside the open consultation): 201 with the invitation (`source: buyer`), and the
        workshop's organisation receives `invitation.created`. 422 `not-eligible` with the reasons
        when the workshop fails a hard filter of matching or is not verified; 409 `already-invited`,
        or `quote-window-closed` when the request no longer takes quotes."""
        invitation, _request, workshop = await consultation_service.invite_workshop(
            ctx.session, actor=ctx.principal, request_id=request_id, workshop_id=data.workshop_id, now=ctx.now,
            settings=ctx.runtime.settings.matching,
        )
        body = AddedInvitationOut(
            id=invitation.id,
            request_id=invitation.request_id,
            workshop_id=invitation.workshop_id,
            workshop_name=workshop.name,
            workshop_commune_insee=workshop.commune_insee,
            source=invitation.source,
            status=invitation.status,
            rank=invitation.rank,
            score=invitation.score,
            distance_km=round(invitation.distance_km, 1),
            capacity_units=invitation.capacity_units,
            reasons=list(invitation.reasons),
            created_at=invitation.created_at,
        )
        return await ctx.respond(body, resource=("invitation", invitation.id))


def _consultation(c: Consultation) -> ConsultationOut:
    r, v = c.request, c.verdict
    return ConsultationOut(
        request_id=r.id,
        invited=c.invitation is not None,
        invitation_id=c.invitation.id if c.invitation is not None else None,
        distance_km=round(v.distance_km, 1),
        capacity_units=v.capacity_units,
        score=v.score,
        reasons=list(v.reasons),
        request=ConsultationRequestOut(
            name=r.name,
            item=r.item_slug,
            quantity=r.quantity,
            allow_split=r.allow_split,
            deadline=r.deadline,
            delivery_commune_insee=r.delivery_insee,
            quote_deadline=r.quote_deadline,
            status=r.status,
            procedure=r.procedure,
            nature=r.nature,
            cpv=r.cpv,
            cpv_label=cpv_label(r.cpv) if r.cpv else None,
            estimated_value_eur_ht=euros(r.estimated_cents) if r.estimated_cents is not None else None,
            publicity_reference=r.procurement.publicity_reference,
        ),
    )


__all__ = ("ConsultationController", "RequestInvitationController")
