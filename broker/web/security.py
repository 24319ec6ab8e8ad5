"""Who may open which page. Web routes declare ``opt=web_access(...)`` (or ``web_public()``): the
API-key guard lets them through as far as bearer keys go, and ``web_guard`` (on the web router)
checks the session cookie instead — the sealed account (or, for technical users, API key) is checked
again on every request, so a disabled account, a revoked key or a signed-out session is refused at
once — then the role and, for every form post, the session's CSRF token."""

from __future__ import annotations

import hmac
import logging
import re
from typing import Any
from urllib.parse import quote

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from broker.api.runtime import Runtime
from broker.api.security import PUBLIC, SAFE_METHODS
from broker.domain.access import Principal, Role
from broker.services.access import authenticate
from broker.services.accounts import session_principal
from broker.web.session import SESSION_COOKIE, Sealer, WebSession, signed_out_key

log = logging.getLogger("broker.web")

WEB = "web"
CSRF_FIELD = "_csrf"
SIGN_IN_PATH = "/app/connexion"
WEB_ROLES = (Role.BUYER, Role.MAKER, Role.COORDINATOR, Role.ADMIN)


def web_access(*roles: Role) -> dict[str, Any]:
    """A page for people signed in with a key of one of ``roles`` (checked by ``web_guard``)."""
    if not roles:
        raise ValueError("name at least one role, or use web_public()")
    # "access": public for the bearer-key guard only: this route authenticates by session cookie.
    return {"access": PUBLIC, WEB: frozenset(roles)}


def web_public() -> dict[str, Any]:
    """The sign-in page and the static assets."""
    return {"access": PUBLIC, WEB: PUBLIC}


class SignInRequired(Exception):
    """No valid session: go to the sign-in page (then back to ``next_path``)."""

    def __init__(self, reason: str | None, next_path: str | None = None) -> None:
        super().__init__(reason or "sign-in required")
        self.reason = reason
        self.next_path = next_path

    def location(self) -> str:
        params = []
        if self.reason:
            params.append(f"motif={self.reason}")
        if self.next_path:
            params.append(f"suite={quote(self.next_path, safe='/')}")
        return SIGN_IN_PATH + ("?" + "&".join(params) if params else "")


class WebForbidden(Exception):
    """Signed in, but this page is for another role."""

    def __init__(self, role: Role) -> None:
        super().__init__(f"role {role} may not open this page")
        self.role = role


class CsrfRefused(Exception):
    """A form post without this session's CSRF token (forged, or a stale page)."""


def sealer(connection: ASGIConnection[Any, Any, Any, Any]) -> Sealer:
    state = connection.app.state
    found = state.get("web_sealer")
    if found is None:
        runtime: Runtime = state.runtime
        found = state["web_sealer"] = Sealer(runtime.settings.secret_key)
    return found


def safe_next(path: str | None) -> str | None:
    """Only a path of this interface is a place to come back to (no open redirect)."""
    if path and path.startswith("/app/") and not path.startswith("//") and "\\" not in path and len(path) < 300:
        return path
    return None


async def _signed_out(runtime: Runtime, sid: str) -> bool:
    try:
        return bool(await runtime.redis.exists(signed_out_key(sid)))
    except (RedisError, OSError) as exc:
        # Same policy as the rate limiter: without Redis, sign-out still drops the cookie.
        log.warning("web: cannot check the sign-out list (%s)", type(exc).__name__)
        return False


async def _principal(db_session: AsyncSession, session: WebSession) -> Principal | None:
    """The person's account (disabled, or its password changed since the sign-in: None), or the key's."""
    if session.account_id:
        return await session_principal(db_session, account_id=session.account_id, stamp=session.stamp)
    return await authenticate(db_session, token=session.token)


async def web_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    rule = handler.opt.get(WEB)
    if rule is None:
        raise WebForbidden(Role.INTEGRATION)  # defence in depth: every web route declares a rule
    if rule == PUBLIC:
        return
    safe = connection.scope.get("method") in SAFE_METHODS
    next_path = connection.scope["path"] if safe else None
    cookie = connection.cookies.get(SESSION_COOKIE)
    session: WebSession | None = sealer(connection).open_session(cookie)
    if session is None:
        raise SignInRequired("expiree" if cookie else None, safe_next(next_path))
    runtime: Runtime = connection.app.state.runtime
    if await _signed_out(runtime, session.sid):
        raise SignInRequired("deconnecte", safe_next(next_path))
    state = connection.scope["state"]
    db = runtime.db
    if safe or not db.single_writer:
        state["session"] = (db.reader if safe else db.writer)()
        principal = await _principal(state["session"], session)
    else:
        # One writer (SQLite): authenticate on a reader; the write lock is taken by the handler.
        async with db.reader() as auth_session:
            principal = await _principal(auth_session, session)
    if principal is None:
        raise SignInRequired("revoquee", safe_next(next_path))
    if principal.role not in rule:
        raise WebForbidden(principal.role)
    if "session" not in state:
        state["session"] = db.writer()
    state["principal"] = principal
    state["web_session"] = session
    if not safe:
        request: Request[Any, Any, Any] = Request(connection.scope, connection.receive)
        sent = (await request.form()).get(CSRF_FIELD) or connection.headers.get("x-csrf-token") or ""
        if not csrf_matches(sent, session.csrf):
            raise CsrfRefused("the form's CSRF token does not match this session")


#: The shape of the tokens this interface issues (``secrets.token_urlsafe``): ASCII only.
_CSRF_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,128}")


def csrf_matches(sent: object, expected: str) -> bool:
    """True when the token sent equals the expected one. What is not a token of the issued shape
    (not text, another length, a character outside the URL-safe alphabet, e.g. non-ASCII) is
    refused before the comparison, which then runs on bytes in constant time."""
    if not isinstance(sent, str) or len(sent) != len(expected) or not _CSRF_SHAPE.fullmatch(sent):
        return False
    return hmac.compare_digest(sent.encode("ascii"), expected.encode())
