"""Delivery attempts against a real receiver on 127.0.0.1 (test flag on), and the RT-1 schedule."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import msgspec
import pytest
import standardwebhooks
import standardwebhooks.webhooks as swh
from standardwebhooks.webhooks import WebhookVerificationError
from webhook_receiver import Receiver, Reply

from adapters.webhooks.base import Attempt, DeliveryPolicy, Outcome
from adapters.webhooks.delivery import (
    MAX_ATTEMPTS,
    SCHEDULE_S,
    HttpWebhookSender,
    deliver,
    next_delay,
    parse_retry_after,
)
from adapters.webhooks.fake import FakeWebhookSender
from adapters.webhooks.signing import generate_secret, new_message_id
from adapters.webhooks.transport import make_client

POLICY = DeliveryPolicy(allow_loopback=True, connect_timeout_s=2, read_timeout_s=2, total_timeout_s=4)
EVENT = {"type": "order.created", "timestamp": "2025-03-01T10:00:00Z", "data": {"id": "ord_1", "sequence": 1}}
BODY = msgspec.json.encode(EVENT)


def verify_at(secret: str, body: bytes, headers: dict[str, str], when: datetime) -> object:
    """``standardwebhooks.Webhook.verify`` with its clock frozen at ``when`` (its ±5 min tolerance is fixed)."""

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[no-untyped-def,override]
            return when.astimezone(tz)

    original = swh.datetime
    swh.datetime = Frozen  # type: ignore[misc]
    try:
        return standardwebhooks.Webhook(secret).verify(body, headers)
    finally:
        swh.datetime = original  # type: ignore[misc]


async def _send(receiver: Receiver, secret: str, msg_id: str, *, now: datetime, attempt: int = 1) -> Attempt:
    async with make_client(POLICY) as client:
        return await deliver(
            client, receiver.url, [secret], msg_id, BODY, now=now, policy=POLICY, attempt=attempt, rng=random.Random(7)
        )


async def test_500_then_200_retry_then_delivered_and_every_attempt_verifies(receiver: Receiver) -> None:
    receiver.script = [Reply(status=500, body=b"boom"), Reply(status=200, body=b"thanks")]
    secret = generate_secret()
    msg_id = new_message_id()
    first_at = datetime.now(UTC)
    first = await _send(receiver, secret, msg_id, now=first_at)
    assert first.outcome is Outcome.RETRY and first.status_code == 500 and first.error == "http_500"
    assert first.response_excerpt == "boom"
    assert first.next_delay_s is not None and 4.5 <= first.next_delay_s <= 5.5
    second_at = first_at + timedelta(minutes=30)  # the retry, re-signed 30 minutes later (WH-4)
    second = await _send(receiver, secret, msg_id, now=second_at, attempt=2)
    assert second.outcome is Outcome.DELIVERED and second.status_code == 200 and second.error is None
    assert second.next_delay_s is None

    one, two = receiver.received
    assert one.method == two.method == "POST" and one.path == "/hooks"
    assert one.body == two.body == BODY  # bytes signed = bytes sent
    assert one.headers["webhook-id"] == two.headers["webhook-id"] == msg_id
    assert int(two.headers["webhook-timestamp"]) - int(one.headers["webhook-timestamp"]) == 1800
    assert one.headers["webhook-signature"] != two.headers["webhook-signature"]
    assert one.headers["content-type"] == "application/json"
    # Each attempt verifies at its own send time with the reference library ...
    assert verify_at(secret, one.body, one.headers, first_at) == EVENT
    assert verify_at(secret, two.body, two.headers, second_at + timedelta(seconds=2)) == EVENT
    # ... and re-signing is what makes the retry verify: the first signature is stale 30 minutes later.
    with pytest.raises(WebhookVerificationError):
        verify_at(secret, one.body, one.headers, second_at)


async def test_real_clock_verification_without_freezing(receiver: Receiver) -> None:
    secret = generate_secret()
    attempt = await _send(receiver, secret, "msg_now", now=datetime.now(UTC))
    assert attempt.outcome is Outcome.DELIVERED
    got = receiver.received[0]
    assert standardwebhooks.Webhook(secret).verify(got.body, got.headers) == EVENT


async def test_rolled_secret_both_signatures_on_the_wire(receiver: Receiver) -> None:
    old, new = generate_secret(), generate_secret()
    async with make_client(POLICY) as client:
        await deliver(client, receiver.url, [new, old], "msg_roll", BODY, now=datetime.now(UTC), policy=POLICY)
    got = receiver.received[0]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert standardwebhooks.Webhook(secret).verify(got.body, got.headers) == EVENT


async def test_410_disables(receiver: Receiver) -> None:
    receiver.script = [Reply(status=410, body=b"gone")]
    attempt = await _send(receiver, generate_secret(), "msg_410", now=datetime.now(UTC))
    assert attempt.outcome is Outcome.DISABLE and attempt.status_code == 410 and attempt.next_delay_s is None


async def test_429_retry_after_seconds_is_honoured(receiver: Receiver) -> None:
    receiver.script = [Reply(status=429, headers={"retry-after": "120"})]
    attempt = await _send(receiver, generate_secret(), "msg_429", now=datetime.now(UTC))
    assert attempt.outcome is Outcome.RETRY
    assert attempt.retry_after_s == 120
    assert attempt.next_delay_s == 120  # max(5 s ± 10 %, 120 s)


async def test_503_retry_after_http_date_is_honoured(receiver: Receiver) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    receiver.script = [Reply(status=503, headers={"retry-after": format_datetime(now + timedelta(hours=1), True)})]
    attempt = await _send(receiver, generate_secret(), "msg_503", now=now)
    assert attempt.retry_after_s == 3600
    assert attempt.next_delay_s == 3600


async def test_retry_after_never_shortens_the_schedule_and_is_capped(receiver: Receiver) -> None:
    receiver.script = [
        Reply(status=429, headers={"retry-after": "1"}),
        Reply(status=429, headers={"retry-after": "999999"}),
    ]
    async with make_client(POLICY) as client:
        a = await deliver(
            client,
            receiver.url,
            [generate_secret()],
            "m",
            BODY,
            now=datetime.now(UTC),
            policy=POLICY,
            attempt=3,
            rng=random.Random(3),
        )
        b = await deliver(
            client,
            receiver.url,
            [generate_secret()],
            "m",
            BODY,
            now=datetime.now(UTC),
            policy=POLICY,
            attempt=3,
            rng=random.Random(3),
        )
    assert a.next_delay_s is not None and 1620 <= a.next_delay_s <= 1980  # the 30 min step ± 10 %
    assert b.retry_after_s == 86400 and b.next_delay_s == 86400


async def test_hanging_receiver_times_out_and_retries(receiver: Receiver) -> None:
    receiver.script = [Reply(hang=True)]
    policy = DeliveryPolicy(allow_loopback=True, connect_timeout_s=1, read_timeout_s=0.3, total_timeout_s=2)
    async with make_client(policy) as client:
        attempt = await deliver(
            client, receiver.url, [generate_secret()], "msg_hang", BODY, now=datetime.now(UTC), policy=policy
        )
    assert attempt.error == "timeout" and attempt.status_code is None
    assert attempt.outcome is Outcome.RETRY
    assert 250 <= attempt.latency_ms < 2000


async def test_total_deadline_bounds_a_slow_dribble(receiver: Receiver) -> None:
    receiver.script = [Reply(hang=True)]
    policy = DeliveryPolicy(allow_loopback=True, connect_timeout_s=1, read_timeout_s=5, total_timeout_s=0.3)
    async with make_client(policy) as client:
        attempt = await deliver(
            client, receiver.url, [generate_secret()], "m", BODY, now=datetime.now(UTC), policy=policy
        )
    assert attempt.error == "timeout" and attempt.latency_ms < 2000


async def test_response_excerpt_capped_at_1_kb(receiver: Receiver) -> None:
    receiver.script = [Reply(status=200, body=b"x" * 5000 + b"TAIL")]
    attempt = await _send(receiver, generate_secret(), "msg_big", now=datetime.now(UTC))
    assert attempt.outcome is Outcome.DELIVERED
    assert len(attempt.response_excerpt) == 1024 and "TAIL" not in attempt.response_excerpt


async def test_connection_refused_is_a_retry() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with make_client(POLICY) as client:
        attempt = await deliver(
            client, f"http://127.0.0.1:{port}/", [generate_secret()], "m", BODY, now=datetime.now(UTC), policy=POLICY
        )
    assert attempt.status_code is None and attempt.outcome is Outcome.RETRY and attempt.error


async def test_last_attempt_failure_is_dead(receiver: Receiver) -> None:
    receiver.script = [Reply(status=500)]
    attempt = await _send(receiver, generate_secret(), "msg_dead", now=datetime.now(UTC), attempt=MAX_ATTEMPTS)
    assert attempt.outcome is Outcome.DEAD and attempt.next_delay_s is None


async def test_http_sender_wraps_deliver(receiver: Receiver) -> None:
    async with make_client(POLICY) as client:
        sender = HttpWebhookSender(client, policy=POLICY, rng=random.Random(1))
        attempt = await sender.send(receiver.url, [generate_secret()], "msg_s", BODY, now=datetime.now(UTC))
    assert attempt.outcome is Outcome.DELIVERED


async def test_fake_sender_records_and_scripts() -> None:
    secret = generate_secret()
    fake = FakeWebhookSender([Outcome.RETRY])
    now = datetime.now(UTC)
    first = await fake.send("https://hooks.example.com/", [secret], "msg_f", BODY, now=now)
    second = await fake.send("https://hooks.example.com/", [secret], "msg_f", BODY, now=now, attempt=2)
    assert (first.outcome, second.outcome) == (Outcome.RETRY, Outcome.DELIVERED)
    assert [s.attempt for s in fake.sent] == [1, 2]
    assert standardwebhooks.Webhook(secret).verify(BODY, fake.sent[0].headers) == EVENT


# --- RT-1 schedule -----------------------------------------------------------------------------------------


def test_schedule_constant_and_cumulative_offset() -> None:
    assert SCHEDULE_S == (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
    assert sum(SCHEDULE_S) == 272_105  # last attempt at 75 h 35 min 05 s


@pytest.mark.parametrize("seed", range(20))
def test_jittered_offsets_stay_within_ten_percent(seed: int) -> None:
    rng = random.Random(seed)
    total = 0.0
    for attempt in range(1, MAX_ATTEMPTS):
        delay = next_delay(attempt, rng=rng)
        assert delay is not None
        base = SCHEDULE_S[attempt]
        assert 0.9 * base <= delay <= 1.1 * base
        total += delay
    assert 0.9 * 272_105 <= total <= 1.1 * 272_105
    assert next_delay(MAX_ATTEMPTS, rng=rng) is None


def test_jitter_is_deterministic_with_a_seed_and_varies_across_seeds() -> None:
    a = [next_delay(n, rng=random.Random(42)) for n in range(1, 10)]
    b = [next_delay(n, rng=random.Random(42)) for n in range(1, 10)]
    assert a == b
    assert {next_delay(5, rng=random.Random(s)) for s in range(10)}.__len__() > 1
    with pytest.raises(ValueError):
        next_delay(0, rng=random.Random(1))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 7 ", 7.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("-5", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 60.0),
        ("Wed, 21 Oct 2015 07:00:00 GMT", 0.0),
        ("999999999", 86400.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 27, tzinfo=UTC)
    assert parse_retry_after(value, now=now) == expected
