"""Webhook endpoints (secrets shown once, rolled with a grace period), deliveries, replay, events."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter

from broker.api.context import RequestContext
from broker.api.controllers.common import IdempotencyKey, Limit, keyset_page, next_link, page_size
from broker.api.problems import problems
from broker.api.schemas import (
    Accepted,
    EventOut,
    EventPage,
    RecoverIn,
    RecoverOut,
    SecretOut,
    SecretRollIn,
    WebhookAttemptOut,
    WebhookDeliveryList,
    WebhookDeliveryOut,
    WebhookEndpointIn,
    WebhookEndpointList,
    WebhookEndpointOut,
)
from broker.api.security import access
from broker.domain.access import Role
from broker.domain.webhooks import WebhookEndpoint
from broker.services import webhooks
from broker.services.webhooks import SecretBox

Id = Annotated[str, PathParameter(max_length=64)]
OWNERS = (Role.BUYER, Role.COORDINATOR, Role.MAKER, Role.INTEGRATION)


def _box(ctx: RequestContext) -> SecretBox:
    return SecretBox(ctx.runtime.settings.secret_key)


def _endpoint(row: WebhookEndpoint) -> WebhookEndpointOut:
    return WebhookEndpointOut(id=row.id, url=row.url, event_types=list(row.event_types), status=row.status,
                              created_at=row.created_at, disabled_reason=row.disabled_reason)


class WebhookEndpointController(Controller):
    path = "/v1/webhook-endpoints"
    tags = ["integrations"]

    @post("/", opt=access(*OWNERS, idempotent=True), operation_id="create_webhook_endpoint",
          responses=problems(400, 401, 403, 413, 422, 429))
    async def create(self, data: JSONBody[WebhookEndpointIn], ctx: NamedDependency[RequestContext],
                     idempotency_key: IdempotencyKey = None) -> Response[WebhookEndpointOut]:
        """`https://` URLs only (private, loopback and link-local addresses are refused when sending);
        the `whsec_` secret is in this answer only. Empty `event_types` = every type."""
        row, secret = await webhooks.create_endpoint(
            ctx.session, actor=ctx.principal, url=data.url, event_types=data.event_types, box=_box(ctx),
            allow_loopback=ctx.runtime.settings.webhooks_allow_loopback, now=ctx.now,
        )
        out = WebhookEndpointOut(id=row.id, url=row.url, event_types=list(row.event_types), status=row.status,
                                 created_at=row.created_at, secret=secret)
        return await ctx.respond(out, resource=("webhook_endpoint", row.id), store=False)

    @get("/", opt=access(*OWNERS), operation_id="list_webhook_endpoints", responses=problems(400, 401, 403, 429))
    async def list_(self, ctx: NamedDependency[RequestContext]) -> WebhookEndpointList:
        rows = await webhooks.my_endpoints(ctx.session, actor=ctx.principal)
        return WebhookEndpointList(items=[_endpoint(r) for r in rows])

    @post("/{endpoint_id:str}/secret:roll", opt=access(*OWNERS, idempotent=True), status_code=200,
          operation_id="roll_webhook_secret", responses=problems(400, 401, 403, 404, 413, 422, 429))
    async def roll(self, endpoint_id: Id, ctx: NamedDependency[RequestContext],
                   data: JSONBody[SecretRollIn | None] = None, idempotency_key: IdempotencyKey = None
                   ) -> Response[SecretOut]:
        """A new secret now; both signatures are sent until the grace period (default 24 h) ends."""
        grace = timedelta(hours=(data.grace_hours if data else 24))
        secret = await webhooks.roll_secret(ctx.session, actor=ctx.principal, endpoint_id=endpoint_id, grace=grace,
                                            box=_box(ctx), now=ctx.now)
        out = SecretOut(secret=secret, previous_valid_until=ctx.now + grace)
        return await ctx.respond(out, status=200, resource=("webhook_endpoint", endpoint_id), store=False)

    @post("/{endpoint_id:str}/recover", opt=access(*OWNERS, idempotent=True), status_code=202,
          operation_id="recover_webhook_endpoint", responses=problems(400, 401, 403, 404, 409, 413, 422, 429))
    async def recover(self, endpoint_id: Id, data: JSONBody[RecoverIn], ctx: NamedDependency[RequestContext],
                      idempotency_key: IdempotencyKey = None) -> Response[RecoverOut]:
        """Re-send every failed message of this endpoint created at or after `since`, oldest first
        (same `webhook-id` and body, a fresh signature each); `requeued` says how many. The endpoint
        must be enabled (409 `endpoint-disabled` otherwise)."""
        count = await webhooks.recover_endpoint(ctx.session, actor=ctx.principal, endpoint_id=endpoint_id,
                                                since=data.since, now=ctx.now)
        return await ctx.respond(RecoverOut(endpoint_id=endpoint_id, since=data.since, requeued=count), status=202,
                                 resource=("webhook_endpoint", endpoint_id))

    @post("/{endpoint_id:str}/enable", opt=access(*OWNERS, idempotent=True), status_code=200,
          operation_id="enable_webhook_endpoint", responses=problems(400, 401, 403, 404, 429))
    async def enable(self, endpoint_id: Id, ctx: NamedDependency[RequestContext],
                     idempotency_key: IdempotencyKey = None) -> Response[WebhookEndpointOut]:
        """Re-enable an endpoint disabled by a 410 or by five days of failed deliveries (RT-3). New
        events flow again; the failed ones are re-sent only by `recover`."""
        row = await webhooks.enable_endpoint(ctx.session, actor=ctx.principal, endpoint_id=endpoint_id, now=ctx.now)
        return await ctx.respond(_endpoint(row), status=200, resource=("webhook_endpoint", endpoint_id))

    @get("/{endpoint_id:str}/deliveries", opt=access(*OWNERS), operation_id="list_webhook_deliveries",
         responses=problems(400, 401, 403, 404, 429))
    async def deliveries(self, endpoint_id: Id, ctx: NamedDependency[RequestContext],
                         limit: Limit = None) -> WebhookDeliveryList:
        """The latest deliveries, newest first, each with every attempt (status, latency, answer)."""
        rows, attempts = await webhooks.deliveries(ctx.session, actor=ctx.principal, endpoint_id=endpoint_id,
                                                   limit=page_size(ctx, limit))
        return WebhookDeliveryList(items=[
            WebhookDeliveryOut(
                id=r.id, webhook_id=r.webhook_id, event_type=r.event_type, state=r.state, attempts=r.attempts,
                next_attempt_at=r.next_attempt_at, last_status=r.last_status, created_at=r.created_at,
                history=[WebhookAttemptOut(attempt=a.attempt, at=a.at, status_code=a.status_code,
                                           latency_ms=a.latency_ms, response_excerpt=a.response_excerpt,
                                           error=a.error, outcome=a.outcome) for a in attempts[r.id]],
            )
            for r in rows
        ])


class WebhookDeliveryController(Controller):
    path = "/v1/webhook-deliveries"
    tags = ["integrations"]

    @post("/{delivery_id:str}/retry", opt=access(*OWNERS, idempotent=True), status_code=202,
          operation_id="retry_webhook_delivery", responses=problems(400, 401, 403, 404, 409, 429))
    async def retry(self, delivery_id: Id, ctx: NamedDependency[RequestContext],
                    idempotency_key: IdempotencyKey = None) -> Response[Accepted]:
        """Send the message again: same `webhook-id` and body, a fresh signature."""
        await webhooks.retry_delivery(ctx.session, actor=ctx.principal, delivery_id=delivery_id, now=ctx.now)
        return await ctx.respond(Accepted(id=delivery_id, state="pending"), status=202,
                                 resource=("webhook_delivery", delivery_id))


class EventController(Controller):
    path = "/v1/events"
    tags = ["integrations"]

    @get("/", opt=access(*OWNERS, Role.ADMIN), operation_id="list_events", responses=problems(400, 401, 403, 429))
    async def list_(self, ctx: NamedDependency[RequestContext], limit: Limit = None,
                    after: Annotated[str | None, QueryParameter(name="after", min_length=1, max_length=512)] = None
                    ) -> Response[EventPage]:
        """The caller's events, oldest first, to catch up after an outage (`after` = the last
        `next_cursor`). Same envelope as the webhooks; order by `data.sequence` per resource."""
        position = ctx.runtime.cursors.decode(after, filters="events") if after else None
        size = page_size(ctx, limit)
        rows = await webhooks.events(ctx.session, actor=ctx.principal, after=position, limit=size + 1)
        rows, nxt = keyset_page(ctx, rows, size, "events", lambda r: (r.created_at, r.id))
        items = [EventOut(id=r.id, type=r.type, timestamp=r.created_at,
                          data={**r.payload, "sequence": r.sequence, "resource_type": r.resource_type,
                                "resource_id": r.resource_id}) for r in rows]
        headers = {"Link": f'<{ctx.request.url.path}?after={nxt}>; rel="next"'} if nxt else None
        return Response(EventPage(items=items, next_cursor=nxt), headers=headers)


__all__ = ("EventController", "WebhookDeliveryController", "WebhookEndpointController", "next_link")
