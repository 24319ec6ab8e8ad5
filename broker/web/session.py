"""The web session: a cookie sealed with AES-GCM under a key derived from the settings' secret key.

It holds the account the person signed in with and its password stamp (checked again on every
request: a disabled account, or one whose password changed since, ends the session on the next page) or, for technical
users, the API key (authenticated again on every request: a revoked key ends the session), a
per-session CSRF token, a session id (so that signing out is recorded server-side in Redis) and the
sign-in time (sessions last ``MAX_AGE_S``). The same sealing protects the one-shot flash message
and the sign-in form's CSRF token."""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import time

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SESSION_COOKIE = "broker_session"
FLASH_COOKIE = "broker_flash"
SIGNIN_COOKIE = "broker_signin"
COOKIE_PATH = "/app"
MAX_AGE_S = 10 * 3600  # a working day
SIGNIN_MAX_AGE_S = 3600
FLASH_MAX_AGE_S = 120


class WebSession(msgspec.Struct, frozen=True, array_like=True):
    sid: str
    token: str
    csrf: str
    issued_at: int
    org_name: str = ""
    account_id: str = ""  # a person's account; then ``token`` is empty
    stamp: int = 0  # the account's password stamp at sign-in: a password changed since ends the session


class Flash(msgspec.Struct, frozen=True, array_like=True):
    kind: str  # "ok" | "error"
    text: str
    secret: str = ""  # a new API key, shown on the next page only (sealed, never stored)


def new_session(
    token: str, *, org_name: str = "", account_id: str = "", stamp: int = 0, now: float | None = None
) -> WebSession:
    return WebSession(
        sid=secrets.token_urlsafe(16),
        token=token,
        csrf=secrets.token_urlsafe(24),
        issued_at=int(time.time() if now is None else now),
        org_name=org_name,
        account_id=account_id,
        stamp=stamp,
    )


class Sealer:
    """Authenticated encryption of small values, bound to their purpose (the associated data)."""

    def __init__(self, secret_key: str) -> None:
        key = hashlib.sha256(b"broker-web-cookies\x00" + secret_key.encode()).digest()
        self._aead = AESGCM(key)

    def seal(self, purpose: str, payload: bytes) -> str:
        nonce = secrets.token_bytes(12)
        sealed = nonce + self._aead.encrypt(nonce, payload, purpose.encode())
        return base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def open(self, purpose: str, value: str | None) -> bytes | None:
        if not value or len(value) > 4096:
            return None
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            return self._aead.decrypt(raw[:12], raw[12:], purpose.encode())
        except (InvalidTag, ValueError, binascii.Error):
            return None

    def seal_session(self, session: WebSession) -> str:
        return self.seal(SESSION_COOKIE, msgspec.msgpack.encode(session))

    def open_session(self, value: str | None, *, now: float | None = None) -> WebSession | None:
        raw = self.open(SESSION_COOKIE, value)
        if raw is None:
            return None
        try:
            session = msgspec.msgpack.decode(raw, type=WebSession)
        except msgspec.DecodeError:
            return None
        current = time.time() if now is None else now
        if not (session.issued_at - 60 <= current < session.issued_at + MAX_AGE_S):
            return None
        return session

    def seal_flash(self, flash: Flash) -> str:
        return self.seal(FLASH_COOKIE, msgspec.msgpack.encode(flash))

    def open_flash(self, value: str | None) -> Flash | None:
        raw = self.open(FLASH_COOKIE, value)
        if raw is None:
            return None
        try:
            return msgspec.msgpack.decode(raw, type=Flash)
        except msgspec.DecodeError:
            return None

    def seal_signin(self, token: str, *, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        return self.seal(SIGNIN_COOKIE, f"{issued}:{token}".encode())

    def open_signin(self, value: str | None, *, now: float | None = None) -> str | None:
        raw = self.open(SIGNIN_COOKIE, value)
        if raw is None:
            return None
        issued, _, token = raw.decode().partition(":")
        current = time.time() if now is None else now
        if not issued.isdigit() or not (int(issued) - 60 <= current < int(issued) + SIGNIN_MAX_AGE_S):
            return None
        return token


def signed_out_key(sid: str) -> str:
    """Redis key marking a session id as signed out (expires with the session)."""
    return f"broker:web:signed-out:{sid}"
