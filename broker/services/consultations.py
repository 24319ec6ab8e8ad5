"""Open consultations (issue 17): under an adapted procedure (MAPA) every verified workshop that
passes matching's hard filters may quote, beyond the workshops matching invited; and, in any
procedure, the buyer may invite a workshop it knows.

Both leave an invitation row (``source`` ``consultation`` or ``buyer``, rank 0: outside matching's
ranking) with the engine's figures and French explanations, so the rest of the journey (quote,
decline, comparison, award record) treats them as any invitation. A consultation's invitation is
written when the workshop quotes and emits nothing of its own (the maker acted itself; the buyer
hears of the ``quote.submitted``); a buyer's invitation emits ``invitation.created`` to the
workshop's organisation, as matching's do.
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

import matching
from broker.db import consultations as consultation_db
from broker.db.base import new_id
from broker.db.fabrication import InvitationRepository, Keyset, RequestRepository, WorkshopRepository
from broker.db.models import InvitationRow
from broker.domain.access import Principal
from broker.domain.events import InvitationCreated, RequestSummary
from broker.domain.fabrication import Invitation, Request, Workshop
from broker.domain.lifecycle import InvitationStatus, MatchState, RequestStatus
from broker.domain.procurement import OPEN_PROCEDURES
from broker.errors import Conflict, NotFound, Rejected
from broker.services import matching as matching_service
from broker.services.events import emit
from broker.services.requests import get_request
from broker.services.workshops import my_workshop
from broker.settings import MatchingSettings

TAKING_QUOTES = (RequestStatus.OPEN, RequestStatus.QUOTING)
#: How many requests one read of the consultations fetches while filling a page.
_BATCH = 100
CONSULTATION_REASON = "a répondu à la consultation ouverte (procédure adaptée)"
BUYER_REASON = "ajouté par l'acheteur"
NOT_VERIFIED = "atelier non vérifié\u00a0: un administrateur n'a encore vérifié ni ses labels ni ses certifications"


class Refusal(msgspec.Struct, frozen=True, kw_only=True):
    """Why a workshop may not answer: the engine's reason codes, and ``not_verified``."""

    code: str
    message: str


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    """One workshop judged for one request. ``reasons``: the score's explanation (eligible) or the
    refusals' messages, in French; the figures are the engine's (capacity 0 when it cannot make the
    item at all)."""

    eligible: bool
    score: float
    distance_km: float
    capacity_units: int
    reasons: tuple[str, ...]
    refusals: tuple[Refusal, ...]


class Consultation(msgspec.Struct, frozen=True, kw_only=True):
    """An open consultation as a workshop sees it; ``invitation`` when it already holds one."""

    request: Request
    verdict: Verdict
    invitation: Invitation | None


def is_verified(workshop: Workshop) -> bool:
    """Verified: an administrator confirmed at least one of its labels or certifications."""
    return bool(workshop.verified_labels or workshop.verified_certifications)


def taking_quotes(request: Request, now: datetime) -> bool:
    return request.status in TAKING_QUOTES and not request.window_closed and request.quote_deadline > now


def is_open_consultation(request: Request, now: datetime) -> bool:
    """An adapted-procedure request still taking quotes, its matching done (before, matching's
    invitations are not written yet and could collide with one added here)."""
    return (request.procedure in OPEN_PROCEDURES and taking_quotes(request, now)
            and request.match_state == MatchState.DONE)


def _verdict(result: matching.Included | matching.Excluded, workshop: Workshop) -> Verdict:
    refusals = [] if isinstance(result, matching.Included) else [
        Refusal(code=r.code, message=r.message) for r in result.reasons]
    if not is_verified(workshop):
        refusals.insert(0, Refusal(code="not_verified", message=NOT_VERIFIED))
    if isinstance(result, matching.Included) and not refusals:
        return Verdict(eligible=True, score=result.score, distance_km=result.distance_km,
                       capacity_units=result.capacity_units, reasons=result.reasons, refusals=())
    capacity = result.capacity_units if isinstance(result, matching.Included) else 0
    return Verdict(eligible=False, score=0.0, distance_km=result.distance_km, capacity_units=capacity,
                   reasons=tuple(r.message for r in refusals), refusals=tuple(refusals))


