"""Requests (buyers), their matches, invitations and quotes (makers), the award."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter

from broker.api.context import RequestContext
from broker.api.controllers.common import (
    Cursor,
    IdempotencyKey,
    Limit,
    RequiredIdempotencyKey,
    keyset_page,
    next_link,
    page_size,
)
from broker.api.presenters import basis_points, cents, order_out, process_step, quote_out, request_out
from broker.api.problems import problems
from broker.api.schemas import (
    AwardIn,
    AwardOut,
    DeclineIn,
    InvitationOut,
    InvitationPage,
    MatchesOut,
    MatchExcludedOut,
    MatchIncludedOut,
    MatchReasonOut,
    QuoteComparedOut,
    QuoteIn,
    QuoteList,
    QuoteOut,
    RequestIn,
    RequestOut,
    RequestPage,
)
from broker.api.security import access
from broker.domain import award_rules
from broker.domain.access import Role
from broker.domain.fabrication import Invitation, Procurement, Request
from broker.domain.lifecycle import RequestStatus
from broker.errors import Rejected
from broker.services import quotes as quote_service
from broker.services import requests as request_service

Id = Annotated[str, PathParameter(max_length=64)]


class RequestController(Controller):
    path = "/v1/requests"
    tags = ["requests"]

    @post(
        "/",
        opt=access(Role.BUYER, idempotent=True),
        operation_id="create_request",
        responses=problems(400, 401, 403, 409, 413, 422, 429),
    )
    async def create(
        self, data: JSONBody[RequestIn], ctx: NamedDependency[RequestContext], idempotency_key: IdempotencyKey = None
    ) -> Response[RequestOut]:
        """Create a request from a catalogue `item` or a `custom` spec. Matching then invites the best
        workshops (`BROKER_MATCHING_INVITATIONS`, default 8): in the worker, within a second or so
        (`match_state` is `pending` until `GET /v1/requests/{id}/matches` says `done`; the
        `request.matched` event tells it too), or inline when `BROKER_MATCHING_INLINE=1`, and then
        the answer's `invited` gives the count."""
        if (data.item is None) == (data.custom is None):
            raise Rejected("give exactly one of `item` (a catalogue slug) or `custom` (a spec)", pointer="/item")
        new = request_service.NewRequest(
            item=data.item,
            custom_name=data.custom.name if data.custom else None,
            custom_steps=tuple(process_step(s) for s in data.custom.steps) if data.custom else (),
            custom_certifications=tuple(data.custom.certifications_required) if data.custom else (),
            quantity=data.quantity,
            deadline=data.deadline,
            delivery_insee=data.delivery.commune_insee.upper(),
            delivery_address=data.delivery.address,
            budget_cents=cents(data.budget_eur_ht) if data.budget_eur_ht is not None else None,
            min_quotes=data.min_quotes,
            quote_window_hours=data.quote_window_hours,
            allow_split=data.allow_split,
            max_distance_km=data.max_distance_km,
            procurement=Procurement(
                buyer_siret=data.procurement.buyer_siret,
                service_code=data.procurement.service_code,
                engagement_number=data.procurement.engagement_number,
                chorus_requirement=data.procurement.chorus_requirement,
                nature=data.procurement.nature,
                cpv=data.procurement.cpv,
                publicity_reference=data.procurement.publicity_reference,
            ),
            estimated_cents=(cents(data.procurement.estimated_value_eur_ht)
                             if data.procurement.estimated_value_eur_ht is not None else None),
        )
        settings = ctx.runtime.settings.matching
        request, invited = await request_service.create_request(
            ctx.session,
            actor=ctx.principal,
            new=new,
            geocoder=ctx.geocoder,
            settings=settings,
            now=ctx.now,
            cache=ctx.runtime.candidates,
            match_now=settings.inline,
            db=ctx.runtime.db,
        )
        return await ctx.respond(request_out(request, invited=invited), resource=("request", request.id))

    @get("/", opt=access(Role.BUYER, Role.ADMIN), operation_id="list_requests", responses=problems(400, 401, 403, 429))
    async def list_(
        self,
        ctx: NamedDependency[RequestContext],
        limit: Limit = None,
        cursor: Cursor = None,
        status: Annotated[RequestStatus | None, QueryParameter(name="status")] = None,
    ) -> Response[RequestPage]:
        filters = f"requests:{status or ''}"
        after = ctx.runtime.cursors.decode(cursor, filters=filters) if cursor else None
        size = page_size(ctx, limit)
        rows = await request_service.list_requests(
            ctx.session, actor=ctx.principal, after=after, limit=size + 1, status=status
        )
        rows, nxt = keyset_page(ctx, rows, size, filters, lambda r: (r.created_at, r.id))
        return Response(
            RequestPage(items=[request_out(r) for r in rows], next_cursor=nxt), headers=next_link(ctx.request, nxt)
        )

    @get(
        "/{request_id:str}",
        opt=access(Role.BUYER, Role.ADMIN),
        operation_id="get_request",
        responses=problems(400, 401, 403, 404, 429),
    )
    async def get_one(self, request_id: Id, ctx: NamedDependency[RequestContext]) -> RequestOut:
        return request_out(await request_service.get_request(ctx.session, actor=ctx.principal, request_id=request_id))

    @get(
        "/{request_id:str}/matches",
        opt=access(Role.BUYER, Role.ADMIN),
        operation_id="get_request_matches",
        responses=problems(400, 401, 403, 404, 429),
    )
    async def matches(self, request_id: Id, ctx: NamedDependency[RequestContext]) -> MatchesOut:
        """Who was included (rank, score and its parts, capacity, why) and who was excluded (every
        reason, with figures); exclusions beyond the 50 nearest are counted per reason."""
        request, result = await request_service.matches(ctx.session, actor=ctx.principal, request_id=request_id)
        invited = {i["workshop_id"] for i in result.get("included", [])[: ctx.runtime.settings.matching.invitations]}
        return MatchesOut(
            state=request.match_state,
            eligible=int(result.get("eligible", 0)),
            considered=int(result.get("considered", 0)),
            working_days=int(result.get("working_days", 0)),
            included=[
                MatchIncludedOut(
                    workshop_id=i["workshop_id"],
                    rank=i["rank"],
                    score=i["score"],
                    distance_km=i["distance_km"],
                    capacity_units=i["capacity_units"],
                    components=i["components"],
                    reasons=i["reasons"],
                    invited=i["workshop_id"] in invited,
                )
                for i in result.get("included", [])
            ],
            excluded=[
                MatchExcludedOut(
                    workshop_id=e["workshop_id"],
                    distance_km=e["distance_km"],
                    reasons=[MatchReasonOut(code=r["code"], message=r["message"]) for r in e["reasons"]],
                )
                for e in result.get("excluded", [])
            ],
            exclusion_counts={k: int(v) for k, v in result.get("exclusion_counts", {}).items()},
        )

    @post(
        "/{request_id:str}/cancel",
        opt=access(Role.BUYER, idempotent=True),
        status_code=200,
        operation_id="cancel_request",
        responses=problems(400, 401, 403, 404, 409, 429),
    )
    async def cancel(
        self, request_id: Id, ctx: NamedDependency[RequestContext], idempotency_key: IdempotencyKey = None
    ) -> Response[RequestOut]:
        request = await request_service.cancel_request(
            ctx.session, actor=ctx.principal, request_id=request_id, now=ctx.now
        )
        return await ctx.respond(request_out(request), status=200, resource=("request", request.id))

    @post(
        "/{request_id:str}/quotes",
        opt=access(Role.MAKER, idempotent="required"),
        operation_id="submit_quote",
        responses=problems(400, 401, 403, 404, 409, 413, 422, 429),
    )
    async def quote(
        self,
        request_id: Id,
        data: JSONBody[QuoteIn],
        ctx: NamedDependency[RequestContext],
        idempotency_key: RequiredIdempotencyKey,
    ) -> Response[QuoteOut]:
        """An invited workshop quotes: price HT, VAT rate, quantity (partial only if the request
        allows splitting), delivery date, validity (default 30 days)."""
        quote = await quote_service.submit_quote(
            ctx.session,
            actor=ctx.principal,
            request_id=request_id,
            unit_price_cents=cents(data.unit_price_eur_ht),
            vat_rate_bp=basis_points(data.vat_rate),
            quantity=data.quantity,
            delivery_date=data.delivery_date,
            valid_until=data.valid_until,
            note=data.note,
            now=ctx.now,
            settings=ctx.runtime.settings.matching,
        )
        return await ctx.respond(quote_out(quote), resource=("quote", quote.id))

    @get(
        "/{request_id:str}/quotes",
        opt=access(Role.BUYER, Role.ADMIN),
        operation_id="list_request_quotes",
        responses=problems(400, 401, 403, 404, 429),
    )
    async def quotes(self, request_id: Id, ctx: NamedDependency[RequestContext]) -> QuoteList:
        """Quotes side by side with totals HT/TVA/TTC, distance and the workshop's on-time record,
        each with its `flags` (`late`, `partial`, `expired`) and whether it is `valid` for the
        award; `lowest_valid_quote_id` is the one that may be passed over only with a justification."""
        request, rows = await quote_service.quotes_for_buyer(ctx.session, actor=ctx.principal, request_id=request_id)
        flags = {q.id: award_rules.flags_of(request, q, now=ctx.now) for q, _w, _d in rows}
        lowest = award_rules.lowest_valid(request, [q for q, _w, _d in rows], now=ctx.now)
        return QuoteList(
            items=[
                QuoteComparedOut(
                    quote=quote_out(q),
                    workshop_name=w.name,
                    workshop_commune_insee=w.commune_insee,
                    distance_km=round(d, 1) if d is not None else None,
                    on_time_rate=w.on_time_rate,
                    orders_delivered=w.orders_delivered,
                    flags=list(flags[q.id]),
                    valid=award_rules.is_valid(q.status, flags[q.id]),
                )
                for q, w, d in rows
            ],
            lowest_valid_quote_id=lowest.id if lowest is not None else None,
        )

    @post(
        "/{request_id:str}/award",
        opt=access(Role.BUYER, idempotent="required"),
        operation_id="award_request",
        responses=problems(400, 401, 403, 404, 409, 413, 422, 429),
    )
    async def award(
        self,
        request_id: Id,
        data: JSONBody[AwardIn],
        ctx: NamedDependency[RequestContext],
        idempotency_key: RequiredIdempotencyKey,
    ) -> Response[AwardOut]:
        """Award one quote, or several when the request allows splitting. A written `justification`
        is required (409 otherwise) to award with fewer than `min_quotes` quotes while the window is
        open (`min-quotes-not-met`), to choose an invalid quote such as a late one
        (`justification-required`, `reason: invalid-quote`), to pass over a cheaper valid quote
        (`justification-required`, `reason: not-lowest`; for a split award, a valid quote left out
        whose unit price TTC is lower than a chosen one's), or to choose a workshop that won 2 of
        the buyer's last 5 awards in the CPV group over 24 months while another valid quote exists
        (`rotation-justification-required`). The problem carries `reason`, `quote_id`,
        `workshop_id` and every rule in `rules`; one justification answers them all, and is stored
        per rule in the request's `award_justifications`."""
        orders = await quote_service.award(
            ctx.session,
            actor=ctx.principal,
            request_id=request_id,
            quote_ids=data.quote_ids,
            justification=data.justification,
            now=ctx.now,
            decp_threshold_cents=ctx.runtime.settings.decp_threshold_eur_ht * 100,
        )
        # The audit entry keeps the choice and, per rule it departed from, the buyer's justification.
        awarded = await request_service.get_request(ctx.session, actor=ctx.principal, request_id=request_id)
        ctx.audit_detail = {"quote_ids": list(data.quote_ids),
                            "justifications": msgspec.to_builtins(awarded.award_justifications or ())}
        body = AwardOut(request_id=request_id, orders=[order_out(o, []) for o in orders])
        return await ctx.respond(body, resource=("request", request_id))


