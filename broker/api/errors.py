"""The one table that turns exceptions into RFC 9457 responses; nothing internal ever leaks."""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import ClientException, HTTPException, InternalServerException, ValidationException
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from broker.api.context import IdempotencyKeyInFlight, Replay, problem_for_replay_row
from broker.api.problems import ProblemError, build_problem, problem_for_broker_error, problem_response
from broker.api.security import request_id
from broker.errors import BrokerError

log = logging.getLogger("broker.api")

_AT = re.compile(r"\s*-\s*at `\$(?P<path>[^`]*)`\s*$")
_MISSING_PARAM = re.compile(r"Missing required (\w+) parameter '([^']+)'")
_UNKNOWN = re.compile(r"unknown field `([^`]*)`")
_ACCESS_SLUGS = {401: "unauthenticated", 403: "forbidden", 413: "body-too-large", 429: "rate-limited"}


def _pointer(path: str) -> str:
    """msgspec's ``$.delivery.points[2].qty`` -> JSON pointer ``/delivery/points/2/qty``."""
    parts = re.findall(r"\.([^.\[]+)|\[(\d+)\]", path)
    return "".join("/" + (name or index).replace("~", "~0").replace("/", "~1") for name, index in parts)


def _validation_errors(exc: ValidationException) -> list[ProblemError]:
    """Litestar gives ``[{"message", "key", "source"}]``; body keys are msgspec paths (``n[1]``)."""
    errors: list[ProblemError] = []
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = _AT.sub("", str(item.get("message", exc.detail)))
        source, key = item.get("source"), item.get("key")
        if source == "body":
            pointer = "" if key in (None, "", "data") else _pointer("." + str(key))
            unknown = _UNKNOWN.search(message)
            if unknown and not pointer:
                pointer = _pointer("." + unknown.group(1))
            errors.append(ProblemError(detail=message, pointer=pointer))
        else:
            errors.append(ProblemError(detail=message, parameter=str(key) if key else None))
    if not errors:
        detail = _AT.sub("", str(exc.detail))
        missing = _MISSING_PARAM.search(detail)
        if missing:  # "Missing required header parameter 'X' for path …"
            errors.append(
                ProblemError(
                    detail=f"missing required {missing.group(1)} parameter {missing.group(2)!r}",
                    parameter=missing.group(2),
                )
            )
        else:
            errors.append(ProblemError(detail=detail, pointer=""))
    return errors


#: What Litestar raises when the body ends in ``http.disconnect``. Granian (``broker up``) ends a
#: body that way when its framing is malformed (a bad chunk-size line, a chunk without its CRLF):
#: the client sent a bad request, not the server that failed (issue 18, F9). A client that really
#: went away never reads the answer.
_BODY_CUT_SHORT = "client disconnected prematurely"


def framing_error(exc: HTTPException) -> HTTPException:
    """A body cut short by the server (malformed framing) as the client error it is (400)."""
    if isinstance(exc, InternalServerException) and exc.detail == _BODY_CUT_SHORT:
        return ClientException(detail="the request body is malformed or incomplete (its chunked framing is invalid)")
    return exc


def on_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    exc = framing_error(exc)
    rid = request_id(request)
    status = exc.status_code
    if isinstance(exc, ValidationException) or (status == 400 and exc.extra):
        errors = _validation_errors(exc) if isinstance(exc, ValidationException) else None
        detail = "the request is malformed: " + "; ".join(e.detail for e in errors or [])
        slug, title = "validation-error", "Invalid request"
        if any((e.parameter or "").lower() == "idempotency-key" for e in errors or []):
            slug, title = "idempotency-key-missing", "Idempotency-Key required"
        problem = build_problem(400, detail, request_id=rid, slug=slug, title=title, errors=errors)
    else:
        detail = str(exc.detail)
        if status == 400 and ("JSON" in detail or "decode" in detail.lower()):
            detail = "the body is not valid JSON"
        access_slug = _ACCESS_SLUGS.get(status)
        problem = build_problem(
            status, detail, request_id=rid, slug=access_slug,
            title=access_slug and access_slug.replace("-", " ").capitalize(),
        )
    headers = dict(exc.headers or {})
    headers.update(request.scope.get("state", {}).get("rate_headers", {}) if status != 429 else {})
    return problem_response(problem, headers=headers or None)


def on_broker_error(request: Request[Any, Any, Any], exc: BrokerError) -> Response[Any]:
    headers = {"Retry-After": "1"} if isinstance(exc, IdempotencyKeyInFlight) else None
    return problem_response(problem_for_broker_error(exc, request_id(request)), headers=headers)


def on_replay(_request: Request[Any, Any, Any], exc: Replay) -> Response[Any]:
    return problem_for_replay_row(exc.row)


def on_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    rid = request_id(request)
    log.error("request %s: database unavailable: %s", rid, type(exc).__name__)
    problem = build_problem(
        503,
        "the database is unavailable; retry shortly",
        request_id=rid,
        slug="upstream-unavailable",
        title="Service unavailable",
    )
    return problem_response(problem, headers={"Retry-After": "2"})


def on_dbapi_error(request: Request[Any, Any, Any], exc: DBAPIError) -> Response[Any]:
    """A connection lost mid-request (server restart, pg_terminate_backend, network): the pool has
    dropped it and the transaction rolled back (or, lost during COMMIT, its outcome is unknown):
    503, and the client retries with the same Idempotency-Key, which replays or redoes it once."""
    if exc.connection_invalidated:
        return on_unavailable(request, exc)
    return on_unexpected(request, exc)


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    rid = request_id(request)
    log.exception("request %s: unhandled %s", rid, type(exc).__name__, exc_info=exc)
    problem = build_problem(500, f"an internal error occurred; quote request id {rid} to the operator", request_id=rid)
    return problem_response(problem)


def on_exception_group(request: Request[Any, Any, Any], exc: ExceptionGroup) -> Response[Any]:
    """Litestar groups what a dependency's clean-up raises when the handler had raised: the request
    context answers a handler's error with a replay, or with the refusal of a reused key, once the
    deferred Idempotency-Key lookup (PostgreSQL) finds the key's record. One exception in the
    group: answered as if raised alone."""
    if len(exc.exceptions) == 1 and isinstance(inner := exc.exceptions[0], Exception):
        for kind in type(inner).__mro__:
            handler = EXCEPTION_HANDLERS.get(kind)
            if handler is not None and kind is not ExceptionGroup:
                return handler(request, inner)  # type: ignore[no-any-return]
    return on_unexpected(request, exc)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ExceptionGroup: on_exception_group,
    HTTPException: on_http_exception,
    BrokerError: on_broker_error,
    Replay: on_replay,
    OperationalError: on_unavailable,
    PoolTimeout: on_unavailable,
    ConnectionError: on_unavailable,
    DBAPIError: on_dbapi_error,
    Exception: on_unexpected,
}
