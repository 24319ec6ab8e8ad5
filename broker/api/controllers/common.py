"""Small helpers shared by controllers: pagination parameters and the Link header."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request
from litestar.params import QueryParameter

from broker.api.context import RequestContext

Limit = Annotated[
    int | None,
    QueryParameter(name="limit", ge=1, description="page size: default 50, values over 200 are reduced to 200"),
]
Cursor = Annotated[
    str | None, QueryParameter(name="cursor", max_length=512, description="opaque cursor from `next_cursor`")
]


def page_size(ctx: RequestContext, limit: int | None) -> int:
    api = ctx.runtime.settings.api
    return min(limit or api.page_default, api.page_max)


def next_link(request: Request[Any, Any, Any], cursor: str | None) -> dict[str, str] | None:
    if cursor is None:
        return None
    params = {k: v for k, v in request.query_params.items() if k != "cursor"}
    params["cursor"] = cursor
    return {"Link": f'<{request.url.path}?{urlencode(params)}>; rel="next"'}