class InvitationController(Controller):
    path = "/v1/invitations"
    tags = ["requests"]

    @get("/", opt=access(Role.MAKER), operation_id="list_invitations", responses=problems(400, 401, 403, 404, 429))
    async def list_(
        self, ctx: NamedDependency[RequestContext], limit: Limit = None, cursor: Cursor = None
    ) -> Response[InvitationPage]:
        """This workshop's invitations, with the request summary and why it was chosen."""
        after = ctx.runtime.cursors.decode(cursor, filters="invitations") if cursor else None
        size = page_size(ctx, limit)
        rows = await quote_service.my_invitations(ctx.session, actor=ctx.principal, after=after, limit=size + 1)
        rows, nxt = keyset_page(ctx, rows, size, "invitations", lambda r: (r[0].created_at, r[0].id))
        return Response(
            InvitationPage(items=[_invitation(i, r) for i, r in rows], next_cursor=nxt),
            headers=next_link(ctx.request, nxt),
        )

    @post(
        "/{invitation_id:str}/decline",
        opt=access(Role.MAKER, idempotent=True),
        status_code=200,
        operation_id="decline_invitation",
        responses=problems(400, 401, 403, 404, 409, 413, 429),
    )
    async def decline(
        self,
        invitation_id: Id,
        data: JSONBody[DeclineIn],
        ctx: NamedDependency[RequestContext],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[InvitationOut]:
        invitation = await quote_service.decline_invitation(
            ctx.session, actor=ctx.principal, invitation_id=invitation_id, reason=data.reason, now=ctx.now
        )
        request = await quote_service.invitation_request(ctx.session, invitation=invitation)
        return await ctx.respond(_invitation(invitation, request), status=200, resource=("invitation", invitation.id))


def _invitation(invitation: Invitation, request: Request) -> InvitationOut:
    return InvitationOut(
        id=invitation.id,
        request_id=invitation.request_id,
        status=invitation.status,
        rank=invitation.rank,
        score=invitation.score,
        distance_km=round(invitation.distance_km, 1),
        capacity_units=invitation.capacity_units,
        reasons=list(invitation.reasons),
        source=invitation.source,
        request={
            "name": request.name,
            "item": request.item_slug,
            "quantity": request.quantity,
            "deadline": request.deadline.isoformat(),
            "delivery_commune_insee": request.delivery_insee,
            "allow_split": request.allow_split,
            "status": request.status,
            "quote_deadline": request.quote_deadline.isoformat(),
            "window_closed": request.window_closed,
        },
        created_at=invitation.created_at,
    )


class QuoteController(Controller):
    path = "/v1/quotes"
    tags = ["requests"]

    @post(
        "/{quote_id:str}/withdraw",
        opt=access(Role.MAKER, idempotent=True),
        status_code=200,
        operation_id="withdraw_quote",
        responses=problems(400, 401, 403, 404, 409, 429),
    )
    async def withdraw(
        self, quote_id: Id, ctx: NamedDependency[RequestContext], idempotency_key: IdempotencyKey = None
    ) -> Response[QuoteOut]:
        quote = await quote_service.withdraw_quote(ctx.session, actor=ctx.principal, quote_id=quote_id, now=ctx.now)
        return await ctx.respond(quote_out(quote), status=200, resource=("quote", quote.id))


__all__ = ("InvitationController", "QuoteController", "QuoteOut", "RequestController")
