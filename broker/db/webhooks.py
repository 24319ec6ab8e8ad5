"""Queries of webhook delivery: endpoints per organisation, the outbox claim, due deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, Row, case, func, insert, literal, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.base import table_of
from broker.db.models import OutboxRow, WebhookAttemptRow, WebhookDeliveryRow, WebhookEndpointRow, is_pending
from broker.db.status import DELIVERIES, ENDPOINTS, compare_and_set, move_all
from broker.domain.lifecycle import DELIVERY, OUTBOX, DeliveryState, EndpointStatus, OutboxState, check

DELIVERY_TABLE = table_of(WebhookDeliveryRow)
OUTBOX_TABLE = table_of(OutboxRow)
#: What the relay reads of a pending event (`WebhookRepository.pending_events`): all but its payload.
PENDING_EVENT_COLUMNS = (
    OutboxRow.id, OutboxRow.created_at, OutboxRow.org_id, OutboxRow.partner_org_id, OutboxRow.type,
    OutboxRow.resource_type, OutboxRow.resource_id, OutboxRow.sequence,
)


_RELAY = check(OUTBOX, OutboxState.PENDING, OutboxState.RELAYED)  # the relay's claim, asked of the table once


def claim_events(connection: Connection, event_ids: Sequence[str], *, now: datetime) -> set[str]:
    """``pending → relayed`` for those of ``event_ids`` still pending, in one compare-and-set UPDATE
    … RETURNING: of two relays that read the same events each claims a part, never one twice."""
    if not event_ids:
        return set()
    return set(connection.execute(
        update(OUTBOX_TABLE)
        .where(OutboxRow.id.in_(list(event_ids)), OutboxRow.state == OutboxState.PENDING.value)
        .values(state=_RELAY.value, claimed_at=now, attempts=OutboxRow.attempts + 1)
        .returning(OutboxRow.id)
    ).scalars())


def insert_deliveries(connection: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        connection.execute(insert(DELIVERY_TABLE), rows)


def take_due_deliveries(
    connection: Connection, *, now: datetime, lease: timedelta, limit: int, skip_locked: bool
) -> list[tuple[str, int]]:
    """Deliveries whose next attempt is due and that no job holds (never enqueued, or its lease
    expired: the job was lost or its worker killed), taken by compare-and-set so that two relays
    never enqueue one twice: marked enqueued now. Returns (id, attempts) pairs."""
    free = or_(WebhookDeliveryRow.enqueued_at.is_(None), WebhookDeliveryRow.enqueued_at <= now - lease)
    query = (
        select(WebhookDeliveryRow.id, WebhookDeliveryRow.attempts)
        .where(WebhookDeliveryRow.state == "pending", WebhookDeliveryRow.next_attempt_at <= now, free)
        .order_by(WebhookDeliveryRow.next_attempt_at, WebhookDeliveryRow.created_at, WebhookDeliveryRow.id)
        .limit(limit)
    )
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    due = [(i, a) for i, a in connection.execute(query).all()]
    if not due:
        return []
    won = set(connection.execute(
        update(DELIVERY_TABLE)
        .where(DELIVERY_TABLE.c.id.in_([i for i, _ in due]), DELIVERY_TABLE.c.state == "pending",
               or_(DELIVERY_TABLE.c.enqueued_at.is_(None), DELIVERY_TABLE.c.enqueued_at <= now - lease))
        .values(enqueued_at=now)
        .returning(DELIVERY_TABLE.c.id)
    ).scalars())
    return [(i, a) for i, a in due if i in won]


class WebhookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: WebhookEndpointRow | WebhookDeliveryRow | WebhookAttemptRow) -> None:
        self.session.add(row)

    async def endpoint(self, endpoint_id: str, *, org_id: str) -> WebhookEndpointRow | None:
        query = select(WebhookEndpointRow).where(WebhookEndpointRow.id == endpoint_id,
                                                 WebhookEndpointRow.org_id == org_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def endpoints_of(self, org_ids: Sequence[str], *, active_only: bool = True) -> list[WebhookEndpointRow]:
        query = select(WebhookEndpointRow).where(WebhookEndpointRow.org_id.in_(list(org_ids)))
        if active_only:
            query = query.where(WebhookEndpointRow.status == "active")
        return list((await self.session.execute(query.order_by(WebhookEndpointRow.created_at))).scalars())

    async def pending_events(self, *, now: datetime, limit: int) -> list[Row[Any]]:
        """Events waiting for the relay, oldest first (read only: `claim_events` takes them), without
        their payload: the relay needs it only for the events some endpoint subscribes to
        (`payloads`), and most have none (decoding every payload was most of a relay pass)."""
        query = (
            select(*PENDING_EVENT_COLUMNS)
            .where(is_pending(OutboxRow.state), OutboxRow.available_at <= now)
            .order_by(OutboxRow.created_at, OutboxRow.id)
            .limit(limit)
        )
        return list(await self.session.execute(query))

    async def payloads(self, event_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The payloads of these events."""
        if not event_ids:
            return {}
        query = select(OutboxRow.id, OutboxRow.payload).where(OutboxRow.id.in_(event_ids))
        return {row.id: row.payload for row in await self.session.execute(query)}

    async def enqueued_between(self, start: datetime, end: datetime, limit: int) -> list[tuple[str, int, datetime]]:
        """Pending deliveries enqueued in [start, end]: (id, attempts, enqueued_at), oldest first."""
        query = (
            select(WebhookDeliveryRow.id, WebhookDeliveryRow.attempts, WebhookDeliveryRow.enqueued_at)
            .where(WebhookDeliveryRow.state == "pending", WebhookDeliveryRow.enqueued_at >= start,
                   WebhookDeliveryRow.enqueued_at <= end)
            .order_by(WebhookDeliveryRow.enqueued_at)
            .limit(limit)
        )
        # ``enqueued_at >= start`` has no NULL rows: the test only narrows the type.
        return [(i, a, e) for i, a, e in (await self.session.execute(query)).all() if e is not None]

    async def release(self, delivery_ids: Sequence[str], *, enqueued_before: datetime) -> int:
        """These deliveries' jobs are lost: due for enqueueing again now rather than after the lease."""
        result = await self.session.execute(
            update(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.id.in_(list(delivery_ids)), WebhookDeliveryRow.state == "pending",
                   WebhookDeliveryRow.enqueued_at <= enqueued_before)
            .values(enqueued_at=None)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def release_leases(self) -> int:
        """Every pending delivery is due for enqueueing again (Redis came back empty: its jobs are gone)."""
        result = await self.session.execute(
            update(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.state == "pending", WebhookDeliveryRow.enqueued_at.is_not(None))
            .values(enqueued_at=None)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def relayed_since(self, since: datetime, types: Sequence[str]) -> list[str]:
        """Events of these types relayed at or after ``since`` (their notify jobs may be lost)."""
        query = select(OutboxRow.id).where(OutboxRow.state == OutboxState.RELAYED.value, OutboxRow.claimed_at >= since,
                                           OutboxRow.type.in_(list(types)))
        return list((await self.session.execute(query)).scalars())

    async def delivery(self, delivery_id: str) -> WebhookDeliveryRow | None:
        return await self.session.get(WebhookDeliveryRow, delivery_id)

    async def deliveries_with_endpoints(
        self, delivery_ids: Sequence[str]
    ) -> list[tuple[WebhookDeliveryRow, WebhookEndpointRow]]:
        query = (
            select(WebhookDeliveryRow, WebhookEndpointRow)
            .join(WebhookEndpointRow, WebhookEndpointRow.id == WebhookDeliveryRow.endpoint_id)
            .where(WebhookDeliveryRow.id.in_(list(delivery_ids)))
            .order_by(WebhookDeliveryRow.created_at, WebhookDeliveryRow.id)
        )
        return [(d, e) for d, e in (await self.session.execute(query)).all()]

    async def finish_deliveries(self, updates: Sequence[tuple[str, int, dict[str, Any]]]) -> set[str]:
        """Compare-and-set several deliveries in one statement: each ``(id, seen attempts, values)``
        applies only if the delivery is still pending at that attempt count (a new ``state`` must be
        a move the table allows from pending). Returns the ids won."""
        if not updates:
            return set()
        for _, _, changes in updates:
            if "state" in changes:
                check(DELIVERY, DeliveryState.PENDING, DeliveryState(changes["state"]))
        table = DELIVERY_TABLE
        key = WebhookDeliveryRow.id
        values: dict[str, Any] = {}
        for column in sorted({c for _, _, v in updates for c in v}):
            typed = table.c[column].type
            per_row = {i: v[column] for i, _, v in updates if column in v}
            if len(per_row) == len(updates) and len({repr(x) for x in per_row.values()}) == 1:
                values[column] = literal(next(iter(per_row.values())), typed)  # the same for all
            else:
                values[column] = case({i: literal(x, typed) for i, x in per_row.items()}, value=key,
                                      else_=table.c[column])
        seen = case({i: literal(n, Integer()) for i, n, _ in updates}, value=key)
        result = await self.session.execute(
            update(WebhookDeliveryRow)
            .where(key.in_([i for i, _, _ in updates]), WebhookDeliveryRow.state == DeliveryState.PENDING,
                   WebhookDeliveryRow.attempts == seen)
            .values(**values)
            .returning(key)
            .execution_options(synchronize_session=False)
        )
        return set(result.scalars())

    async def set_failing_since(self, endpoint_id: str, when: datetime | None, *, restart: bool = False) -> None:
        """Start (once, unless ``restart``) or end (``None``) the endpoint's failing streak."""
        query = update(WebhookEndpointRow).where(WebhookEndpointRow.id == endpoint_id)
        if not restart:
            query = query.where(WebhookEndpointRow.failing_since.is_(None) if when is not None
                                else WebhookEndpointRow.failing_since.is_not(None))
        await self.session.execute(query.values(failing_since=when).execution_options(synchronize_session=False))

    async def failed_deliveries_between(self, endpoint_id: str, start: datetime, end: datetime) -> int:
        """How many distinct deliveries of the endpoint had a failed attempt in [start, end]."""
        query = (
            select(func.count(func.distinct(WebhookAttemptRow.delivery_id)))
            .join(WebhookDeliveryRow, WebhookDeliveryRow.id == WebhookAttemptRow.delivery_id)
            .where(WebhookDeliveryRow.endpoint_id == endpoint_id, WebhookAttemptRow.outcome != "delivered",
                   WebhookAttemptRow.at >= start, WebhookAttemptRow.at <= end)
        )
        return int((await self.session.execute(query)).scalar_one())

    async def disable(self, endpoint_id: str, *, reason: str, now: datetime) -> bool:
        return await compare_and_set(self.session, ENDPOINTS, endpoint_id, expected=EndpointStatus.ACTIVE,
                                     to=EndpointStatus.DISABLED, values={"disabled_reason": reason, "updated_at": now})

    async def enable(self, endpoint: WebhookEndpointRow, *, now: datetime) -> bool:
        """disabled → active, its failing streak forgotten."""
        return await compare_and_set(
            self.session, ENDPOINTS, endpoint.id, expected=EndpointStatus.DISABLED, to=EndpointStatus.ACTIVE,
            values={"disabled_reason": None, "failing_since": None, "updated_at": now}, loaded=endpoint)

    async def fail_pending(self, endpoint_id: str, *, now: datetime) -> int:
        """A disabled endpoint stops its pending retries: they become failed (recover re-queues them)."""
        return await move_all(self.session, DELIVERIES, where=[WebhookDeliveryRow.endpoint_id == endpoint_id],
                              expected=DeliveryState.PENDING, to=DeliveryState.FAILED,
                              values={"enqueued_at": None, "updated_at": now})

    async def send_again(self, delivery: WebhookDeliveryRow, *, now: datetime) -> bool:
        """A delivered or failed delivery becomes due now (same webhook-id and bytes)."""
        return await compare_and_set(
            self.session, DELIVERIES, delivery.id, expected=[DeliveryState.DELIVERED, DeliveryState.FAILED],
            to=DeliveryState.PENDING, values={"next_attempt_at": now, "enqueued_at": None, "updated_at": now},
            loaded=delivery)

    async def requeue_failed(self, endpoint_id: str, *, since: datetime, now: datetime) -> int:
        """Failed deliveries of the endpoint created at or after ``since`` become due now; the relay
        enqueues due deliveries oldest first."""
        return await move_all(
            self.session, DELIVERIES,
            where=[WebhookDeliveryRow.endpoint_id == endpoint_id, WebhookDeliveryRow.created_at >= since],
            expected=DeliveryState.FAILED, to=DeliveryState.PENDING,
            values={"next_attempt_at": now, "enqueued_at": None, "updated_at": now})

    async def deliveries_of(self, endpoint_id: str, limit: int) -> list[WebhookDeliveryRow]:
        query = (
            select(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.endpoint_id == endpoint_id)
            .order_by(WebhookDeliveryRow.created_at.desc(), WebhookDeliveryRow.id)
            .limit(limit)
        )
        return list((await self.session.execute(query)).scalars())

    async def attempts_of(self, delivery_ids: Sequence[str]) -> dict[str, list[WebhookAttemptRow]]:
        out: dict[str, list[WebhookAttemptRow]] = {d: [] for d in delivery_ids}
        if delivery_ids:
            query = (
                select(WebhookAttemptRow)
                .where(WebhookAttemptRow.delivery_id.in_(list(delivery_ids)))
                .order_by(WebhookAttemptRow.id)
            )
            for row in (await self.session.execute(query)).scalars():
                out[row.delivery_id].append(row)
        return out

    async def delivery_of_org(self, delivery_id: str, *, org_id: str) -> WebhookDeliveryRow | None:
        query = select(WebhookDeliveryRow).where(WebhookDeliveryRow.id == delivery_id,
                                                 WebhookDeliveryRow.org_id == org_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def events_for(self, org_id: str, *, after: tuple[datetime, str] | None, limit: int) -> list[OutboxRow]:
        query = select(OutboxRow).where(or_(OutboxRow.org_id == org_id, OutboxRow.partner_org_id == org_id))
        if after is not None:
            query = query.where(
                (OutboxRow.created_at > after[0]) | ((OutboxRow.created_at == after[0]) & (OutboxRow.id > after[1]))
            )
        query = query.order_by(OutboxRow.created_at, OutboxRow.id).limit(limit)
        return list((await self.session.execute(query)).scalars())
