"""Who may call what. Every route declares ``opt=access(...)``; the guard authenticates the key,
checks the role, counts the request against the key's rate limit, and opens the request's session.
A route without a declaration is refused at start-up (``check_every_route_declares_access``)."""

from __future__ import annotations

import uuid
from typing import Any, NoReturn

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.exceptions import (
    NotAuthorizedException,
    PermissionDeniedException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.handlers import BaseRouteHandler
from litestar.params import QueryParameter
from litestar.routes import HTTPRoute

from broker.api.client_address import client_address, trusted_networks
from broker.api.runtime import Runtime
from broker.domain.access import Role
from broker.services.access import authenticate, key_hash, key_prefix

PUBLIC = "public"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPENAPI_PATH = "/schema"


def access(*roles: Role, idempotent: bool | str = False) -> dict[str, Any]:
    """The ``opt`` of a route callable by keys with one of ``roles``. ``idempotent=True`` accepts an
    Idempotency-Key; ``"required"`` refuses the request without one (400)."""
    if not roles:
        raise ValueError("name at least one role, or use public()")
    return {"access": frozenset(roles), "idempotent": idempotent}


def public() -> dict[str, Any]:
    return {"access": PUBLIC}


ANY_ROLE = tuple(Role)


def request_id(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    state = connection.scope.setdefault("state", {})
    rid = state.get("request_id")
    if rid is None:
        rid = state["request_id"] = str(uuid.uuid4())
    return str(rid)


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


_QUERY_NAMES: dict[Any, frozenset[str]] = {}


def _query_names(handler: BaseRouteHandler) -> frozenset[str]:
    # Keyed by the handler's function object (held, so never reused): guards receive a short-lived
    # copy of the handler, whose id() another handler's copy soon reuses (and then got these names).
    key = handler.fn
    names = _QUERY_NAMES.get(key)
    if names is None:
        params = handler.parsed_fn_signature.parameters
        names = frozenset(
            fd.kwarg_definition.name or name
            for name, fd in params.items()
            if isinstance(fd.kwarg_definition, QueryParameter)
        )
        _QUERY_NAMES[key] = names
    return names


def _refuse_unknown_query(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Unknown query parameters are an error, like unknown body fields (typos must not be ignored)."""
    if not connection.scope.get("query_string"):
        return
    unknown = sorted(set(connection.query_params) - _query_names(handler))
    if unknown:
        raise ValidationException(
            detail="unknown query parameter",
            extra=[
                {"message": f"unknown query parameter {name!r}", "key": name, "source": "query"}
                for name in unknown[:10]
            ],
        )


async def access_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    request_id(connection)
    rules = handler.opt.get("access")
    if rules == PUBLIC:
        _refuse_unknown_query(connection, handler)
        return
    if rules is None and _is_framework_route(connection.scope["path"], handler):
        return
    if rules is None:  # defence in depth: start-up refuses such routes
        raise PermissionDeniedException(detail="this route declares no access policy")
    token = _bearer(connection.headers.get("authorization"))
    challenge = {"WWW-Authenticate": 'Bearer realm="broker"'}
    if token is None:
        raise NotAuthorizedException(detail="send an API key as 'Authorization: Bearer <key>'", headers=challenge)
    runtime: Runtime = connection.app.state.runtime
    db = runtime.db
    safe = connection.scope.get("method") in SAFE_METHODS
    # One Redis round trip counts the request against the key's limit (keyed by the hash of the
    # whole token, so a forged secret behind someone's prefix never spends that key's budget),
    # reads the key-cache generation, and reads the failed authentications of the client's
    # address; a cached principal then skips the key lookup. A failed authentication costs one
    # more round trip (``limiter.failed``).
    token_hash = key_hash(token)
    client = connection.scope.get("client")
    address = client_address(client[0] if client else None, connection.headers.getall("x-forwarded-for", []),
                             trusted_networks(runtime.settings.api.trusted_proxies))
    decision = await runtime.limiter.hit(token_hash, address)
    generation = decision.keys_generation if decision is not None else None
    if decision is not None:
        headers = {
            "RateLimit-Limit": str(decision.limit),
            "RateLimit-Remaining": str(decision.remaining),
            "RateLimit-Reset": str(decision.reset_s),
        }
        connection.scope["state"]["rate_headers"] = headers
        if not decision.allowed:
            raise TooManyRequestsException(
                detail=f"rate limit of {decision.limit} requests per minute reached for this key",
                headers={**headers, "Retry-After": str(decision.reset_s)},
            )
    session_factory = db.reader if safe else db.writer
    principal = runtime.keys.get(token_hash, generation)
    if principal is None and decision is not None and decision.address_failures >= runtime.limiter.failures_limit:
        # Too many failed authentications from this address: its unverified tokens are refused
        # before the database (a key verified recently, hence cached, still passes).
        _too_many_failures(connection, decision.reset_s)
    if principal is None:
        if safe or not db.single_writer:
            session = session_factory()
            connection.scope["state"]["session"] = session
            principal = await authenticate(session, token=token)
        else:
            # One writer (SQLite): authenticate on a reader so the write lock (BEGIN IMMEDIATE) is
            # taken only when the handler writes.
            async with db.reader() as auth_session:
                principal = await authenticate(auth_session, token=token)
        if principal is not None:
            runtime.keys.put(token_hash, generation, principal)
    if principal is None:
        retry_after = await runtime.limiter.failed(address, key_prefix(token))
        if retry_after is not None:
            _too_many_failures(connection, retry_after)
        raise NotAuthorizedException(detail="unknown or revoked API key", headers=challenge)
    if principal.role not in rules:
        raise PermissionDeniedException(detail=f"a '{principal.role}' key may not call this operation")
    if "session" not in connection.scope["state"]:
        connection.scope["state"]["session"] = session_factory()
    connection.scope["state"]["principal"] = principal
    _refuse_unknown_query(connection, handler)


def _too_many_failures(connection: ASGIConnection[Any, Any, Any, Any], retry_after: int) -> NoReturn:
    """429 for failed authentications (per client address or per presented prefix): these buckets
    are separate from the keys' own, so a valid key is never refused by them."""
    connection.scope["state"].pop("rate_headers", None)
    raise TooManyRequestsException(
        detail="too many failed authentications; retry later with a valid API key",
        headers={"Retry-After": str(retry_after)},
    )


def _is_framework_route(path: str, handler: BaseRouteHandler) -> bool:
    """The OpenAPI documents and Litestar's automatic OPTIONS answers (an ``Allow`` header, no data)."""
    return path.startswith(OPENAPI_PATH) or set(getattr(handler, "http_methods", ())) == {"OPTIONS"}


def check_every_route_declares_access(app: Litestar) -> None:
    """G9: refuse to start when a route handler has no access declaration."""
    missing = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path.startswith(OPENAPI_PATH):
            continue
        for handler in route.route_handlers:
            if "access" not in handler.opt and not _is_framework_route(route.path, handler):
                missing.append(f"{sorted(handler.http_methods)} {route.path}")
    if missing:
        raise RuntimeError("routes without an access declaration: " + ", ".join(missing))
