"""Small helpers shared by controllers: pagination parameters and the Link header."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request
from litestar.exceptions import ValidationException
from litestar.params import HeaderParameter, QueryParameter

from broker.api.context import RequestContext

Limit = Annotated[
    int | None,
    QueryParameter(name="limit", ge=1, description="page size: default 50, values over 200 are reduced to 200"),
]
Cursor = Annotated[
    str | None,
    QueryParameter(name="cursor", min_length=1, max_length=512, description="opaque cursor from `next_cursor`"),
]


def page_size(ctx: RequestContext, limit: int | None) -> int:
    """The page size asked for: digits only (the query parser would read ``limit=1.0`` as 1; the
    schema says an integer, so anything else is a 400 naming the parameter)."""
    raw = ctx.request.query_params.get("limit")
    if raw is not None and not raw.isdigit():
        raise ValidationException(detail="Validation failed", extra=[
            {"key": "limit", "source": "query", "message": "limit is a whole number (digits only)"}])
    api = ctx.runtime.settings.api
    return min(limit or api.page_default, api.page_max)


def next_link(request: Request[Any, Any, Any], cursor: str | None) -> dict[str, str] | None:
    if cursor is None:
        return None
    params = {k: v for k, v in request.query_params.items() if k != "cursor"}
    params["cursor"] = cursor
    return {"Link": f'<{request.url.path}?{urlencode(params)}>; rel="next"'}


IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        max_length=257,
        description="replays the stored answer for 24 h (INTEGRATION.md ID-1..6)",
    ),
]
RequiredIdempotencyKey = Annotated[
    str,
    HeaderParameter(
        name="Idempotency-Key",
        required=True,
        min_length=1,
        max_length=257,
        description="required: a retry with the same key replays the first answer (24 h)",
    ),
]


def keyset_page(
    ctx: RequestContext, rows: list[Any], size: int, filters: str, position: Any
) -> tuple[list[Any], str | None]:
    """Trim a ``size + 1`` fetch to a page and sign the cursor of its last row."""
    more = len(rows) > size
    rows = rows[:size]
    return rows, (ctx.runtime.cursors.encode(position(rows[-1]), filters=filters) if more else None)
