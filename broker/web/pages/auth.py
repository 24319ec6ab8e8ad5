"""Sign-in (people by e-mail and password; technical users by API key), the invitation and reset
links, the forgotten-password request, « Mon compte » (a person changes their password), sign-out,
and the way home.

Password sign-ins (and password changes, in the same buckets) are throttled with the API's rate
limiter (Redis, one-minute windows): attempts per account (``SIGNIN_ATTEMPTS_PER_MINUTE``, then
refused even with the right password until the window ends) and failed authentications per client
address (the API's limit, in the same bucket as failed API keys)."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.params import PathParameter, QueryParameter
from redis.exceptions import RedisError

from broker.api.client_address import client_address, trusted_networks
from broker.api.controllers.accounts import mailer, send
from broker.api.runtime import RateLimiter, Runtime
from broker.api.security import request_id
from broker.domain.access import Role
from broker.errors import NotFound
from broker.services import accounts, organisations
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
    "revoquee": "Cette session n'est plus valide (compte désactivé, mot de passe changé ou clé révoquée) : "
                "connectez-vous à nouveau.",
    "deconnecte": "Cette session a été fermée : connectez-vous à nouveau.",
    "au-revoir": "Vous êtes déconnecté(e). À bientôt !",
}
#: Password sign-ins per account and per minute (successful ones count too), then refused until the
#: minute ends: ten guesses a minute, against passwords of 12 characters or more, none of the common ones.
SIGNIN_ATTEMPTS_PER_MINUTE = 10
WRONG = "Adresse e-mail ou mot de passe incorrect."
RULES = ("12 caractères au moins ; ni votre adresse e-mail, ni un mot de passe courant. Une courte phrase de "
         "plusieurs mots est facile à retenir et difficile à deviner.")
LINK_GONE = ("Ce lien n'est pas ou plus valide : il a déjà servi, il a expiré (une invitation vaut 72 heures, une "
             "réinitialisation une heure) ou le compte est désactivé.")

Reason = Annotated[str | None, QueryParameter(name="motif", max_length=20)]
Next = Annotated[str | None, QueryParameter(name="suite", max_length=300)]
Token = Annotated[str, PathParameter(max_length=100)]
slog = logging.getLogger("broker.accounts")


def _with_signin_token(request: Request[Any, Any, Any], response: Response[Any], token: str) -> Response[Any]:
    response.set_cookie(SIGNIN_COOKIE, sealer(request).seal_signin(token), path=COOKIE_PATH,
                        max_age=SIGNIN_MAX_AGE_S, secure=True, httponly=True, samesite="strict")
    return response


def _signin_page(request: Request[Any, Any, Any], form: Form, *, status: int = 200, notice: str | None = None,
                 next_path: str | None = None) -> Response[Any]:
    token = secrets.token_urlsafe(24)
    response = page(request, "signin.html.j2", status=status, title="Connexion", form=form, notice=notice,
                    signin_csrf=token, next_path=safe_next(next_path) or "")
    return _with_signin_token(request, response, token)


def _signin_limiter(state: State) -> RateLimiter:
    """The API's rate limiter with the password sign-in's own limit per account (one per app)."""
    found: RateLimiter | None = state.get("signin_limiter")
    if found is None:
        runtime: Runtime = state.runtime
        found = state["signin_limiter"] = RateLimiter(runtime.redis, SIGNIN_ATTEMPTS_PER_MINUTE,
                                                      runtime.settings.api.auth_failures_per_minute)
    return found


def _address(request: Request[Any, Any, Any]) -> str:
    runtime: Runtime = request.app.state.runtime
    peer = request.scope.get("client")
    return client_address(peer[0] if peer else None, request.headers.getall("x-forwarded-for", []),
                          trusted_networks(runtime.settings.api.trusted_proxies))


def _bucket(purpose: str, email: str) -> str:
    """The limiter's bucket for an address (hashed: no address is written into Redis)."""
    return hashlib.sha256(f"{purpose}:{accounts.normalise_email(email)}".encode()).hexdigest()


