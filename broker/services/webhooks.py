"""Webhook endpoints, the outbox relay and one delivery attempt (Standard Webhooks, at-least-once).

The database is the source of truth: the relay (woken after each commit that wrote events, and a
1 s cron) turns committed outbox events into delivery rows (one per endpoint, UNIQUE); jobs of a
handful of deliveries each make one attempt of each, re-signed with a fresh timestamp over the
exact stored bytes. arq only carries ids; a delivery whose job was lost is enqueued again by the
relay once its lease expires, or at once when Redis shows the job never reached it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

import msgspec
from cryptography.fernet import Fernet
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.webhooks.base import Attempt, DeliveryPolicy, Outcome, WebhookSender
from adapters.webhooks.delivery import describe, failed_attempt
from adapters.webhooks.signing import generate_secret
from adapters.webhooks.ssrf import UnsafeUrl, parse_url
from broker.db.base import new_id
from broker.db.models import WebhookAttemptRow, WebhookDeliveryRow, WebhookEndpointRow
from broker.db.repositories import OUTBOX_WRITTEN as OUTBOX_WRITTEN  # re-exported for the workers
from broker.db.repositories import OrganisationRepository
from broker.db.session import Database
from broker.db.webhooks import WebhookRepository, claim_events, insert_deliveries, take_due_deliveries
from broker.domain.access import Principal
from broker.domain.events import EVENT_TYPES as EVENT_TYPES  # re-exported: the API checks subscriptions against it
from broker.domain.events import WebhookEndpointDisabled
from broker.domain.lifecycle import DeliveryState, EndpointStatus
from broker.domain.notifications import EMAILED_TYPES
from broker.domain.webhooks import PublishedEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from broker.errors import Conflict, NotFound, Rejected
from broker.services.events import emit, lost_race
from broker.services.notifications import email_recipient

log = logging.getLogger("broker.webhooks")

ROLL_GRACE_DEFAULT = timedelta(hours=24)
ROLL_GRACE_MAX = timedelta(days=7)
#: A delivery enqueued less than LEASE ago is held by its job; after it, the job is deemed lost (Redis
#: lost it, its worker was killed) and the relay enqueues the delivery again. The workers derive it
#: from BROKER_WEBHOOKS_TIMEOUT_S (see ``delivery_timings``).
LEASE = timedelta(seconds=46)
#: After Redis lost its data, notify jobs are queued again for the events relayed this recently
#: (a notify job runs within seconds of its relay; older ones were sent, and their markers are gone
#: with Redis: re-sending them would only duplicate e-mails).
NOTIFY_REPLAY = timedelta(minutes=2)

GRACE = timedelta(seconds=2)  # a job enqueued longer ago than this is in Redis, or was lost
#: RT-3: an endpoint whose every attempt failed for this long is disabled; the clock counts only once
#: two deliveries failed within CLOCK_START of the first failure.
DISABLE_AFTER = timedelta(days=5)
CLOCK_START = timedelta(hours=24)
#: Events that also reach a person by e-mail (the notify job): the event's organisation is told.
NOTIFY_TYPES: frozenset[str] = EMAILED_TYPES


async def to_notify(session: AsyncSession, events: Sequence[Any]) -> list[str]:
    """The events among ``events`` that send an e-mail: a notified type, for an organisation that
    gave a contact address (a job for the others would find nothing to send)."""
    candidates = [(e.id, org) for e in events if e.type in NOTIFY_TYPES
                  and (org := email_recipient(e.type, org_id=e.org_id, partner_org_id=e.partner_org_id))]
    if not candidates:
        return []
    reachable = await OrganisationRepository(session).with_contact([org for _, org in candidates])
    return [event_id for event_id, org in candidates if org in reachable]


def delivery_timings(http_timeout_s: float) -> tuple[float, timedelta]:
    """The delivery job's timeout and the lease of an enqueued delivery, from one attempt's HTTP
    timeout: the job also reads and records (20 % + 5 s of margin), and the lease outlives the job
    (5 s more), so a delivery is queued again only when its job is surely gone."""
    job_timeout = http_timeout_s * 1.2 + 5
    return job_timeout, timedelta(seconds=job_timeout + 5)


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
) -> tuple[WebhookEndpoint, str]:
    try:
        parse_url(url, allow_loopback=allow_loopback, allowed_ports=DeliveryPolicy().allowed_ports)
    except UnsafeUrl as exc:
        if exc.pointer is None:
            exc.pointer = "/url"
        raise
    secret = generate_secret()
    row = WebhookEndpointRow(
        id=new_id(), org_id=actor.org_id, url=url, event_types=_check_types(event_types),
        secret_enc=box.seal(secret), status=EndpointStatus.ACTIVE, created_at=now, updated_at=now,
    )
    WebhookRepository(session).add(row)
    return _view(row, WebhookEndpoint), secret


async def _my_endpoint(session: AsyncSession, *, actor: Principal, endpoint_id: str) -> WebhookEndpointRow:
    row = await WebhookRepository(session).endpoint(endpoint_id, org_id=actor.org_id)
    if row is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return row


async def my_endpoints(session: AsyncSession, *, actor: Principal) -> list[WebhookEndpoint]:
    return [_view(row, WebhookEndpoint)
            for row in await WebhookRepository(session).endpoints_of([actor.org_id], active_only=False)]


async def roll_secret(
    session: AsyncSession, *, actor: Principal, endpoint_id: str, grace: timedelta, box: SecretBox, now: datetime
) -> str:
    """New secret at once; the old one keeps signing (both signatures sent) for ``grace``."""
    if not timedelta(0) <= grace <= ROLL_GRACE_MAX:
        raise Rejected("the grace period is between 0 and 7 days", pointer="/grace_hours")
    row = await _my_endpoint(session, actor=actor, endpoint_id=endpoint_id)
    secret = generate_secret()
    row.previous_secret_enc, row.previous_until = row.secret_enc, now + grace
    row.secret_enc = box.seal(secret)
    row.updated_at = now
    return secret


async def deliveries(
    session: AsyncSession, *, actor: Principal, endpoint_id: str, limit: int
) -> tuple[list[WebhookDelivery], dict[str, list[WebhookAttempt]]]:
    await _my_endpoint(session, actor=actor, endpoint_id=endpoint_id)
    repo = WebhookRepository(session)
    rows = await repo.deliveries_of(endpoint_id, limit)
    attempts = await repo.attempts_of([r.id for r in rows])
    return ([_view(r, WebhookDelivery) for r in rows],
            {d: [_view(a, WebhookAttempt) for a in of] for d, of in attempts.items()})


async def retry_delivery(session: AsyncSession, *, actor: Principal, delivery_id: str, now: datetime) -> None:
    """Send one message again: same webhook-id and bytes, fresh signature, soon."""
    row = await WebhookRepository(session).delivery_of_org(delivery_id, org_id=actor.org_id)
    if row is None:
        raise NotFound(f"webhook delivery {delivery_id} not found")
    if row.state == DeliveryState.PENDING:
        if row.attempts == 0:
            raise Conflict("this delivery has not been attempted yet", code="delivery-pending")
        row.next_attempt_at, row.enqueued_at, row.updated_at = now, None, now  # a retry, due now
    elif not await WebhookRepository(session).send_again(row, now=now):
        raise lost_race("webhook delivery")


async def recover_endpoint(
    session: AsyncSession, *, actor: Principal, endpoint_id: str, since: datetime, now: datetime
) -> int:
    """RT-4: re-queue every failed delivery of this endpoint created at or after ``since``, oldest
    first (same webhook-id and bytes, a fresh signature each). Returns how many were re-queued."""
    if since > now:
        raise Rejected("`since` is in the future", pointer="/since")
    endpoint = await _my_endpoint(session, actor=actor, endpoint_id=endpoint_id)
    if endpoint.status != EndpointStatus.ACTIVE:
        raise Conflict("this endpoint is disabled; enable it first (POST …/enable), then recover",
                       code="endpoint-disabled")
    return await WebhookRepository(session).requeue_failed(endpoint_id, since=since, now=now)


async def enable_endpoint(session: AsyncSession, *, actor: Principal, endpoint_id: str, now: datetime
                          ) -> WebhookEndpoint:
    """Re-enable a disabled endpoint (410, or RT-3's five failing days). Nothing is replayed by
    itself: recover does that."""
    row = await _my_endpoint(session, actor=actor, endpoint_id=endpoint_id)
    if row.status == EndpointStatus.ACTIVE:  # already enabled: only its failing streak is forgotten
        row.disabled_reason, row.failing_since, row.updated_at = None, None, now
    elif not await WebhookRepository(session).enable(row, now=now):
        raise lost_race("webhook endpoint")
    return _view(row, WebhookEndpoint)


async def events(
    session: AsyncSession, *, actor: Principal, after: tuple[datetime, str] | None, limit: int
) -> list[PublishedEvent]:
    return [_view(row, PublishedEvent)
            for row in await WebhookRepository(session).events_for(actor.org_id, after=after, limit=limit)]


V = TypeVar("V", bound=msgspec.Struct)


def _view(row: Any, kind: type[V]) -> V:
    """The domain Struct ``kind`` of an ORM row (its fields read as attributes)."""
    return msgspec.convert(row, kind, from_attributes=True)


def envelope(row: Any, payload: dict[str, Any]) -> bytes:
    """The bytes signed and sent, encoded once (WH-3, WH-7): ``row`` has the event's columns but
    its payload (`PENDING_EVENT_COLUMNS`)."""
    data = {**payload, "sequence": row.sequence, "resource_type": row.resource_type,
            "resource_id": row.resource_id}
    return msgspec.json.encode({"type": row.type, "timestamp": row.created_at, "data": data})


class RelayPlan(NamedTuple):
    """What a relay pass will claim, read beforehand without a lock: the events, the delivery rows
    each fans out to (every subscribed endpoint of every party), and the events that send an e-mail."""

    event_ids: list[str]
    deliveries: dict[str, list[dict[str, Any]]]
    notify: list[str]


async def plan_relay(db: Database, *, now: datetime, limit: int = 200) -> RelayPlan:
    """The next pending events (at most ``limit``), on a reader."""
    async with db.reader() as session:
        repo = WebhookRepository(session)
        events = await repo.pending_events(now=now, limit=limit)
        if not events:
            return RelayPlan([], {}, [])
        parties = {p for row in events for p in (row.org_id, row.partner_org_id) if p}
        by_org: dict[str, list[WebhookEndpointRow]] = {}
        for endpoint in await repo.endpoints_of(sorted(parties)):
            by_org.setdefault(endpoint.org_id, []).append(endpoint)
        notify = await to_notify(session, events)
        subscribed = {
            row.id: endpoints for row in events if (endpoints := [
                endpoint for org in {row.org_id, row.partner_org_id} - {None}
                for endpoint in by_org.get(org, ())
                if not endpoint.event_types or row.type in endpoint.event_types
            ])
        }
        payloads = await repo.payloads(list(subscribed))
    deliveries: dict[str, list[dict[str, Any]]] = {}
    for row in events:
        if row.id not in subscribed:
            continue
        body = envelope(row, payloads[row.id])
        deliveries[row.id] = [{
            "id": new_id(), "endpoint_id": endpoint.id, "outbox_id": row.id, "org_id": endpoint.org_id,
            "webhook_id": "msg_" + row.id.replace("-", ""), "event_type": row.type, "payload": body,
            "state": DeliveryState.PENDING, "attempts": 0, "next_attempt_at": now, "enqueued_at": None,
            "last_status": None, "created_at": now, "updated_at": now,
        } for endpoint in subscribed[row.id]]
    return RelayPlan([row.id for row in events], deliveries, notify)


def commit_relay(
    connection: Connection, plan: RelayPlan, *, now: datetime, skip_locked: bool, lease: timedelta = LEASE,
    due_limit: int = 500,
) -> tuple[int, list[tuple[str, int]]]:
    """The relay pass's one write transaction (sync: `Database.write`, so that on SQLite the write
    lock is held only while SQLite works): claim the planned events still pending (compare-and-set),
    insert the deliveries of those claimed, and take the deliveries due for enqueueing. Returns the
    number claimed and the due (id, attempts)."""
    claimed = claim_events(connection, plan.event_ids, now=now)
    rows = [d for event_id in plan.event_ids if event_id in claimed for d in plan.deliveries.get(event_id, ())]
    insert_deliveries(connection, rows)
    return len(claimed), take_due_deliveries(connection, now=now, lease=lease, limit=due_limit,
                                             skip_locked=skip_locked)


def tick_marker(enqueued_at: datetime) -> str:
    """The Redis key a relay tick sets with its delivery jobs (``Enqueuer.enqueue_many(marker=…)``)."""
    return f"broker:relay:tick:{int(enqueued_at.timestamp() * 1000)}"


async def in_flight(
    session: AsyncSession, *, now: datetime, lease: timedelta = LEASE, limit: int = 1000
) -> dict[str, list[str]]:
    """Deliveries enqueued more than GRACE ago whose lease still runs, by their tick's marker. The
    relay asks Redis which markers it lacks: those deliveries' jobs were never queued."""
    out: dict[str, list[str]] = {}
    for delivery_id, _attempts, at in await WebhookRepository(session).enqueued_between(now - lease, now - GRACE,
                                                                                         limit):
        out.setdefault(tick_marker(at), []).append(delivery_id)
    return out


