"""Opaque, HMAC-signed keyset cursors (API-4): base64url(JSON position + filter fingerprint) + tag."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

import msgspec

from broker.errors import BrokerError


class InvalidCursor(BrokerError):
    code = "invalid-cursor"
    title = "Invalid cursor"


class _Position(msgspec.Struct, array_like=True):
    at: str
    id: str
    filters: str


class CursorCodec:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"cursor:" + secret.encode()).digest()

    def _tag(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:12]

    def encode(self, position: tuple[datetime, str], *, filters: str = "") -> str:
        payload = msgspec.json.encode(_Position(position[0].isoformat(), position[1], filters))
        return base64.urlsafe_b64encode(payload + self._tag(payload)).decode().rstrip("=")

    def decode(self, cursor: str, *, filters: str = "") -> tuple[datetime, str]:
        """The position; raises InvalidCursor if forged, damaged or made for other filters."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            payload, tag = raw[:-12], raw[-12:]
            if not hmac.compare_digest(tag, self._tag(payload)):
                raise ValueError("bad tag")
            pos = msgspec.json.decode(payload, type=_Position)
            at = datetime.fromisoformat(pos.at)
        except (ValueError, msgspec.DecodeError) as exc:
            raise InvalidCursor("the cursor is not one this API issued", pointer=None) from exc
        if pos.filters != filters:
            raise InvalidCursor("the cursor was issued for other filters; start again without it")
        return at, pos.id
