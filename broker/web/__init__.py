"""The web interface: server-rendered French pages for buyers, makers, coordinators and admins,
under ``/app`` in the same Litestar app as the API (excluded from the OpenAPI document). Sessions
are sealed cookies (``broker.web.session``); every form carries a CSRF token; assets are vendored
under ``static/`` (no CDN: the broker works offline)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from broker.web.errors import WEB_EXCEPTION_HANDLERS
from broker.web.labels import FILTERS
from broker.web.pages.admin import AdminPages
from broker.web.pages.auth import NotFoundPage, SignInController, root
from broker.web.pages.buyer import BuyerController
from broker.web.pages.communes import CommunePages
from broker.web.pages.crisis import CommitmentPages, CrisisPages
from broker.web.pages.legal import LegalPages
from broker.web.pages.maker import MakerController
from broker.web.pages.notifications import NotificationPages, count_unread
from broker.web.pages.orders import OrderPages
from broker.web.render import add_security_headers
from broker.web.security import web_guard, web_public
from broker.web.timing import server_timing

HERE = Path(__file__).parent
PAGES: list[Any] = [SignInController, BuyerController, MakerController, OrderPages, CrisisPages, CommitmentPages,
                    AdminPages, LegalPages, CommunePages, NotificationPages, NotFoundPage]


@lru_cache(maxsize=1)
def _environment() -> Environment:
    """One per process: compiled templates are kept (they do not change while the broker runs)."""
    environment = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html", "j2", "svg"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    environment.filters.update(FILTERS)
    return environment


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja with autoescaping on, undefined names as errors, and the French formatting filters."""
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(_environment()))


def web_handlers() -> list[Any]:
    """The ``/app`` router (pages and static assets) and the redirect from ``/``."""
    static = create_static_files_router(
        path="/static",
        directories=[HERE / "static"],
        opt=web_public(),
        include_in_schema=False,
        cache_control=CacheControlHeader(max_age=3600, public=True),
        name="web:static",
    )
    app_router = Router(
        path="/app",
        route_handlers=[*PAGES, static],
        guards=[web_guard],
        exception_handlers=WEB_EXCEPTION_HANDLERS,
        before_request=count_unread,  # the header's unread notifications
        after_request=add_security_headers,
        middleware=[server_timing],
        include_in_schema=False,
    )
    return [root, app_router]


__all__ = ("template_config", "web_handlers")