async def release(session: AsyncSession, delivery_ids: Sequence[str], *, now: datetime) -> int:
    """Jobs lost before they reached Redis (a crash between the commit and the enqueue): their
    deliveries are due for enqueueing again at once."""
    if not delivery_ids:
        return 0
    released = await WebhookRepository(session).release(delivery_ids, enqueued_before=now - GRACE)
    log.warning("%d delivery jobs were never queued (lost after their commit): queued again", released)
    return released


async def after_redis_loss(session: AsyncSession, *, now: datetime) -> list[str]:
    """Redis came back without its data: every pending delivery is enqueued again at once (not
    after its lease), and the events relayed in the last NOTIFY_REPLAY are returned so that their
    notify jobs are queued again (some may have been sent: their markers are gone too)."""
    repo = WebhookRepository(session)
    released = await repo.release_leases()
    notify = await repo.relayed_since(now - NOTIFY_REPLAY, sorted(NOTIFY_TYPES))
    log.warning("Redis lost its data: %d pending deliveries and %d notifications queued again", released, len(notify))
    return notify


async def attempt(
    db: Database, *, delivery_id: str, sender: WebhookSender, box: SecretBox, now: datetime
) -> Outcome | None:
    """One attempt of one delivery (see :func:`attempt_many`)."""
    outcomes = await attempt_many(db, delivery_ids=[delivery_id], sender=sender, box=box, now=now)
    return outcomes[delivery_id]


