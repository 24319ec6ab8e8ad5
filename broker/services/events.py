"""What every service writes beside a state change: its outbox event (same transaction), and the
409 a compare-and-set that lost its race answers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.repositories import OutboxRepository
from broker.domain.events import Event, recorded
from broker.errors import Conflict


async def emit(
    session: AsyncSession, event: Event, *, org_id: str, resource_id: str, now: datetime, first: bool = False
) -> None:
    """Append ``event`` to the outbox in the caller's transaction, encoded once (`recorded`):
    ``org_id`` is the tenant it belongs to, ``resource_id`` the resource (``event.resource``) whose
    sequence it counts; ``first``: it creates its resource."""
    await OutboxRepository(session).add(recorded(event, org_id=org_id, resource_id=resource_id), now=now, first=first)


def lost_race(what: str) -> Conflict:
    return Conflict(f"the {what} changed at the same time; read it again and retry", code="concurrent-update")
