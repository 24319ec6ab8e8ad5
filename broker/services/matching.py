"""Load the candidate workshops of a request and run the pure matcher over them."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

import matching
from broker.db.fabrication import RegistryRepository, RegistryVersion, WorkshopRepository
from broker.domain.catalogue import CatalogueItem, ProcessStep
from broker.domain.fabrication import Machine, Request, Workshop
from broker.settings import MatchingSettings
from matching.index import Bookings

KM_PER_DEGREE = 111.32
#: What a request's stored matching shows (``GET /v1/requests/{id}/matches``): the best included
#: workshops and the nearest excluded ones, each with its reasons (every exclusion is counted by
#: reason anyway). The excluded explanations were half of matching's CPU at 50.
SHOWN_INCLUDED = 50
SHOWN_EXCLUDED = 20


def weights(settings: MatchingSettings) -> matching.MatchWeights:
    return matching.MatchWeights(
        distance=settings.weight_distance,
        slack=settings.weight_slack,
        on_time=settings.weight_on_time,
        fairness=settings.weight_fairness,
    )


def match_steps(steps: Sequence[ProcessStep]) -> tuple[matching.Step, ...]:
    """A bill of process as the matcher reads it."""
    return tuple(
        matching.Step(
            process=s.process,
            material=s.material,
            thickness_mm=s.thickness_mm,
            part_size_mm=s.part_size_mm,
            minutes_per_unit=s.minutes_per_unit,
        )
        for s in steps
    )


def match_request(request: Request) -> matching.MatchRequest:
    return matching.MatchRequest(
        steps=match_steps(request.steps),
        quantity=request.quantity,
        deadline=request.deadline,
        delivery_lat=request.delivery_lat,
        delivery_lon=request.delivery_lon,
        certifications_required=request.certifications_required,
        max_distance_km=request.max_distance_km,
        allow_split=request.allow_split,
        item=request.item_slug,
    )


def candidate(
    workshop: Workshop,
    machines: list[Machine],
    units_per_day: float | None,
    *,
    reserved_units: int | None = None,
    recent_wins: float = 0.0,
) -> matching.Candidate:
    """The workshop as the matcher sees it; ``recent_wins`` is the fairness input, the decayed count
    of its awards of the last 12 months (`wins_from_awards`), not the lifetime ``workshop.recent_wins``."""
    return matching.Candidate(
        workshop_id=workshop.id,
        lat=workshop.lat,
        lon=workshop.lon,
        delivery_radius_km=workshop.delivery_radius_km,
        machines=tuple(
            matching.Machine(
                process=m.process,
                envelope_mm=m.envelope_mm,
                hours_per_week=m.hours_per_week,
                materials=tuple(
                    matching.MaterialSpec(material=x.material, max_thickness_mm=x.max_thickness_mm) for x in m.materials
                ),
            )
            for m in machines
        ),
        certifications=workshop.verified_certifications,
        paused=workshop.paused,
        units_per_day=units_per_day,
        reserved_units=workshop.reserved_units if reserved_units is None else reserved_units,
        on_time_rate=workshop.on_time_rate,
        recent_wins=recent_wins,
    )


#: Awards created up to this long before the current day began are summed once a day (and again
#: after a cancellation), later ones at every refresh: an award's transaction commits well within it.
RECENT_MARGIN = timedelta(hours=1)


def awards_window(now: datetime) -> tuple[datetime, datetime]:
    """[since, until[ of the awards that count at ``now``: the 365 days before the end of its day."""
    until = matching.fairness_reference(now)
    return until - matching.FAIRNESS_WINDOW, until


def wins_from_awards(awards: Mapping[str, tuple[int, int]], until: datetime) -> dict[str, float]:
    """The fairness input per workshop from its awards of the window (how many, the sum of their
    creation instants in epoch microseconds, see `WorkshopRepository.awards`): their total age at
    ``until`` (a whole second) is taken exactly, then `matching.decayed_awards` weighs them. Equal
    sums give equal figures, however the window was split to read them."""
    until_us = int(until.timestamp()) * 1_000_000
    return {w: matching.decayed_awards(n, (n * until_us - epoch_us) / 1_000_000) for w, (n, epoch_us) in awards.items()}


def _merged(*parts: Mapping[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for part in parts:
        for w, (n, epoch_us) in part.items():
            had = out.get(w, (0, 0))
            out[w] = (had[0] + n, had[1] + epoch_us)
    return out


async def candidates_for(
    session: AsyncSession, request: Request, workshop_ids: list[str] | None = None, *, now: datetime | None = None
) -> tuple[list[matching.Candidate], int]:
    """Workshops that could reach the delivery point (a bounding box of the largest delivery radius,
    capped by the request's maximum distance), and how many were left out by that box. With ``now``
    their fairness input is read (the awards of the 12 months before it); without, it is left at 0
    (for capacity checks, which do not score)."""
    repo = WorkshopRepository(session)
    total, max_radius = await repo.count_and_max_radius()
    if workshop_ids is not None:
        workshops = list((await repo.many(workshop_ids)).values())
    else:
        reach = min(max_radius, request.max_distance_km if request.max_distance_km is not None else math.inf)
        dlat = reach / KM_PER_DEGREE + 0.01
        coslat = max(math.cos(math.radians(request.delivery_lat)), 0.01)
        dlon = reach / (KM_PER_DEGREE * coslat) + 0.01
        workshops = await repo.within_box(
            lat_min=request.delivery_lat - dlat,
            lat_max=request.delivery_lat + dlat,
            lon_min=request.delivery_lon - dlon,
            lon_max=request.delivery_lon + dlon,
        )
    ids = [w.id for w in workshops]
    machines = await repo.machines(ids)
    declared = await repo.capacities(ids, request.item_slug) if request.item_slug else {}
    won: dict[str, float] = {}
    if now is not None:
        since, until = awards_window(now)
        awards = await repo.awards(since=since, until=until, workshop_ids=ids if len(ids) < 500 else None)
        won = wins_from_awards(awards, until)
    return [
        candidate(w, machines[w.id], declared.get(w.id), recent_wins=won.get(w.id, 0.0)) for w in workshops
    ], total - len(workshops)


class CandidateCache:
    """One process's candidate indexes, one per catalogue item (declared capacities differ per
    item), each valid for one registry version and one day: any change matching could see bumps a
    counter in its own transaction, so every request need not load every workshop. A change of the
    workshops themselves rebuilds the index (~2 s at 10,000 workshops); a booking (award, release,
    crisis commitment: several a minute) only re-reads the reserved units, on-time rates and recent
    wins into a copy of the index that shares the rest (~25 ms).

    Recent wins (the fairness input) decay with the awards' age, measured from the end of the day
    (`matching.fairness_reference`): constant over a day, so an index stays exact until the next
    booking or midnight, when the same refresh recomputes them, with no version bump. Summing a
    year of orders at every booking would cost far more than the rest of the refresh, so the awards
    made before the day began (less `RECENT_MARGIN`) are summed once a day, and again only when an
    order was cancelled meanwhile (`WorkshopRepository.cancelled_orders`); a refresh reads the
    later ones alone. The booking columns read for one (version, day) serve every item's index."""

    def __init__(self) -> None:
        self._entries: dict[str | None, tuple[RegistryVersion, datetime, matching.CandidateIndex]] = {}
        #: (bookings version, fairness reference, booking columns per workshop).
        self._bookings: tuple[int, datetime, dict[str, Bookings]] | None = None
        #: (fairness reference, cancelled orders then, awards of the window before the recent cut).
        self._history: tuple[datetime, int, dict[str, tuple[int, int]]] | None = None
        #: Catalogue items by slug: an item is only ever added, never changed, so it stays valid.
        self.catalogue: dict[str, CatalogueItem] = {}

    async def index(
        self, session: AsyncSession, item_slug: str | None, *, now: datetime, version: RegistryVersion | None = None
    ) -> matching.CandidateIndex:
        """The index for ``item_slug`` at the registry's current ``version`` (read here unless given),
        its recent wins as of ``now``'s day."""
        if version is None:
            version = await RegistryRepository(session).current()
        reference = matching.fairness_reference(now)
        entry = self._entries.get(item_slug)
        if entry is not None and entry[0] == version and entry[1] == reference:
            return entry[2]
        booked = await self.bookings(session, version, now=now)
        if entry is not None and entry[0].workshops == version.workshops:
            index = entry[2].with_bookings(booked)
        else:
            index = await self.build(session, item_slug, now=now, recent_wins={i: b[2] for i, b in booked.items()})
        self._entries[item_slug] = (version, reference, index)
        return index

    async def bookings(self, session: AsyncSession, version: RegistryVersion, *, now: datetime) -> dict[str, Bookings]:
        """Every workshop's booking columns (reserved units, on-time rate, recent wins) at ``version``
        and ``now``'s day, shared by the items' indexes."""
        since, until = awards_window(now)
        if self._bookings is not None and self._bookings[:2] == (version.bookings, until):
            return self._bookings[2]
        repo = WorkshopRepository(session)
        # The cancellations are counted before the sum is read: one committed in between is seen
        # by the next refresh, which then sums again.
        cancelled = await repo.cancelled_orders()
        cut = until - timedelta(days=1) - RECENT_MARGIN
        if self._history is None or self._history[:2] != (until, cancelled):
            self._history = (until, cancelled, await repo.awards(since=since, until=cut))
        wins = wins_from_awards(_merged(self._history[2], await repo.awards(since=cut, until=until)), until)
        found = {i: (reserved, rate, wins.get(i, 0.0)) for i, (reserved, rate) in (await repo.bookings()).items()}
        self._bookings = (version.bookings, until, found)
        return found

    @staticmethod
    async def build(
        session: AsyncSession, item_slug: str | None, *, now: datetime, recent_wins: Mapping[str, float] | None = None
    ) -> matching.CandidateIndex:
        """The index of every workshop, from scratch; recent wins as given, else summed here over the
        12 months before the end of ``now``'s day."""
        repo = WorkshopRepository(session)
        workshops = await repo.everything()
        ids = [w.id for w in workshops]
        machines = await repo.machines(ids)
        declared = await repo.capacities(ids, item_slug) if item_slug else {}
        if recent_wins is None:
            since, until = awards_window(now)
            recent_wins = wins_from_awards(await repo.awards(since=since, until=until), until)
        return matching.CandidateIndex(
            [
                candidate(w, machines[w.id], declared.get(w.id), recent_wins=recent_wins.get(w.id, 0.0))
                for w in workshops
            ]
        )


async def run(
    session: AsyncSession,
    request: Request,
    *,
    now: datetime,
    settings: MatchingSettings,
    cache: CandidateCache | None = None,
) -> matching.MatchResult:
    """Match over every workshop: from the process's cached index when given (the API), else
    loading the workshops within reach (a bounding box) for this one request."""
    if cache is not None:
        return _match(request, await cache.index(session, request.item_slug, now=now), now=now, settings=settings)
    candidates, outside = await candidates_for(session, request, now=now)
    result = _match(request, candidates, now=now, settings=settings)
    if outside:
        counts = dict(result.exclusion_counts)
        counts["out_of_radius"] = counts.get("out_of_radius", 0) + outside
        result = msgspec.structs.replace(result, exclusion_counts=counts, considered=result.considered + outside)
    return result


def _match(
    request: Request,
    candidates: matching.CandidateIndex | Sequence[matching.Candidate],
    *,
    now: datetime,
    settings: MatchingSettings,
) -> matching.MatchResult:
    return matching.match(
        match_request(request),
        candidates,
        now=now,
        weights=weights(settings),
        limit=SHOWN_INCLUDED,
        explain_limit=SHOWN_EXCLUDED,
    )


async def run_many(
    session: AsyncSession,
    requests: Sequence[Request],
    *,
    now: datetime,
    settings: MatchingSettings,
    cache: CandidateCache | None = None,
) -> list[matching.MatchResult]:
    """``run`` for a batch, reading the registry versions once."""
    if cache is None:
        return [await run(session, r, now=now, settings=settings) for r in requests]
    version = await RegistryRepository(session).current()
    results = []
    for request in requests:
        index = await cache.index(session, request.item_slug, now=now, version=version)
        results.append(_match(request, index, now=now, settings=settings))
        # A batch is 64 requests of ~1.5 ms: let the event loop serve the rest between two (the
        # relay's transaction, other jobs), not after all of them.
        await asyncio.sleep(0)
    return results


async def gross_capacity(session: AsyncSession, request: Request, workshop_id: str, *, now: datetime) -> int | None:
    """Units the workshop can make for this request by its deadline before any reservation, or
    None when it no longer qualifies at all (paused, machine removed, certification lost…)."""
    found, _ = await candidates_for(session, request, [workshop_id])
    if not found:
        return None
    probe = msgspec.structs.replace(match_request(request), quantity=1, allow_split=True)
    verdict = matching.explain(probe, msgspec.structs.replace(found[0], reserved_units=0), now=now)
    return verdict.capacity_units if isinstance(verdict, matching.Included) else None


async def evaluate_workshop(
    session: AsyncSession,
    requests: Sequence[Request],
    workshop_id: str,
    *,
    now: datetime,
    settings: MatchingSettings,
) -> list[matching.Included | matching.Excluded] | None:
    """One workshop against each of ``requests`` with the engine's hard filters and explanations
    (`matching.explain`: every true reason, or the score and its explanation, with rank 0), from one
    read of the workshop, its machines and its declared capacities; None when there is no such
    workshop. For open consultations and the workshops a buyer adds (issue 17)."""
    repo = WorkshopRepository(session)
    workshop = await repo.get(workshop_id)
    if workshop is None:
        return None
    machines = (await repo.machines([workshop_id]))[workshop_id]
    declared = await repo.all_capacities(workshop_id) if any(r.item_slug for r in requests) else {}
    scale = weights(settings)
    return [
        matching.explain(
            match_request(r),
            candidate(workshop, machines, declared.get(r.item_slug) if r.item_slug else None),
            now=now,
            weights=scale,
        )
        for r in requests
    ]
