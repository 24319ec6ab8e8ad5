"""Crisis allocation: many workshops × many delivery points, exactly optimal in integers.

    allocate(supplies, points, *, max_distance_km=None) -> Allocation
    rebalance(allocation, accepted, supplies, points, *, max_distance_km=None) -> Allocation

A workshop may serve a point when their great-circle distance is within both the workshop's
`radius_km` and `max_distance_km`. Objective, lexicographic: cover as many priority-1 units as
possible, then priority 2, and so on (a smaller number is more urgent), then minimise Σ units ×
distance with distances rounded to the metre (`cost_metres`).

Method (exact, network flows only):
1. Candidate edges from a KD-tree over unit vectors (`sparse_distance_matrix` at the largest
   reach), then the exact per-workshop radius.
2. Coverage. The demand vectors a transportation network can satisfy form a polymatroid whose
   rank of a point set A is the max flow into A. For a polymatroid the greedy order gives the
   lexicographic optimum, so the best coverage of levels 1..k together is maxflow(levels <= k),
   and level k's share is F_k = maxflow(<= k) − maxflow(<= k−1). (When the first max flow over
   every level covers all reachable demand, every level is full and nothing more is solved.)
3. Cost. One min-cost flow in which each level node must absorb exactly F_k units, and a sink takes
   the unused supply: every feasible flow of it has the lexicographically best coverage, and
   OR-Tools returns the cheapest one, an exact integer optimum. No big-M penalties are needed
   (with several levels, penalties that strictly dominate overflow int64 on national instances).

`rebalance` keeps `accepted` assignments (a subset of `allocation.assignments`, possibly with fewer
units) fixed, subtracts them from the workshops' units and the points' demand, re-solves the rest
with the same objective, and among equally good answers keeps as much as possible of the previous
allocation (secondary cost: each unit moved off a previous edge costs 1, scaled below one metre).
`supplies` and `points` are the current gross figures: drop a workshop that declined, lower the units
of one that lags. The result lists accepted and new assignments together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import msgspec
import numpy as np
from ortools.graph.python import max_flow, min_cost_flow
from scipy.spatial import cKDTree

from matching.geo import FloatArray, chords_to_km, km_to_chord, squared_chords, unit_vector
from matching.index import BoolArray, IntArray

_EDGE_MARGIN = 1e-9
#: Keep cost × (nodes + 1) well inside int64 (OR-Tools scales costs by the node count).
_COST_LIMIT = 2**60


class Supply(msgspec.Struct, frozen=True):
    """Units a workshop can deliver, and how far."""

    workshop_id: str
    lat: float
    lon: float
    units: int
    radius_km: float


class DeliveryPoint(msgspec.Struct, frozen=True):
    """Units a delivery point needs; priority 1 is the most urgent."""

    id: str
    lat: float
    lon: float
    units: int
    priority: int


class Assignment(msgspec.Struct, frozen=True):
    """Units a workshop sends to a point, at a great-circle distance."""

    workshop_id: str
    point_id: str
    units: int
    distance_km: float


class Allocation(msgspec.Struct, frozen=True, kw_only=True):
    """Assignments sorted by (workshop, point); `unmet` lists only points short of units."""

    assignments: tuple[Assignment, ...]
    unmet: dict[str, int]
    covered_by_priority: dict[int, int]
    demand_by_priority: dict[int, int]
    unit_metres: int

    @property
    def unit_km(self) -> float:
        """Total units × km of the assignments (the minimised cost, metre-rounded)."""
        return self.unit_metres / 1000.0


def cost_metres(distance_km: float) -> int:
    """Integer edge cost: the distance rounded to the metre."""
    return int(np.rint(distance_km * 1000.0))


def _check_ids(ids: Sequence[str], what: str) -> None:
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate {what} id")


def candidate_edges(
    supplies: Sequence[Supply], points: Sequence[DeliveryPoint], max_distance_km: float | None
) -> tuple[IntArray, IntArray, FloatArray]:
    """(supply index, point index, distance km) of every admissible pair, sorted by (supply, point)."""
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    if not supplies or not points:
        return empty
    radius = np.array([s.radius_km for s in supplies], dtype=np.float64)
    if max_distance_km is not None:
        radius = np.minimum(radius, max_distance_km)
    reach = float(radius.max())
    if not reach >= 0:
        return empty
    sxyz = np.array([unit_vector(s.lat, s.lon) for s in supplies], dtype=np.float64)
    pxyz = np.array([unit_vector(p.lat, p.lon) for p in points], dtype=np.float64)
    pairs = cKDTree(sxyz).sparse_distance_matrix(
        cKDTree(pxyz), km_to_chord(reach) * (1 + _EDGE_MARGIN) + 1e-15, output_type="ndarray"
    )
    si = np.asarray(pairs["i"], dtype=np.int64)
    pj = np.asarray(pairs["j"], dtype=np.int64)
    order = np.lexsort((pj, si))
    si, pj = si[order], pj[order]
    # Exact distance with the same formula as `matching.geo.distance_km`, then both radii.
    dx = sxyz[si] - pxyz[pj]
    c2 = squared_chords(dx[:, 0], dx[:, 1], dx[:, 2], (0.0, 0.0, 0.0))
    dist = chords_to_km(np.sqrt(c2))
    keep = dist <= radius[si]
    return si[keep], pj[keep], dist[keep]


def _max_flow(si: IntArray, pj: IntArray, supply: IntArray, demand: IntArray, open_points: BoolArray) -> int:
    """Max units from all supplies to the open points."""
    ns, npt = supply.size, demand.size
    src, sink = ns + npt, ns + npt + 1
    flow = max_flow.SimpleMaxFlow()
    tails = np.concatenate((np.full(ns, src), si, ns + np.arange(npt))).astype(np.int32)
    heads = np.concatenate((np.arange(ns), ns + pj, np.full(npt, sink))).astype(np.int32)
    caps = np.concatenate((supply, np.minimum(supply[si], demand[pj]), np.where(open_points, demand, 0)))
    flow.add_arcs_with_capacity(tails, heads, caps.astype(np.int64))
    status = flow.solve(src, sink)
    if status != flow.OPTIMAL:
        raise RuntimeError(f"max flow failed: {status}")
    return int(flow.optimal_flow())


def level_coverage(
    si: IntArray, pj: IntArray, supply: IntArray, demand: IntArray, level: IntArray, levels: int
) -> IntArray:
    """Lexicographically best units covered per level (module docstring, step 2)."""
    reachable = np.zeros(demand.size, np.bool_)
    reachable[pj] = True
    full = np.bincount(level, weights=np.where(reachable, demand, 0), minlength=levels).astype(np.int64)
    total = _max_flow(si, pj, supply, demand, reachable)
    if total == int(full.sum()):
        return full
    prefix = np.zeros(levels, np.int64)
    prefix[-1] = total
    for k in range(levels - 1):
        prefix[k] = _max_flow(si, pj, supply, demand, reachable & (level <= k))
    return np.diff(prefix, prepend=0)


def _min_cost(
    si: IntArray,
    pj: IntArray,
    cost: IntArray,
    supply: IntArray,
    demand: IntArray,
    level: IntArray,
    covered: IntArray,
) -> IntArray | None:
    """Cheapest flow per edge with exactly `covered[k]` units into level k; None if costs overflow."""
    ns, npt, nl = supply.size, demand.size, covered.size
    sink = ns + npt + nl
    flow = min_cost_flow.SimpleMinCostFlow()
    tails = np.concatenate((si, ns + np.arange(npt), np.arange(ns))).astype(np.int32)
    heads = np.concatenate((ns + pj, ns + npt + level, np.full(ns, sink))).astype(np.int32)
    caps = np.concatenate((np.minimum(supply[si], demand[pj]), demand, supply)).astype(np.int64)
    costs = np.concatenate((cost, np.zeros(npt + ns, np.int64))).astype(np.int64)
    edges = flow.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    nodes = np.arange(sink + 1, dtype=np.int32)
    balance = np.concatenate((supply, np.zeros(npt, np.int64), -covered, [covered.sum() - supply.sum()]))
    flow.set_nodes_supplies(nodes, balance.astype(np.int64))
    status = flow.solve()
    if status == flow.BAD_COST_RANGE:
        return None
    if status != flow.OPTIMAL:
        raise RuntimeError(f"min cost flow failed: {status}")
    flows: IntArray = np.asarray(flow.flows(np.asarray(edges, dtype=np.int32)[: si.size]), dtype=np.int64)
    return flows


def _solve(
    supplies: Sequence[Supply],
    points: Sequence[DeliveryPoint],
    max_distance_km: float | None,
    previous: frozenset[tuple[str, str]] = frozenset(),
) -> list[Assignment]:
    """Exact lexicographic allocation of `supplies` to `points` (inputs sorted by id, units > 0)."""
    si, pj, dist = candidate_edges(supplies, points, max_distance_km)
    if si.size == 0:
        return []
    supply = np.array([s.units for s in supplies], dtype=np.int64)
    demand = np.array([p.units for p in points], dtype=np.int64)
    priorities = sorted({p.priority for p in points})
    rank = {prio: k for k, prio in enumerate(priorities)}
    level = np.array([rank[p.priority] for p in points], dtype=np.int64)
    covered = level_coverage(si, pj, supply, demand, level, len(priorities))
    metres = np.rint(dist * 1000.0).astype(np.int64)
    flows: IntArray | None = None
    if previous:
        # Secondary objective: 1 per unit off a previous edge, below one metre of the primary cost
        # since the total flow is < scale: exactness of the distance objective is untouched.
        scale = int(covered.sum()) + 1
        if int(metres.max(initial=0)) * scale * (supply.size + demand.size + covered.size + 2) < _COST_LIMIT:
            kept = np.array(
                [(supplies[i].workshop_id, points[j].id) in previous for i, j in zip(si, pj, strict=True)],
                dtype=np.bool_,
            )
            flows = _min_cost(si, pj, metres * scale + (~kept), supply, demand, level, covered)
    if flows is None:
        flows = _min_cost(si, pj, metres, supply, demand, level, covered)
    if flows is None:
        raise RuntimeError("distances too large for integer costs")
    used = np.flatnonzero(flows)
    return [
        Assignment(supplies[si[e]].workshop_id, points[pj[e]].id, int(flows[e]), float(dist[e])) for e in used.tolist()
    ]


def _result(points: Sequence[DeliveryPoint], assignments: Iterable[Assignment]) -> Allocation:
    merged: dict[tuple[str, str], Assignment] = {}
    for a in assignments:
        key = (a.workshop_id, a.point_id)
        old = merged.get(key)
        merged[key] = a if old is None else Assignment(a.workshop_id, a.point_id, old.units + a.units, a.distance_km)
    received: dict[str, int] = defaultdict(int)
    for a in merged.values():
        received[a.point_id] += a.units
    demand: dict[int, int] = defaultdict(int)
    covered: dict[int, int] = defaultdict(int)
    unmet: dict[str, int] = {}
    for p in sorted(points, key=lambda p: p.id):
        got = min(received.get(p.id, 0), p.units)
        demand[p.priority] += p.units
        covered[p.priority] += got
        if p.units > got:
            unmet[p.id] = p.units - got
    ordered = tuple(merged[k] for k in sorted(merged) if merged[k].units > 0)
    return Allocation(
        assignments=ordered,
        unmet=unmet,
        covered_by_priority=dict(sorted(covered.items())),
        demand_by_priority=dict(sorted(demand.items())),
        unit_metres=sum(a.units * cost_metres(a.distance_km) for a in ordered),
    )


def _validate(supplies: Sequence[Supply], points: Sequence[DeliveryPoint]) -> None:
    _check_ids([s.workshop_id for s in supplies], "workshop")
    _check_ids([p.id for p in points], "delivery point")
    if any(s.units < 0 for s in supplies) or any(p.units < 0 for p in points):
        raise ValueError("units must be >= 0")


def allocate(
    supplies: Sequence[Supply], points: Sequence[DeliveryPoint], *, max_distance_km: float | None = None
) -> Allocation:
    """Exactly optimal lexicographic allocation (module docstring); inputs are read in id order."""
    _validate(supplies, points)
    live_s = sorted((s for s in supplies if s.units > 0), key=lambda s: s.workshop_id)
    live_p = sorted((p for p in points if p.units > 0), key=lambda p: p.id)
    return _result(points, _solve(live_s, live_p, max_distance_km))


def rebalance(
    allocation: Allocation,
    accepted: Iterable[Assignment],
    supplies: Sequence[Supply],
    points: Sequence[DeliveryPoint],
    *,
    max_distance_km: float | None = None,
) -> Allocation:
    """Re-solve what is left with `accepted` assignments fixed (module docstring).

    Raises ValueError when an accepted assignment is not part of `allocation` (or exceeds its
    units) or names an unknown delivery point.
    """
    _validate(supplies, points)
    previous = {(a.workshop_id, a.point_id): a for a in allocation.assignments}
    fixed: dict[tuple[str, str], Assignment] = {}
    for a in accepted:
        key = (a.workshop_id, a.point_id)
        before = previous.get(key)
        units = a.units + (fixed[key].units if key in fixed else 0)
        if before is None or a.units < 0 or units > before.units:
            raise ValueError(f"accepted assignment {key} is not part of the allocation")
        fixed[key] = Assignment(a.workshop_id, a.point_id, units, before.distance_km)
    known_points = {p.id for p in points}
    used: dict[str, int] = defaultdict(int)
    got: dict[str, int] = defaultdict(int)
    for a in fixed.values():
        if a.point_id not in known_points:
            raise ValueError(f"accepted assignment to unknown delivery point {a.point_id!r}")
        used[a.workshop_id] += a.units
        got[a.point_id] += a.units
    rest_s = sorted(
        (
            Supply(s.workshop_id, s.lat, s.lon, s.units - used[s.workshop_id], s.radius_km)
            for s in supplies
            if s.units > used[s.workshop_id]
        ),
        key=lambda s: s.workshop_id,
    )
    rest_p = sorted(
        (DeliveryPoint(p.id, p.lat, p.lon, p.units - got[p.id], p.priority) for p in points if p.units > got[p.id]),
        key=lambda p: p.id,
    )
    keep = frozenset(k for k, a in previous.items() if a.units > (fixed[k].units if k in fixed else 0))
    return _result(points, [*fixed.values(), *_solve(rest_s, rest_p, max_distance_km, keep)])
