"""Every query of the in-app notifications: an organisation's read watermark (``notification_seen``),
its notifications (the outbox events the rules give it) after the watermark or before a position,
and the names the sentences show in place of ids.

An organisation is reached as the event's tenant (``org_id``) or as its other party
(``partner_org_id``): each is one range of its own index (``ix_outbox_event_org_feed``,
``ix_outbox_event_partner_feed``: organisation, then the outbox's order), read newest or oldest
first and stopped at the limit, and the two ranges are joined with UNION ALL (an organisation is
never both parties of one event: a buyer or a coordinator does not make)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, literal, or_, select, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from broker.db.models import (
    CatalogueItemRow,
    CrisisCallRow,
    DeliveryPointRow,
    NotificationSeenRow,
    OrderRow,
    OutboxRow,
    RequestRow,
    WorkshopRow,
)
from broker.domain.notifications import Party, Rule, rules_of

#: A position in the outbox's order: (created_at, id).
Position = tuple[datetime, str]


def _of_rules(rules: Sequence[Rule]) -> ColumnElement[bool]:
    """The events one of ``rules`` picks: its type and, for a status event, its target status."""
    plain = sorted({rule.type for rule in rules if rule.to is None})
    picks: list[ColumnElement[bool]] = [OutboxRow.type.in_(plain)] if plain else []
    picks += [and_(OutboxRow.type == rule.type, OutboxRow.payload["to"].as_string().in_(sorted(rule.to)))
              for rule in rules if rule.to is not None]
    return or_(*picks)


def _party(
    org_id: str, party: Party, rules: Sequence[Rule], *, after: Position | None = None,
    before: Position | None = None, limit: int,
) -> Select[str, datetime, str, dict[str, object], str]:
    """One party's range: after ``after`` oldest first, or before ``before`` (or from the newest) newest first.
    The ``>=``/``<=`` on ``created_at`` is the index's range; the tie on ``id`` is a filter inside it."""
    column = OutboxRow.org_id if party == Party.TENANT else OutboxRow.partner_org_id
    query = select(OutboxRow.id, OutboxRow.created_at, OutboxRow.type, OutboxRow.payload,
                   literal(party.value).label("party")).where(column == org_id, _of_rules(rules_of(rules, party)))
    if after is not None:
        query = query.where(OutboxRow.created_at >= after[0],
                            or_(OutboxRow.created_at > after[0], OutboxRow.id > after[1]))
        return query.order_by(OutboxRow.created_at, OutboxRow.id).limit(limit)
    if before is not None:
        query = query.where(OutboxRow.created_at <= before[0],
                            or_(OutboxRow.created_at < before[0], OutboxRow.id < before[1]))
    return query.order_by(OutboxRow.created_at.desc(), OutboxRow.id.desc()).limit(limit)


def _ranged(query: Select[str, datetime, str, dict[str, object], str]) -> Select[Any]:
    """A limited, ordered SELECT as one member of a UNION ALL: SQLite takes ORDER BY and LIMIT only
    on the whole compound, so each member reads from its own subquery."""
    return select(query.subquery())


class InboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def seen(self, org_id: str) -> Position | None:
        """The last event the organisation marked read, if it ever did."""
        row = await self.session.get(NotificationSeenRow, org_id)
        return (row.seen_at, row.seen_id) if row is not None else None

    async def count_after(self, org_id: str, rules: Sequence[Rule], *, after: Position | None, cap: int) -> int:
        """How many notifications follow ``after`` (all of them without it), counted up to ``cap``:
        at most ``cap`` entries of each index are read, however long the organisation stayed away."""
        both = union_all(*(_ranged(_party(org_id, party, rules, after=after, limit=cap)) for party in Party)).subquery()
        counted = (await self.session.execute(select(func.count()).select_from(both))).scalar_one()
        return min(int(counted), cap)

    async def newest(self, org_id: str, rules: Sequence[Rule], *, before: Position | None,
                     limit: int) -> list[Any]:
        """The ``limit`` newest notifications before ``before`` (from the newest without it), newest
        first: rows of id, created_at, type, payload and party."""
        both = union_all(*(_ranged(_party(org_id, party, rules, before=before, limit=limit))
                           for party in Party)).subquery()
        query = select(both).order_by(both.c.created_at.desc(), both.c.id.desc()).limit(limit)
        return list((await self.session.execute(query)).all())

    async def mark_seen(self, org_id: str, position: Position, *, now: datetime) -> None:
        """Move the watermark to ``position``, never back: a stale page's mark is a no-op, and two
        concurrent marks leave the later position (the insert yields to a concurrent one)."""
        postgresql = self.session.bind is not None and self.session.bind.dialect.name == "postgresql"
        insert = pg_insert if postgresql else sqlite_insert
        await self.session.execute(insert(NotificationSeenRow).values(
            org_id=org_id, seen_at=position[0], seen_id=position[1], updated_at=now).on_conflict_do_nothing())
        seen_at, seen_id = NotificationSeenRow.seen_at, NotificationSeenRow.seen_id
        await self.session.execute(
            update(NotificationSeenRow)
            .where(NotificationSeenRow.org_id == org_id,
                   or_(seen_at < position[0], and_(seen_at == position[0], seen_id < position[1])))
            .values(seen_at=position[0], seen_id=position[1], updated_at=now)
        )

    async def names(self, wanted: dict[str, set[str]]) -> dict[str, dict[str, str]]:
        """What the pages call the objects ``wanted`` names by kind (`NAMED`): a workshop, a request,
        a crisis call or a delivery point by its name, an order by its number, an item by its name."""
        out: dict[str, dict[str, str]] = {}
        for kind, ids in wanted.items():
            if not ids or kind not in NAMED:
                continue
            key, name = NAMED[kind]
            rows = await self.session.execute(select(key, name).where(key.in_(sorted(ids))))
            out[kind] = {str(k): str(v) for k, v in rows.all()}
        return out


#: The kinds of object a notification names, and the (key, name) columns of each.
NAMED: dict[str, tuple[InstrumentedAttribute[str], InstrumentedAttribute[str]]] = {
    "workshop": (WorkshopRow.id, WorkshopRow.name),
    "request": (RequestRow.id, RequestRow.name),
    "order": (OrderRow.id, OrderRow.number),
    "call": (CrisisCallRow.id, CrisisCallRow.name),
    "point": (DeliveryPointRow.id, DeliveryPointRow.label),
    "item": (CatalogueItemRow.slug, CatalogueItemRow.name),
}
