"""Load the candidate workshops of a request and run the pure matcher over them."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from datetime import datetime

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

import matching
from broker.db.fabrication import RegistryRepository, RegistryVersion, WorkshopRepository
from broker.domain.catalogue import CatalogueItem, ProcessStep
from broker.domain.fabrication import Machine, Request, Workshop
from broker.settings import MatchingSettings

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
    workshop: Workshop, machines: list[Machine], units_per_day: float | None, *, reserved_units: int | None = None
) -> matching.Candidate:
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
        recent_wins=workshop.recent_wins,
    )


async def candidates_for(
    session: AsyncSession, request: Request, workshop_ids: list[str] | None = None
) -> tuple[list[matching.Candidate], int]:
    """Workshops that could reach the delivery point (a bounding box of the largest delivery radius,
    capped by the request's maximum distance), and how many were left out by that box."""
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
    return [candidate(w, machines[w.id], declared.get(w.id)) for w in workshops], total - len(workshops)


class CandidateCache:
    """One process's candidate indexes, one per catalogue item (declared capacities differ per
    item), each valid for one registry version: any change matching could see bumps a counter in
    its own transaction, so every request need not load every workshop. A change of the workshops
    themselves rebuilds the index (~2 s at 10,000 workshops); a booking (award, release, crisis
    commitment: several a minute) only re-reads the reserved units, on-time rates and recent wins
    into a copy of the index that shares the rest (~25 ms)."""

    def __init__(self) -> None:
        self._entries: dict[str | None, tuple[RegistryVersion, matching.CandidateIndex]] = {}
        #: Catalogue items by slug: an item is only ever added, never changed, so it stays valid.
        self.catalogue: dict[str, CatalogueItem] = {}

    async def index(
        self, session: AsyncSession, item_slug: str | None, *, version: RegistryVersion | None = None
    ) -> matching.CandidateIndex:
        """The index for ``item_slug`` at the registry's current ``version`` (read here unless given)."""
        if version is None:
            version = await RegistryRepository(session).current()
        entry = self._entries.get(item_slug)
        if entry is not None and entry[0] == version:
            return entry[1]
        if entry is not None and entry[0].workshops == version.workshops:
            index = entry[1].with_bookings(await WorkshopRepository(session).bookings())
        else:
            index = await self.build(session, item_slug)
        self._entries[item_slug] = (version, index)
        return index

    @staticmethod
    async def build(session: AsyncSession, item_slug: str | None) -> matching.CandidateIndex:
        """The index of every workshop, from scratch."""
        repo = WorkshopRepository(session)
        workshops = await repo.everything()
        ids = [w.id for w in workshops]
        machines = await repo.machines(ids)
        declared = await repo.capacities(ids, item_slug) if item_slug else {}
        return matching.CandidateIndex([candidate(w, machines[w.id], declared.get(w.id)) for w in workshops])


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
        return _match(request, await cache.index(session, request.item_slug), now=now, settings=settings)
    candidates, outside = await candidates_for(session, request)
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
        index = await cache.index(session, request.item_slug, version=version)
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
