"""Requests: create, match and invite (inline or as the worker's job), read, cancel, and the
quote-window clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

import matching
from adapters.geocoding.base import Geocoder
from adapters.procurement.base import Address, Buyer, ChorusRequirement
from adapters.procurement.rules import check_chorus_references
from broker.db.base import new_id
from broker.db.fabrication import (
    InvitationRepository,
    Keyset,
    PreparedMatch,
    QuoteRepository,
    RequestRepository,
    WorkshopRepository,
    encode_result,
    write_matches,
)
from broker.db.lists import requests_page
from broker.db.pending import flush_pending
from broker.db.repositories import OUTBOX_WRITTEN, outbox_row
from broker.db.session import Database
from broker.domain.access import Principal
from broker.domain.catalogue import ProcessStep
from broker.domain.cpv import cpv_group
from broker.domain.events import (
    InvitationCreated,
    RequestCancelled,
    RequestCreated,
    RequestMatched,
    RequestSummary,
    RequestWindowClosed,
    recorded,
)
from broker.domain.fabrication import Procurement, Request
from broker.domain.identifiers import siret_problem
from broker.domain.lifecycle import InvitationStatus, MatchState, RequestStatus, check_request
from broker.domain.listing import ListedRequest, ListQuery, Position
from broker.errors import Conflict, NotFound, Rejected
from broker.services import jobs
from broker.services import matching as matching_service
from broker.services import procurement as procurement_service
from broker.services.events import emit, lost_race
from broker.services.workshops import catalogue_item
from broker.settings import MatchingSettings


class NewRequest(msgspec.Struct, frozen=True, kw_only=True):
    item: str | None
    custom_name: str | None
    custom_steps: tuple[ProcessStep, ...]
    custom_certifications: tuple[str, ...]
    quantity: int
    deadline: datetime
    delivery_insee: str
    delivery_address: str
    budget_cents: int | None
    min_quotes: int
    quote_window_hours: int
    allow_split: bool
    max_distance_km: float | None
    procurement: Procurement
    estimated_cents: int | None = None  # the estimated need HT (issue 17); the budget when None


async def create_request(
    session: AsyncSession,
    *,
    actor: Principal,
    new: NewRequest,
    geocoder: Geocoder,
    settings: MatchingSettings,
    now: datetime,
    cache: matching_service.CandidateCache | None = None,
    match_now: bool = True,
    db: Database | None = None,
) -> tuple[Request, int | None]:
    """Validate and store the request with its ``request.created`` event, in the caller's
    transaction. With ``match_now`` matching and the invitations happen in that transaction too and
    the count of invited workshops is returned; otherwise the request stays ``match_state=pending``
    (None is returned) and its matching job runs after the commit (`compute_matches`, then
    `write_match_batch`)."""
    if new.deadline <= now:
        raise Rejected("the deadline must be in the future", pointer="/deadline", code="deadline-past")
    commune = geocoder.commune(new.delivery_insee)
    if commune is None:
        raise Rejected(
            f"commune_insee {new.delivery_insee!r} is not a French commune code", pointer="/delivery/commune_insee",
            code="commune-unknown", figures={"commune": new.delivery_insee},
        )
    if (problem := siret_problem(new.procurement.buyer_siret)) is not None:
        raise Rejected(f"buyer_siret: {problem}", pointer="/procurement/buyer_siret", code="siret-invalid",
                       figures={"problem": problem})
    # The references the buyer's Chorus Pro structure requires must be there from the start: the
    # order documents and the workshop's invoice carry them (DOC-3).
    check_chorus_references(
        Buyer(name="", siret=new.procurement.buyer_siret, address=Address(postcode="00000", commune="-"),
              service_code=new.procurement.service_code, engagement_number=new.procurement.engagement_number,
              chorus_requirement=ChorusRequirement(new.procurement.chorus_requirement)),
        pointer_prefix="/procurement",
    )
    if new.item is not None:
        item = cache.catalogue.get(new.item) if cache is not None else None
        if item is None:
            try:
                item = await catalogue_item(session, slug=new.item)
            except NotFound as exc:
                raise Rejected(f"no catalogue item {new.item!r}", pointer="/item", code="catalogue-item-unknown",
                               figures={"item": new.item}) from exc
            if cache is not None:
                cache.catalogue[new.item] = item
        name, steps, certifications = item.name, item.steps, item.certifications_required
    else:
        if not new.custom_steps or not new.custom_name:
            raise Rejected("give either a catalogue `item` or a `custom` spec with steps", pointer="/custom",
                           code="item-required")
        name, steps, certifications = new.custom_name, new.custom_steps, new.custom_certifications
    # The law: the procedure from the estimate, the buyer's cumulative need and the day (issue 17).
    need = procurement_service.need_of(
        item=new.item, nature=new.procurement.nature, cpv=new.procurement.cpv, estimate_cents=new.estimated_cents,
        budget_cents=new.budget_cents, publicity_reference=new.procurement.publicity_reference,
    )
    decision = await procurement_service.decide_for_request(
        session, org_id=actor.org_id, need=need, quote_window_hours=new.quote_window_hours, deadline=new.deadline,
        now=now, db=db,
    )
    quote_deadline = min(now + timedelta(hours=new.quote_window_hours), new.deadline)
    repo = RequestRepository(session)
    request = repo.add({
        "id": new_id(),
        "org_id": actor.org_id,
        "item_slug": new.item,
        "name": name,
        "steps": [msgspec.to_builtins(s) for s in steps],
        "certifications_required": list(certifications),
        "quantity": new.quantity,
        "deadline": new.deadline,
        "delivery_insee": commune.insee,
        "delivery_address": new.delivery_address,
        "delivery_lat": commune.lat,
        "delivery_lon": commune.lon,
        "budget_cents": new.budget_cents,
        "min_quotes": new.min_quotes,
        "quote_window_hours": new.quote_window_hours,
        "quote_deadline": quote_deadline,
        "window_closed": False,
        "allow_split": new.allow_split,
        "max_distance_km": new.max_distance_km,
        "procurement": msgspec.to_builtins(new.procurement) | procurement_service.recorded_decision(need, decision),
        "nature": need.nature.value,
        "cpv": need.cpv,
        "cpv_group": cpv_group(need.cpv),
        "estimated_cents": need.estimate_cents,
        "procedure": decision.procedure.value,
        "status": RequestStatus.OPEN.value,
        "match_state": MatchState.PENDING.value,
        "award_justification": None,
        "created_at": now,
        "updated_at": now,
    })
    await emit(session, RequestCreated(**msgspec.structs.asdict(_summary(request))), org_id=actor.org_id,
               resource_id=request.id, now=now, first=True)
    if not match_now:
        jobs.schedule(session, jobs.match_job(request.id))
        return request, None
    # Inline mode: matching runs in the request's transaction and the answer carries the invitations.
    (computed,) = await _compute(session, [request], settings=settings, now=now, cache=cache)
    invited = await record_matches(session, matched=[computed], settings=settings, now=now)
    found = await repo.get(request.id, scope_org_id=None)
    assert found is not None
    return found, invited[request.id]


def _summary(request: Request) -> RequestSummary:
    return RequestSummary(id=request.id, name=request.name, item=request.item_slug, quantity=request.quantity,
                          deadline=request.deadline.isoformat(), delivery_commune=request.delivery_insee)


class Matched(msgspec.Struct, frozen=True, kw_only=True):
    """A request's matching, computed and not yet written: the result, and the organisation of each
    invited workshop (its invitation event goes to that tenant)."""

    request: Request
    result: matching.MatchResult
    invited_orgs: dict[str, str]


async def compute_matches(
    session: AsyncSession,
    *,
    request_ids: list[str],
    settings: MatchingSettings,
    now: datetime,
    cache: matching_service.CandidateCache | None = None,
) -> list[Matched]:
    """Reads only (a reader session is fine, so SQLite's write lock is not held while matching
    runs): the matching of each of ``request_ids`` still ``pending``."""
    requests = await RequestRepository(session).many(request_ids)
    pending = [r for r in requests if r.match_state == MatchState.PENDING]
    return await _compute(session, pending, settings=settings, now=now, cache=cache)


def prepare_matches(matched: list[Matched], *, settings: MatchingSettings, now: datetime) -> list[PreparedMatch]:
    """The rows of these matchings, built outside the write transaction (`write_matches`)."""
    prepared = []
    for m in matched:
        request, result = m.request, m.result
        invited = result.included[: settings.invitations]
        summary = _summary(request)
        invitations, events = [], []
        for inc in invited:
            invitation_id = new_id()
            reasons = list(inc.reasons)
            invitations.append({
                "id": invitation_id,
                "request_id": request.id,
                "workshop_id": inc.workshop_id,
                "rank": inc.rank,
                "score": inc.score,
                "distance_km": inc.distance_km,
                "capacity_units": inc.capacity_units,
                "reasons": reasons,
                "status": InvitationStatus.INVITED.value,
                "decline_reason": None,
                "created_at": now,
            })
            event = InvitationCreated(id=invitation_id, request=summary, rank=inc.rank,
                                      distance_km=round(inc.distance_km, 1), reasons=reasons)
            events.append(outbox_row(recorded(event, org_id=m.invited_orgs[inc.workshop_id], resource_id=invitation_id),
                                     now=now, sequence=1))
        matched_event = recorded(
            RequestMatched(id=request.id, eligible=result.eligible, invited=len(invited),
                           exclusion_counts=dict(result.exclusion_counts)),
            org_id=request.org_id, resource_id=request.id,
        )
        prepared.append(PreparedMatch(request.id, encode_result(result), invitations, events, matched_event))
    return prepared


async def record_matches(
    session: AsyncSession, *, matched: list[Matched], settings: MatchingSettings, now: datetime
) -> dict[str, int]:
    """Write computed matchings in the session's transaction (`write_matches`): ``pending → done``
    (compare-and-set), the results, the invitations and their events. Of two jobs for one request
    (a retry, the sweep and the queued job, two workers) one writes it and the other leaves it out
    of the answer (request id → invited count). A request cancelled in the meantime is marked done
    with no invitation (0). The worker writes its batches through `Database.write` instead."""
    prepared = prepare_matches(matched, settings=settings, now=now)

    def write(sync_session: Session) -> dict[str, int]:
        flush_pending(sync_session)  # the request itself, when it was created in this transaction
        return write_matches(sync_session.connection(), prepared, now=now)

    invited = await session.run_sync(write)
    if invited:
        session.info[OUTBOX_WRITTEN] = True
    return invited


async def write_match_batch(
    db: Database, *, matched: list[Matched], settings: MatchingSettings, now: datetime
) -> dict[str, int]:
    """`record_matches` as a transaction of its own (`Database.write`: on SQLite the write lock is
    held only while SQLite works, not while the worker's event loop runs other jobs)."""
    prepared = prepare_matches(matched, settings=settings, now=now)
    return await db.write(lambda connection: write_matches(connection, prepared, now=now))


async def pending_matches(session: AsyncSession, *, older_than: datetime, limit: int = 100) -> list[str]:
    """Requests whose matching job was lost (Redis down at enqueue, job dropped): the sweep runs them."""
    return await RequestRepository(session).pending_matches(older_than=older_than, limit=limit)


async def pending_match_batch(session: AsyncSession, *, limit: int, first: str | None = None) -> list[str]:
    """The next requests to match together (``first`` among them when it is still pending)."""
    return await RequestRepository(session).pending_match_ids(limit=limit, first=first)


async def _compute(
    session: AsyncSession,
    requests: list[Request],
    *,
    settings: MatchingSettings,
    now: datetime,
    cache: matching_service.CandidateCache | None,
) -> list[Matched]:
    if not requests:
        return []
    results = await matching_service.run_many(session, requests, now=now, settings=settings, cache=cache)
    invited_ids = {i.workshop_id for result in results for i in result.included[: settings.invitations]}
    orgs = {k: w.org_id for k, w in (await WorkshopRepository(session).many(sorted(invited_ids))).items()}
    return [
        Matched(
            request=request,
            result=result,
            invited_orgs={i.workshop_id: orgs[i.workshop_id] for i in result.included[: settings.invitations]},
        )
        for request, result in zip(requests, results, strict=True)
    ]


def _scope(actor: Principal) -> str | None:
    return None if actor.is_admin else actor.org_id


async def get_request(session: AsyncSession, *, actor: Principal, request_id: str) -> Request:
    request = await RequestRepository(session).get(request_id, scope_org_id=_scope(actor))
    if request is None:
        raise NotFound(f"request {request_id} not found")
    return request


async def list_requests(
    session: AsyncSession, *, actor: Principal, after: Keyset | None, limit: int, status: str | None
) -> list[Request]:
    return await RequestRepository(session).page(scope_org_id=_scope(actor), after=after, limit=limit, status=status)


#: The longest distance a buyer may ask of the workshops (as the API's ``max_distance_km``).
MAX_DISTANCE_KM = 2000.0
#: At most this many communes stand for a searched text (the most populous whose name starts so).
SEARCHED_COMMUNES = 200


def with_communes(query: ListQuery, geocoder: Geocoder) -> ListQuery:
    """``query`` whose text also finds what is delivered in a commune whose name starts with it."""
    if not query.text:
        return query
    named = geocoder.by_name(query.text, prefix=True)[:SEARCHED_COMMUNES]
    return msgspec.structs.replace(query, text_communes=tuple(c.insee for c in named))


async def search_requests(
    session: AsyncSession, *, actor: Principal, query: ListQuery, geocoder: Geocoder, after: Position | None,
    limit: int,
) -> list[ListedRequest]:
    """The web's list of requests (the caller's organisation's; all of them for an admin): searched,
    filtered and sorted in the query, ``limit`` rows after ``after``."""
    return await requests_page(session, scope_org_id=_scope(actor), query=with_communes(query, geocoder),
                               after=after, limit=limit)


async def matches(session: AsyncSession, *, actor: Principal, request_id: str) -> tuple[Request, dict[str, Any]]:
    request = await get_request(session, actor=actor, request_id=request_id)
    return request, (await RequestRepository(session).match_result(request_id)) or {}


async def cancel_request(session: AsyncSession, *, actor: Principal, request_id: str, now: datetime) -> Request:
    request = await get_request(session, actor=actor, request_id=request_id)
    current = RequestStatus(request.status)
    check_request(current, RequestStatus.CANCELLED)
    if not await RequestRepository(session).set_status(
        request_id, expected=current, status=RequestStatus.CANCELLED, now=now
    ):
        raise_lost_race("request")
    await QuoteRepository(session).reject_others(request_id, keep=[])
    await emit(session, RequestCancelled(id=request_id), org_id=request.org_id, resource_id=request_id, now=now)
    return await get_request(session, actor=actor, request_id=request_id)


async def rematch_request(
    session: AsyncSession,
    *,
    actor: Principal,
    request_id: str,
    allow_split: bool,
    max_distance_km: float | None,
    settings: MatchingSettings,
    now: datetime,
    cache: matching_service.CandidateCache | None = None,
    match_now: bool = True,
) -> tuple[Request, int | None]:
    """The buyer's answer to a matching that invited nobody (issue 21 item 3): the request, still
    ``open`` with no workshop invited, takes new split and distance settings and is matched again,
    its quote window starting over for the workshops invited now. Like `create_request`, with
    ``match_now`` the matching runs in this transaction and the invited count is returned; otherwise
    its job runs after the commit (None)."""
    request = await get_request(session, actor=actor, request_id=request_id)
    if max_distance_km is not None and not 0 < max_distance_km <= MAX_DISTANCE_KM:
        raise Rejected(f"max_distance_km must be in ]0, {MAX_DISTANCE_KM}]", pointer="/max_distance_km",
                       code="validation-error")
    repo = RequestRepository(session)
    current = await repo.lock(request_id)  # before its invitations: a buyer's own invitation waits
    if current != RequestStatus.OPEN:
        raise Conflict(f"the request is '{current}': only an open request without quotes is matched again",
                       code="invalid-state-transition", figures={"noun": "request", "current": str(current)})
    if request.match_state != MatchState.DONE:
        raise Conflict("the request's matching is not finished", code="match-pending")
    if await InvitationRepository(session).for_request(request_id):
        raise Conflict("des ateliers sont déjà invités à chiffrer cette demande : elle n'est pas relancée",
                       code="already-invited")
    if request.deadline <= now:
        raise Rejected("the deadline is past", pointer="/deadline", code="deadline-past")
    quote_deadline = min(now + timedelta(hours=request.quote_window_hours), request.deadline)
    if not await repo.rematch(request_id, allow_split=allow_split, max_distance_km=max_distance_km,
                              quote_deadline=quote_deadline, now=now):
        raise_lost_race("request")
    again = await get_request(session, actor=actor, request_id=request_id)
    if not match_now:
        jobs.schedule(session, jobs.match_job(request_id))
        return again, None
    (computed,) = await _compute(session, [again], settings=settings, now=now, cache=cache)
    invited = await record_matches(session, matched=[computed], settings=settings, now=now)
    return await get_request(session, actor=actor, request_id=request_id), invited.get(request_id, 0)


def raise_lost_race(what: str) -> None:
    raise lost_race(what)


async def close_quote_windows(session: AsyncSession, *, now: datetime) -> int:
    """The scheduled job: close every window past its time. A request that got no quote is closed;
    one with quotes stays `quoting`, and its buyer may now award below `min_quotes`. Expired
    quotes are marked so, after the requests (a request's row before its quotes, as every writer
    of quotes takes them)."""
    repo = RequestRepository(session)
    closed = 0
    for request in await repo.windows_to_close(now):
        if not await repo.close_window(request.id, now):
            continue
        closed += 1
        if request.status == RequestStatus.OPEN:
            await repo.set_status(request.id, expected=RequestStatus.OPEN, status=RequestStatus.CLOSED, now=now)
        status = RequestStatus(request.status) if request.status != RequestStatus.OPEN else RequestStatus.CLOSED
        await emit(session, RequestWindowClosed(id=request.id, status=status), org_id=request.org_id,
                   resource_id=request.id, now=now)
    await QuoteRepository(session).expire(now)
    return closed
