"""Webhook endpoints, the outbox relay and one delivery attempt (Standard Webhooks, at-least-once).

The database is the source of truth: the relay turns committed outbox events into delivery rows
(one per endpoint, UNIQUE), and a job makes each attempt, re-signed with a fresh timestamp over the
exact stored bytes. arq only carries ids; a lost job is re-enqueued by the relay's sweep."""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Sequence
from datetime import datetime, timedelta

import httpx
import msgspec
from cryptography.fernet import Fernet
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.webhooks.base import DeliveryPolicy, Outcome
from adapters.webhooks.delivery import deliver
from adapters.webhooks.signing import generate_secret
from adapters.webhooks.ssrf import parse_url
from broker.db.base import new_id
from broker.db.models import OutboxRow, WebhookAttemptRow, WebhookDeliveryRow, WebhookEndpointRow
from broker.db.webhooks import WebhookRepository
from broker.domain.access import Principal
from broker.errors import Conflict, NotFound, Rejected

#: Every event type the broker emits (the OpenAPI ``webhooks`` section lists the same).
EVENT_TYPES: tuple[str, ...] = (
    "organization.created", "workshop.verified",
    "request.created", "request.matched", "request.cancelled", "request.window_closed",
    "invitation.created", "invitation.declined",
    "quote.submitted", "quote.withdrawn", "quote.accepted",
    "order.created", "order.status_changed", "order.progress", "order.delivered", "order.late",
    "crisis_call.created", "crisis_call.allocated", "crisis_call.rebalanced", "crisis_call.progress",
    "crisis_call.updated", "crisis_call.closed",
    "commitment.created", "commitment.accepted", "commitment.declined", "commitment.expired",
    "commitment.cancelled", "commitment.resized", "commitment.completed",
)
ROLL_GRACE_DEFAULT = timedelta(hours=24)
ROLL_GRACE_MAX = timedelta(days=7)
LEASE = timedelta(seconds=60)  # > the delivery job's timeout (30 s): a held delivery is not re-enqueued