async def attempt_many(
    db: Database, *, delivery_ids: Sequence[str], sender: WebhookSender, box: SecretBox, now: datetime
) -> dict[str, Outcome | None]:
    """One attempt of each of these deliveries (a job carries a handful), safe to run twice. The
    deliveries and their endpoints are read in one query without a write lock; the signed POSTs go
    out concurrently, outside any transaction (whatever one of them raises is its own failed attempt,
    never the batch's); then one short write transaction records them (one each if the database
    refuses the batch's, so one unstorable result never sends the others again): per
    delivery a compare-and-set on its attempt count (a concurrent copy of the job that recorded the
    attempt first wins; ours is dropped, the receiver deduplicates on webhook-id) and the attempt
    row; per endpoint its failing streak (RT-3). Outcome None: nothing was sent (not due, gone,
    recorded by another copy, or its endpoint is disabled: the delivery is then failed)."""
    outcomes: dict[str, Outcome | None] = dict.fromkeys(delivery_ids)
    async with db.reader() as session:
        found = await WebhookRepository(session).deliveries_with_endpoints(delivery_ids)
    due = [(row, endpoint) for row, endpoint in found
           if row.state == DeliveryState.PENDING and row.next_attempt_at <= now + timedelta(seconds=1)]
    # disabled: retries stop
    stopped = [row for row, endpoint in due if endpoint.status != EndpointStatus.ACTIVE]
    live = [(row, endpoint) for row, endpoint in due if endpoint.status == EndpointStatus.ACTIVE]
    secrets: dict[str, list[str] | str] = {}  # an endpoint's secrets, or why they cannot be read
    for _row, endpoint in live:
        if endpoint.id not in secrets:
            try:
                ring = [box.open(endpoint.secret_enc)]
                if endpoint.previous_secret_enc and endpoint.previous_until and endpoint.previous_until > now:
                    ring.append(box.open(endpoint.previous_secret_enc))
            except Exception as exc:  # a secret sealed with another key: this endpoint's deliveries fail alone
                secrets[endpoint.id] = f"secret_unreadable: {describe(exc)}"
            else:
                secrets[endpoint.id] = ring
    results = await asyncio.gather(*[_send(sender, row, endpoint.url, secrets[endpoint.id], now=now)
                                     for row, endpoint in live])
    if not live and not stopped:
        return outcomes
    try:
        await _record(db, stopped, list(zip(live, results, strict=True)), outcomes, now=now)
    except Exception as exc:  # one result the database refuses must not lose the others: one transaction each
        log.warning("recording a batch of %d deliveries failed (%s): recording them one by one",
                    len(live) + len(stopped), describe(exc))
        for row in stopped:
            await _record(db, [row], [], outcomes, now=now)
        for (row, endpoint), result in zip(live, results, strict=True):
            try:
                await _record(db, [], [((row, endpoint), result)], outcomes, now=now)
            except Exception as again:  # still refused: keep the fact of the attempt, not its details
                log.warning("delivery %s: its attempt could not be recorded (%s)", row.id, describe(again))
                bare = failed_attempt(row.attempts + 1, row.webhook_id, now=now,
                                      error=f"unrecordable_result: {describe(again)}"[:200])
                bare = msgspec.structs.replace(bare, outcome=result.outcome, next_delay_s=result.next_delay_s)
                await _record(db, [], [((row, endpoint), bare)], outcomes, now=now)
    return outcomes


