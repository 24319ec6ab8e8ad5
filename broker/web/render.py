"""Page responses: the template with what every page needs (who is signed in, the menu of the role,
the CSRF token, the one-shot flash message), redirects after a post, and the security headers."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.response import Redirect, Template

from broker.domain.access import Principal, Role
from broker.web.labels import TABLES
from broker.web.security import sealer
from broker.web.session import COOKIE_PATH, FLASH_COOKIE, FLASH_MAX_AGE_S, Flash, WebSession

NAV: dict[Role, list[tuple[str, str]]] = {
    Role.BUYER: [
        ("/app/demandes", "Mes demandes"),
        ("/app/catalogue", "Catalogue"),
        ("/app/commandes", "Commandes"),
    ],
    Role.MAKER: [
        ("/app/invitations", "Invitations"),
        ("/app/consultations", "Consultations ouvertes"),
        ("/app/devis", "Mes devis"),
        ("/app/commandes", "Commandes"),
        ("/app/engagements", "Engagements de crise"),
        ("/app/atelier", "Mon atelier"),
    ],
    Role.COORDINATOR: [
        ("/app/crises", "Appels de crise"),
        ("/app/crises/nouvel-appel", "Nouvel appel"),
    ],
    Role.ADMIN: [
        ("/app/admin/organisations", "Organisations"),
        ("/app/admin/ateliers", "Ateliers"),
        ("/app/admin/journal", "Journal d'audit"),
        ("/app/demandes", "Demandes"),
        ("/app/crises", "Appels de crise"),
    ],
}

HOME: dict[Role, str] = {
    Role.BUYER: "/app/demandes",
    Role.MAKER: "/app/invitations",
    Role.COORDINATOR: "/app/crises",
    Role.ADMIN: "/app/admin/organisations",
}

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def page(
    request: Request[Any, Any, Any],
    template: str,
    *,
    status: int = 200,
    title: str,
    **context: Any,
) -> Template:
    """Render ``template``; the flash message (if any) is shown once and its cookie dropped."""
    state = request.scope.get("state", {})
    principal: Principal | None = state.get("principal")
    web_session: WebSession | None = state.get("web_session")
    flash = sealer(request).open_flash(request.cookies.get(FLASH_COOKIE))
    geocoder = request.app.state.runtime.geocoder

    def commune_name(insee: str) -> str:
        commune = geocoder.commune(insee)
        return f"{commune.name} ({commune.department})" if commune else insee

    response = Template(
        template_name=template,
        status_code=status,
        context={
            "title": title,
            "principal": principal,
            "nav": NAV.get(principal.role, []) if principal else [],
            "path": request.scope["path"],
            "csrf": web_session.csrf if web_session else "",
            "org_name": web_session.org_name if web_session else "",
            "flash": flash,
            "t": TABLES,
            "commune_name": commune_name,
            "form": context.pop("form", None),
            **context,
        },
        headers={"Cache-Control": "no-store"},
    )
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path=COOKIE_PATH)
    return response


def redirect(request: Request[Any, Any, Any], location: str, *, flash: str | None = None,
             error: bool = False, secret: str = "") -> Redirect:
    """303 to ``location`` (the Post/Redirect/Get pattern), with a message for the next page."""
    response = Redirect(path=location, status_code=303)
    if flash:
        value = sealer(request).seal_flash(Flash(kind="error" if error else "ok", text=flash, secret=secret))
        response.set_cookie(FLASH_COOKIE, value, path=COOKIE_PATH, max_age=FLASH_MAX_AGE_S, secure=True,
                            httponly=True, samesite="lax")
    return response


async def add_security_headers(response: Response[Any]) -> Response[Any]:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
