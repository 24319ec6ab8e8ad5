"""The notifications (issue 21 item 8): the unread counter of the header, counted before each page
(`count_unread`, the web router's ``before_request``), and ``/app/notifications``, the
organisation's notifications newest first, grouped by day, with « Tout marquer comme lu »."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency

from broker.api.context import RequestContext, screen_request
from broker.api.security import SAFE_METHODS
from broker.domain.access import Principal
from broker.services import inbox as inbox_service
from broker.web.forms import Form
from broker.web.notifications import by_day
from broker.web.pages.common import PAGE, Cursor, cursor_after, next_cursor
from broker.web.render import page, redirect
from broker.web.security import WEB_ROLES, web_access

EVERYONE = web_access(*WEB_ROLES)
PAGES_FILTER = "web-notifications"
#: The signed position a « Tout marquer comme lu » form carries (the newest notification it showed).
READ_FILTER = "web-notifications-read"
#: ``scope["state"]`` key of the header's counter (``"3"``, ``"99+"``; absent or empty when none is unread).
UNREAD = "unread_notifications"


async def count_unread(request: Request[Any, Any, Any]) -> None:
    """Before a page is rendered for someone signed in (after the guard: its session and principal
    are in the scope), count the organisation's unread notifications for the header. Form posts
    answer with a redirect: nothing to count. The app's own ``before_request`` (which screens API
    calls) runs first, since a router's hook replaces the app's."""
    await screen_request(request)
    state = request.scope["state"]
    principal: Principal | None = state.get("principal")
    if principal is None or request.method not in SAFE_METHODS:
        return
    unread = await inbox_service.unread_count(state["session"], actor=principal)
    if unread:
        state[UNREAD] = f"{inbox_service.COUNT_CAP - 1}+" if unread >= inbox_service.COUNT_CAP else str(unread)


class NotificationPages(Controller):
    path = "/notifications"
    include_in_schema = False

    @get("/", opt=EVERYONE)
    async def notifications(self, request: Request[Any, Any, Any], ctx: NamedDependency[RequestContext],
                            curseur: Cursor = None) -> Response[Any]:
        inbox = await inbox_service.notifications(ctx.session, actor=ctx.principal, limit=PAGE + 1,
                                                  before=cursor_after(ctx, curseur, PAGES_FILTER))
        items, more = next_cursor(ctx, inbox.items, PAGES_FILTER, lambda n: (n.at, n.id))
        days = by_day(items, inbox.names, commune=_commune_name(ctx), now=ctx.now)
        upto = ctx.runtime.cursors.encode(inbox.newest, filters=READ_FILTER) if inbox.newest else None
        return page(request, "notifications.html.j2", title="Notifications", days=days, more=more, upto=upto,
                    unread=request.scope["state"].get(UNREAD))

    @post("/lu", opt=EVERYONE, status_code=303)
    async def mark_all_read(self, request: Request[Any, Any, Any],
                            ctx: NamedDependency[RequestContext]) -> Response[Any]:
        form = Form(await request.form())
        token = form.raw("jusqua")
        if token:
            await inbox_service.mark_all_read(ctx.session, actor=ctx.principal, now=ctx.now,
                                              upto=ctx.runtime.cursors.decode(token, filters=READ_FILTER))
        return redirect(request, "/app/notifications", flash="Toutes les notifications sont marquées comme lues.")


def _commune_name(ctx: RequestContext) -> Callable[[str], str]:
    """« Vitré (35) » for an INSEE code, as the other pages write a commune."""
    geocoder = ctx.geocoder

    def commune_name(insee: str) -> str:
        commune = geocoder.commune(insee)
        return f"{commune.name} ({commune.department})" if commune else insee

    return commune_name
