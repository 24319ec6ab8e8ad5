"""What every page controller shares: running a service call on behalf of a form, paging."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Annotated, Any, TypeVar

from litestar.params import PathParameter, QueryParameter

from broker.api.context import RequestContext
from broker.errors import BrokerError, NotFound
from broker.services.jobs import discard_scheduled
from broker.web.forms import Form

T = TypeVar("T")

Id = Annotated[str, PathParameter(max_length=64)]
Cursor = Annotated[str | None, QueryParameter(name="curseur", max_length=512)]
PAGE = 50


async def attempt(ctx: RequestContext, form: Form, fields: Mapping[str, str], call: Awaitable[T]) -> T | None:
    """Run a service call for ``form``. A refusal is rolled back and written next to its field;
    a NotFound without a field (another tenant's object, a missing one) still becomes the 404 page."""
    try:
        return await call
    except NotFound as exc:
        if exc.pointer is None and exc.code == NotFound.code:
            raise
        await ctx.session.rollback()
        discard_scheduled(ctx.session)
        form.refuse(exc, fields)
    except BrokerError as exc:
        await ctx.session.rollback()
        discard_scheduled(ctx.session)
        form.refuse(exc, fields)
    ctx.status = 422
    return None


def cursor_after(ctx: RequestContext, cursor: str | None, filters: str) -> Any:
    return ctx.runtime.cursors.decode(cursor, filters=filters) if cursor else None


def next_cursor(ctx: RequestContext, rows: list[Any], filters: str, position: Any) -> tuple[list[Any], str | None]:
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return rows, (ctx.runtime.cursors.encode(position(rows[-1]), filters=filters) if more else None)
