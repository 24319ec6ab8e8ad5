"""Every query about people's accounts and their one-time links (invitation, password reset)."""

from __future__ import annotations

from datetime import datetime

import msgspec
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.base import new_id
from broker.db.models import AccountRow, AccountTokenRow
from broker.domain.access import Role


class Account(msgspec.Struct, frozen=True, kw_only=True):
    """A person of an organisation. ``invited`` until a password is chosen."""

    id: str
    org_id: str
    email: str
    name: str
    role: Role
    created_at: datetime
    disabled_at: datetime | None
    last_signin_at: datetime | None
    password_changed_at: datetime | None
    invited: bool


def _account(row: AccountRow) -> Account:
    return Account(
        id=row.id, org_id=row.org_id, email=row.email, name=row.name, role=Role(row.role), created_at=row.created_at,
        disabled_at=row.disabled_at, last_signin_at=row.last_signin_at, password_changed_at=row.password_changed_at,
        invited=row.password_hash is None,
    )


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, *, org_id: str, email: str, name: str, role: Role, now: datetime) -> Account:
        row = AccountRow(id=new_id(), org_id=org_id, email=email, name=name, role=role, created_at=now)
        self.session.add(row)
        await self.session.flush()  # a taken e-mail fails here (uq_account_email), inside the request
        return _account(row)

    async def get(self, account_id: str) -> Account | None:
        row = await self.session.get(AccountRow, account_id)
        return None if row is None else _account(row)

    async def by_email(self, email: str) -> tuple[Account, str | None] | None:
        """The account of this (lower-case) address and its password hash, for signing in."""
        row = (await self.session.execute(select(AccountRow).where(AccountRow.email == email))).scalar_one_or_none()
        return None if row is None else (_account(row), row.password_hash)

    async def with_hash(self, account_id: str) -> tuple[Account, str | None] | None:
        """The account and its password hash, for checking the current password before a change."""
        row = await self.session.get(AccountRow, account_id)
        return None if row is None else (_account(row), row.password_hash)

    async def replace_password(self, account_id: str, *, expected_hash: str, password_hash: str,
                               now: datetime) -> bool:
        """Compare-and-set on the hash the current password was checked against, on an active
        account: False when the password was changed or the account disabled meanwhile."""
        statement = update(AccountRow).where(
            AccountRow.id == account_id, AccountRow.password_hash == expected_hash, AccountRow.disabled_at.is_(None))
        result = await self.session.execute(statement.values(
            password_hash=password_hash, password_changed_at=now).execution_options(synchronize_session=False))
        return int(result.rowcount or 0) == 1  # type: ignore[attr-defined]

    async def for_org(self, org_id: str) -> list[Account]:
        query = select(AccountRow).where(AccountRow.org_id == org_id).order_by(AccountRow.created_at, AccountRow.id)
        return [_account(r) for r in (await self.session.execute(query)).scalars().all()]

    async def update(self, account_id: str, values: dict[str, object]) -> None:
        await self.session.execute(update(AccountRow).where(AccountRow.id == account_id).values(values))


class AccountTokenRepository:
    """One-time links, found by the SHA-256 of their token."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def replace(self, *, account_id: str, purpose: str, token_hash: str, now: datetime,
                      expires_at: datetime) -> None:
        """A new link for this purpose; the account's earlier unused links for it stop working."""
        await self.session.execute(delete(AccountTokenRow).where(
            AccountTokenRow.account_id == account_id, AccountTokenRow.purpose == purpose,
            AccountTokenRow.used_at.is_(None)))
        self.session.add(AccountTokenRow(id=new_id(), account_id=account_id, purpose=purpose, token_hash=token_hash,
                                         created_at=now, expires_at=expires_at))
        await self.session.flush()

    async def usable(self, *, token_hash: str, purpose: str, now: datetime) -> tuple[str, str] | None:
        """(link id, account id) of an unused, unexpired link of this purpose."""
        query = select(AccountTokenRow.id, AccountTokenRow.account_id).where(
            AccountTokenRow.token_hash == token_hash, AccountTokenRow.purpose == purpose,
            AccountTokenRow.used_at.is_(None), AccountTokenRow.expires_at > now)
        found = (await self.session.execute(query)).first()
        return None if found is None else (found[0], found[1])

    async def use(self, token_id: str, *, now: datetime) -> bool:
        """Compare-and-set: True for the one request that uses the link, False for any other."""
        statement = update(AccountTokenRow).where(AccountTokenRow.id == token_id, AccountTokenRow.used_at.is_(None))
        result = await self.session.execute(
            statement.values(used_at=now).execution_options(synchronize_session=False))
        return int(result.rowcount or 0) == 1  # type: ignore[attr-defined]

    async def drop_unused(self, account_id: str) -> None:
        """Every other link of the account stops working (its password was just set)."""
        await self.session.execute(delete(AccountTokenRow).where(
            AccountTokenRow.account_id == account_id, AccountTokenRow.used_at.is_(None)))
