"""The audit log as its readers browse it: filtered (organisation, actions, period), newest first,
with the names behind its ids — the organisation that acted and the object it acted on."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.audit_read import AuditReader
from broker.domain.access import Principal
from broker.domain.audit import AuditEntry


class JournalEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One entry, and the names its reader sees instead of ids (None when the object has none, or is gone)."""

    entry: AuditEntry
    org_name: str | None
    object_name: str | None


async def journal(
    session: AsyncSession, *, actor: Principal, before_id: int | None, limit: int, org_id: str | None = None,
    actions: Collection[str] | None = None, since: datetime | None = None, until: datetime | None = None,
) -> list[JournalEntry]:
    """Entries newest first: every organisation's for an administrator, the caller's own otherwise
    (whatever ``org_id`` asks)."""
    reader = AuditReader(session)
    rows = await reader.newest(scope_org_id=None if actor.is_admin else actor.org_id, before_id=before_id,
                               limit=limit, org_id=org_id, actions=actions, since=since, until=until)
    entries = [msgspec.convert(row, AuditEntry, from_attributes=True) for row in rows]
    orgs = await reader.organisation_names(e.org_id for e in entries if e.org_id)
    objects = await reader.object_names((e.resource_type, e.resource_id) for e in entries
                                        if e.resource_type and e.resource_id)
    return [JournalEntry(entry=e, org_name=orgs.get(e.org_id or ""),
                         object_name=objects.get((e.resource_type or "", e.resource_id or "")))
            for e in entries]


async def organisations_to_filter(session: AsyncSession, *, actor: Principal) -> dict[str, str]:
    """The organisations the journal may be filtered on, by name: all for an administrator, else its own."""
    names = await AuditReader(session).organisation_names(None if actor.is_admin else [actor.org_id])
    return dict(sorted(names.items(), key=lambda item: (item[1].casefold(), item[0])))
