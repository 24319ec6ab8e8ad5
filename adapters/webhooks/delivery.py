"""One signed delivery attempt and the retry schedule (WH-3, WH-4, RT-1, RT-2).

``deliver`` never raises for a delivery failure: everything the service layer must store and decide is in the
returned ``Attempt``. Each call signs afresh with ``now`` (a retry 30 minutes later still verifies).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime

import httpx

from adapters.webhooks.base import Attempt, DeliveryPolicy, Outcome
from adapters.webhooks.signing import unix_seconds, webhook_headers
from adapters.webhooks.ssrf import UnsafeUrl, parse_url

# RT-1: delay before attempt n (1-based), from the previous attempt: the Standard Webhooks example schedule.
SCHEDULE_S: tuple[int, ...] = (0, 5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 14 * 3600, 20 * 3600, 24 * 3600)
MAX_ATTEMPTS = len(SCHEDULE_S)
JITTER = 0.10  # ±10 %
MAX_DELAY_S = 24 * 3600  # Retry-After is honoured up to this
THROTTLE_STATUSES = frozenset({429, 503})


def next_delay(attempt_number: int, *, rng: random.Random) -> float | None:
    """Seconds to wait after failed attempt ``attempt_number`` (1-based) before the next one, ±10 % jitter;
    None when that was the last attempt (the delivery is dead)."""
    if attempt_number < 1:
        raise ValueError("attempt numbers start at 1")
    if attempt_number >= MAX_ATTEMPTS:
        return None
    base = SCHEDULE_S[attempt_number]
    return base * rng.uniform(1 - JITTER, 1 + JITTER)


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now`` (delta-seconds or an HTTP date), capped at 24 h; None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(int(value))
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - now).total_seconds()
    return min(max(seconds, 0.0), float(MAX_DELAY_S))


def _decide(
    status: int | None, attempt: int, *, retry_after_s: float | None, rng: random.Random
) -> tuple[Outcome, float | None]:
    if status is not None and 200 <= status < 300:
        return Outcome.DELIVERED, None
    if status == 410:
        return Outcome.DISABLE, None
    delay = next_delay(attempt, rng=rng)
    if delay is None:
        return Outcome.DEAD, None
    if retry_after_s is not None:
        delay = min(max(delay, retry_after_s), float(MAX_DELAY_S))
    return Outcome.RETRY, delay


async def deliver(
    client: httpx.AsyncClient,
    endpoint_url: str,
    secrets: Sequence[str | bytes],
    event_id: str,
    payload_bytes: bytes,
    *,
    now: datetime,
    policy: DeliveryPolicy | None = None,
    attempt: int = 1,
    rng: random.Random | None = None,
) -> Attempt:
    """POST ``payload_bytes`` (the exact bytes signed) to ``endpoint_url`` once, signed at ``now``.

    ``client`` should come from ``transport.make_client`` (pinned, no redirects). ``event_id`` is the
    ``webhook-id`` (same on every attempt). ``rng`` draws the jitter of the next delay (seeded in tests)."""
    policy = policy or DeliveryPolicy()
    rng = rng or random.Random()
    timestamp = unix_seconds(now)
    headers = webhook_headers(event_id, timestamp, payload_bytes, secrets)
    timeout = httpx.Timeout(
        connect=policy.connect_timeout_s,
        read=policy.read_timeout_s,
        write=policy.read_timeout_s,
        pool=policy.connect_timeout_s,
    )
    status: int | None = None
    excerpt = b""
    error: str | None = None
    retry_after_s: float | None = None
    started = time.perf_counter()
    try:
        parse_url(endpoint_url, allow_loopback=policy.allow_loopback, allowed_ports=policy.allowed_ports)
        async with asyncio.timeout(policy.total_timeout_s):
            request = client.build_request(
                "POST", endpoint_url, content=payload_bytes, headers=headers, timeout=timeout
            )
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                status = response.status_code
                if response.is_stream_consumed:  # an in-memory response (tests' MockTransport)
                    excerpt = response.content[: policy.excerpt_bytes]
                else:
                    async for chunk in response.aiter_raw():
                        excerpt += chunk
                        if len(excerpt) >= policy.excerpt_bytes:
                            break
            finally:
                await response.aclose()
            if status in THROTTLE_STATUSES:
                retry_after_s = parse_retry_after(response.headers.get("retry-after"), now=now)
            if 300 <= status < 400:
                error = "redirect_not_followed"
            elif not 200 <= status < 300:
                error = f"http_{status}"
    except UnsafeUrl as exc:
        error = f"url_refused: {exc.detail}"
    except (TimeoutError, httpx.TimeoutException):
        error = "timeout"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:200] or type(exc).__name__
    except OSError as exc:
        error = f"{type(exc).__name__}: {exc}"[:200]
    except Exception as exc:  # anything else (connect() raises OverflowError on port 65536): this attempt failed
        error = describe(exc)
    latency_ms = int((time.perf_counter() - started) * 1000)
    outcome, next_delay_s = _decide(status, attempt, retry_after_s=retry_after_s, rng=rng)
    return Attempt(
        attempt=attempt,
        webhook_id=event_id,
        timestamp=timestamp,
        status_code=status,
        latency_ms=latency_ms,
        response_excerpt=excerpt[: policy.excerpt_bytes].decode("utf-8", "replace"),
        error=error,
        outcome=outcome,
        retry_after_s=retry_after_s,
        next_delay_s=next_delay_s,
    )


def describe(exc: BaseException) -> str:
    """An exception as an attempt's ``error``: the first exception of a group (anyio wraps connect()'s), at
    most 200 characters."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc)
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:200]


def failed_attempt(
    attempt: int, webhook_id: str, *, now: datetime, error: str, rng: random.Random | None = None
) -> Attempt:
    """The attempt of a send that raised instead of returning one (a sender's bug, an unreadable secret):
    recorded like any failure without an answer, and retried on the schedule."""
    outcome, delay = _decide(None, attempt, retry_after_s=None, rng=rng or random.Random())
    return Attempt(attempt=attempt, webhook_id=webhook_id, timestamp=unix_seconds(now), status_code=None,
                   latency_ms=0, response_excerpt="", error=error, outcome=outcome, next_delay_s=delay)


class HttpWebhookSender:
    """The real ``WebhookSender``: one pinned client, one policy, one seeded or system rng."""

    def __init__(
        self, client: httpx.AsyncClient, *, policy: DeliveryPolicy | None = None, rng: random.Random | None = None
    ) -> None:
        self._client = client
        self._policy = policy or DeliveryPolicy()
        self._rng = rng or random.Random()

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
        return await deliver(
            self._client,
            endpoint_url,
            secrets,
            event_id,
            payload,
            now=now,
            policy=self._policy,
            attempt=attempt,
            rng=self._rng,
        )
