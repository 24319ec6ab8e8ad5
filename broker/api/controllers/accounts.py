"""People's accounts: an admin invites a person of an organisation (the link is e-mailed to them),
disables an account (its sessions end, its sign-in is refused) and enables it again.

Also the notifier that e-mails people their links, shared with the web pages: built once per app
from the settings (log-only unless ``BROKER_SMTP_HOST`` is set); tests put a ``FakeNotifier`` in
``app.state.notifier``."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Response, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter
from msgspec import Meta

from adapters.notifications.base import Notifier
from adapters.notifications.log import mask_address
from broker.api.context import RequestContext
from broker.api.controllers.common import IdempotencyKey
from broker.api.problems import problems
from broker.api.runtime import Runtime
from broker.api.schemas import Input, Name
from broker.api.security import access
from broker.db.accounts import Account
from broker.domain.access import Role
from broker.errors import BrokerError
from broker.services import accounts
from broker.services.notifications import Message, notifier_for

log = logging.getLogger("broker.accounts")

_EMAIL = r"^[^@\s<>,;\"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$"
AccountEmail = Annotated[str, Meta(max_length=254, pattern=_EMAIL,
                                   description="the person's address: the invitation goes there, and it signs in "
                                               "with it (case-insensitive, one account per address)")]


class AccountIn(Input):
    email: AccountEmail
    name: Name
    role: Annotated[Role, Meta(description="buyer, maker, coordinator or admin, as the organisation's kind allows "
                                           "(integration is for API keys)")]


class AccountOut(msgspec.Struct, kw_only=True):
    id: str
    org_id: str
    email: str
    name: str
    role: Role
    status: Literal["invited", "active", "disabled"]
    created_at: datetime
    last_signin_at: datetime | None

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        status: Literal["invited", "active", "disabled"] = (
            "disabled" if account.disabled_at else "invited" if account.invited else "active")
        return cls(id=account.id, org_id=account.org_id, email=account.email, name=account.name, role=account.role,
                   status=status, created_at=account.created_at, last_signin_at=account.last_signin_at)


def mailer(state: State) -> Notifier:
    """The app's notifier for people's links."""
    found: Notifier | None = state.get("notifier")
    if found is None:
        runtime: Runtime = state.runtime
        found = state["notifier"] = notifier_for(runtime.settings.notifications)
    return found


async def send(notifier: Notifier, message: Message) -> None:
    """Send after the commit; a failure is logged (the link exists: invite again to send another)."""
    try:
        await notifier.send(message.to, message.subject, message.body)
    except BrokerError as exc:
        log.warning("accounts: the e-mail with a link was not sent (%s)", exc.code)


AccountId = Annotated[str, PathParameter(max_length=64, description="account id")]


class AccountController(Controller):
    path = "/v1"
    tags = ["organizations"]

    @post(
        "/organizations/{org_id:str}/accounts",
        opt=access(Role.ADMIN, idempotent=True),
        operation_id="invite_account",
        responses=problems(400, 401, 403, 404, 409, 413, 422, 429),
    )
    async def invite(
        self,
        org_id: Annotated[str, PathParameter(max_length=64, description="organisation id")],
        data: JSONBody[AccountIn],
        ctx: NamedDependency[RequestContext],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[AccountOut]:
        """Invite a person: their account is created and a one-time link (valid 72 h) to choose a
        password is e-mailed to them. Inviting again an address that has not accepted yet sends a
        new link; an address with an account already is a 409 ``account-exists``."""
        account, message = await accounts.invite(
            ctx.session, actor=ctx.principal, org_id=org_id, email=data.email, name=data.name, role=data.role,
            now=ctx.now, public_url=ctx.runtime.settings.api.public_url)
        ctx.audit_detail = {"email": mask_address(account.email), "role": account.role}
        notifier = mailer(ctx.request.app.state)
        ctx.after_commit.append(lambda: send(notifier, message))
        return await ctx.respond(AccountOut.of(account), resource=("account", account.id))

    @post(
        "/accounts/{account_id:str}/disable",
        opt=access(Role.ADMIN, idempotent=True),
        operation_id="disable_account",
        status_code=200,
        responses=problems(400, 401, 403, 404, 409, 429),
    )
    async def disable(self, account_id: AccountId, ctx: NamedDependency[RequestContext],
                      idempotency_key: IdempotencyKey = None) -> Response[AccountOut]:
        """Disable a person's account: their web sessions end at their next request, signing in is
        refused (like a wrong password) and their unused links stop working. Disabling a disabled
        account changes nothing; an admin's own account is a 409 ``own-account``."""
        account = await accounts.disable_account(ctx.session, actor=ctx.principal, account_id=account_id,
                                                 now=ctx.now)
        return await ctx.respond(AccountOut.of(account), status=200, resource=("account", account.id))

    @post(
        "/accounts/{account_id:str}/enable",
        opt=access(Role.ADMIN, idempotent=True),
        operation_id="enable_account",
        status_code=200,
        responses=problems(400, 401, 403, 404, 429),
    )
    async def enable(self, account_id: AccountId, ctx: NamedDependency[RequestContext],
                     idempotency_key: IdempotencyKey = None) -> Response[AccountOut]:
        """Enable a disabled account again: the person signs in with their password (the sessions
        they had before stay ended). Enabling an active account changes nothing."""
        account = await accounts.enable_account(ctx.session, actor=ctx.principal, account_id=account_id)
        return await ctx.respond(AccountOut.of(account), status=200, resource=("account", account.id))


__all__: list[Any] = ["AccountController", "mailer", "send"]