def _form_secret(form: Form, name: str) -> str:
    """A password as typed (never stripped, never written back into the page)."""
    value = form.values.pop(name, "")
    return value if isinstance(value, str) else ""


def _signed_in(request: Request[Any, Any, Any], web_session: WebSession, location: str, flash: str) -> Response[Any]:
    response = redirect(request, location, flash=flash)
    response.set_cookie(SESSION_COOKIE, sealer(request).seal_session(web_session), path=COOKIE_PATH,
                        max_age=MAX_AGE_S, secure=True, httponly=True, samesite="lax")
    response.delete_cookie(SIGNIN_COOKIE, path=COOKIE_PATH)
    return response


def _too_many(request: Request[Any, Any, Any], form: Form, retry_s: int, next_path: str | None) -> Response[Any]:
    form.error("__all__", f"Trop de tentatives de connexion : réessayez dans {retry_s} secondes.")
    response = _signin_page(request, form, status=429, next_path=next_path)
    response.headers["Retry-After"] = str(retry_s)
    return response


class SignInController(Controller):
    """Signing in and out, and the links e-mailed to people (choose a password on invitation, reset
    it) with the request of a reset: the token in a link's address is its secret (no session)."""

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
        by_password = "courriel" in form.values
        form.values.pop("cle", None)  # a secret is never written back into the page
        password = _form_secret(form, "mot_de_passe")
        if expected is None or not csrf_matches(sent, expected):
            form.error("__all__", "Le formulaire a expiré : saisissez vos identifiants à nouveau.")
            return _signin_page(request, form, status=403, next_path=next_path)
        if by_password:
            return await self._with_password(request, form, password, next_path)
        return await self._with_key(request, form, next_path)

    async def _with_password(self, request: Request[Any, Any, Any], form: Form, password: str,
                             next_path: str | None) -> Response[Any]:
        email = form.raw("courriel")
        if not email:
            form.error("courriel", "Saisissez l'adresse e-mail de votre compte.")
        if not password:
            form.error("mot_de_passe", "Saisissez votre mot de passe.")
        if not form.ok:
            return _signin_page(request, form, status=422, next_path=next_path)
        runtime: Runtime = request.app.state.runtime
        limiter = _signin_limiter(request.app.state)
        address = _address(request)
        bucket = _bucket("signin", email)
        decision = await limiter.hit(bucket, address)
        if decision is not None and (not decision.allowed or decision.address_failures >= limiter.failures_limit):
            slog.warning("accounts: password sign-in throttled (%s)", "account" if not decision.allowed else "address")
            return _too_many(request, form, decision.reset_s, next_path)
        async with runtime.db.reader() as session:
            attempt = await accounts.verify_sign_in(session, email=email, password=password)
            account = attempt.account
            org = (await organisations.get_organisation(session, actor=accounts.principal_for(account),
                                                        org_id=account.org_id) if account else None)
        now = datetime.now(UTC)
        async with runtime.db.writer() as session:
            if account is not None:
                await accounts.note_sign_in(session, attempt=attempt, now=now)
            accounts.record(session, action="account.signin" if account else "account.signin_failed",
                            account=attempt.named, email=email, status_code=303 if account else 422,
                            request_id=request_id(request), now=now)
            await session.commit()
        if account is None or org is None:
            retry_s = await limiter.failed(address, "account-" + bucket[:32])
            if retry_s is not None:
                return _too_many(request, form, retry_s, next_path)
            form.error("courriel", WRONG)
            return _signin_page(request, form, status=422, next_path=next_path)
        web_session = new_session("", org_name=org.name, account_id=account.id,
                                  stamp=accounts.password_stamp(account))
        return _signed_in(request, web_session, next_path or HOME[account.role], f"Bienvenue, {account.name}.")

    async def _with_key(self, request: Request[Any, Any, Any], form: Form, next_path: str | None) -> Response[Any]:
        token = (await request.form()).get("cle", "")
        token = token.strip() if isinstance(token, str) else ""
        if not token:
            form.error("cle", "Collez la clé d'API qui vous a été remise (elle commence par « fab_ »).")
            return _signin_page(request, form, status=422, next_path=next_path)
        runtime: Runtime = request.app.state.runtime
        limiter = _signin_limiter(request.app.state)
        address = _address(request)
        bucket = _bucket("key", token)
        # The API's failed-authentication limit per client address counts the key sign-ins too (issue 18):
        # guessing keys through this form is no cheaper than through the API.
        decision = await limiter.hit(bucket, address)
        if decision is not None and decision.address_failures >= limiter.failures_limit:
            slog.warning("accounts: key sign-in throttled (address)")
            return _too_many(request, form, decision.reset_s, next_path)
        async with runtime.db.reader() as session:
            principal = await authenticate(session, token=token)
            org = (
                await organisations.get_organisation(session, actor=principal, org_id=principal.org_id)
                if principal is not None else None
            )
        if principal is None or org is None:
            retry_s = await limiter.failed(address, "key-" + bucket[:32])
            if retry_s is not None:
                return _too_many(request, form, retry_s, next_path)
            form.error("cle", "Clé inconnue ou révoquée. Vérifiez-la, ou demandez-en une nouvelle à l'administrateur.")
            return _signin_page(request, form, status=422, next_path=next_path)
        if principal.role not in WEB_ROLES:
            form.error("cle", "Une clé d'intégration sert aux logiciels, pas à l'interface : utilisez une clé "
                       "acheteur, atelier, coordination ou administration.")
            return _signin_page(request, form, status=422, next_path=next_path)
        return _signed_in(request, new_session(token, org_name=org.name), next_path or HOME[principal.role],
                          f"Bienvenue, {org.name}.")

    @get("/invitation/{token:str}", opt=web_public())
    async def invitation(self, request: Request[Any, Any, Any], token: Token) -> Response[Any]:
        return await _link_page(request, accounts.INVITATION, token, Form())

    @post("/invitation/{token:str}", opt=web_public(), status_code=303)
    async def accept(self, request: Request[Any, Any, Any], token: Token) -> Response[Any]:
        return await _set_password(request, accounts.INVITATION, token)

    @get("/reinitialisation/{token:str}", opt=web_public())
    async def reset(self, request: Request[Any, Any, Any], token: Token) -> Response[Any]:
        return await _link_page(request, accounts.RESET, token, Form())

    @post("/reinitialisation/{token:str}", opt=web_public(), status_code=303)
    async def reset_password(self, request: Request[Any, Any, Any], token: Token) -> Response[Any]:
        return await _set_password(request, accounts.RESET, token)

    @get("/mot-de-passe-oublie", opt=web_public())
    async def forgotten(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return _forgotten_page(request, Form())

    @post("/mot-de-passe-oublie", opt=web_public(), status_code=200)
    async def request_reset(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """The same answer whether or not the address has an account; the e-mail is sent after the
        answer (its delay would tell)."""
        form = Form(await request.form())
        expected = sealer(request).open_signin(request.cookies.get(SIGNIN_COOKIE))
        if expected is None or not csrf_matches(form.raw("_csrf_signin"), expected):
            form.error("__all__", "Le formulaire a expiré : saisissez votre adresse à nouveau.")
            return _forgotten_page(request, form, status=403)
        email = form.text("courriel", max_length=254)
        if email is None or "@" not in email:
            form.error("courriel", "Saisissez l'adresse e-mail de votre compte.")
            return _forgotten_page(request, form, status=422)
        runtime: Runtime = request.app.state.runtime
        limiter = _signin_limiter(request.app.state)
        decision = await limiter.hit(_bucket("reset", email), _address(request))
        found = None
        if decision is None or decision.allowed:
            now = datetime.now(UTC)
            async with runtime.db.writer() as session:
                found = await accounts.request_reset(session, email=email, now=now,
                                                     public_url=runtime.settings.api.public_url)
                if found is not None:
                    accounts.record(session, action="account.reset_requested", account=found[0], status_code=200,
                                    request_id=request_id(request), now=now)
                await session.commit()
        response = page(request, "account_message.html.j2", title="Lien envoyé", heading="Vérifiez votre messagerie",
                        message=("Si un compte existe pour cette adresse, un lien pour choisir un nouveau mot de passe "
                                 "vient de lui être envoyé. Il est valable une heure et ne sert qu'une fois."),
                        show_forgotten=False)
        if found is not None:
            response.background = BackgroundTask(send, mailer(request.app.state), found[1])
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

    @get("/compte", opt=web_access(*WEB_ROLES))
    async def my_account(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """« Mon compte »: who is signed in, and the form to change the password (a person's account only)."""
        state = request.scope["state"]
        _account_session(state["web_session"])
        account = await accounts.own_account(state["session"], actor=state["principal"])
        return _account_page(request, account, Form())

    @post("/compte/mot-de-passe", opt=web_access(*WEB_ROLES), status_code=303)
    async def change_password(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """Change the password with the current one: throttled like a sign-in (the same bucket per
        account, the same count of failures per client address); every other session of the account
        ends at its next request, this one gets the new stamp and continues."""
        state = request.scope["state"]
        web_session = _account_session(state["web_session"])
        principal = state["principal"]
        form = Form(await request.form())
        current = _form_secret(form, "mot_de_passe_actuel")
        password = _form_secret(form, "mot_de_passe")
        if not current:
            form.error("mot_de_passe_actuel", "Saisissez votre mot de passe actuel.")
        if password != _form_secret(form, "confirmation"):
            form.error("confirmation", "Les deux saisies diffèrent : tapez le même mot de passe deux fois.")
        runtime: Runtime = request.app.state.runtime
        async with runtime.db.reader() as session:
            account = await accounts.own_account(session, actor=principal)
            if not form.ok:
                return _account_page(request, account, form, status=422)
            limiter = _signin_limiter(request.app.state)
            address = _address(request)
            bucket = _bucket("signin", account.email)
            decision = await limiter.hit(bucket, address)
            if decision is not None and (not decision.allowed or decision.address_failures >= limiter.failures_limit):
                slog.warning("accounts: password change throttled (%s)",
                             "account" if not decision.allowed else "address")
                return _too_many_changes(request, account, form, decision.reset_s)
            try:
                change = await accounts.check_password_change(session, actor=principal, current=current,
                                                              password=password)
            except accounts.WeakPassword as exc:
                form.error("mot_de_passe", exc.detail)
                return _account_page(request, account, form, status=422)
            except accounts.WrongPassword:
                change = None
        now = datetime.now(UTC)
        writer = state["session"]  # the guard's write session: its first statement comes after argon2's work
        if change is None:
            accounts.record(writer, action="account.password_change_failed", account=account, status_code=422,
                            request_id=request_id(request), now=now)
            await writer.commit()
            retry_s = await limiter.failed(address, "account-" + bucket[:32])
            if retry_s is not None:
                return _too_many_changes(request, account, form, retry_s)
            form.error("mot_de_passe_actuel", "Ce n'est pas votre mot de passe actuel.")
            return _account_page(request, account, form, status=422)
        account = await accounts.change_password(writer, change=change, now=now)
        accounts.record(writer, action="account.password_changed", account=account, status_code=303,
                        request_id=request_id(request), now=now)
        await writer.commit()
        renewed = new_session("", org_name=web_session.org_name, account_id=account.id,
                              stamp=accounts.password_stamp(account))
        return _signed_in(request, renewed, "/app/compte",
                          "Votre mot de passe est changé ; vos autres sessions sont fermées.")

    @get("/", opt=web_access(*WEB_ROLES))
    async def home(self, request: Request[Any, Any, Any]) -> Response[Any]:
        role: Role = request.scope["state"]["principal"].role
        return redirect(request, HOME[role])


def _account_session(web_session: WebSession) -> WebSession:
    """A session of a person's account: one opened with an API key has no password (and no such page)."""
    if not web_session.account_id:
        raise NotFound("a session opened with an API key has no account page")
    return web_session


def _account_page(request: Request[Any, Any, Any], account: accounts.Account, form: Form, *,
                  status: int = 200) -> Response[Any]:
    return page(request, "account.html.j2", status=status, title="Mon compte", form=form, account=account,
                rules=RULES)


def _too_many_changes(request: Request[Any, Any, Any], account: accounts.Account, form: Form,
                      retry_s: int) -> Response[Any]:
    form.error("mot_de_passe_actuel", f"Trop de tentatives : réessayez dans {retry_s} secondes.")
    response = _account_page(request, account, form, status=429)
    response.headers["Retry-After"] = str(retry_s)
    return response


def _forgotten_page(request: Request[Any, Any, Any], form: Form, *, status: int = 200) -> Response[Any]:
    token = secrets.token_urlsafe(24)
    response = page(request, "password_forgotten.html.j2", status=status, title="Mot de passe oublié", form=form,
                    signin_csrf=token)
    return _with_signin_token(request, response, token)


def _gone(request: Request[Any, Any, Any]) -> Response[Any]:
    return page(request, "account_message.html.j2", status=410, title="Lien expiré", heading="Lien expiré",
                message=LINK_GONE, show_forgotten=True)


async def _link_page(request: Request[Any, Any, Any], purpose: str, token: str, form: Form, *,
                     status: int = 200) -> Response[Any]:
    runtime: Runtime = request.app.state.runtime
    async with runtime.db.reader() as session:
        account = await accounts.link_account(session, token=token, purpose=purpose, now=datetime.now(UTC))
    if account is None:
        return _gone(request)
    title = "Choisissez votre mot de passe" if purpose == accounts.INVITATION else "Nouveau mot de passe"
    return page(request, "account_password.html.j2", status=status, title=title, form=form, account=account,
                invitation=purpose == accounts.INVITATION, rules=RULES)


async def _set_password(request: Request[Any, Any, Any], purpose: str, token: str) -> Response[Any]:
    form = Form(await request.form())
    password = _form_secret(form, "mot_de_passe")
    if password != _form_secret(form, "confirmation"):
        form.error("confirmation", "Les deux saisies diffèrent : tapez le même mot de passe deux fois.")
        return await _link_page(request, purpose, token, form, status=422)
    runtime: Runtime = request.app.state.runtime
    now = datetime.now(UTC)
    async with runtime.db.writer() as session:
        try:
            account = await accounts.set_password_by_link(session, token=token, purpose=purpose, password=password,
                                                          now=now)
        except accounts.LinkUnusable:
            return _gone(request)
        except accounts.WeakPassword as exc:
            await session.rollback()
            form.error("mot_de_passe", exc.detail)
            return await _link_page(request, purpose, token, form, status=422)
        org = await organisations.get_organisation(session, actor=accounts.principal_for(account),
                                                   org_id=account.org_id)
        action = "account.invitation_accepted" if purpose == accounts.INVITATION else "account.password_reset"
        accounts.record(session, action=action, account=account, status_code=303, request_id=request_id(request),
                        now=now)
        await session.commit()
    flash = (f"Bienvenue, {account.name} : votre compte est prêt." if purpose == accounts.INVITATION
             else "Votre mot de passe est changé ; vos autres sessions sont fermées.")
    web_session = new_session("", org_name=org.name, account_id=account.id, stamp=accounts.password_stamp(account))
    return _signed_in(request, web_session, HOME[account.role], flash)


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
