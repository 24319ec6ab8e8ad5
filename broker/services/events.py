"""What every service writes beside a state change: its outbox event (same transaction), and the
409 a compare-and-set that lost its race answers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.repositories import OutboxRepository
from broker.domain.events import DomainEvent
from broker.errors import Conflict


async def emit(
    session: AsyncSession,
    *,
    type_: str,
    org_id: str,
    resource: tuple[str, str],
    data: dict[str, object],
    now: datetime,
    first: bool = False,
) -> None:
    """Append the event to the outbox in the caller's transaction (``first``: it creates its resource)."""
    await OutboxRepository(session).add(
        DomainEvent(type=type_, org_id=org_id, resource_type=resource[0], resource_id=resource[1], data=data),
        now=now,
        first=first,
    )


def lost_race(what: str) -> Conflict:
    return Conflict(f"the {what} changed at the same time; read it again and retry", code="concurrent-update")
