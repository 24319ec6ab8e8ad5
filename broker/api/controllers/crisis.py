"""Crisis calls (coordinators) and their commitments (makers)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter

from broker.api.context import RequestContext
from broker.api.controllers.common import Cursor, IdempotencyKey, Limit, keyset_page, next_link, page_size
from broker.api.crisis_schemas import (
    CallSummaryOut,
    CommitmentDeclineIn,
    CommitmentOut,
    CommitmentPage,
    CommitmentProgressIn,
    CrisisCallDetailOut,
    CrisisCallIn,
    CrisisCallOut,
    CrisisCallPage,
    DeliveryPointOut,
    DeliveryPointPatch,
    DeliveryPointsIn,
    DestinationOut,
    RebalanceOut,
    TotalsOut,
)
from broker.api.problems import problems
from broker.api.security import access
from broker.domain.access import Role
from broker.domain.crisis import (
    CallStatus,
    Commitment,
    CommitmentStatus,
    CrisisCall,
    DeliveryPoint,
    NewPoint,
    Totals,
)
from broker.domain.fabrication import Workshop
from broker.services import commitments as commitment_service
from broker.services import crisis as crisis_service
from broker.services.crisis_allocation import point_totals

Id = Annotated[str, PathParameter(max_length=64)]


def _call_out(call: CrisisCall, totals: Totals) -> CrisisCallOut:
    return CrisisCallOut(
        id=call.id,
        status=call.status,
        item=call.item_slug,
        name=call.name,
        deadline=call.deadline,
        priority=call.priority,
        max_distance_km=call.max_distance_km,
        revision=call.revision,
        rebalance_pending=call.rebalance_due_at is not None,
        totals=TotalsOut(**{f: getattr(totals, f) for f in TotalsOut.__struct_fields__}),
        created_at=call.created_at,
        closed_at=call.closed_at,
    )


def _commitment_out(
    c: Commitment,
    *,
    workshop: Workshop | None = None,
    call: CrisisCall | None = None,
    point: DeliveryPoint | None = None,
) -> CommitmentOut:
    return CommitmentOut(
        id=c.id,
        call_id=c.call_id,
        workshop_id=c.workshop_id,
        delivery_point=c.delivery_point_id,
        quantity=c.quantity,
        status=c.status,
        distance_km=round(c.distance_km, 1),
        units_produced=c.produced,
        units_delivered=c.delivered,
        expires_at=c.expires_at,
        accepted_at=c.accepted_at,
        decline_reason=c.decline_reason,
        origin=c.origin,
        revision=c.revision,
        created_at=c.created_at,
        workshop_name=workshop.name if workshop else None,
        workshop_commune_insee=workshop.commune_insee if workshop else None,
        call=CallSummaryOut(id=call.id, item=call.item_slug, name=call.name, deadline=call.deadline,
                            priority=call.priority, status=call.status) if call else None,
        destination=DestinationOut(label=point.label, commune_insee=point.commune_insee, lat=point.lat, lon=point.lon,
                                   priority=point.priority) if point else None,
    )


async def _maker_view(ctx: RequestContext, commitments: list[Commitment]) -> list[CommitmentOut]:
    calls, points = await commitment_service.context_of(ctx.session, commitments)
    return [_commitment_out(c, call=calls[c.call_id], point=points[c.delivery_point_id]) for c in commitments]


class CrisisCallController(Controller):
    path = "/v1/crisis-calls"
    tags = ["crisis"]

    @post(
        "/",
        opt=access(Role.COORDINATOR, idempotent=True),
        operation_id="create_crisis_call",
        responses=problems(400, 401, 403, 409, 413, 422, 429),
    )
    async def create(
        self, data: JSONBody[CrisisCallIn], ctx: NamedDependency[RequestContext], idempotency_key: IdempotencyKey = None
    ) -> Response[CrisisCallOut]:
        """One catalogue item, a deadline and many delivery points. The call is allocated at once
        over every workshop able to make the item (its declared units per day, else machine hours,
        minus what it has booked): proposals go to the makers (`commitment.created`), who have
        `BROKER_CRISIS_COMMITMENT_EXPIRY_HOURS` (2 h) to accept. 422 when no workshop can make the
        item, a commune is unknown or the deadline is past."""
        new = crisis_service.NewCall(
            item=data.item,
            deadline=data.deadline,
            priority=data.priority,
            max_distance_km=data.max_distance_km,
            name=data.name,
            points=tuple(
                NewPoint(label=p.label, commune_insee=p.commune_insee.upper(), quantity=p.quantity,
                         priority=p.priority)
                for p in data.delivery_points
            ),
        )
        call = await crisis_service.create_call(
            ctx.session, actor=ctx.principal, new=new, geocoder=ctx.geocoder, settings=ctx.runtime.settings.crisis,
            now=ctx.now,
        )
        return await ctx.respond(await self._summary(ctx, call), resource=("crisis_call", call.id))

    @staticmethod
    async def _summary(ctx: RequestContext, call: CrisisCall) -> CrisisCallOut:
        detail = await crisis_service.call_detail(ctx.session, actor=ctx.principal, call_id=call.id)
        return _call_out(detail.call, detail.totals)

    @get(
        "/",
        opt=access(Role.COORDINATOR, Role.ADMIN),
        operation_id="list_crisis_calls",
        responses=problems(400, 401, 403, 429),
    )
    async def list_(
        self,
        ctx: NamedDependency[RequestContext],
        limit: Limit = None,
        cursor: Cursor = None,
        status: Annotated[CallStatus | None, QueryParameter(name="status")] = None,
    ) -> Response[CrisisCallPage]:
        filters = f"crisis-calls:{status or ''}"
        after = ctx.runtime.cursors.decode(cursor, filters=filters) if cursor else None
        size = page_size(ctx, limit)
        rows = await crisis_service.list_calls(
            ctx.session, actor=ctx.principal, after=after, limit=size + 1, status=status
        )
        rows, nxt = keyset_page(ctx, rows, size, filters, lambda r: (r[0].created_at, r[0].id))
        return Response(
            CrisisCallPage(items=[_call_out(c, t) for c, t in rows], next_cursor=nxt),
            headers=next_link(ctx.request, nxt),
        )

    @get(
        "/{call_id:str}",
        opt=access(Role.COORDINATOR, Role.ADMIN),
        operation_id="get_crisis_call",
        responses=problems(400, 401, 403, 404, 429),
    )
    async def get_one(self, call_id: Id, ctx: NamedDependency[RequestContext]) -> CrisisCallDetailOut:
        """Totals (requested ≥ committed ≥ accepted ≥ produced ≥ delivered; unmet = requested −
        committed), every delivery point with its own figures, every commitment, every rebalance
        with what moved and why."""
        d = await crisis_service.call_detail(ctx.session, actor=ctx.principal, call_id=call_id)
        per_point = point_totals(d.points, d.commitments)
        summary = _call_out(d.call, d.totals)
        return CrisisCallDetailOut(
            **{f: getattr(summary, f) for f in CrisisCallOut.__struct_fields__},
            delivery_points=[
                DeliveryPointOut(id=p.id, label=p.label, commune_insee=p.commune_insee, lat=p.lat, lon=p.lon,
                                 quantity=p.quantity, priority=p.priority, **{
                                     k: v for k, v in per_point[p.id].items() if k != "requested"})
                for p in d.points
            ],
            commitments=[_commitment_out(c, workshop=d.workshops.get(c.workshop_id)) for c in d.commitments],
            rebalances=[
                RebalanceOut(id=r.id, revision=r.revision, reason=r.reason, units_moved=r.units_moved,
                             unmet_before=r.unmet_before, unmet_after=r.unmet_after, moved=r.moved,
                             created_at=r.created_at)
                for r in d.rebalances
            ],
        )

    @post(
        "/{call_id:str}/delivery-points",
        opt=access(Role.COORDINATOR, idempotent=True),
        operation_id="add_crisis_delivery_points",
        responses=problems(400, 401, 403, 404, 409, 413, 422, 429),
    )
    async def add_points(
        self,
        call_id: Id,
        data: JSONBody[DeliveryPointsIn],
        ctx: NamedDependency[RequestContext],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[CrisisCallOut]:
        """New delivery points mid-crisis: live commitments stay, only the new demand is allocated."""
        call = await crisis_service.add_points(
            ctx.session,
            actor=ctx.principal,
            call_id=call_id,
            points=[NewPoint(label=p.label, commune_insee=p.commune_insee.upper(), quantity=p.quantity,
                             priority=p.priority) for p in data.delivery_points],
            geocoder=ctx.geocoder,
            settings=ctx.runtime.settings.crisis,
            now=ctx.now,
        )
        return await ctx.respond(await self._summary(ctx, call), resource=("crisis_call", call.id))

    @patch(
        "/{call_id:str}/delivery-points/{point_id:str}",
        opt=access(Role.COORDINATOR, idempotent=True),
        operation_id="raise_crisis_delivery_point",
        responses=problems(400, 401, 403, 404, 409, 413, 422, 429),
    )
    async def raise_quantity(
        self,
        call_id: Id,
        point_id: Id,
        data: JSONBody[DeliveryPointPatch],
        ctx: NamedDependency[RequestContext],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[CrisisCallOut]:
        """Raise a point's quantity (never lower it): only the extra units are allocated."""
        call = await crisis_service.raise_quantity(
            ctx.session, actor=ctx.principal, call_id=call_id, point_id=point_id, quantity=data.quantity,
            settings=ctx.runtime.settings.crisis, now=ctx.now,
        )
        return await ctx.respond(await self._summary(ctx, call), status=200, resource=("crisis_call", call.id))

    @post(
        "/{call_id:str}/close",
        opt=access(Role.COORDINATOR, idempotent=True),
        status_code=200,
        operation_id="close_crisis_call",
        responses=problems(400, 401, 403, 404, 409, 429),
    )
    async def close(
        self, call_id: Id, ctx: NamedDependency[RequestContext], idempotency_key: IdempotencyKey = None
    ) -> Response[CrisisCallOut]:
        """Stop recruiting: open proposals are cancelled; accepted commitments are still made,
        reported and delivered."""
        call = await crisis_service.close_call(ctx.session, actor=ctx.principal, call_id=call_id, now=ctx.now)
        return await ctx.respond(await self._summary(ctx, call), status=200, resource=("crisis_call", call.id))

    @post(
        "/{call_id:str}/cancel",
        opt=access(Role.COORDINATOR, idempotent=True),
        status_code=200,
        operation_id="cancel_crisis_call",
        responses=problems(400, 401, 403, 404, 409, 429),
    )
    async def cancel(
        self, call_id: Id, ctx: NamedDependency[RequestContext], idempotency_key: IdempotencyKey = None
    ) -> Response[CrisisCallOut]:
        """Withdraw a call no maker has accepted anything of (409 otherwise: close it)."""
        call = await crisis_service.close_call(
            ctx.session, actor=ctx.principal, call_id=call_id, now=ctx.now, cancel=True
        )
        return await ctx.respond(await self._summary(ctx, call), status=200, resource=("crisis_call", call.id))


