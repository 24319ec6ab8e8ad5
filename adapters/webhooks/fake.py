"""A webhook sender for tests: records every call, answers with scripted outcomes, sends nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from adapters.webhooks.base import Attempt, Outcome
from adapters.webhooks.signing import unix_seconds, webhook_headers


class SentWebhook(msgspec.Struct, frozen=True, kw_only=True):
    endpoint_url: str
    event_id: str
    payload: bytes
    headers: dict[str, str]
    attempt: int


class FakeWebhookSender:
    """Signs like the real sender (so receivers can verify ``headers``) and returns ``outcomes`` in turn
    (then DELIVERED)."""

    def __init__(self, outcomes: Sequence[Outcome] = ()) -> None:
        self._outcomes = list(outcomes)
        self.sent: list[SentWebhook] = []

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
        timestamp = unix_seconds(now)
        headers = webhook_headers(event_id, timestamp, payload, secrets)
        self.sent.append(
            SentWebhook(endpoint_url=endpoint_url, event_id=event_id, payload=payload, headers=headers, attempt=attempt)
        )
        outcome = self._outcomes.pop(0) if self._outcomes else Outcome.DELIVERED
        status = {Outcome.DELIVERED: 204, Outcome.DISABLE: 410}.get(outcome, 500)
        return Attempt(
            attempt=attempt,
            webhook_id=event_id,
            timestamp=timestamp,
            status_code=status,
            latency_ms=0,
            response_excerpt="",
            error=None if outcome is Outcome.DELIVERED else f"http_{status}",
            outcome=outcome,
            next_delay_s=5.0 if outcome is Outcome.RETRY else None,
        )
