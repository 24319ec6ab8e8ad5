"""People's accounts: an admin invites a person (a one-time link e-mailed, valid 72 h), the person
chooses a password (argon2id) and signs in with the e-mail and the password; a forgotten password
is reset through another one-time link (1 h); a signed-in person changes it with the current one;
an admin disables an account and enables it again. API keys stay for systems.

Links are 256-bit random tokens stored as their SHA-256 (the token is in the e-mail only), used
once by compare-and-set. Signing in with an unknown address still verifies a password against a
dummy hash, so the answer takes as long as for a known one. The messages are returned to the
edge, which sends them after its commit (a rolled-back invitation mails no dead link)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import string
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.notifications.log import mask_address
from broker.db.accounts import Account as Account  # re-exported: the pages name it, never broker.db
from broker.db.accounts import AccountRepository, AccountTokenRepository
from broker.db.repositories import AuditRepository, OrganisationRepository
from broker.domain.access import ROLES_BY_KIND, Principal, Role
from broker.errors import Conflict, NotFound, Rejected
from broker.services.notifications import Message

INVITATION = "invitation"
RESET = "reset"
INVITATION_TTL = timedelta(hours=72)
RESET_TTL = timedelta(hours=1)
MIN_PASSWORD = 12
MAX_PASSWORD = 200
#: The roles a person may hold: ``integration`` is for systems (API keys) only.
PEOPLE_ROLES = frozenset({Role.BUYER, Role.MAKER, Role.COORDINATOR, Role.ADMIN})
_ROLE_WORDS = {Role.BUYER: "acheteur", Role.MAKER: "atelier", Role.COORDINATOR: "coordination",
               Role.ADMIN: "administration"}
_PATHS = {INVITATION: "/app/invitation/", RESET: "/app/reinitialisation/"}

# argon2-cffi's defaults: argon2id, RFC 9106's second recommended set (t=3, 64 MiB, p=4).
_HASHER = PasswordHasher()
_EDGES = string.digits + string.punctuation + " "
_SEPARATORS = re.compile(r"[\s._-]+")


class LinkUnusable(Conflict):
    """The link is unknown, expired, already used, or its account is disabled."""

    code = "link-unusable"
    title = "Link expired or already used"


class WeakPassword(Rejected):
    code = "weak-password"
    title = "Password refused"


class WrongPassword(Rejected):
    """A password change with a current password that is not the account's."""

    code = "wrong-password"
    title = "Current password wrong"


class AccountChanged(Conflict):
    """The password was changed, or the account disabled, between the check and the write."""

    code = "account-changed"
    title = "Account changed meanwhile"


class OwnAccount(Conflict):
    """An admin disabling their own account would lock themselves out: another admin does it."""

    code = "own-account"
    title = "Own account"


