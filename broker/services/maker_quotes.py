"""The maker's quotes, newest first, each with the request it answers and the flags the buyer's award
sees on it (late, partial, expired: `broker.domain.award_rules.flags_of`, the one computation)."""

from __future__ import annotations

from datetime import datetime

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.makers import Keyset, MakerQuoteRepository
from broker.domain import award_rules
from broker.domain.access import Principal
from broker.domain.fabrication import Quote, Request
from broker.services.workshops import my_workshop


class MakerQuote(msgspec.Struct, frozen=True, kw_only=True):
    """One quote of the caller's workshop: its request, the invitation it answers and why the buyer may
    not retain it (`award_rules` flags; empty for a valid quote)."""

    quote: Quote
    request: Request
    invitation_id: str
    flags: tuple[str, ...]


async def my_quotes(
    session: AsyncSession, *, actor: Principal, before: Keyset | None, limit: int, now: datetime
) -> list[MakerQuote]:
    """A page of the caller's quotes, newest first (404 ``workshop-profile-missing`` without a workshop)."""
    workshop = await my_workshop(session, actor=actor)
    rows = await MakerQuoteRepository(session).newest_first(workshop.id, before=before, limit=limit)
    views = []
    for quote_row, request_row, invitation_id in rows:
        quote = msgspec.convert(quote_row, Quote, from_attributes=True)
        request = msgspec.convert(request_row, Request, from_attributes=True)
        views.append(MakerQuote(quote=quote, request=request, invitation_id=invitation_id,
                                flags=award_rules.flags_of(request, quote, now=now)))
    return views