class CommitmentController(Controller):
    path = "/v1/commitments"
    tags = ["crisis"]

    @get("/", opt=access(Role.MAKER), operation_id="list_commitments", responses=problems(400, 401, 403, 404, 429))
    async def list_(
        self,
        ctx: NamedDependency[RequestContext],
        limit: Limit = None,
        cursor: Cursor = None,
        status: Annotated[CommitmentStatus | None, QueryParameter(name="status")] = None,
        call_id: Annotated[str | None, QueryParameter(name="call_id", min_length=1, max_length=64)] = None,
    ) -> Response[CommitmentPage]:
        """This organisation's commitments with their call and destination, oldest first."""
        filters = f"commitments:{status or ''}:{call_id or ''}"
        after = ctx.runtime.cursors.decode(cursor, filters=filters) if cursor else None
        size = page_size(ctx, limit)
        rows = await commitment_service.list_commitments(
            ctx.session, actor=ctx.principal, after=after, limit=size + 1, status=status, call_id=call_id
        )
        rows, nxt = keyset_page(ctx, rows, size, filters, lambda c: (c.created_at, c.id))
        return Response(
            CommitmentPage(items=await _maker_view(ctx, rows), next_cursor=nxt), headers=next_link(ctx.request, nxt)
        )

    @get(
        "/{commitment_id:str}",
        opt=access(Role.MAKER, Role.ADMIN),
        operation_id="get_commitment",
        responses=problems(400, 401, 403, 404, 429),
    )
    async def get_one(self, commitment_id: Id, ctx: NamedDependency[RequestContext]) -> CommitmentOut:
        c = await commitment_service.my_commitment(ctx.session, actor=ctx.principal, commitment_id=commitment_id)
        return (await _maker_view(ctx, [c]))[0]

    @post(
        "/{commitment_id:str}/accept",
        opt=access(Role.MAKER, idempotent=True),
        status_code=200,
        operation_id="accept_commitment",
        responses=problems(400, 401, 403, 404, 409, 429),
    )
    async def accept(
        self, commitment_id: Id, ctx: NamedDependency[RequestContext], idempotency_key: IdempotencyKey = None
    ) -> Response[CommitmentOut]:
        """Accept before `expires_at`; 409 once expired, cancelled by a rebalance or already decided."""
        c = await commitment_service.accept(
            ctx.session, actor=ctx.principal, commitment_id=commitment_id, now=ctx.now
        )
        body = (await _maker_view(ctx, [c]))[0]
        return await ctx.respond(body, status=200, resource=("commitment", c.id))

    @post(
        "/{commitment_id:str}/decline",
        opt=access(Role.MAKER, idempotent=True),
        status_code=200,
        operation_id="decline_commitment",
        responses=problems(400, 401, 403, 404, 409, 413, 429),
    )
    async def decline(
        self,
        commitment_id: Id,
        data: JSONBody[CommitmentDeclineIn],
        ctx: NamedDependency[RequestContext],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[CommitmentOut]:
        """Decline a proposal: its capacity is released and the worker rebalances the call."""
        c = await commitment_service.decline(
            ctx.session, actor=ctx.principal, commitment_id=commitment_id, reason=data.reason, now=ctx.now
        )
        body = (await _maker_view(ctx, [c]))[0]
        return await ctx.respond(body, status=200, resource=("commitment", c.id))

    @post(
        "/{commitment_id:str}/progress",
        opt=access(Role.MAKER, idempotent=True),
        status_code=200,
        operation_id="report_commitment_progress",
        responses=problems(400, 401, 403, 404, 409, 413, 422, 429),
    )
    async def progress(
        self,
        commitment_id: Id,
        data: JSONBody[CommitmentProgressIn],
        ctx: NamedDependency[RequestContext],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[CommitmentOut]:
        """Units produced and delivered so far: never backwards, never beyond the commitment, never
        more delivered than produced. The last unit delivered completes the commitment."""
        c = await commitment_service.report_progress(
            ctx.session, actor=ctx.principal, commitment_id=commitment_id, produced=data.units_produced,
            delivered=data.units_delivered, now=ctx.now,
        )
        body = (await _maker_view(ctx, [c]))[0]
        return await ctx.respond(body, status=200, resource=("commitment", c.id))


__all__ = ("CommitmentController", "CrisisCallController")