@cache
def _common_passwords() -> frozenset[str]:
    path = Path(__file__).parent / "data" / "common_passwords.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def _unrepeated(text: str) -> str:
    """``azertyazerty`` → ``azerty``: the shortest unit the text repeats."""
    for size in range(1, len(text) // 2 + 1):
        if len(text) % size == 0 and text[:size] * (len(text) // size) == text:
            return text[:size]
    return text


def password_problem(password: str, *, email: str) -> str | None:
    """Why this password is refused (a French sentence for the person), or None."""
    if len(password) < MIN_PASSWORD:
        return f"Choisissez un mot de passe de {MIN_PASSWORD}\u00a0caractères au moins ({len(password)} saisis)."
    if len(password) > MAX_PASSWORD:
        return f"{MAX_PASSWORD}\u00a0caractères au plus."
    lowered = password.lower()
    core = _unrepeated(_SEPARATORS.sub("", lowered.strip(_EDGES)))
    local = email.partition("@")[0]
    if email in lowered or (len(local) >= 4 and core == local):
        return "Ne reprenez pas votre adresse e-mail dans le mot de passe."
    if not core or len(set(lowered)) < 5 or lowered in _common_passwords() or core in _common_passwords():
        return ("Ce mot de passe est trop courant ou trop simple : il serait deviné parmi les premiers. Une courte "
                "phrase de plusieurs mots est facile à retenir et difficile à deviner.")
    return None


def normalise_email(text: str) -> str:
    """Addresses are compared and stored in lower case (one account per address)."""
    return text.strip().lower()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@cache
def _dummy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(16))


async def _hash(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


async def _verify(stored: str, password: str) -> bool:
    """In a thread: argon2 takes tens of milliseconds of CPU, which the event loop must not wait for."""
    try:
        return await asyncio.to_thread(_HASHER.verify, stored, password)
    except (VerificationError, InvalidHashError):
        return False


def principal_for(account: Account) -> Principal:
    """The principal of a signed-in person: the key fields name the account (the audit log shows
    ``compte-`` and the start of its id where a key shows its prefix)."""
    return Principal(org_id=account.org_id, key_id=account.id, key_prefix=f"compte-{account.id[:8]}",
                     role=account.role)


def _link(public_url: str, purpose: str, token: str) -> str:
    return public_url.rstrip("/") + _PATHS[purpose] + token


async def _new_link(session: AsyncSession, *, account: Account, purpose: str, now: datetime, public_url: str) -> str:
    token = secrets.token_urlsafe(32)
    ttl = INVITATION_TTL if purpose == INVITATION else RESET_TTL
    await AccountTokenRepository(session).replace(account_id=account.id, purpose=purpose, token_hash=_token_hash(token),
                                                  now=now, expires_at=now + ttl)
    return _link(public_url, purpose, token)


async def invite(
    session: AsyncSession, *, actor: Principal, org_id: str, email: str, name: str, role: Role, now: datetime,
    public_url: str,
) -> tuple[Account, Message]:
    """Create the account of a person of ``org_id`` (for admin routes) and the invitation to send.
    Inviting again an address that has not accepted yet sends a new link (the earlier one stops
    working); an address that has an account already is a conflict."""
    org = await OrganisationRepository(session).get(org_id, scope_org_id=None if actor.is_admin else actor.org_id)
    if org is None:
        raise NotFound(f"organization {org_id} not found")
    if role not in PEOPLE_ROLES or role not in ROLES_BY_KIND[org.kind]:
        allowed = ", ".join(sorted(ROLES_BY_KIND[org.kind] & PEOPLE_ROLES))
        raise Rejected(f"a person of an organisation of kind '{org.kind}' may have roles {allowed}, not '{role}'",
                       pointer="/role", code="role-not-allowed")
    email = normalise_email(email)
    if len(email) > 254:  # a few letters grow in lower case (İ → i̇)
        raise Rejected("an e-mail address has 254 characters at most", pointer="/email")
    accounts = AccountRepository(session)
    found = await accounts.by_email(email)
    if found is None:
        account = await accounts.add(org_id=org.id, email=email, name=name, role=role, now=now)
    elif found[0].invited and found[0].org_id == org.id and found[0].disabled_at is None:
        await accounts.update(found[0].id, {"name": name, "role": role})
        account = msgspec.structs.replace(found[0], name=name, role=role)
    else:
        raise Conflict("this address already has an account", pointer="/email", code="account-exists")
    link = await _new_link(session, account=account, purpose=INVITATION, now=now, public_url=public_url)
    body = (
        f"Bonjour {name},\n\n{org.name} vous ouvre un compte sur le courtier de fabrication locale "
        f"(profil\u00a0: {_ROLE_WORDS[role]}).\n\nChoisissez votre mot de passe en suivant ce lien, valable "
        f"72\u00a0heures et une seule fois\u00a0:\n{link}\n\nVous vous connecterez ensuite avec votre adresse "
        f"{email} et ce mot de passe.\n\nSi vous n'attendiez pas ce message, ignorez-le\u00a0: aucun compte ne "
        f"sera utilisable sans ce lien.\n\n— Le courtier de fabrication\n{public_url.rstrip('/')}/\n"
    )
    return account, Message(to=email, subject="Votre compte sur le courtier de fabrication locale", body=body)


async def link_account(session: AsyncSession, *, token: str, purpose: str, now: datetime) -> Account | None:
    """The account a usable link (unused, unexpired, account not disabled) is for, or None."""
    if not token or len(token) > 100:
        return None
    found = await AccountTokenRepository(session).usable(token_hash=_token_hash(token), purpose=purpose, now=now)
    account = await AccountRepository(session).get(found[1]) if found is not None else None
    return None if account is None or account.disabled_at is not None else account


async def set_password_by_link(
    session: AsyncSession, *, token: str, purpose: str, password: str, now: datetime
) -> Account:
    """Accept an invitation or a reset: the link is used (once), the password set, every other link
    of the account dropped, and sessions opened before now end."""
    # Hashed before the first statement: on SQLite the writer's lock is taken then, not while argon2 works.
    password_hash = await _hash(password[:MAX_PASSWORD + 1])
    tokens = AccountTokenRepository(session)
    found = await tokens.usable(token_hash=_token_hash(token), purpose=purpose, now=now) if token else None
    account = await AccountRepository(session).get(found[1]) if found is not None else None
    if found is None or account is None or account.disabled_at is not None:
        raise LinkUnusable("this link is unknown, expired or already used")
    problem = password_problem(password, email=account.email)
    if problem is not None:
        raise WeakPassword(problem, pointer="/password")
    if not await tokens.use(found[0], now=now):
        raise LinkUnusable("this link was used by another request")
    await tokens.drop_unused(account.id)
    await AccountRepository(session).update(account.id, {
        "password_hash": password_hash, "password_changed_at": now, "last_signin_at": now})
    return msgspec.structs.replace(account, password_changed_at=now, last_signin_at=now, invited=False)


class SignInAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """``account``: signed in, or None; ``named``: the account the address names (for the audit log);
    ``new_hash``: the password hashed again when the hashing parameters were raised since."""

    account: Account | None
    named: Account | None
    new_hash: str | None = None


async def verify_sign_in(session: AsyncSession, *, email: str, password: str) -> SignInAttempt:
    """Check an address and a password (reads only: run it on a reader, so that SQLite's write lock
    is not held while argon2 works). Refused for an unknown address, a wrong password, an account
    invited but not accepted yet, or a disabled one; as long for an unknown address as for a known
    one (a dummy hash is verified). `note_sign_in` then records a success."""
    found = await AccountRepository(session).by_email(normalise_email(email)) if len(email) <= 254 else None
    stored = found[1] if found is not None else None
    against = stored if stored is not None else await asyncio.to_thread(_dummy_hash)
    matches = await _verify(against, password[:MAX_PASSWORD * 4])
    named = found[0] if found is not None else None
    if named is None or stored is None or not matches or named.disabled_at is not None:
        return SignInAttempt(account=None, named=named)
    new_hash = await _hash(password) if _HASHER.check_needs_rehash(stored) else None
    return SignInAttempt(account=named, named=named, new_hash=new_hash)


async def note_sign_in(session: AsyncSession, *, attempt: SignInAttempt, now: datetime) -> None:
    """A successful sign-in: its time, and the password's new hash if there is one."""
    assert attempt.account is not None
    values: dict[str, object] = {"last_signin_at": now}
    if attempt.new_hash is not None:
        values["password_hash"] = attempt.new_hash
    await AccountRepository(session).update(attempt.account.id, values)


async def request_reset(
    session: AsyncSession, *, email: str, now: datetime, public_url: str
) -> tuple[Account, Message] | None:
    """The account of this address and its reset e-mail, or None when no active account has this
    address (the edge answers the same either way)."""
    address = normalise_email(email)
    found = await AccountRepository(session).by_email(address) if len(address) <= 254 else None
    if found is None or found[0].invited or found[0].disabled_at is not None:
        return None
    account = found[0]
    link = await _new_link(session, account=account, purpose=RESET, now=now, public_url=public_url)
    body = (
        f"Bonjour {account.name},\n\nUne réinitialisation du mot de passe de votre compte a été demandée. Choisissez "
        f"un nouveau mot de passe en suivant ce lien, valable une heure et une seule fois\u00a0:\n{link}\n\n"
        "Si vous n'êtes pas à l'origine de cette demande, ignorez ce message\u00a0: votre mot de passe reste "
        f"inchangé.\n\n— Le courtier de fabrication\n{public_url.rstrip('/')}/\n"
    )
    return account, Message(to=account.email, subject="Réinitialisation de votre mot de passe", body=body)


def password_stamp(account: Account) -> int:
    """Changes with every password set (microseconds of its time): a web session keeps the stamp of
    its sign-in, and ends when the account's differs."""
    changed = account.password_changed_at
    return 0 if changed is None else int(changed.timestamp() * 1_000_000)


async def session_principal(session: AsyncSession, *, account_id: str, stamp: int) -> Principal | None:
    """The principal of a web session of this account, or None when the account is gone, disabled,
    or changed its password since the session's sign-in (``stamp``)."""
    account = await AccountRepository(session).get(account_id)
    if account is None or account.disabled_at is not None or account.invited or password_stamp(account) != stamp:
        return None
    return principal_for(account)


async def own_account(session: AsyncSession, *, actor: Principal) -> Account:
    """The account of a signed-in person (``principal_for`` names it by ``key_id``); NotFound for a key."""
    account = await AccountRepository(session).get(actor.key_id)
    if account is None or account.org_id != actor.org_id:
        raise NotFound("this session is not a person's account")
    return account


class PasswordChange(msgspec.Struct, frozen=True, kw_only=True):
    """A change checked by `check_password_change`, for `change_password` to write: the hash the
    current password matched, and the new password's."""

    account: Account
    checked_hash: str
    new_hash: str


async def check_password_change(
    session: AsyncSession, *, actor: Principal, current: str, password: str
) -> PasswordChange:
    """Check a signed-in person's current password and their new one, and hash the new one. Reads
    only: run it on a reader, so that SQLite's write lock is not held while argon2 works.

    Raises:
        WrongPassword: ``current`` is not the account's password.
        WeakPassword: ``password`` breaks the invitation's rules (`password_problem`) or is the current one.
    """
    found = await AccountRepository(session).with_hash((await own_account(session, actor=actor)).id)
    stored = found[1] if found is not None else None
    if found is None or stored is None or not await _verify(stored, current[:MAX_PASSWORD * 4]):
        raise WrongPassword("the current password is wrong", pointer="/current_password")
    account = found[0]
    problem = password_problem(password, email=account.email)
    if problem is None and password == current:
        problem = "Choisissez un mot de passe différent de l'actuel."
    if problem is not None:
        raise WeakPassword(problem, pointer="/password")
    return PasswordChange(account=account, checked_hash=stored, new_hash=await _hash(password))


async def change_password(session: AsyncSession, *, change: PasswordChange, now: datetime) -> Account:
    """Write a checked change (compare-and-set on the hash checked): the password's stamp moves, so
    every session of the account opened before ends at its next request (the edge gives the person's
    own a new stamp), and unused links (a reset requested earlier) stop working."""
    account = change.account
    if not await AccountRepository(session).replace_password(account.id, expected_hash=change.checked_hash,
                                                            password_hash=change.new_hash, now=now):
        raise AccountChanged("the password was changed or the account disabled meanwhile")
    await AccountTokenRepository(session).drop_unused(account.id)
    return msgspec.structs.replace(account, password_changed_at=now)


async def get_account(session: AsyncSession, *, actor: Principal, account_id: str) -> Account:
    """An account of the actor's organisation (any, for the platform's admins); others are a NotFound."""
    account = await AccountRepository(session).get(account_id)
    if account is None or not (actor.is_admin or account.org_id == actor.org_id):
        raise NotFound(f"account {account_id} not found")
    return account


async def disable_account(session: AsyncSession, *, actor: Principal, account_id: str, now: datetime) -> Account:
    """Disable a person's account: its sessions end at their next request, its sign-in is refused
    like a wrong password, its unused links stop working. Disabling it again keeps the first date.

    The password's stamp moves too (``password_changed_at``, the time before which sessions end), so
    that enabling the account again does not bring back the sessions it had."""
    account = await get_account(session, actor=actor, account_id=account_id)
    if account.id == actor.key_id:
        raise OwnAccount("an admin cannot disable their own account; another admin can")
    if account.disabled_at is not None:
        return account
    changed_at = account.password_changed_at if account.invited else now
    await AccountRepository(session).update(account.id, {"disabled_at": now, "password_changed_at": changed_at})
    await AccountTokenRepository(session).drop_unused(account.id)
    return msgspec.structs.replace(account, disabled_at=now, password_changed_at=changed_at)


async def enable_account(session: AsyncSession, *, actor: Principal, account_id: str) -> Account:
    """Enable a disabled account again: the person signs in with the password they had (the
    sessions they had stay ended). An invitation disabled before acceptance needs a new invitation."""
    account = await get_account(session, actor=actor, account_id=account_id)
    if account.disabled_at is not None:
        await AccountRepository(session).update(account.id, {"disabled_at": None})
    return msgspec.structs.replace(account, disabled_at=None)


async def accounts_of(session: AsyncSession, *, actor: Principal, org_id: str) -> list[Account]:
    org = await OrganisationRepository(session).get(org_id, scope_org_id=None if actor.is_admin else actor.org_id)
    if org is None:
        raise NotFound(f"organization {org_id} not found")
    return await AccountRepository(session).for_org(org_id)


def record(
    session: AsyncSession, *, action: str, account: Account | None, status_code: int, request_id: str, now: datetime,
    email: str | None = None,
) -> None:
    """The audit row of a sign-in, a refused one, a reset or a password set (pages without a principal).
    An address that matches no account is written masked (``j***@mairie.fr``)."""
    AuditRepository(session).add(
        at=now, org_id=account.org_id if account else None, api_key_id=account.id if account else None,
        key_prefix=principal_for(account).key_prefix if account else None,
        role=account.role if account else None, action=action, resource_type="account" if account else None,
        resource_id=account.id if account else None, status_code=status_code, request_id=request_id,
        detail=None if account or email is None else {"email": mask_address(normalise_email(email))},
    )

