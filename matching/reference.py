"""A plain loop over Candidate Structs: the obvious `match`, used as test oracle and bench baseline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from matching.capacity import working_days
from matching.constraints import evaluate
from matching.engine import validate_request
from matching.geo import distance_km, unit_vector
from matching.model import (
    REASON_CODES,
    Candidate,
    Excluded,
    Included,
    MatchRequest,
    MatchResult,
    MatchWeights,
)
from matching.scoring import components, explain_score, validate_weights, weighted


def match_reference(
    request: MatchRequest,
    candidates: Sequence[Candidate],
    *,
    now: datetime,
    weights: MatchWeights = MatchWeights(),
    limit: int | None = None,
) -> MatchResult:
    """Same contract as `matching.match` with every excluded workshop detailed (nearest first)."""
    validate_request(request)
    validate_weights(weights)
    days = working_days(now, request.deadline)
    point = unit_vector(request.delivery_lat, request.delivery_lon)
    counts: dict[str, int] = dict.fromkeys(REASON_CODES, 0)
    eligible: list[tuple[float, str, Included]] = []
    excluded: list[tuple[float, str, Excluded]] = []
    for cand in candidates:
        dist = distance_km(point, unit_vector(cand.lat, cand.lon))
        ev = evaluate(request, cand, days=days, distance_km=dist)
        if ev.reasons:
            counts[ev.reasons[0].code] += 1
            excluded.append(
                (
                    dist,
                    cand.workshop_id,
                    Excluded(workshop_id=cand.workshop_id, distance_km=dist, reasons=ev.reasons),
                )
            )
            continue
        parts = components(
            distance_km=dist,
            capacity=ev.capacity_units,
            quantity=request.quantity,
            on_time_rate=cand.on_time_rate,
            recent_wins=cand.recent_wins,
            weights=weights,
        )
        score = weighted(parts, weights)
        shown = Included(
            workshop_id=cand.workshop_id,
            rank=0,
            score=score,
            distance_km=dist,
            capacity_units=ev.capacity_units,
            components=parts,
            reasons=explain_score(
                parts,
                distance_km=dist,
                capacity=ev.capacity_units,
                quantity=request.quantity,
                on_time_rate=cand.on_time_rate,
                recent_wins=cand.recent_wins,
                weights=weights,
            ),
        )
        eligible.append((-score, cand.workshop_id, shown))
    eligible.sort(key=lambda t: (t[0], t[1]))
    excluded.sort(key=lambda t: (t[0], t[1]))
    top = eligible if limit is None else eligible[: max(limit, 0)]
    return MatchResult(
        included=tuple(msgspec.structs.replace(inc, rank=rank) for rank, (_, _, inc) in enumerate(top, start=1)),
        excluded=tuple(e for _, _, e in excluded),
        eligible=len(eligible),
        considered=len(candidates),
        working_days=days,
        exclusion_counts=counts,
    )
