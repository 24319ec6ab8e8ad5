"""Queries of open consultations (issue 17): the adapted-procedure requests any eligible workshop
may answer, and the invitations a consultation or a buyer adds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.models import InvitationRow, RequestRow
from broker.domain.fabrication import Request
from broker.domain.lifecycle import MatchState, RequestStatus
from broker.domain.procurement import OPEN_PROCEDURES

Keyset = tuple[datetime, str]


async def open_consultations(
    session: AsyncSession, *, now: datetime, after: Keyset | None, limit: int
) -> list[Request]:
    """Requests under an adapted procedure (`OPEN_PROCEDURES`) still taking quotes (open or quoting,
    window open, matching done), oldest first from ``after``. Few at any time: the status index
    narrows them to the requests taking quotes."""
    query = (
        select(RequestRow)
        .where(
            RequestRow.status.in_([RequestStatus.OPEN.value, RequestStatus.QUOTING.value]),
            RequestRow.procedure.in_(sorted(p.value for p in OPEN_PROCEDURES)),
            RequestRow.window_closed.is_(False),
            RequestRow.quote_deadline > now,
            RequestRow.match_state == MatchState.DONE.value,
        )
        .order_by(RequestRow.created_at, RequestRow.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(
            (RequestRow.created_at > after[0]) | ((RequestRow.created_at == after[0]) & (RequestRow.id > after[1]))
        )
    return [msgspec.convert(r, Request, from_attributes=True) for r in (await session.execute(query)).scalars()]


async def invitations_of(
    session: AsyncSession, workshop_id: str, request_ids: Sequence[str]
) -> dict[str, InvitationRow]:
    """The workshop's invitations to any of ``request_ids``, by request id."""
    if not request_ids:
        return {}
    query = select(InvitationRow).where(
        InvitationRow.workshop_id == workshop_id, InvitationRow.request_id.in_(list(request_ids))
    )
    return {i.request_id: i for i in (await session.execute(query)).scalars()}


def add_invitation(session: AsyncSession, row: InvitationRow) -> None:
    """An invitation outside matching's batch (``source`` ``consultation`` or ``buyer``), written
    with the transaction; the unique (request, workshop) refuses a second one."""
    session.add(row)
