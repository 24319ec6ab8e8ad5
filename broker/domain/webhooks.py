"""Webhook endpoints, their deliveries and attempts, and the published events, as their owners see
them (frozen, no ORM, no HTTP). An endpoint's secrets never leave the services: they are not here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class WebhookEndpoint(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    org_id: str
    url: str
    event_types: tuple[str, ...]  # empty: every type
    status: str
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookDelivery(msgspec.Struct, frozen=True, kw_only=True):
    """One event for one endpoint; its bytes stay in the database."""

    id: str
    endpoint_id: str
    webhook_id: str
    event_type: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    created_at: datetime


class WebhookAttempt(msgspec.Struct, frozen=True, kw_only=True):
    delivery_id: str
    attempt: int
    at: datetime
    status_code: int | None
    latency_ms: float
    response_excerpt: str
    error: str | None
    outcome: str


class PublishedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A committed event as `GET /v1/events` lists it: its envelope's fields (`services.webhooks.envelope`)."""

    id: str
    type: str
    created_at: datetime
    resource_type: str
    resource_id: str
    sequence: int
    payload: dict[str, Any]
