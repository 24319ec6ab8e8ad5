"""Queries of webhook delivery: endpoints per organisation, the outbox claim, due deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.models import OutboxRow, WebhookAttemptRow, WebhookDeliveryRow, WebhookEndpointRow


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

    async def claim_outbox(self, *, now: datetime, limit: int, skip_locked: bool) -> list[OutboxRow]:
        """Pending events, oldest first, each claimed once even with several relays: the selected
        rows are locked (SKIP LOCKED on PostgreSQL; the writer's BEGIN IMMEDIATE on SQLite) and the
        claim is one compare-and-set UPDATE … RETURNING over all of them."""
        query = (
            select(OutboxRow)
            .where(OutboxRow.state == "pending", OutboxRow.available_at <= now)
            .order_by(OutboxRow.created_at, OutboxRow.id)
            .limit(limit)
        )
        if skip_locked:
            query = query.with_for_update(skip_locked=True)
        rows = list((await self.session.execute(query)).scalars())
        if not rows:
            return []
        won = set(
            (await self.session.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_([r.id for r in rows]), OutboxRow.state == "pending")
                .values(state="relayed", claimed_at=now, attempts=OutboxRow.attempts + 1)
                .returning(OutboxRow.id)
                .execution_options(synchronize_session=False)
            )).scalars()
        )
        return [r for r in rows if r.id in won]

    async def due_deliveries(self, *, now: datetime, lease: timedelta, limit: int) -> list[tuple[str, int]]:
        """Deliveries whose next attempt is due and that no worker holds (lease expired): marked
        enqueued now. Returns (id, attempts) pairs for the job ids."""
        query = (
            select(WebhookDeliveryRow.id, WebhookDeliveryRow.attempts)
            .where(
                WebhookDeliveryRow.state == "pending",
                WebhookDeliveryRow.next_attempt_at <= now,
                or_(WebhookDeliveryRow.enqueued_at.is_(None), WebhookDeliveryRow.enqueued_at <= now - lease),
            )
            .order_by(WebhookDeliveryRow.next_attempt_at, WebhookDeliveryRow.created_at, WebhookDeliveryRow.id)
            .limit(limit)
        )
        due = [(i, a) for i, a in (await self.session.execute(query)).all()]
        if due:
            await self.session.execute(
                update(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.id.in_([i for i, _ in due]))
                .values(enqueued_at=now)
                .execution_options(synchronize_session=False)
            )
        return due

    async def delivery(self, delivery_id: str) -> WebhookDeliveryRow | None:
        return await self.session.get(WebhookDeliveryRow, delivery_id)

    async def delivery_with_endpoint(
        self, delivery_id: str
    ) -> tuple[WebhookDeliveryRow, WebhookEndpointRow] | None:
        query = (
            select(WebhookDeliveryRow, WebhookEndpointRow)
            .join(WebhookEndpointRow, WebhookEndpointRow.id == WebhookDeliveryRow.endpoint_id)
            .where(WebhookDeliveryRow.id == delivery_id)
        )
        found = (await self.session.execute(query)).first()
        return None if found is None else (found[0], found[1])

    async def finish_delivery(self, delivery_id: str, *, seen_attempts: int, values: dict[str, Any]) -> bool:
        """Compare-and-set: only one copy of a job records attempt number ``seen_attempts + 1``."""
        result = await self.session.execute(
            update(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.id == delivery_id, WebhookDeliveryRow.state == "pending",
                   WebhookDeliveryRow.attempts == seen_attempts)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

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
        result = await self.session.execute(
            update(WebhookEndpointRow)
            .where(WebhookEndpointRow.id == endpoint_id, WebhookEndpointRow.status == "active")
            .values(status="disabled", disabled_reason=reason, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def fail_pending(self, endpoint_id: str, *, now: datetime) -> int:
        """A disabled endpoint stops its pending retries: they become failed (recover re-queues them)."""
        result = await self.session.execute(
            update(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.endpoint_id == endpoint_id, WebhookDeliveryRow.state == "pending")
            .values(state="failed", enqueued_at=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def requeue_failed(self, endpoint_id: str, *, since: datetime, now: datetime) -> int:
        """Failed deliveries of the endpoint created at or after ``since`` become due now; the relay
        enqueues due deliveries oldest first."""
        result = await self.session.execute(
            update(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.endpoint_id == endpoint_id, WebhookDeliveryRow.state == "failed",
                   WebhookDeliveryRow.created_at >= since)
            .values(state="pending", next_attempt_at=now, enqueued_at=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

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
