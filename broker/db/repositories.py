"""Every query of the service lives here. Reads that a tenant makes are scoped in the WHERE clause."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import Row, Select, bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from broker.db.base import new_id, ordered_id, table_of
from broker.db.models import ApiKeyRow, AuditLogRow, IdempotencyRow, OrganizationRow, OutboxRow
from broker.db.pending import buffer_insert
from broker.db.session import Database
from broker.domain.access import ApiKey, Organisation, Role
from broker.domain.events import DomainEvent
from broker.domain.lifecycle import OutboxState

Keyset = tuple[datetime, str]

AUDIT_TABLE = table_of(AuditLogRow)
IDEMPOTENCY_TABLE = table_of(IdempotencyRow)
OUTBOX_TABLE = table_of(OutboxRow)


def _organisation(row: OrganizationRow) -> Organisation:
    return msgspec.convert(row, Organisation, from_attributes=True)


def _api_key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        org_id=row.org_id,
        role=Role(row.role),
        label=row.label,
        prefix=row.prefix,
        revoked=row.revoked_at is not None,
    )


class OrganisationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def with_contact(self, org_ids: list[str]) -> set[str]:
        """Those of ``org_ids`` that gave a contact address."""
        if not org_ids:
            return set()
        query = select(OrganizationRow.id).where(
            OrganizationRow.id.in_(sorted(set(org_ids))), OrganizationRow.contact_email.is_not(None)
        )
        return set((await self.session.execute(query)).scalars())

    async def add(
        self, *, kind: str, name: str, siret: str, commune_insee: str, now: datetime, contact_email: str | None = None,
        vat_regime: str = "normal", legal_form: str | None = None, iban: str | None = None,
    ) -> Organisation:
        row = OrganizationRow(
            id=new_id(), kind=kind, name=name, siret=siret, commune_insee=commune_insee, created_at=now,
            contact_email=contact_email, vat_regime=vat_regime, legal_form=legal_form, iban=iban,
        )
        self.session.add(row)  # flushed with the rest of the transaction; the SIRET is unique in the schema
        return _organisation(row)

    async def update(self, org_id: str, values: dict[str, object]) -> Organisation | None:
        """Set these columns of the organisation (its invoicing details, its contact): None if it is gone."""
        row = await self.session.get(OrganizationRow, org_id)
        if row is None:
            return None
        for key, value in values.items():
            setattr(row, key, value)
        return _organisation(row)

    async def get(self, org_id: str, *, scope_org_id: str | None) -> Organisation | None:
        """``scope_org_id=None`` only for callers whose role sees every tenant (admin)."""
        query = select(OrganizationRow).where(OrganizationRow.id == org_id)
        if scope_org_id is not None:
            query = query.where(OrganizationRow.id == scope_org_id)
        row = (await self.session.execute(query)).scalar_one_or_none()
        return None if row is None else _organisation(row)

    async def page(
        self, *, scope_org_id: str | None, after: Keyset | None, limit: int, kind: str | None = None
    ) -> list[tuple[Organisation, Keyset]]:
        query = select(OrganizationRow).order_by(OrganizationRow.created_at, OrganizationRow.id).limit(limit)
        if scope_org_id is not None:
            query = query.where(OrganizationRow.id == scope_org_id)
        if kind is not None:
            query = query.where(OrganizationRow.kind == kind)
        if after is not None:
            query = query.where(
                (OrganizationRow.created_at > after[0])
                | ((OrganizationRow.created_at == after[0]) & (OrganizationRow.id > after[1]))
            )
        rows = (await self.session.execute(query)).scalars().all()
        return [(_organisation(r), (r.created_at, r.id)) for r in rows]


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, *, org_id: str, role: str, label: str, prefix: str, key_hash: str, now: datetime) -> ApiKey:
        row = ApiKeyRow(org_id=org_id, role=role, label=label, prefix=prefix, key_hash=key_hash, created_at=now)
        self.session.add(row)
        await self.session.flush()
        return _api_key(row)

    async def by_prefix(self, prefix: str) -> tuple[ApiKey, str] | None:
        """The key and its stored hash, for authentication."""
        row = (await self.session.execute(select(ApiKeyRow).where(ApiKeyRow.prefix == prefix))).scalar_one_or_none()
        return None if row is None else (_api_key(row), row.key_hash)

    async def get(self, key_id: str, *, scope_org_id: str | None) -> ApiKey | None:
        query = select(ApiKeyRow).where(ApiKeyRow.id == key_id)
        if scope_org_id is not None:
            query = query.where(ApiKeyRow.org_id == scope_org_id)
        row = (await self.session.execute(query)).scalar_one_or_none()
        return None if row is None else _api_key(row)

    async def revoke(self, key_id: str, *, now: datetime) -> None:
        row = await self.session.get(ApiKeyRow, key_id)
        if row is not None and row.revoked_at is None:
            row.revoked_at = now
            await self.session.flush()

    async def for_org(self, org_id: str) -> list[ApiKey]:
        query = select(ApiKeyRow).where(ApiKeyRow.org_id == org_id).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        return [_api_key(r) for r in (await self.session.execute(query)).scalars().all()]

    async def any_active_with_role(self, role: str) -> bool:
        query = (
            select(func.count()).select_from(ApiKeyRow).where(ApiKeyRow.role == role, ApiKeyRow.revoked_at.is_(None))
        )
        return bool((await self.session.execute(query)).scalar_one())


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, **values: object) -> None:
        """Written with the transaction (see ``broker.db.pending``)."""
        buffer_insert(self.session, AUDIT_TABLE, values)

    async def page(self, *, scope_org_id: str | None, after_id: int | None, limit: int) -> list[AuditLogRow]:
        query = select(AuditLogRow).order_by(AuditLogRow.id).limit(limit)
        if scope_org_id is not None:
            query = query.where(AuditLogRow.org_id == scope_org_id)
        if after_id is not None:
            query = query.where(AuditLogRow.id > after_id)
        return list((await self.session.execute(query)).scalars().all())


#: The Idempotency-Key lookup, built once: a Core SELECT by the unique key (no ORM object to make;
#: on SQLite it runs before every idempotent write, on PostgreSQL after a refused one; its
#: construction and loading were most of its cost).
IDEMPOTENCY_LOOKUP = select(IDEMPOTENCY_TABLE).where(
    IDEMPOTENCY_TABLE.c.org_id == bindparam("org_id"),
    IDEMPOTENCY_TABLE.c.method == bindparam("method"),
    IDEMPOTENCY_TABLE.c.route == bindparam("route"),
    IDEMPOTENCY_TABLE.c.key == bindparam("key"),
)

#: A stored answer: the ``idempotency_record`` row (id, fingerprint, status_code, content_type,
#: body, expires_at…).
IdempotencyRecord = Row[Any]


class IdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def find(self, *, org_id: str, method: str, route: str, key: str) -> IdempotencyRecord | None:
        """The record under this key, expired or not (the caller drops an expired one)."""
        params = {"org_id": org_id, "method": method, "route": route, "key": key}
        return (await self.session.execute(IDEMPOTENCY_LOOKUP, params)).first()

    @staticmethod
    def find_now(session: Session, *, org_id: str, method: str, route: str, key: str) -> IdempotencyRecord | None:
        """``find`` in a sync session (`Database.read_now`)."""
        params = {"org_id": org_id, "method": method, "route": route, "key": key}
        return session.connection().execute(IDEMPOTENCY_LOOKUP, params).first()

    @staticmethod
    async def find_before_handler(
        db: Database, *, org_id: str, method: str, route: str, key: str
    ) -> tuple[bool, IdempotencyRecord | None]:
        """The lookup of a request's key before its handler runs: (True, the record or None), or
        (False, None) where the lookup waits for the end of the request (PostgreSQL: a first
        request, nearly all of them, then costs no lookup: its record goes in with its rows, and
        the unique key refuses it when the key was used, concurrent duplicates included)."""
        params = {"org_id": org_id, "method": method, "route": route, "key": key}
        if db.reads_now:
            # SQLite on a file: not on the writer (SQLite's write lock is taken at the first write,
            # not held through this lookup; a concurrent duplicate still fails on the unique key),
            # and on the event loop's thread: one indexed read, where the trips to a reader thread
            # cost half of a POST's CPU.
            with db.read_now() as reader:
                return True, IdempotencyRepository.find_now(reader, **params)
        if db.is_sqlite:
            async with db.reader() as session:
                return True, await IdempotencyRepository(session).find(**params)
        return False, None

    async def drop(self, record_id: str) -> None:
        await self.session.execute(delete(IdempotencyRow).where(IdempotencyRow.id == record_id))

    def add(self, **values: object) -> None:
        """Inserted with the transaction; a concurrent duplicate fails its commit on the unique key."""
        buffer_insert(self.session, IDEMPOTENCY_TABLE, {"id": new_id(), **values})

    async def purge(self, *, now: datetime) -> int:
        result = await self.session.execute(delete(IdempotencyRow).where(IdempotencyRow.expires_at <= now))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


#: ``session.info`` flag: this unit of work wrote outbox rows (after its commit, wake the relay).
OUTBOX_WRITTEN = "broker.outbox_written"


def last_sequences(resource_type: str, resource_ids: list[str]) -> Select[str, int]:
    """The last ``sequence`` of each of these resources that has events."""
    return (
        select(OutboxRow.resource_id, func.max(OutboxRow.sequence))
        .where(OutboxRow.resource_type == resource_type, OutboxRow.resource_id.in_(resource_ids))
        .group_by(OutboxRow.resource_id)
    )


def outbox_row(event: DomainEvent, *, now: datetime, sequence: int) -> dict[str, Any]:
    """The outbox row of ``event`` (pending, available now), as INSERT takes it."""
    partner = event.data.get("maker_org_id")
    return {
        "id": ordered_id(),
        "created_at": now,
        "org_id": event.org_id,
        "partner_org_id": partner if isinstance(partner, str) else None,
        "type": event.type,
        "resource_type": event.resource_type,
        "resource_id": event.resource_id,
        "sequence": sequence,
        "payload": dict(event.data),
        "state": OutboxState.PENDING.value,
        "attempts": 0,
        "available_at": now,
    }


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, event: DomainEvent, *, now: datetime, first: bool = False) -> None:
        """Append ``event`` with the next per-resource ``sequence`` (consumers order by it), written
        with the transaction (see ``broker.db.pending``).

        ``first=True`` for the event that creates its resource in this transaction (sequence 1, no query).
        """
        last = None
        if not first:
            last = (
                await self.session.execute(
                    select(func.max(OutboxRow.sequence)).where(
                        OutboxRow.resource_type == event.resource_type, OutboxRow.resource_id == event.resource_id
                    )
                )
            ).scalar_one()
        self.add_row(event, now=now, sequence=(last or 0) + 1)

    async def last_sequences(self, resource_type: str, resource_ids: list[str]) -> dict[str, int]:
        """The last ``sequence`` of each resource that has events (one query for a batch)."""
        if not resource_ids:
            return {}
        return {rid: int(last) for rid, last in (await self.session.execute(last_sequences(resource_type,
                                                                                           resource_ids))).all()}

    def add_row(self, event: DomainEvent, *, now: datetime, sequence: int) -> None:
        """Append ``event`` with a ``sequence`` the caller knows (batches read theirs in one query)."""
        buffer_insert(self.session, OUTBOX_TABLE, outbox_row(event, now=now, sequence=sequence))
        self.session.info[OUTBOX_WRITTEN] = True
