"""API keys: issue (shown once), authenticate (hash lookup by prefix), revoke; admin bootstrap."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.repositories import ApiKeyRepository, OrganisationRepository
from broker.domain.access import ROLES_BY_KIND, ApiKey, OrgKind, Principal, Role
from broker.errors import NotFound, Rejected

_KEY_SHAPE = re.compile(r"^fab_([a-z0-9]{12})_([A-Za-z0-9_-]{20,})$")

# The platform operator's own organisation, created with the first admin key.
OPERATOR_NAME = "Opérateur de la plateforme"
OPERATOR_SIRET = "13002603200016"  # ANCT (Agence nationale de la cohésion des territoires)
OPERATOR_COMMUNE = "75107"  # Paris 7e


def key_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def key_prefix(token: str) -> str:
    """The public lookup part: ``fab_<prefix>_<secret>``; other tokens get a derived prefix."""
    match = _KEY_SHAPE.match(token)
    if match:
        return match.group(1)
    return "x" + hashlib.sha256(b"prefix:" + token.encode()).hexdigest()[:11]


def new_token() -> str:
    """A 256-bit random secret behind a 48-bit public prefix."""
    return f"fab_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


async def authenticate(session: AsyncSession, *, token: str) -> Principal | None:
    """The principal behind ``token``, or None if unknown or revoked (checked on every request)."""
    if not token or len(token) > 200:
        return None
    found = await ApiKeyRepository(session).by_prefix(key_prefix(token))
    if found is None:
        return None
    key, stored = found
    if key.revoked or not hmac.compare_digest(stored, key_hash(token)):
        return None
    return Principal(org_id=key.org_id, key_id=key.id, key_prefix=key.prefix, role=key.role)


async def issue_api_key(
    session: AsyncSession, *, actor: Principal, org_id: str, role: Role, label: str, now: datetime
) -> tuple[ApiKey, str]:
    """Create a key for ``org_id``; returns it with the plaintext token, which is never stored."""
    org = await OrganisationRepository(session).get(org_id, scope_org_id=None if actor.is_admin else actor.org_id)
    if org is None:
        raise NotFound(f"organization {org_id} not found")
    if role not in ROLES_BY_KIND[org.kind]:
        allowed = ", ".join(sorted(ROLES_BY_KIND[org.kind]))
        raise Rejected(
            f"an organisation of kind '{org.kind}' may hold keys with roles {allowed}, not '{role}'",
            pointer="/role", code="role-not-allowed", figures={"kind": str(org.kind), "role": str(role)},
        )
    token = new_token()
    key = await ApiKeyRepository(session).add(
        org_id=org.id, role=role, label=label, prefix=key_prefix(token), key_hash=key_hash(token), now=now
    )
    return key, token


async def revoke_api_key(session: AsyncSession, *, actor: Principal, key_id: str, now: datetime) -> ApiKey:
    """Admins revoke any key; other callers only their own organisation's (others' keys are a 404)."""
    repo = ApiKeyRepository(session)
    key = await repo.get(key_id, scope_org_id=None if actor.is_admin else actor.org_id)
    if key is None:
        raise NotFound(f"api key {key_id} not found")
    await repo.revoke(key_id, now=now)
    return key


async def list_api_keys(session: AsyncSession, *, actor: Principal, org_id: str) -> list[ApiKey]:
    org = await OrganisationRepository(session).get(org_id, scope_org_id=None if actor.is_admin else actor.org_id)
    if org is None:
        raise NotFound(f"organization {org_id} not found")
    return await ApiKeyRepository(session).for_org(org_id)


async def ensure_admin(session: AsyncSession, *, bootstrap_key: str | None, now: datetime) -> str | None:
    """Make sure an admin key exists. Returns the new plaintext key when one was created here.

    With ``bootstrap_key`` (``BROKER_BOOTSTRAP_ADMIN_KEY``) that key is registered, only if no admin
    exists yet; otherwise a random key is generated and returned once for the operator to copy.
    """
    keys = ApiKeyRepository(session)
    if await keys.any_active_with_role(Role.ADMIN):
        return None
    orgs = OrganisationRepository(session)
    page = await orgs.page(scope_org_id=None, after=None, limit=1, kind=OrgKind.OPERATOR)
    if page:
        operator = page[0][0]
    else:
        operator = await orgs.add(
            kind=OrgKind.OPERATOR, name=OPERATOR_NAME, siret=OPERATOR_SIRET, commune_insee=OPERATOR_COMMUNE, now=now
        )
        await session.flush()  # the key row references it
    token = bootstrap_key or new_token()
    await keys.add(
        org_id=operator.id,
        role=Role.ADMIN,
        label="bootstrap admin",
        prefix=key_prefix(token),
        key_hash=key_hash(token),
        now=now,
    )
    return token
