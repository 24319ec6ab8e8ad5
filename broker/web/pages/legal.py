"""The pages a public service links from the foot of every page: the legal notice, the accessibility
statement (RGAA), what is done with personal data, and help. They are public: people read them before
signing in, or without ever having a key.

What the texts state of the broker is taken from the code and the running configuration (the public
address, how long a session and an idempotency record last, whether e-mails and Chorus Pro are real), so
that they stay true when the settings change. What only the operator knows (its legal identity, its host,
its contact address) is written as a sentence to complete in ``legal_operator.html.j2``."""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar import Controller, Request, Response, get

from broker.api.runtime import Runtime
from broker.web.render import page
from broker.web.security import web_public
from broker.web.session import (
    COOKIE_PATH,
    FLASH_COOKIE,
    FLASH_MAX_AGE_S,
    MAX_AGE_S,
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    SIGNIN_MAX_AGE_S,
)

# The day the accessibility statement was written (RGAA asks for it); change it with the statement.
STATEMENT_DATE = date(2026, 12, 3)

# The cookies the interface sets, as the personal data page lists them: name, purpose, lifetime, SameSite.
COOKIES = (
    (SESSION_COOKIE, "session", MAX_AGE_S, "Lax"),
    (SIGNIN_COOKIE, "signin", SIGNIN_MAX_AGE_S, "Strict"),
    (FLASH_COOKIE, "flash", FLASH_MAX_AGE_S, "Lax"),
)


def duration(seconds: int) -> str:
    """``36000`` -> ``10 heures``, ``120`` -> ``2 minutes``: a cookie's lifetime in words."""
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours}\u00a0heure{'s' if hours > 1 else ''}"
    minutes = seconds // 60
    return f"{minutes}\u00a0minute{'s' if minutes > 1 else ''}"


class LegalPages(Controller):
    """Mentions légales, accessibilité, données personnelles, aide: public, linked from the footer."""

    path = "/"
    include_in_schema = False

    @get("/mentions-legales", opt=web_public(), name="web:legal-notice")
    async def legal_notice(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return page(request, "legal_notice.html.j2", title="Mentions légales", **_facts(request))

    @get("/accessibilite", opt=web_public(), name="web:accessibility")
    async def accessibility(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return page(request, "legal_accessibility.html.j2", title="Déclaration d'accessibilité",
                    statement_date=STATEMENT_DATE, session_hours=MAX_AGE_S // 3600, **_facts(request))

    @get("/donnees-personnelles", opt=web_public(), name="web:personal-data")
    async def personal_data(self, request: Request[Any, Any, Any]) -> Response[Any]:
        cookies = [
            {"name": name, "purpose": purpose, "lifetime": duration(max_age), "samesite": samesite}
            for name, purpose, max_age, samesite in COOKIES
        ]
        return page(request, "legal_personal_data.html.j2", title="Données personnelles", cookies=cookies,
                    cookie_path=COOKIE_PATH, session_lifetime=duration(MAX_AGE_S), **_facts(request))

    @get("/aide", opt=web_public(), name="web:help")
    async def help_page(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return page(request, "legal_help.html.j2", title="Aide", **_facts(request))


def _facts(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """What the pages say of this running broker, from its settings."""
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    return {
        "public_url": settings.api.public_url.rstrip("/"),
        "idempotency_hours": settings.idempotency_ttl_hours,
        "emails_sent": settings.notifications.smtp_host is not None,
        "chorus_real": settings.chorus.mode == "piste",
        "decp_threshold": settings.decp_threshold_eur_ht,
    }
