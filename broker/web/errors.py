"""Errors on web pages become French pages (never JSON problems): sign-in redirects, 403, 404, 409,
422 and a 500 that quotes the request id."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException

from broker.api.errors import EXCEPTION_HANDLERS, framing_error
from broker.api.errors import on_unavailable as api_on_unavailable
from broker.api.problems import problem_for_broker_error
from broker.api.security import request_id
from broker.errors import BrokerError, NotFound
from broker.web.labels import ROLE
from broker.web.refusals import french
from broker.web.render import page
from broker.web.security import CsrfRefused, SignInRequired, WebForbidden
from broker.web.session import COOKIE_PATH, SESSION_COOKIE

log = logging.getLogger("broker.web")


def _error_page(request: Request[Any, Any, Any], status: int, title: str, message: str) -> Response[Any]:
    return page(request, "error.html.j2", status=status, title=title, message=message,
                request_id=request_id(request))


def on_sign_in_required(request: Request[Any, Any, Any], exc: SignInRequired) -> Response[Any]:
    response = Response(content=b"", status_code=303, headers={"Location": exc.location(),
                                                               "Cache-Control": "no-store"})
    if exc.reason in ("expiree", "revoquee", "deconnecte"):
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response


def on_forbidden(request: Request[Any, Any, Any], exc: WebForbidden) -> Response[Any]:
    return _error_page(request, 403, "Page réservée",
                       f"Cette page n'est pas ouverte à votre rôle ({ROLE.get(exc.role, exc.role)}).")


def on_csrf(request: Request[Any, Any, Any], _exc: CsrfRefused) -> Response[Any]:
    return _error_page(request, 403, "Formulaire expiré",
                       "Ce formulaire ne vient pas de votre session en cours (page ancienne ou envoyée d'ailleurs). "
                       "Revenez en arrière, rechargez la page et recommencez.")


def on_broker_error(request: Request[Any, Any, Any], exc: BrokerError) -> Response[Any]:
    if isinstance(exc, NotFound):
        return _error_page(request, 404, "Introuvable",
                           "Cette page n'existe pas, ou elle concerne une autre organisation que la vôtre.")
    status = problem_for_broker_error(exc, request_id(request)).status
    return _error_page(request, status, "Opération impossible", french(exc))


def on_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    exc = framing_error(exc)
    if isinstance(exc, NotFoundException):
        return _error_page(request, 404, "Introuvable", "Cette page n'existe pas.")
    if exc.status_code == 400:
        return _error_page(request, 400, "Demande incomprise",
                           "L'adresse ou le formulaire contient un paramètre inattendu ou mal formé.")
    if exc.status_code == 413:
        return _error_page(request, 413, "Envoi trop volumineux", "Le formulaire envoyé dépasse la taille admise.")
    return _error_page(request, exc.status_code, "Erreur", str(exc.detail))


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    rid = request_id(request)
    log.exception("web request %s: unhandled %s", rid, type(exc).__name__, exc_info=exc)
    return _error_page(request, 500, "Erreur interne",
                       "Une erreur inattendue s'est produite. Rien n'a été enregistré ; réessayez, et si elle "
                       "persiste, transmettez le numéro de requête ci-dessous à l'opérateur.")


def on_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("web request %s: database unavailable: %s", request_id(request), type(exc).__name__)
    response = _error_page(request, 503, "Service momentanément indisponible",
                           "La base de données ne répond pas. Rien n'a été enregistré ; réessayez dans un instant.")
    response.headers["Retry-After"] = "2"
    return response


WEB_EXCEPTION_HANDLERS: dict[Any, Any] = {
    SignInRequired: on_sign_in_required,
    WebForbidden: on_forbidden,
    CsrfRefused: on_csrf,
    BrokerError: on_broker_error,
    HTTPException: on_http_exception,
    Exception: on_unexpected,
}
# The API's table names more specific types (database errors…); a page must answer with a page for
# those too, never with JSON.
for _type, _handler in EXCEPTION_HANDLERS.items():
    WEB_EXCEPTION_HANDLERS.setdefault(_type, on_unavailable if _handler is api_on_unavailable else on_unexpected)
