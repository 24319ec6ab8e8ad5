"""Composition root of the API: ``create_app(settings)`` wires settings, database, Redis, ports,
access control, the error table and the controllers. Nothing here runs at import time."""

from __future__ import annotations

import logging
import os
from typing import Any

from litestar import Litestar
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ASGIApp, Receive, Scope, Send
from redis.asyncio import Redis

from adapters.geocoding import load_communes
from adapters.geocoding.base import Geocoder
from broker.api.context import provide_context, screen_request
from broker.api.controllers.accounts import AccountController
from broker.api.controllers.audit import AuditController
from broker.api.controllers.award_record import AwardRecordController
from broker.api.controllers.communes import CommuneController
from broker.api.controllers.consultations import ConsultationController, RequestInvitationController
from broker.api.controllers.crisis import CommitmentController, CrisisCallController
from broker.api.controllers.decp import DecpController
from broker.api.controllers.health import live, ready
from broker.api.controllers.invoices import InvoiceController, OrderInvoiceController
from broker.api.controllers.orders import OrderController, OrderDocumentController
from broker.api.controllers.organizations import ApiKeyController, OrganizationController
from broker.api.controllers.procurement import ProcurementController
from broker.api.controllers.requests import InvitationController, QuoteController, RequestController
from broker.api.controllers.webhooks import EventController, WebhookDeliveryController, WebhookEndpointController
from broker.api.controllers.workshops import CatalogueController, MyWorkshopController, WorkshopController
from broker.api.errors import EXCEPTION_HANDLERS
from broker.api.pagination import CursorCodec
from broker.api.problems import problems
from broker.api.runtime import Runtime
from broker.api.security import access_guard, check_every_route_declares_access
from broker.api.webhook_docs import webhooks_section
from broker.db.session import Database
from broker.settings import Settings, load_settings
from broker.web import template_config, web_handlers

log = logging.getLogger("broker")

ROUTE_HANDLERS: list[Any] = [
    live,
    ready,
    OrganizationController,
    ApiKeyController,
    AccountController,
    CommuneController,
    AuditController,
    MyWorkshopController,
    WorkshopController,
    CatalogueController,
    RequestController,
    ProcurementController,
    ConsultationController,
    RequestInvitationController,
    InvitationController,
    QuoteController,
    OrderController,
    OrderDocumentController,
    OrderInvoiceController,
    InvoiceController,
    AwardRecordController,
    WebhookEndpointController,
    WebhookDeliveryController,
    EventController,
    DecpController,
    CrisisCallController,
    CommitmentController,
]


def _request_scope(app: ASGIApp) -> ASGIApp:
    """Adds the rate-limit headers to every answer, and closes (so rolls back) a session the guard
    opened when no handler took it over (validation error, refused role…)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                extra = (scope.get("state") or {}).get("rate_headers")
                if extra:
                    present = {k.lower() for k, _ in message.get("headers", [])}
                    message["headers"] = list(message.get("headers", [])) + [
                        (k.lower().encode(), v.encode()) for k, v in extra.items() if k.lower().encode() not in present
                    ]
            await send(message)

        try:
            await app(scope, receive, send_with_headers if scope["type"] == ScopeType.HTTP else send)
        finally:
            state = scope.get("state") or {}
            session = state.pop("session", None)
            if session is not None:
                await session.close()

    return middleware


def _document_idempotency_errors(app: Litestar) -> None:
    """Every route taking an Idempotency-Key may answer 409 (in flight) and 422 (key reused)."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if handler.opt.get("idempotent"):
                handler.responses = {**problems(400, 409, 422), **(handler.responses or {})}


def create_app(
    settings: Settings,
    *,
    geocoder: Geocoder | None = None,
    redis: Redis | None = None,
) -> Litestar:
    if settings.redis.url is None and redis is None:
        raise RuntimeError("BROKER_REDIS_URL is not set (`broker up` starts an embedded Redis and sets it)")
    if not settings.secret_key:
        raise RuntimeError("BROKER_SECRET_KEY is not set (`broker up` generates one under BROKER_DATA_DIR)")
    runtime = Runtime(
        settings=settings,
        db=Database(settings.db),
        redis=redis or Redis.from_url(str(settings.redis.url)),
        geocoder=geocoder or load_communes(),
        cursors=CursorCodec(settings.secret_key),
    )

    app = Litestar(
        route_handlers=[*ROUTE_HANDLERS, *web_handlers()],
        template_config=template_config(),
        guards=[access_guard],
        dependencies={"ctx": Provide(provide_context)},
        exception_handlers=EXCEPTION_HANDLERS,
        before_request=screen_request,
        middleware=[_request_scope],
        on_shutdown=[runtime.close],
        request_max_body_size=settings.api.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Fabrication order broker",
            version="1.0.0",
            description=(
                "Lets French local authorities get things made by the workshops near them. Errors are RFC 9457 "
                "problem details; creating POSTs accept `Idempotency-Key` (records kept 24 h; a replay carries "
                "`Idempotent-Replayed: true`); lists are cursor-paginated."
            ),
            path="/schema",
            components=Components(
                security_schemes={"apiKey": SecurityScheme(type="http", scheme="bearer", description="API key")}
            ),
            security=[{"apiKey": []}],
            webhooks=webhooks_section(),
        ),
        debug=False,
    )
    app.state.runtime = runtime
    check_every_route_declares_access(app)
    _document_idempotency_errors(app)
    return app


def app_factory() -> Litestar:
    """Entry point for the ASGI server (``granian --factory broker.app:app_factory``): the one place
    that reads the environment, at process start, not at import."""
    settings = load_settings(os.environ)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return create_app(settings)
