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

from matching.capacity import FLOOR_EPSILON, working_days
from matching.constraints import ABLE, STEP_CODES, evaluate, sorted_dims
from matching.geo import FloatArray, chords_to_km, distance_km, km_to_chord, squared_chords, unit_vector
from matching.index import BoolArray, CandidateIndex, I8Array, IntArray, ProcessSlice
from matching.model import (
    REASON_CODES,
    Candidate,
    Excluded,
    Included,
    MatchRequest,
    MatchResult,
    MatchWeights,
    ScoreComponents,
    Step,
)
from matching.scoring import component_arrays, components, explain_score, validate_weights, weighted

#: Use the KD-tree ball before exact distances when this many rows are left and the reach is local.
_TREE_MIN_ROWS = 4096
_TREE_MAX_REACH_KM = 250.0
#: Relative slack on the ball radius: rows outside it are beyond reach whatever the rounding.
_BALL_MARGIN = 1e-9
_ONE = np.int8(1)


def validate_request(request: MatchRequest) -> None:
    """Reject requests the formulas cannot handle (quantity < 1, minutes per unit <= 0)."""
    if request.quantity < 1:
        raise ValueError("quantity must be >= 1")
    for step in request.steps:
        if not step.minutes_per_unit > 0:
            raise ValueError(f"minutes_per_unit of step {step.process!r} must be > 0")
    if request.max_distance_km is not None and math.isnan(request.max_distance_km):
        raise ValueError("max_distance_km must not be NaN")


def _step_levels(index: CandidateIndex, proc: ProcessSlice, step: Step) -> tuple[I8Array, FloatArray]:
    """Per owner of the process slice: best capability level, and hours of the able machines."""
    a, b = proc.start, proc.stop
    s0, s1, s2 = sorted_dims(step.part_size_mm)
    fit = (index.m_env0[a:b] >= s0) & (index.m_env1[a:b] >= s1) & (index.m_env2[a:b] >= s2)
    level = fit.view(np.int8) + _ONE
    thick = proc.thickness.get(step.material)
    if thick is not None:
        # 1 + fit·(1 + handled + thick enough): the level chain of matching.constraints, elementwise.
        bonus = (thick > -np.inf).view(np.int8) + (thick >= step.thickness_mm).view(np.int8)
        bonus *= fit.view(np.int8)
        level += bonus
    hours = np.where(level == ABLE, index.m_hours[a:b], 0.0)
    g = proc.groups
    group_level: I8Array = level[:g]
    group_hours: FloatArray = hours[:g]
    if proc.extra:
        # The views above are fresh arrays: updating them in place is safe (the columns are disjoint).
        for lo, hi, pos in proc.extra:
            group_level[pos] = np.maximum(group_level[pos], level[lo - a : hi - a])
            group_hours[pos] += hours[lo - a : hi - a]
    return group_level, group_hours


def _lookup(owners: IntArray, rows: IntArray) -> tuple[IntArray, BoolArray]:
    """Positions of `rows` in the sorted `owners`, and whether each is present."""
    if owners.size == 0:
        return np.zeros(rows.size, np.int64), np.zeros(rows.size, np.bool_)
    pos = np.minimum(np.searchsorted(owners, rows), owners.size - 1)
    return pos, owners[pos] == rows


def _capability(
    index: CandidateIndex, request: MatchRequest, counts: dict[str, int]
) -> tuple[IntArray, list[tuple[IntArray, FloatArray]]]:
    """Rows able to do every step, and per step the (owners, hours) tables for capacity."""
    rows: IntArray | None = None
    tables: list[tuple[IntArray, FloatArray]] = []
    for step in request.steps:
        proc = index.processes.get(step.process)
        if proc is None:
            counts["process_missing"] += index.size if rows is None else rows.size
            return np.zeros(0, np.int64), tables
        level, hours = _step_levels(index, proc, step)
        owners = proc.group_owner
        if rows is None:
            hist = np.bincount(level, minlength=ABLE + 1)
            rows = owners[level == ABLE]
            counts["process_missing"] += index.size - owners.size
        else:
            pos, found = _lookup(owners, rows)
            row_level = np.where(found, level[pos], 0)
            hist = np.bincount(row_level, minlength=ABLE + 1)
            counts["process_missing"] += int(hist[0])
            rows = rows[row_level == ABLE]
        for lv in (1, 2, 3):
            counts[STEP_CODES[lv]] += int(hist[lv])
        tables.append((owners, hours))
    if rows is None:
        rows = np.arange(index.size, dtype=np.int64)
    return rows, tables