class SecretBox:
    """Encrypts endpoint secrets at rest with a key derived from BROKER_SECRET_KEY."""

    def __init__(self, secret_key: str) -> None:
        digest = hashlib.sha256(b"webhook-secrets:" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        return self._fernet.decrypt(sealed.encode()).decode()


def _check_types(event_types: Sequence[str]) -> list[str]:
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise Rejected(f"unknown event types: {', '.join(unknown)}", pointer="/event_types")
    return sorted(set(event_types))


async def create_endpoint(
    session: AsyncSession, *, actor: Principal, url: str, event_types: Sequence[str], box: SecretBox,
    allow_loopback: bool, now: datetime,
) -> tuple[WebhookEndpointRow, str]:
    parse_url(url, allow_loopback=allow_loopback, allowed_ports=DeliveryPolicy().allowed_ports)
    secret = generate_secret()
    row = WebhookEndpointRow(
        id=new_id(), org_id=actor.org_id, url=url, event_types=_check_types(event_types),
        secret_enc=box.seal(secret), status="active", created_at=now, updated_at=now,
    )
    WebhookRepository(session).add(row)
    return row, secret


async def my_endpoint(session: AsyncSession, *, actor: Principal, endpoint_id: str) -> WebhookEndpointRow:
    row = await WebhookRepository(session).endpoint(endpoint_id, org_id=actor.org_id)
    if row is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return row


async def my_endpoints(session: AsyncSession, *, actor: Principal) -> list[WebhookEndpointRow]:
    return await WebhookRepository(session).endpoints_of([actor.org_id], active_only=False)


async def roll_secret(
    session: AsyncSession, *, actor: Principal, endpoint_id: str, grace: timedelta, box: SecretBox, now: datetime
) -> str:
    """New secret at once; the old one keeps signing (both signatures sent) for ``grace``."""
    if not timedelta(0) <= grace <= ROLL_GRACE_MAX:
        raise Rejected("the grace period is between 0 and 7 days", pointer="/grace_hours")
    row = await my_endpoint(session, actor=actor, endpoint_id=endpoint_id)
    secret = generate_secret()
    row.previous_secret_enc, row.previous_until = row.secret_enc, now + grace
    row.secret_enc = box.seal(secret)
    row.updated_at = now
    return secret


async def deliveries(
    session: AsyncSession, *, actor: Principal, endpoint_id: str, limit: int
) -> tuple[list[WebhookDeliveryRow], dict[str, list[WebhookAttemptRow]]]:
    await my_endpoint(session, actor=actor, endpoint_id=endpoint_id)
    repo = WebhookRepository(session)
    rows = await repo.deliveries_of(endpoint_id, limit)
    return rows, await repo.attempts_of([r.id for r in rows])


async def retry_delivery(session: AsyncSession, *, actor: Principal, delivery_id: str, now: datetime) -> None:
    """Send one message again: same webhook-id and bytes, fresh signature, soon."""
    row = await WebhookRepository(session).delivery_of_org(delivery_id, org_id=actor.org_id)
    if row is None:
        raise NotFound(f"webhook delivery {delivery_id} not found")
    if row.state == "pending" and row.attempts == 0:
        raise Conflict("this delivery has not been attempted yet", code="delivery-pending")
    row.state, row.next_attempt_at, row.enqueued_at, row.updated_at = "pending", now, None, now


async def events(
    session: AsyncSession, *, actor: Principal, after: tuple[datetime, str] | None, limit: int
) -> list[OutboxRow]:
    return await WebhookRepository(session).events_for(actor.org_id, after=after, limit=limit)


def envelope(row: OutboxRow) -> bytes:
    """The bytes signed and sent, encoded once (WH-3, WH-7)."""
    data = {**row.payload, "sequence": row.sequence, "resource_type": row.resource_type,
            "resource_id": row.resource_id}
    return msgspec.json.encode({"type": row.type, "timestamp": row.created_at, "data": data})


async def relay(session: AsyncSession, *, now: datetime, skip_locked: bool, limit: int = 200) -> int:
    """Claim committed events and fan them out into delivery rows for the endpoints of every party
    that subscribed to the type. Returns how many events were claimed."""
    repo = WebhookRepository(session)
    claimed = await repo.claim_outbox(now=now, limit=limit, skip_locked=skip_locked)
    if not claimed:
        return 0
    parties = {p for row in claimed for p in (row.org_id, row.partner_org_id) if p}
    endpoints = await repo.endpoints_of(sorted(parties))
    for row in claimed:
        body = envelope(row)
        for endpoint in endpoints:
            if endpoint.org_id not in (row.org_id, row.partner_org_id):
                continue
            if endpoint.event_types and row.type not in endpoint.event_types:
                continue
            repo.add(WebhookDeliveryRow(
                id=new_id(), endpoint_id=endpoint.id, outbox_id=row.id, org_id=endpoint.org_id,
                webhook_id="msg_" + row.id.replace("-", ""), event_type=row.type, payload=body, state="pending",
                attempts=0, next_attempt_at=now, created_at=now, updated_at=now,
            ))
    return len(claimed)


async def due(session: AsyncSession, *, now: datetime, limit: int = 500) -> list[tuple[str, int]]:
    return await WebhookRepository(session).due_deliveries(now=now, lease=LEASE, limit=limit)


async def attempt(
    sessions: async_sessionmaker[AsyncSession], *, delivery_id: str, client: httpx.AsyncClient, box: SecretBox,
    policy: DeliveryPolicy, now: datetime, rng: random.Random,
) -> Outcome | None:
    """One attempt of one delivery, safe to run twice: the attempt number is taken by CAS in its own
    short transaction, the HTTP call happens outside any transaction, the result is stored after."""
    async with sessions() as session:
        repo = WebhookRepository(session)
        row = await repo.delivery(delivery_id)
        if row is None or row.state != "pending" or row.next_attempt_at > now + timedelta(seconds=1):
            return None
        endpoint = await session.get(WebhookEndpointRow, row.endpoint_id)
        if endpoint is None or endpoint.status != "active":
            row.state, row.updated_at = "failed", now
            await session.commit()
            return None
        number = row.attempts + 1
        if not await repo.take_attempt(delivery_id, seen_attempts=row.attempts, now=now):
            return None
        secrets = [box.open(endpoint.secret_enc)]
        if endpoint.previous_secret_enc and endpoint.previous_until and endpoint.previous_until > now:
            secrets.append(box.open(endpoint.previous_secret_enc))
        url, webhook_id, payload = endpoint.url, row.webhook_id, row.payload
        await session.commit()

    result = await deliver(client, url, secrets, webhook_id, payload, now=now, policy=policy, attempt=number, rng=rng)

    async with sessions() as session:
        repo = WebhookRepository(session)
        row = await repo.delivery(delivery_id)
        assert row is not None
        repo.add(WebhookAttemptRow(
            delivery_id=delivery_id, at=now, attempt=number, status_code=result.status_code,
            latency_ms=result.latency_ms, response_excerpt=result.response_excerpt, error=result.error,
            outcome=result.outcome,
        ))
        row.last_status, row.enqueued_at, row.updated_at = result.status_code, None, now
        if result.outcome is Outcome.DELIVERED:
            row.state = "delivered"
        elif result.outcome is Outcome.RETRY and result.next_delay_s is not None:
            row.next_attempt_at = now + timedelta(seconds=result.next_delay_s)
        elif result.outcome is Outcome.DISABLE:
            row.state = "failed"
            endpoint = await session.get(WebhookEndpointRow, row.endpoint_id)
            if endpoint is not None:
                endpoint.status, endpoint.disabled_reason = "disabled", f"the receiver answered {result.status_code}"
                endpoint.updated_at = now
        else:  # DEAD, or a retry with no attempt left
            row.state = "failed"
        await session.commit()
    return result.outcome
