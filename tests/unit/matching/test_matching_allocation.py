"""`allocate` / `rebalance`: feasibility properties and exact agreement with a staged HiGHS LP."""

from __future__ import annotations

import random

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matching_strategies import haversine, supplies_points
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

from matching.allocation import Allocation, Assignment, DeliveryPoint, Supply, allocate, rebalance

Instance = tuple[list[Supply], list[DeliveryPoint], float | None]
FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_feasible(alloc: Allocation, supplies: list[Supply], points: list[DeliveryPoint], md: float | None) -> None:
    s_by = {s.workshop_id: s for s in supplies}
    p_by = {p.id: p for p in points}
    sent: dict[str, int] = {}
    got: dict[str, int] = {}
    for a in alloc.assignments:
        s, p = s_by[a.workshop_id], p_by[a.point_id]
        assert a.units > 0
        d = haversine(s.lat, s.lon, p.lat, p.lon)
        assert abs(d - a.distance_km) < 1e-6
        assert a.distance_km <= s.radius_km
        assert md is None or a.distance_km <= md
        sent[a.workshop_id] = sent.get(a.workshop_id, 0) + a.units
        got[a.point_id] = got.get(a.point_id, 0) + a.units
    assert all(sent[w] <= s_by[w].units for w in sent)
    assert all(got[p] <= p_by[p].units for p in got)
    for p in points:
        assert alloc.unmet.get(p.id, 0) == p.units - got.get(p.id, 0)
    keys = [(a.workshop_id, a.point_id) for a in alloc.assignments]
    assert keys == sorted(set(keys))


def lp_optimum(supplies: list[Supply], points: list[DeliveryPoint], md: float | None) -> tuple[dict[int, float], float]:
    """Independent staged LP (HiGHS): max coverage per priority level in turn, then min unit·metres."""
    edges = []
    for i, s in enumerate(supplies):
        for j, p in enumerate(points):
            d = haversine(s.lat, s.lon, p.lat, p.lon)
            if d <= s.radius_km and (md is None or d <= md) and s.units > 0 and p.units > 0:
                edges.append((i, j, round(d * 1000)))
    levels = sorted({p.priority for p in points})
    if not edges:
        return dict.fromkeys(levels, 0.0), 0.0
    rows = [r for e, (i, j, _) in enumerate(edges) for r in (i, len(supplies) + j)]
    cols = [e for e in range(len(edges)) for _ in (0, 1)]
    a_ub = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(supplies) + len(points), len(edges))).tocsr()
    b_ub = np.array([s.units for s in supplies] + [p.units for p in points], dtype=float)
    fixed_a: list[np.ndarray] = []
    fixed_b: list[float] = []
    covered: dict[int, float] = {}
    for level in levels:
        gain = np.array([-1.0 if points[j].priority == level else 0.0 for (_, j, _) in edges])
        res = linprog(
            gain,
            A_ub=a_ub,
            b_ub=b_ub,
            A_eq=np.array(fixed_a) if fixed_a else None,
            b_eq=fixed_b or None,
            method="highs",
        )
        assert res.status == 0
        covered[level] = -res.fun
        fixed_a.append(-gain)
        fixed_b.append(-res.fun)
    cost = np.array([c for (_, _, c) in edges], dtype=float)
    res = linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=np.array(fixed_a), b_eq=fixed_b, method="highs")
    assert res.status == 0
    return covered, float(res.fun)


def random_instance(rng: random.Random) -> Instance:
    ns, npts = rng.randint(1, 12), rng.randint(1, 10)
    supplies = [
        Supply(f"w{i}", rng.uniform(45.0, 46.0), rng.uniform(4.0, 5.2), rng.randint(0, 40), rng.uniform(5.0, 90.0))
        for i in range(ns)
    ]
    points = [
        DeliveryPoint(f"p{j}", rng.uniform(45.0, 46.0), rng.uniform(4.0, 5.2), rng.randint(0, 50), rng.randint(1, 4))
        for j in range(npts)
    ]
    if rng.random() < 0.3:  # an unreachable point, far from everyone
        points.append(DeliveryPoint("far", 43.3, -1.5, rng.randint(1, 30), rng.randint(1, 4)))
    if rng.random() < 0.4:  # shortage: demand well above supply
        points = [msgspec.structs.replace(p, units=p.units * 4) for p in points]
    return supplies, points, rng.choice([None, None, 25.0, 60.0])


def test_matches_lp_optimum_on_200_random_instances() -> None:
    rng = random.Random(20251126)
    shortage = unreachable = 0
    for _ in range(200):
        supplies, points, md = random_instance(rng)
        alloc = allocate(supplies, points, max_distance_km=md)
        check_feasible(alloc, supplies, points, md)
        covered, cost = lp_optimum(supplies, points, md)
        for level, units in covered.items():
            assert alloc.covered_by_priority.get(level, 0) == pytest.approx(units, abs=1e-6)
        assert alloc.unit_metres == pytest.approx(cost, rel=1e-9, abs=1e-6)
        shortage += sum(s.units for s in supplies) < sum(p.units for p in points)
        unreachable += any(p.id == "far" for p in points)
    assert shortage >= 40
    assert unreachable >= 30


@FAST
@given(supplies_points)
def test_allocation_is_feasible(instance: Instance) -> None:
    supplies, points, md = instance
    alloc = allocate(supplies, points, max_distance_km=md)
    check_feasible(alloc, supplies, points, md)
    assert sum(alloc.covered_by_priority.values()) == sum(a.units for a in alloc.assignments)
    assert alloc.demand_by_priority == {
        lv: sum(p.units for p in points if p.priority == lv) for lv in {p.priority for p in points}
    }


