"""The WebhookSender port and the values it exchanges."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import msgspec


class Outcome(enum.StrEnum):
    """What the caller should do after one attempt (RT-2)."""

    DELIVERED = "delivered"  # 2xx
    RETRY = "retry"  # 3xx, other 4xx/5xx, timeouts, refused URL: schedule the next attempt
    DISABLE = "disable"  # 410 Gone: disable the endpoint at once
    DEAD = "dead"  # failed and it was the last attempt of the schedule


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    """One delivery attempt, as the service layer stores it (one row per attempt)."""

    attempt: int  # 1-based number of this attempt
    webhook_id: str
    timestamp: int  # the ``webhook-timestamp`` sent (Unix seconds)
    status_code: int | None  # None when no HTTP answer came back
    latency_ms: int
    response_excerpt: str  # the first 1 kB of the answer, decoded leniently
    error: str | None  # short machine-ish reason: "timeout", "redirect_not_followed", "url_refused: …"
    outcome: Outcome
    retry_after_s: float | None = None  # the receiver's Retry-After (429/503), seconds, capped at 24 h
    next_delay_s: float | None = None  # when outcome is RETRY: wait this long before the next attempt


class DeliveryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Knobs of one delivery. ``allow_loopback`` is the BROKER_WEBHOOKS_ALLOW_LOOPBACK setting (tests, demo)."""

    allow_loopback: bool = False
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 15.0
    total_timeout_s: float = 30.0
    excerpt_bytes: int = 1024
    allowed_ports: frozenset[int] = frozenset({443, 8443})  # for public https URLs; loopback may use any port


class SecretRing(msgspec.Struct, frozen=True, kw_only=True):
    """An endpoint's signing secrets: the current one and, during a roll's grace period, the previous one."""

    current: str
    previous: str | None = None
    previous_until: datetime | None = None  # aware UTC; the previous secret signs until then

    def active(self, now: datetime) -> list[str]:
        """Secrets to sign with at ``now``: the current one first, then the previous one while in grace."""
        if self.previous is not None and self.previous_until is not None and now < self.previous_until:
            return [self.current, self.previous]
        return [self.current]


class WebhookSender(Protocol):
    async def send(
        self,
        endpoint_url: str,
        secrets: Sequence[str],
        event_id: str,
        payload: bytes,
        *,
        now: datetime,
        attempt: int = 1,
    ) -> Attempt:
        """Sign and POST ``payload`` once; never raises for delivery failures (they are in the Attempt)."""
        ...
