"""Standard Webhooks signing: the published vector, rotation, and the reference verifier (WH-2..6)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
import standardwebhooks
from standardwebhooks.webhooks import WebhookVerificationError

from adapters.webhooks.base import SecretRing
from adapters.webhooks.signing import (
    InvalidSecret,
    generate_secret,
    new_message_id,
    parse_secret,
    roll,
    sign,
    webhook_headers,
)
from broker.errors import Rejected

# Published test vector: standard-webhooks libraries/python/tests/test_webhooks.py (INTEGRATION.md §1.2).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_published_vector_byte_for_byte() -> None:
    assert sign(VECTOR_ID, VECTOR_TS, VECTOR_BODY, [VECTOR_SECRET]) == VECTOR_SIG


def test_reference_library_agrees_on_the_vector() -> None:
    ts = datetime.fromtimestamp(VECTOR_TS, tz=UTC)
    assert standardwebhooks.Webhook(VECTOR_SECRET).sign(VECTOR_ID, ts, VECTOR_BODY.decode()) == VECTOR_SIG


def test_generated_secret_shape_and_verification_now() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert generate_secret() != secret
    body = msgspec.json.encode({"type": "order.created", "timestamp": "2025-01-01T00:00:00Z", "data": {"id": "o1"}})
    now = datetime.now(UTC)
    headers = webhook_headers(new_message_id(), int(now.timestamp()), body, [secret])
    assert headers["content-type"] == "application/json"
    assert standardwebhooks.Webhook(secret).verify(body, headers)["data"] == {"id": "o1"}


def test_one_corrupted_byte_fails_verification() -> None:
    secret = generate_secret()
    body = b'{"type":"order.created","data":{"id":"o1"}}'
    headers = webhook_headers("msg_1", int(datetime.now(UTC).timestamp()), body, [secret])
    with pytest.raises(WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(body.replace(b"o1", b"o2"), headers)


def test_rolled_secret_signs_with_both_and_either_verifies() -> None:
    now = datetime.now(UTC)
    ring = SecretRing(current=generate_secret())
    rolled, new = roll(ring, now=now)
    assert rolled.current == new and rolled.previous == ring.current
    active = rolled.active(now)
    assert active == [new, ring.current]
    body = b'{"data":{}}'
    headers = webhook_headers("msg_roll", int(now.timestamp()), body, active)
    entries = headers["webhook-signature"].split(" ")
    assert len(entries) == 2 and all(e.startswith("v1,") for e in entries)
    assert "  " not in headers["webhook-signature"]
    for secret in (new, ring.current):
        standardwebhooks.Webhook(secret).verify(body, headers)
    # After the grace period only the new secret signs.
    assert rolled.active(now + timedelta(hours=24, seconds=1)) == [new]


def test_roll_grace_is_bounded() -> None:
    ring = SecretRing(current=generate_secret())
    with pytest.raises(Rejected):
        roll(ring, now=datetime.now(UTC), grace=timedelta(days=8))


@pytest.mark.parametrize("msg_id", ["msg.1", "", "msg 1", "a" * 129, "msg_é", "msg_1\n"])
def test_bad_message_ids_are_refused(msg_id: str) -> None:
    with pytest.raises(Rejected):
        sign(msg_id, 1, b"{}", [VECTOR_SECRET])


@pytest.mark.parametrize("secret", ["whsec_!!!", "whsec_" + base64.b64encode(b"short").decode(), ""])
def test_bad_secrets_are_refused(secret: str) -> None:
    with pytest.raises(InvalidSecret):
        parse_secret(secret)


def test_unpadded_secret_accepted() -> None:
    padded = "whsec_" + base64.b64encode(b"k" * 32).decode()
    assert parse_secret(padded.rstrip("=")) == b"k" * 32


def test_timestamp_must_be_integer_seconds() -> None:
    with pytest.raises(Rejected):
        sign("msg_1", -1, b"{}", [VECTOR_SECRET])
    with pytest.raises(Rejected):
        sign("msg_1", 1.5, b"{}", [VECTOR_SECRET])  # type: ignore[arg-type]


def test_message_ids_are_ulids() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    a, b = new_message_id(now=now), new_message_id(now=now + timedelta(milliseconds=1))
    assert a.startswith("msg_") and len(a) == 30 and "." not in a
    assert a[4:14] < b[4:14]  # time prefix sorts