def _certified(index: CandidateIndex, request: MatchRequest, rows: IntArray) -> BoolArray:
    required = set(request.certifications_required)
    if not required or rows.size == 0:
        return np.ones(rows.size, np.bool_)
    if any(c not in index.cert_bit for c in required):
        return np.zeros(rows.size, np.bool_)
    mask = np.zeros(index.cert_bits.shape[1], dtype=np.uint64)
    for c in required:
        i = index.cert_bit[c]
        mask[i // 64] |= np.uint64(1 << (i % 64))
    held = index.cert_bits[rows]
    ok: BoolArray = np.all((held & mask) == mask, axis=1)
    return ok


def _within_reach(
    index: CandidateIndex, request: MatchRequest, point: tuple[float, float, float], rows: IntArray
) -> tuple[IntArray, FloatArray, BoolArray]:
    """Rows whose exact distance was computed, those distances, and which are within both radii."""
    reach = index.max_radius_km
    if request.max_distance_km is not None:
        reach = min(reach, request.max_distance_km)
    if rows.size >= _TREE_MIN_ROWS and reach <= _TREE_MAX_REACH_KM and index.tree is not None:
        # Spatial pre-filter: rows outside the ball are beyond every radius that applies to them.
        ball = index.tree.query_ball_point(point, km_to_chord(reach) * (1 + _BALL_MARGIN) + 1e-15)
        near = np.zeros(index.size, np.bool_)
        near[np.asarray(ball, dtype=np.int64)] = True
        rows = rows[near[rows]]
    c2 = squared_chords(index.x[rows], index.y[rows], index.z[rows], point)
    dist = chords_to_km(np.sqrt(c2))
    limit = index.radius_km[rows]
    if request.max_distance_km is not None:
        limit = np.minimum(limit, request.max_distance_km)
    return rows, dist, dist <= limit


def _capacity(
    index: CandidateIndex,
    request: MatchRequest,
    rows: IntArray,
    tables: Sequence[tuple[IntArray, FloatArray]],
    days: int,
) -> FloatArray:
    """Vectorised `matching.capacity.capacity_units` (same operations, same order)."""
    if rows.size == 0:
        return np.zeros(0)
    if tables:
        machine: FloatArray | None = None
        for (owners, hours), step in zip(tables, request.steps, strict=True):
            pos, _ = _lookup(owners, rows)
            units = hours[pos] * 60.0 * days / 5.0 / step.minutes_per_unit + FLOOR_EPSILON
            machine = units if machine is None else np.minimum(machine, units)
        assert machine is not None
    else:
        machine = np.zeros(rows.size)
    declared = index.units_per_day[rows]
    raw = np.where(np.isnan(declared), machine, declared * days + FLOOR_EPSILON)
    cap: FloatArray = np.maximum(0.0, np.floor(np.maximum(raw, 0.0)) - index.reserved[rows])
    return cap


def _find(rows: IntArray, row: int) -> int | None:
    """Position of `row` in the sorted `rows`, or None."""
    pos = int(np.searchsorted(rows, row))
    return pos if pos < rows.size and int(rows[pos]) == row else None


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
) -> list[tuple[float, int]]:
    """(distance, row) of the `limit` excluded rows nearest the point (all when None), nearest first."""
    if limit is None or limit >= index.size:
        rows = np.arange(index.size)
    else:
        rows = np.zeros(0, np.int64)
        k = min(index.size, 2 * limit + 16)
        while index.tree is not None and limit > 0:
            _, found = index.tree.query(point, k=k)
            found = np.atleast_1d(found)
            rows = found[~eligible[found]]
            if rows.size > limit or k == index.size:
                break
            k = min(index.size, 4 * k)
    pairs = sorted(
        (distance_km(point, (float(index.x[r]), float(index.y[r]), float(index.z[r]))), int(r))
        for r in rows
        if not eligible[r]
    )
    return pairs if limit is None else pairs[:limit]


def match(
    request: MatchRequest,
    candidates: CandidateIndex | Sequence[Candidate],
    *,
    now: datetime,
    weights: MatchWeights = MatchWeights(),
    limit: int | None = None,
    explain_limit: int | None = 20,
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

    rows, tables = _capability(index, request, counts)
    certified = _certified(index, request, rows)
    counts["certification_missing"] += int(rows.size - np.count_nonzero(certified))
    rows = rows[certified]

    measured, measured_dist, reach_ok = _within_reach(index, request, point, rows)
    counts["out_of_radius"] += int(rows.size - np.count_nonzero(reach_ok))
    rows, dist = measured[reach_ok], measured_dist[reach_ok]
    active = ~index.paused[rows]
    counts["paused"] += int(rows.size - np.count_nonzero(active))
    rows, dist = rows[active], dist[active]

    capacity = _capacity(index, request, rows, tables, days)
    needed = 1 if request.allow_split else request.quantity
    enough = capacity >= needed
    counts["insufficient_capacity"] += int(rows.size - np.count_nonzero(enough))
    judged_rows, judged_cap = rows, capacity
    rows, dist, capacity = rows[enough], dist[enough], capacity[enough]

    score, prox, slack, on_time, fair = component_arrays(
        distance_km=dist,
        capacity=capacity,
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
        cap = int(capacity[i])
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

    eligible = np.zeros(index.size, np.bool_)
    eligible[rows] = True
    excluded: list[Excluded] = []
    if explain_limit != 0:
        for d, r in _nearest_excluded(index, point, eligible, explain_limit):
            cand = index.candidates[r]
            # Reuse the figures the funnel decided on, so each rendered reason is the one applied.
            known_d = _find(measured, r)
            known_c = _find(judged_rows, r)
            ev = evaluate(
                request,
                cand,
                days=days,
                distance_km=d if known_d is None else float(measured_dist[known_d]),
                capacity=None if known_c is None else int(judged_cap[known_c]),
            )
            excluded.append(
                Excluded(workshop_id=cand.workshop_id, distance_km=ev.distance_km, reasons=ev.reasons)
            )

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
