"""RFC 9457 problem details: the shared schema, the OpenAPI response specs and the renderer."""

from __future__ import annotations

from http import HTTPStatus

import msgspec
from litestar import Response
from litestar.openapi.datastructures import ResponseSpec

from broker.domain.award_rules import Breach
from broker.errors import BrokerError

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://fab-broker.example.org/problems/"


class ProblemError(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    detail: str
    pointer: str | None = None
    parameter: str | None = None


class ProblemRule(Breach, frozen=True, kw_only=True, omit_defaults=True):
    """A rule of the award that the buyer's choice departs from (issue 17): its ``reason``
    (`invalid-quote`, `not-lowest`, `rotation`, `min-quotes-not-met`), the French ``detail`` with
    its figures, and the quote and workshop it is about — the domain's `Breach`, as the problem shows it."""


class ProblemReason(msgspec.Struct, frozen=True, kw_only=True):
    """Why a workshop fails a request's hard filters (`not-eligible`): the engine's code and French message."""

    code: str
    message: str


class ProblemDetails(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An RFC 9457 problem. ``code`` is our stable machine-readable slug (same as the type's).

    Extension members, present when they apply: ``reason`` (which rule refused, e.g. `not-lowest`
    for `justification-required`), ``quote_id`` and ``workshop_id`` (what it is about) and
    ``rules`` (every rule one `justification` would answer, for an award refused with
    `justification-required`, `rotation-justification-required` or `min-quotes-not-met`) and
    ``reasons`` (each hard filter a workshop fails, for `not-eligible`)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    code: str | None = None
    errors: list[ProblemError] | None = None
    checks: dict[str, str] | None = None
    reason: str | None = None
    quote_id: str | None = None
    workshop_id: str | None = None
    rules: list[ProblemRule] | None = None
    reasons: list[ProblemReason] | None = None


def problem_type(slug: str | None) -> str:
    return "about:blank" if slug is None else PROBLEM_BASE + slug


def build_problem(
    status: int,
    detail: str,
    *,
    request_id: str,
    slug: str | None = None,
    title: str | None = None,
    errors: list[ProblemError] | None = None,
    checks: dict[str, str] | None = None,
) -> ProblemDetails:
    return ProblemDetails(
        type=problem_type(slug),
        title=title if title and slug else HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=f"urn:uuid:{request_id}",
        code=slug,
        errors=errors,
        checks=checks,
    )


def problem_response(problem: ProblemDetails, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(
        content=msgspec.json.encode(problem),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


_DESCRIPTIONS = {
    400: "Malformed request (bad JSON, unknown field, wrong type, bad header)",
    401: "Missing, unknown or revoked API key",
    403: "The key's role may not call this operation",
    404: "No such object for this caller (other tenants' objects included)",
    409: "Conflict with the current state, or the same Idempotency-Key still in flight",
    413: "Request body over the size limit",
    422: "Well-formed but unacceptable (checksum, unknown code, reused Idempotency-Key, date-time without "
         "offset or out of range, NUL character in a string)",
    429: "Rate limit exceeded for this API key",
    503: "A dependency is unavailable",
}


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI responses for the given error statuses, all as ``application/problem+json``."""
    return {
        status: ResponseSpec(
            data_container=ProblemDetails,
            media_type=PROBLEM_MEDIA_TYPE,
            description=_DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
            generate_examples=False,
        )
        for status in statuses
    }


def _status_for(exc: BrokerError) -> int:
    # Most specific class first; the codes below are the whole mapping of domain errors to HTTP.
    for cls in type(exc).__mro__:
        if cls.__name__ in _STATUS_BY_ERROR:
            return _STATUS_BY_ERROR[cls.__name__]
    return 400


_STATUS_BY_ERROR = {
    "IdempotencyKeyInvalid": 400,
    "IdempotencyKeyMissing": 400,
    "InvalidCursor": 400,
    "IdempotencyKeyReused": 422,
    "NotFound": 404,
    "Conflict": 409,
    "Rejected": 422,
    "Forbidden": 403,
    "UpstreamUnavailable": 503,
}


#: The members a `BrokerError` may add through its ``extensions``.
_EXTENSIONS = frozenset({"reason", "quote_id", "workshop_id", "rules", "reasons"})


def problem_for_broker_error(exc: BrokerError, request_id: str) -> ProblemDetails:
    status = _status_for(exc)
    errors = [ProblemError(detail=exc.detail, pointer=exc.pointer)] if exc.pointer is not None else None
    problem = build_problem(status, exc.detail, request_id=request_id, slug=exc.code, title=exc.title, errors=errors)
    extensions = getattr(exc, "extensions", None)
    if not extensions:
        return problem
    unknown = set(extensions) - _EXTENSIONS
    if unknown:  # a member the schema does not document would be dropped silently
        raise ValueError(f"undocumented problem members {sorted(unknown)}")
    return msgspec.convert({**msgspec.to_builtins(problem), **extensions}, ProblemDetails)
