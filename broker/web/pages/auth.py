"""Sign-in with an API key, sign-out, and the way home."""

from __future__ import annotations

import secrets
import time
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import PathParameter, QueryParameter
from redis.exceptions import RedisError

from broker.api.runtime import Runtime
from broker.domain.access import Role
from broker.errors import NotFound
from broker.services import organisations
from broker.services.access import authenticate
from broker.web.forms import Form
from broker.web.render import HOME, page, redirect
from broker.web.security import WEB_ROLES, csrf_matches, log, safe_next, sealer, web_access, web_public
from broker.web.session import (
    COOKIE_PATH,
    MAX_AGE_S,
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    SIGNIN_MAX_AGE_S,
    WebSession,
    new_session,
    signed_out_key,
)

REASONS = {
    "expiree": "Votre session a expiré : connectez-vous à nouveau.",
    "revoquee": "La clé de cette session n'est plus valide (révoquée) : connectez-vous avec une clé active.",
    "deconnecte": "Cette session a été fermée : connectez-vous à nouveau.",
    "au-revoir": "Vous êtes déconnecté(e). À bientôt !",
}

Reason = Annotated[str | None, QueryParameter(name="motif", max_length=20)]
Next = Annotated[str | None, QueryParameter(name="suite", max_length=300)]


def _signin_page(request: Request[Any, Any, Any], form: Form, *, status: int = 200, notice: str | None = None,
                 next_path: str | None = None) -> Response[Any]:
    token = secrets.token_urlsafe(24)
    response = page(request, "signin.html.j2", status=status, title="Connexion", form=form, notice=notice,
                    signin_csrf=token, next_path=safe_next(next_path) or "")
    response.set_cookie(SIGNIN_COOKIE, sealer(request).seal_signin(token), path=COOKIE_PATH,
                        max_age=SIGNIN_MAX_AGE_S, secure=True, httponly=True, samesite="strict")
    return response


class SignInController(Controller):
    path = "/"
    include_in_schema = False

    @get("/connexion", opt=web_public(), name="web:signin")
    async def signin_form(self, request: Request[Any, Any, Any], motif: Reason = None,
                          suite: Next = None) -> Response[Any]:
        return _signin_page(request, Form(), notice=REASONS.get(motif or ""), next_path=suite)

    @post("/connexion", opt=web_public(), status_code=303)
    async def signin(self, request: Request[Any, Any, Any]) -> Response[Any]:
        form = Form(await request.form())
        next_path = safe_next(form.raw("suite"))
        expected = sealer(request).open_signin(request.cookies.get(SIGNIN_COOKIE))
        sent = form.raw("_csrf_signin")
        form.values.pop("cle", None)  # a secret is never written back into the page
        if expected is None or not csrf_matches(sent, expected):
            form.error("__all__", "Le formulaire a expiré : saisissez votre clé à nouveau.")
            return _signin_page(request, form, status=403, next_path=next_path)
        token = (await request.form()).get("cle", "")
        token = token.strip() if isinstance(token, str) else ""
        if not token:
            form.error("cle", "Collez la clé d'API qui vous a été remise (elle commence par « fab_ »).")
            return _signin_page(request, form, status=422, next_path=next_path)
        runtime: Runtime = request.app.state.runtime
        async with runtime.db.reader() as session:
            principal = await authenticate(session, token=token)
            org = (
                await organisations.get_organisation(session, actor=principal, org_id=principal.org_id)
                if principal is not None else None
            )
        if principal is None or org is None:
            form.error("cle", "Clé inconnue ou révoquée. Vérifiez-la, ou demandez-en une nouvelle à l'administrateur.")
            return _signin_page(request, form, status=422, next_path=next_path)
        if principal.role not in WEB_ROLES:
            form.error("cle", "Une clé d'intégration sert aux logiciels, pas à l'interface : utilisez une clé "
                       "acheteur, atelier, coordination ou administration.")
            return _signin_page(request, form, status=422, next_path=next_path)
        web_session = new_session(token, org_name=org.name)
        response = redirect(request, next_path or HOME[principal.role],
                            flash=f"Bienvenue, {org.name}.")
        response.set_cookie(SESSION_COOKIE, sealer(request).seal_session(web_session), path=COOKIE_PATH,
                            max_age=MAX_AGE_S, secure=True, httponly=True, samesite="lax")
        response.delete_cookie(SIGNIN_COOKIE, path=COOKIE_PATH)
        return response

    @post("/deconnexion", opt=web_access(*WEB_ROLES), status_code=303)
    async def signout(self, request: Request[Any, Any, Any]) -> Response[Any]:
        web_session: WebSession = request.scope["state"]["web_session"]
        runtime: Runtime = request.app.state.runtime
        remaining = max(1, web_session.issued_at + MAX_AGE_S - int(time.time()))
        try:
            await runtime.redis.set(signed_out_key(web_session.sid), b"1", ex=remaining)
        except (RedisError, OSError) as exc:
            log.warning("web: sign-out not recorded server-side (%s); the cookie is dropped", type(exc).__name__)
        response = redirect(request, "/app/connexion?motif=au-revoir")
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
        return response

    @get("/", opt=web_access(*WEB_ROLES))
    async def home(self, request: Request[Any, Any, Any]) -> Response[Any]:
        role: Role = request.scope["state"]["principal"].role
        return redirect(request, HOME[role])


class NotFoundPage(Controller):
    """Any other address under /app: the French 404 page rather than the API's JSON problem."""

    path = "/"
    include_in_schema = False

    @get("/{rest:path}", opt=web_public())
    async def nowhere(self, rest: Annotated[str, PathParameter(max_length=500)]) -> Response[Any]:
        raise NotFound(f"no page {rest!r}")


@get("/", opt=web_public(), include_in_schema=False)
async def root() -> Response[Any]:
    """The bare address leads to the interface."""
    return Response(content=b"", status_code=303, headers={"Location": "/app/"})