@FAST
@given(supplies_points, st.randoms(use_true_random=False))
def test_allocation_is_deterministic(instance: Instance, rnd: random.Random) -> None:
    supplies, points, md = instance
    first = allocate(supplies, points, max_distance_km=md)
    rnd.shuffle(supplies)
    rnd.shuffle(points)
    assert allocate(supplies, points, max_distance_km=md) == first


def test_priorities_are_lexicographic() -> None:
    # One workshop of 10 units between an urgent point (far) and a less urgent one (near).
    w = Supply("w", 45.0, 4.0, 10, 100.0)
    urgent = DeliveryPoint("urgent", 45.5, 4.0, 8, 1)
    near = DeliveryPoint("near", 45.01, 4.0, 10, 2)
    alloc = allocate([w], [urgent, near])
    assert alloc.covered_by_priority == {1: 8, 2: 2}
    assert alloc.unmet == {"near": 8}
    assert [(a.point_id, a.units) for a in alloc.assignments] == [("near", 2), ("urgent", 8)]


def test_unreachable_and_empty_inputs() -> None:
    w = Supply("w", 45.0, 4.0, 10, 10.0)
    far = DeliveryPoint("far", 48.0, 2.0, 5, 1)
    assert allocate([w], [far]).unmet == {"far": 5}
    assert allocate([], [far]).unmet == {"far": 5}
    empty = allocate([w], [])
    assert empty.assignments == ()
    assert empty.unit_km == 0.0
    assert allocate([w], [far], max_distance_km=-1.0).unmet == {"far": 5}


def test_invalid_inputs_raise() -> None:
    w = Supply("w", 45.0, 4.0, 10, 10.0)
    p = DeliveryPoint("p", 45.0, 4.0, 5, 1)
    with pytest.raises(ValueError, match="duplicate"):
        allocate([w, w], [p])
    with pytest.raises(ValueError, match="duplicate"):
        allocate([w], [p, p])
    with pytest.raises(ValueError, match="units"):
        allocate([Supply("w", 45.0, 4.0, -1, 10.0)], [p])


def _scenario() -> tuple[list[Supply], list[DeliveryPoint]]:
    rng = random.Random(7)
    supplies = [
        Supply(f"w{i}", rng.uniform(45.0, 45.6), rng.uniform(4.0, 4.8), rng.randint(5, 30), 60.0) for i in range(8)
    ]
    points = [
        DeliveryPoint(f"p{j}", rng.uniform(45.0, 45.6), rng.uniform(4.0, 4.8), rng.randint(5, 25), 1 + j % 3)
        for j in range(6)
    ]
    return supplies, points


def test_rebalance_keeps_accepted_and_reoptimises_the_rest() -> None:
    supplies, points = _scenario()
    first = allocate(supplies, points)
    accepted = [a for a in first.assignments if a.workshop_id != "w0"][:3]
    decliner = first.assignments[0].workshop_id
    accepted = [a for a in accepted if a.workshop_id != decliner]
    remaining = [s for s in supplies if s.workshop_id != decliner]
    again = rebalance(first, accepted, remaining, points)
    check_feasible(again, remaining + [s for s in supplies if s.workshop_id == decliner], points, None)
    assert all(a.workshop_id != decliner for a in again.assignments)
    pairs = {(a.workshop_id, a.point_id): a.units for a in again.assignments}
    for a in accepted:
        assert pairs[(a.workshop_id, a.point_id)] >= a.units
    # The rest is optimal: same objective as allocating the residual instance directly.
    used = {s.workshop_id: sum(a.units for a in accepted if a.workshop_id == s.workshop_id) for s in remaining}
    got = {p.id: sum(a.units for a in accepted if a.point_id == p.id) for p in points}
    residual = allocate(
        [msgspec.structs.replace(s, units=s.units - used[s.workshop_id]) for s in remaining],
        [msgspec.structs.replace(p, units=p.units - got[p.id]) for p in points],
    )
    kept_metres = sum(a.units * round(a.distance_km * 1000) for a in accepted)
    assert again.unit_metres == residual.unit_metres + kept_metres
    assert sum(again.covered_by_priority.values()) == sum(residual.covered_by_priority.values()) + sum(
        a.units for a in accepted
    )


def test_rebalance_without_changes_keeps_the_allocation() -> None:
    supplies, points = _scenario()
    first = allocate(supplies, points)
    again = rebalance(first, [], supplies, points)
    assert again.unit_metres == first.unit_metres
    assert {(a.workshop_id, a.point_id) for a in again.assignments} <= {
        (a.workshop_id, a.point_id) for a in first.assignments
    }
    assert rebalance(first, first.assignments, supplies, points) == first


def test_rebalance_rejects_unknown_acceptances() -> None:
    supplies, points = _scenario()
    first = allocate(supplies, points)
    a = first.assignments[0]
    with pytest.raises(ValueError, match="not part"):
        rebalance(first, [Assignment(a.workshop_id, a.point_id, a.units + 1, a.distance_km)], supplies, points)
    with pytest.raises(ValueError, match="not part"):
        rebalance(first, [Assignment("nobody", a.point_id, 1, 1.0)], supplies, points)
    with pytest.raises(ValueError, match="unknown delivery point"):
        rebalance(first, [a], supplies, [p for p in points if p.id != a.point_id])
