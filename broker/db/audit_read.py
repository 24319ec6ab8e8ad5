"""Reading the audit log newest first (the web interface's journal page), filtered, with the names
behind the ids it holds (organisations, and the object each entry is about)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from broker.db.models import (
    ApiKeyRow,
    AuditLogRow,
    CatalogueItemRow,
    CommitmentRow,
    CrisisCallRow,
    InvitationRow,
    InvoiceRow,
    OrderRow,
    OrganizationRow,
    QuoteRow,
    RequestRow,
    WorkshopRow,
)

# An entry's object by its name: (resource type) -> (id column, name column)
_NAMED: dict[str, tuple[InstrumentedAttribute[str], InstrumentedAttribute[str]]] = {
    "organization": (OrganizationRow.id, OrganizationRow.name),
    "workshop": (WorkshopRow.id, WorkshopRow.name),
    "request": (RequestRow.id, RequestRow.name),
    "order": (OrderRow.id, OrderRow.number),
    "invoice": (InvoiceRow.id, InvoiceRow.number),
    "crisis_call": (CrisisCallRow.id, CrisisCallRow.name),
    "api_key": (ApiKeyRow.id, ApiKeyRow.prefix),
    "catalogue_item": (CatalogueItemRow.slug, CatalogueItemRow.name),
}
# Objects named by the request or the call they belong to.
_THROUGH: dict[str, Select[str, str]] = {
    "quote": select(QuoteRow.id, RequestRow.name).join(RequestRow, RequestRow.id == QuoteRow.request_id),
    "invitation": select(InvitationRow.id, RequestRow.name).join(RequestRow, RequestRow.id == InvitationRow.request_id),
    "commitment": select(CommitmentRow.id, CrisisCallRow.name).join(CrisisCallRow,
                                                                    CrisisCallRow.id == CommitmentRow.call_id),
}


class AuditReader:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def newest(
        self, *, scope_org_id: str | None, before_id: int | None, limit: int, org_id: str | None = None,
        actions: Collection[str] | None = None, since: datetime | None = None, until: datetime | None = None,
    ) -> list[AuditLogRow]:
        """Entries by descending id (the primary key: no extra index), older than ``before_id``; only
        ``org_id``'s, only ``actions`` (``"POST /v1/requests"``…), only at ``since`` <= at < ``until``
        when given. ``scope_org_id`` is the tenant's own limit, the others the reader's filters."""
        query = select(AuditLogRow).order_by(AuditLogRow.id.desc()).limit(limit)
        for org in (scope_org_id, org_id):
            if org is not None:
                query = query.where(AuditLogRow.org_id == org)
        if before_id is not None:
            query = query.where(AuditLogRow.id < before_id)
        if actions is not None:
            query = query.where(AuditLogRow.action.in_(sorted(actions)))
        if since is not None:
            query = query.where(AuditLogRow.at >= since)
        if until is not None:
            query = query.where(AuditLogRow.at < until)
        return list((await self.session.execute(query)).scalars().all())

    async def organisation_names(self, ids: Iterable[str] | None = None) -> dict[str, str]:
        """Organisations' names by id: those of ``ids``, or every organisation (the filter's list)."""
        query = select(OrganizationRow.id, OrganizationRow.name).order_by(OrganizationRow.name, OrganizationRow.id)
        if ids is not None:
            query = query.where(OrganizationRow.id.in_(sorted(set(ids))))
        return {row[0]: row[1] for row in (await self.session.execute(query)).all()}

    async def object_names(self, objects: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """``(resource type, id) -> name`` for the objects that have one (a request's name, an order's
        number; a quote by its request's name); one query per type."""
        wanted: dict[str, set[str]] = {}
        for kind, id_ in objects:
            if kind in _NAMED or kind in _THROUGH:
                wanted.setdefault(kind, set()).add(id_)
        names: dict[tuple[str, str], str] = {}
        for kind, ids in sorted(wanted.items()):
            if kind in _NAMED:
                id_col, name_col = _NAMED[kind]
                query: Select[str, str] = select(id_col, name_col).where(id_col.in_(sorted(ids)))
            else:
                query = _THROUGH[kind]
                query = query.where(query.selected_columns[0].in_(sorted(ids)))
            names.update({(kind, row[0]): row[1] for row in (await self.session.execute(query)).all()})
        return names
