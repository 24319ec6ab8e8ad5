"""`match`: filter, score and rank workshops for one request, vectorised over a `CandidateIndex`.

The hard filters run as a funnel over shrinking row sets, each stage in numpy: capability step by
step (on the machine slice of the step's process, never on every workshop), certifications,
distance (a KD-tree ball first when the reach is local), pause, capacity. Each excluded workshop
is counted once, at the first stage it fails. The survivors are scored and ranked by (score desc,
workshop id). Only the rows shown to people (top `limit` included, `explain_limit` nearest excluded)
are turned into Structs with French explanations, through `matching.constraints` (plain Python).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from matching.capacity import working_days
from matching.constraints import evaluate
from matching.filters import capability, capacity, certified, within_reach
from matching.geo import FloatArray, distance_km, squared_chords, unit_vector
from matching.index import BoolArray, CandidateIndex, IntArray
from matching.model import (
    REASON_CODES,
    Candidate,
    Excluded,
    Included,
    MatchRequest,
    MatchResult,
    MatchWeights,
    ScoreComponents,
)
from matching.scoring import component_arrays, components, explain_score, validate_weights, weighted


def validate_request(request: MatchRequest) -> None:
    """Reject requests the formulas cannot handle (quantity < 1, minutes per unit <= 0)."""
    if request.quantity < 1:
        raise ValueError("quantity must be >= 1")
    for step in request.steps:
        if not step.minutes_per_unit > 0:
            raise ValueError(f"minutes_per_unit of step {step.process!r} must be > 0")
    if request.max_distance_km is not None and math.isnan(request.max_distance_km):
        raise ValueError("max_distance_km must not be NaN")
    if math.isnan(request.delivery_lat) or math.isnan(request.delivery_lon):
        raise ValueError("delivery coordinates must not be NaN")


def _positions(sorted_rows: IntArray, rows: IntArray) -> list[int | None]:
    """Position of each of `rows` in `sorted_rows`, or None where absent."""
    if sorted_rows.size == 0:
        return [None] * rows.size
    pos = np.minimum(np.searchsorted(sorted_rows, rows), sorted_rows.size - 1)
    hit = sorted_rows[pos] == rows
    return [int(p) if h else None for p, h in zip(pos.tolist(), hit.tolist(), strict=True)]


def _top(score: FloatArray, rows: IntArray, limit: int | None) -> IntArray:
    """Positions of the best `limit` rows by (score desc, row asc)."""
    if limit is not None and limit < score.size:
        if limit <= 0:
            return np.zeros(0, np.int64)
        kth = np.partition(score, score.size - limit)[score.size - limit]
        keep = np.flatnonzero(score >= kth)
        order = keep[np.lexsort((rows[keep], -score[keep]))]
        return order[:limit]
    return np.lexsort((rows, -score)).astype(np.int64)


def _nearest_excluded(
    index: CandidateIndex, point: tuple[float, float, float], eligible: BoolArray, limit: int | None
) -> IntArray:
    """The `limit` excluded rows nearest the point (all when None), nearest first, ties by id."""
    if limit is None or limit >= index.size or index.tree is None:
        rows = np.flatnonzero(~eligible)
        c2 = squared_chords(index.x[rows], index.y[rows], index.z[rows], point)
        return rows[np.lexsort((rows, c2))][:limit]
    if limit <= 0:
        return np.zeros(0, np.int64)
    k = min(index.size, 2 * limit + 16)
    while True:
        dist, found = index.tree.query(point, k=k)
        dist, found = np.atleast_1d(dist), np.atleast_1d(found)
        out = np.flatnonzero(~eligible[found])
        if out.size >= limit or k == index.size:
            break
        k = min(index.size, 4 * k)
    rows, dist = found[out], dist[out]
    return rows[np.lexsort((rows, dist))][:limit]


def match(
    request: MatchRequest,
    candidates: CandidateIndex | Sequence[Candidate],
    *,
    now: datetime,
    weights: MatchWeights = MatchWeights(),
    limit: int | None = None,
    explain_limit: int | None = 10,
) -> MatchResult:
    """Rank the workshops able to fulfil `request` by the deadline; explain the others.

    `candidates` is a prebuilt `CandidateIndex` (fast path: build it once per registry version) or
    any sequence of `Candidate`. `limit` bounds `included` (best first); `explain_limit` bounds
    the detailed `excluded` list (nearest first; None = every excluded workshop). Pure and
    deterministic: ties are broken by workshop id.
    """
    validate_request(request)
    validate_weights(weights)
    index = candidates if isinstance(candidates, CandidateIndex) else CandidateIndex(candidates)
    days = working_days(now, request.deadline)
    point = unit_vector(request.delivery_lat, request.delivery_lon)
    counts: dict[str, int] = dict.fromkeys(REASON_CODES, 0)

    rows, tables = capability(index, request, counts)
    held = certified(index, request, rows)
    counts["certification_missing"] += int(rows.size - np.count_nonzero(held))
    rows = rows[np.flatnonzero(held)]

    measured, measured_dist, reach_ok = within_reach(index, request, point, rows)
    counts["out_of_radius"] += int(rows.size - np.count_nonzero(reach_ok))
    keep = np.flatnonzero(reach_ok)
    rows, dist = measured[keep], measured_dist[keep]
    active = ~index.paused[rows]
    counts["paused"] += int(rows.size - np.count_nonzero(active))
    keep = np.flatnonzero(active)
    rows, dist = rows[keep], dist[keep]

    cap_units = capacity(index, request, rows, tables, days)
    needed = 1 if request.allow_split else request.quantity
    enough = cap_units >= needed
    counts["insufficient_capacity"] += int(rows.size - np.count_nonzero(enough))
    judged_rows, judged_cap = rows, cap_units
    keep = np.flatnonzero(enough)
    rows, dist, cap_units = rows[keep], dist[keep], cap_units[keep]

    score, prox, slack, on_time, fair = component_arrays(
        distance_km=dist,
        capacity=cap_units,
        quantity=request.quantity,
        on_time_rate=index.on_time[rows],
        recent_wins=index.recent_wins[rows],
        weights=weights,
    )
    included: list[Included] = []
    for rank, i in enumerate(_top(score, rows, limit).tolist(), start=1):
        cand = index.candidates[int(rows[i])]
        parts = ScoreComponents(
            distance=float(prox[i]), slack=float(slack[i]), on_time=float(on_time[i]), fairness=float(fair[i])
        )
        cap = int(cap_units[i])
        included.append(
            Included(
                workshop_id=cand.workshop_id,
                rank=rank,
                score=float(score[i]),
                distance_km=float(dist[i]),
                capacity_units=cap,
                components=parts,
                reasons=explain_score(
                    parts,
                    distance_km=float(dist[i]),
                    capacity=cap,
                    quantity=request.quantity,
                    on_time_rate=cand.on_time_rate,
                    recent_wins=cand.recent_wins,
                    weights=weights,
                ),
            )
        )

    excluded: list[Excluded] = []
    if explain_limit != 0:
        eligible = np.zeros(index.size, np.bool_)
        eligible[rows] = True
        shown = _nearest_excluded(index, point, eligible, explain_limit)
        # Reuse the figures the funnel decided on, so each rendered reason is the one applied.
        known_d = _positions(measured, shown)
        known_c = _positions(judged_rows, shown)
        for r, pd, pc in zip(shown.tolist(), known_d, known_c, strict=True):
            cand = index.candidates[r]
            d = (
                distance_km(point, (float(index.x[r]), float(index.y[r]), float(index.z[r])))
                if pd is None
                else float(measured_dist[pd])
            )
            ev = evaluate(request, cand, days=days, distance_km=d, capacity=None if pc is None else int(judged_cap[pc]))
            excluded.append(Excluded(workshop_id=cand.workshop_id, distance_km=d, reasons=ev.reasons))

    return MatchResult(
        included=tuple(included),
        excluded=tuple(excluded),
        eligible=int(rows.size),
        considered=index.size,
        working_days=days,
        exclusion_counts=counts,
    )


def explain(
    request: MatchRequest, candidate: Candidate, *, now: datetime, weights: MatchWeights = MatchWeights()
) -> Included | Excluded:
    """Explain one workshop on demand (e.g. "why not me?"): every true reason, or its score.

    Plain Python, same filters and formulas as `match`; an eligible workshop comes back with rank 0
    (its rank depends on the other candidates).
    """
    validate_request(request)
    validate_weights(weights)
    days = working_days(now, request.deadline)
    point = unit_vector(request.delivery_lat, request.delivery_lon)
    dist = distance_km(point, unit_vector(candidate.lat, candidate.lon))
    ev = evaluate(request, candidate, days=days, distance_km=dist)
    if ev.reasons:
        return Excluded(workshop_id=candidate.workshop_id, distance_km=dist, reasons=ev.reasons)
    parts = components(
        distance_km=dist,
        capacity=ev.capacity_units,
        quantity=request.quantity,
        on_time_rate=candidate.on_time_rate,
        recent_wins=candidate.recent_wins,
        weights=weights,
    )
    return Included(
        workshop_id=candidate.workshop_id,
        rank=0,
        score=weighted(parts, weights),
        distance_km=dist,
        capacity_units=ev.capacity_units,
        components=parts,
        reasons=explain_score(
            parts,
            distance_km=dist,
            capacity=ev.capacity_units,
            quantity=request.quantity,
            on_time_rate=candidate.on_time_rate,
            recent_wins=candidate.recent_wins,
            weights=weights,
        ),
    )