async def _send(
    sender: WebhookSender, row: WebhookDeliveryRow, url: str, secrets: list[str] | str, *, now: datetime
) -> Attempt:
    """One signed POST; whatever goes wrong (the sender raised, the secret is unreadable) is this
    delivery's failed attempt, never its batch's."""
    if isinstance(secrets, str):
        return failed_attempt(row.attempts + 1, row.webhook_id, now=now, error=secrets[:200])
    try:
        return await sender.send(url, secrets, row.webhook_id, row.payload, now=now, attempt=row.attempts + 1)
    except Exception as exc:
        log.warning("delivery %s: the sender raised %s", row.id, type(exc).__name__)
        return failed_attempt(row.attempts + 1, row.webhook_id, now=now, error=describe(exc))


def _storable(text: str) -> str:
    """Text both databases store: no NUL (PostgreSQL refuses it), no lone surrogate."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


async def _record(
    db: Database, stopped: Sequence[WebhookDeliveryRow],
    sent: Sequence[tuple[tuple[WebhookDeliveryRow, WebhookEndpointRow], Attempt]],
    outcomes: dict[str, Outcome | None], *, now: datetime,
) -> None:
    """One short write transaction: per delivery a compare-and-set on its attempt count (a concurrent
    copy of the job that recorded the attempt first wins; ours is dropped, the receiver deduplicates
    on webhook-id) and the attempt row; per endpoint its failing streak (RT-3). ``outcomes`` is filled
    only once the transaction committed."""
    won_outcomes: dict[str, Outcome] = {}
    async with db.writer() as session:
        repo = WebhookRepository(session)
        failed = {"state": DeliveryState.FAILED, "enqueued_at": None, "updated_at": now}
        await repo.finish_deliveries([(row.id, row.attempts, failed) for row in stopped])
        by_endpoint: dict[str, tuple[WebhookEndpointRow, list[Outcome]]] = {}
        updates: list[tuple[str, int, dict[str, Any]]] = []
        for (row, _endpoint), result in sent:
            values: dict[str, Any] = {"attempts": row.attempts + 1, "last_status": result.status_code,
                                      "enqueued_at": None, "updated_at": now}
            if result.outcome is Outcome.DELIVERED:
                values["state"] = DeliveryState.DELIVERED
            elif result.outcome is Outcome.RETRY and result.next_delay_s is not None:
                values["next_attempt_at"] = now + timedelta(seconds=result.next_delay_s)
            else:  # DISABLE (410), DEAD, or a retry with no attempt left
                values["state"] = DeliveryState.FAILED
            updates.append((row.id, row.attempts, values))
        won = await repo.finish_deliveries(updates)  # another copy of the job may have recorded some first
        for (row, endpoint), result in sent:
            if row.id not in won:
                continue
            repo.add(WebhookAttemptRow(
                delivery_id=row.id, at=now, attempt=row.attempts + 1, status_code=result.status_code,
                latency_ms=result.latency_ms, response_excerpt=_storable(result.response_excerpt),
                error=None if result.error is None else _storable(result.error), outcome=result.outcome,
            ))
            won_outcomes[row.id] = result.outcome
            by_endpoint.setdefault(endpoint.id, (endpoint, []))[1].append(result.outcome)
        for endpoint, seen in by_endpoint.values():
            if Outcome.DELIVERED in seen:
                if endpoint.failing_since is not None:
                    await repo.set_failing_since(endpoint.id, None)
            elif Outcome.DISABLE in seen:
                await _disable(session, endpoint, "the receiver answered 410 Gone", now=now)
            else:
                await _failed(session, endpoint, now=now)
        await session.commit()
    outcomes.update(won_outcomes)


async def _failed(session: AsyncSession, endpoint: WebhookEndpointRow, *, now: datetime) -> None:
    """RT-3: start the failing streak at the first failure since the last success; once it is five
    days old, and two deliveries failed within its first 24 h, disable the endpoint."""
    repo = WebhookRepository(session)
    since = endpoint.failing_since
    if since is None:
        await repo.set_failing_since(endpoint.id, now)
        return
    if now - since < DISABLE_AFTER:
        return
    if await repo.failed_deliveries_between(endpoint.id, since, since + CLOCK_START) < 2:
        await repo.set_failing_since(endpoint.id, now, restart=True)  # the clock never started: restart it here
        return
    days = (now - since) / timedelta(days=1)
    await _disable(session, endpoint, f"every delivery failed for {days:.1f} days (since {since:%Y-%m-%d %H:%M} UTC)",
                   now=now)


async def _disable(session: AsyncSession, endpoint: WebhookEndpointRow, reason: str, *, now: datetime) -> None:
    """Disable once (compare-and-set), stop its pending retries (they become failed: recover), and
    tell the owner: a ``webhook_endpoint.disabled`` event, which its other endpoints receive,
    ``GET /v1/events`` lists, and the notify job e-mails."""
    repo = WebhookRepository(session)
    if not await repo.disable(endpoint.id, reason=reason, now=now):
        return
    await repo.fail_pending(endpoint.id, now=now)
    since = endpoint.failing_since.isoformat() if endpoint.failing_since else None
    await emit(session, WebhookEndpointDisabled(id=endpoint.id, url=endpoint.url, reason=reason, failing_since=since),
               org_id=endpoint.org_id, resource_id=endpoint.id, now=now)
