"""Standard Webhooks signing (WH-1, WH-3..6): ``whsec_`` secrets, ``v1,`` HMAC-SHA256 signatures, headers.

The signed content is ``"{webhook-id}.{webhook-timestamp}.{body}"`` over the exact bytes sent. During a secret
roll both the new and the old secret sign, single-space separated in one ``webhook-signature`` header.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from adapters.webhooks.base import SecretRing
from broker.errors import Rejected

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MIN_SECRET_BYTES = 24  # the spec: "at least 24 bytes (192 bits, 512 maximum)"
MAX_SECRET_BYTES = 64
DEFAULT_GRACE = timedelta(hours=24)  # WH-6
MAX_GRACE = timedelta(days=7)

_MSG_ID = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")  # no "." (it separates the signed parts)
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class InvalidSecret(Rejected):
    code = "webhook-secret-invalid"


def generate_secret() -> str:
    """A fresh endpoint secret: ``whsec_`` + base64 of 32 random bytes (WH-5)."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode("ascii")


def parse_secret(secret: str | bytes) -> bytes:
    """The raw HMAC key of a ``whsec_`` secret (unpadded base64 accepted); raw ``bytes`` are taken as the key."""
    if isinstance(secret, bytes):
        key = secret
    else:
        text = secret.removeprefix(SECRET_PREFIX)
        try:
            key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidSecret("the webhook secret is not base64 after its whsec_ prefix") from exc
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise InvalidSecret(f"a webhook secret holds {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, not {len(key)}")
    return key


def new_message_id(*, now: datetime | None = None) -> str:
    """``msg_<ULID>`` (WH-1): 48-bit millisecond time + 80 random bits, Crockford base32."""
    ms = int((now.timestamp() if now is not None else time.time()) * 1000)
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "msg_" + "".join(reversed(chars))


def check_message_id(msg_id: str) -> None:
    if not _MSG_ID.fullmatch(msg_id):
        raise Rejected("a webhook-id is 1-128 characters of [A-Za-z0-9_-] (no '.')", code="webhook-id-invalid")


def sign_one(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256(key, "{id}.{ts}.{body}")>``."""
    signed = msg_id.encode("ascii") + b"." + str(timestamp).encode("ascii") + b"." + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def sign(msg_id: str, timestamp: int, body: bytes, secrets: Sequence[str | bytes]) -> str:
    """The ``webhook-signature`` value: one ``v1,`` entry per secret, single-space separated, in order."""
    check_message_id(msg_id)
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise Rejected("webhook-timestamp is a non-negative integer of Unix seconds", code="webhook-timestamp-invalid")
    if not secrets:
        raise InvalidSecret("at least one secret is needed to sign")
    return " ".join(sign_one(parse_secret(s), msg_id, timestamp, body) for s in secrets)


def unix_seconds(now: datetime) -> int:
    """Integer Unix seconds of an aware datetime (naive ones are refused: they are a Paris/UTC trap)."""
    if now.tzinfo is None:
        raise ValueError("pass an aware datetime (UTC) as now")
    return int(now.timestamp())


def webhook_headers(msg_id: str, timestamp: int, body: bytes, secrets: Sequence[str | bytes]) -> dict[str, str]:
    """The headers of one attempt (WH-1): id, timestamp, signature and the JSON content type."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(msg_id, timestamp, body, secrets),
        "content-type": "application/json",
    }


def roll(ring: SecretRing, *, now: datetime, grace: timedelta = DEFAULT_GRACE) -> tuple[SecretRing, str]:
    """Roll an endpoint's secret (WH-6): the new one is current, the old one still signs for ``grace``.

    Returns the new ring and the new secret (show it once)."""
    if not timedelta(0) <= grace <= MAX_GRACE:
        raise Rejected("the grace period is between 0 and 7 days", pointer="/grace_period", code="validation-error")
    if now.tzinfo is None:
        raise ValueError("pass an aware datetime (UTC) as now")
    new = generate_secret()
    return SecretRing(current=new, previous=ring.current, previous_until=(now + grace).astimezone(UTC)), new