async def judge(
    session: AsyncSession, *, workshop: Workshop, requests: list[Request], now: datetime, settings: MatchingSettings
) -> list[Verdict]:
    """The workshop against each request: the engine's hard filters, and verification."""
    results = await matching_service.evaluate_workshop(session, requests, workshop.id, now=now, settings=settings)
    assert results is not None  # the workshop was just read
    return [_verdict(r, workshop) for r in results]


def not_eligible(verdict: Verdict, *, pointer: str | None = None) -> Rejected:
    listed = "\u00a0; ".join(verdict.reasons)
    return Rejected(f"cet atelier ne remplit pas les conditions de la demande\u00a0: {listed}", pointer=pointer,
                    code="not-eligible",
                    extensions={"reasons": [{"code": r.code, "message": r.message} for r in verdict.refusals]})


def _invitation_row(
    request: Request, workshop: Workshop, verdict: Verdict, *, source: str, why: str, now: datetime
) -> InvitationRow:
    return InvitationRow(
        id=new_id(),
        request_id=request.id,
        workshop_id=workshop.id,
        rank=0,
        score=verdict.score,
        distance_km=verdict.distance_km,
        capacity_units=verdict.capacity_units,
        reasons=[why, *verdict.reasons],
        status=InvitationStatus.INVITED.value,
        decline_reason=None,
        source=source,
        created_at=now,
    )


async def my_consultations(
    session: AsyncSession,
    *,
    actor: Principal,
    after: Keyset | None,
    limit: int,
    now: datetime,
    settings: MatchingSettings,
) -> list[Consultation]:
    """Up to ``limit`` open consultations from ``after`` (by the request's creation) that the
    caller's workshop may quote on: those it is eligible for, and those it already holds an
    invitation to (``invitation``; a declined one hides the consultation). The workshop is read once
    and judged against a batch of requests at a time."""
    workshop = await my_workshop(session, actor=actor)
    found: list[Consultation] = []
    while len(found) < limit:
        batch = await consultation_db.open_consultations(session, now=now, after=after, limit=_BATCH)
        if not batch:
            break
        held = await consultation_db.invitations_of(session, workshop.id, [r.id for r in batch])
        fresh = [r for r in batch if r.id not in held]
        verdicts = dict(zip((r.id for r in fresh),
                            await judge(session, workshop=workshop, requests=fresh, now=now, settings=settings),
                            strict=True)) if fresh else {}
        for request in batch:
            row = held.get(request.id)
            if row is not None:
                if row.status != InvitationStatus.INVITED:
                    continue
                invitation = msgspec.convert(row, Invitation, from_attributes=True)
                verdict = Verdict(eligible=True, score=invitation.score, distance_km=invitation.distance_km,
                                  capacity_units=invitation.capacity_units, reasons=invitation.reasons, refusals=())
                found.append(Consultation(request=request, verdict=verdict, invitation=invitation))
            elif verdicts[request.id].eligible:
                found.append(Consultation(request=request, verdict=verdicts[request.id], invitation=None))
        if len(batch) < _BATCH:
            break
        after = (batch[-1].created_at, batch[-1].id)
    return found[:limit]


