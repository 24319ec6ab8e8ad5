"""The in-app notifications of an organisation (issue 21 item 8): how many are unread (the counter
on every page), a page of them newest first with the names they mention, and « mark all read ».
They are the outbox events the rules of `broker.domain.notifications` give the organisation; what
it has read is one watermark per organisation (the last event marked read)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.inbox import InboxRepository, Position
from broker.domain.access import Principal
from broker.domain.notifications import IN_APP, Inbox, Notification, Party, references

#: The counter counts this far (the header shows « 99+ » beyond): it reads at most this many
#: events of each index, however long the organisation stayed away.
COUNT_CAP = 100


def _after(position: Position, seen: Position | None) -> bool:
    return seen is None or position > seen


async def unread_count(session: AsyncSession, *, actor: Principal) -> int:
    """The organisation's notifications after its watermark (all of them before its first « mark
    all read »), up to COUNT_CAP."""
    repo = InboxRepository(session)
    return await repo.count_after(actor.org_id, IN_APP, after=await repo.seen(actor.org_id), cap=COUNT_CAP)


async def notifications(session: AsyncSession, *, actor: Principal, before: Position | None, limit: int) -> Inbox:
    """The ``limit`` newest notifications before ``before`` (from the newest without it), each
    marked unread when it follows the watermark, with the names of the workshops, requests, orders,
    crisis calls, delivery points and items they mention. ``newest`` is the first one's position
    on the first page (what « mark all read » reaches: nothing that arrived after the page was shown)."""
    repo = InboxRepository(session)
    seen = await repo.seen(actor.org_id)
    rows = await repo.newest(actor.org_id, IN_APP, before=before, limit=limit)
    items = [Notification(id=row.id, at=row.created_at, type=row.type, party=Party(row.party), data=row.payload,
                          unread=_after((row.created_at, row.id), seen)) for row in rows]
    wanted: defaultdict[str, set[str]] = defaultdict(set)
    for item in items:
        for kind, ident in references(item.type, item.data):
            wanted[kind].add(ident)
    newest = (items[0].at, items[0].id) if items and before is None else None
    return Inbox(items=items, names=await repo.names(dict(wanted)), newest=newest)


async def mark_all_read(session: AsyncSession, *, actor: Principal, upto: Position, now: datetime) -> None:
    """Every notification up to ``upto`` (the newest the page showed) is read; the watermark never
    moves back (a second tab's older page changes nothing)."""
    await InboxRepository(session).mark_seen(actor.org_id, upto, now=now)