async def admit_to_consultation(
    session: AsyncSession,
    *,
    workshop: Workshop,
    request_id: str,
    now: datetime,
    settings: MatchingSettings | None = None,
) -> InvitationRow:
    """The invitation of a workshop that quotes on an open consultation without being invited:
    written once it is judged eligible (422 ``not-eligible`` with the reasons otherwise). A request
    that is not an open consultation does not exist for this workshop (404: nothing leaks of a
    request without publicity). ``settings`` weigh the stored score (the defaults when not given:
    eligibility does not depend on them)."""
    settings = settings or MatchingSettings()
    request = await RequestRepository(session).get(request_id, scope_org_id=None)
    if request is None or request.procedure not in OPEN_PROCEDURES or not taking_quotes(request, now):
        raise NotFound(f"request {request_id} not found")
    if request.match_state != MatchState.DONE:
        raise Conflict("la consultation ouvre dès que le rapprochement des ateliers est terminé\u00a0: "
                       "réessayez dans un instant", code="match-pending")
    (verdict,) = await judge(session, workshop=workshop, requests=[request], now=now, settings=settings)
    if not verdict.eligible:
        raise not_eligible(verdict)
    # The request's row first, as every writer of its quotes takes it: of two quotes of this workshop
    # sent together, the second finds the invitation the first wrote.
    await RequestRepository(session).lock(request_id)
    existing = await InvitationRepository(session).of(request_id, workshop.id)
    if existing is not None:
        return existing
    row = _invitation_row(request, workshop, verdict, source="consultation", why=CONSULTATION_REASON, now=now)
    consultation_db.add_invitation(session, row)
    await session.flush()
    return row


async def invite_workshop(
    session: AsyncSession,
    *,
    actor: Principal,
    request_id: str,
    workshop_id: str,
    now: datetime,
    settings: MatchingSettings,
) -> tuple[Invitation, Request, Workshop]:
    """The buyer invites a workshop it knows to quote on its request (issue 17: in a procedure
    without publicity; harmless in a MAPA). 409 when the request no longer takes quotes or the
    workshop is already invited; 422 ``not-eligible`` with the reasons when it fails a hard filter or
    is not verified; emits ``invitation.created`` to the workshop's organisation."""
    request = await get_request(session, actor=actor, request_id=request_id)
    _check_taking_quotes(request, now)
    if request.match_state != MatchState.DONE:
        raise Conflict("le rapprochement des ateliers de cette demande n'est pas terminé\u00a0: réessayez dans un "
                       "instant", code="match-pending")
    workshop = await WorkshopRepository(session).get(workshop_id)
    if workshop is None:
        raise NotFound(f"aucun atelier {workshop_id}", pointer="/workshop_id", code="workshop-not-found")
    if await InvitationRepository(session).of(request_id, workshop_id) is not None:
        raise _already_invited(workshop)
    (verdict,) = await judge(session, workshop=workshop, requests=[request], now=now, settings=settings)
    if not verdict.eligible:
        raise not_eligible(verdict, pointer="/workshop_id")
    current = await RequestRepository(session).lock(request_id)
    if current not in TAKING_QUOTES:
        raise Conflict(f"la demande est «\u00a0{current}\u00a0»\u00a0: elle ne reçoit plus de devis",
                       code="quote-window-closed")
    if await InvitationRepository(session).of(request_id, workshop_id) is not None:
        raise _already_invited(workshop)
    row = _invitation_row(request, workshop, verdict, source="buyer", why=BUYER_REASON, now=now)
    consultation_db.add_invitation(session, row)
    invitation = msgspec.convert(row, Invitation, from_attributes=True)
    summary = RequestSummary(id=request.id, name=request.name, item=request.item_slug, quantity=request.quantity,
                             deadline=request.deadline.isoformat(), delivery_commune=request.delivery_insee)
    await emit(session, InvitationCreated(id=row.id, request=summary, rank=row.rank,
                                          distance_km=round(row.distance_km, 1), reasons=list(row.reasons)),
               org_id=workshop.org_id, resource_id=row.id, now=now, first=True)
    await session.flush()
    return invitation, request, workshop


def _check_taking_quotes(request: Request, now: datetime) -> None:
    if request.status not in TAKING_QUOTES:
        raise Conflict(f"la demande est «\u00a0{request.status}\u00a0»\u00a0: elle ne reçoit plus de devis",
                       code="quote-window-closed")
    if request.window_closed or request.quote_deadline <= now:
        raise Conflict(f"la période de réponse de la demande est close depuis le "
                       f"{request.quote_deadline.isoformat()}", code="quote-window-closed")


def _already_invited(workshop: Workshop) -> Conflict:
    return Conflict(f"l'atelier «\u00a0{workshop.name}\u00a0» est déjà invité sur cette demande",
                    code="already-invited")
