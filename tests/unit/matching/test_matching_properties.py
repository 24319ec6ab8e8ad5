"""Hypothesis properties of `match`: determinism, soundness of filters and reasons, oracle agreement."""

from __future__ import annotations

import math
import random

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matching_strategies import (
    NOW,
    able,
    expected_capacity,
    fits,
    haversine,
    scenarios,
)

from matching import Candidate, CandidateIndex, MatchRequest, match
from matching.reference import match_reference

Scenario = tuple[MatchRequest, list[Candidate]]
TOL_KM = 1e-6
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _by_id(cands: list[Candidate]) -> dict[str, Candidate]:
    return {c.workshop_id: c for c in cands}


@FAST
@given(scenarios(), st.randoms(use_true_random=False))
def test_deterministic_and_independent_of_input_order(scenario: Scenario, rnd: random.Random) -> None:
    req, cands = scenario
    first = match(req, cands, now=NOW, explain_limit=5, limit=4)
    shuffled = list(cands)
    rnd.shuffle(shuffled)
    again = match(req, CandidateIndex(shuffled), now=NOW, explain_limit=5, limit=4)
    assert msgspec.to_builtins(first) == msgspec.to_builtins(again)


@FAST
@given(scenarios())
def test_included_workshops_pass_every_hard_filter(scenario: Scenario) -> None:
    req, cands = scenario
    result = match(req, cands, now=NOW, explain_limit=0)
    by_id = _by_id(cands)
    assert result.eligible == len(result.included)
    for inc in result.included:
        c = by_id[inc.workshop_id]
        d = haversine(req.delivery_lat, req.delivery_lon, c.lat, c.lon)
        assert abs(d - inc.distance_km) < TOL_KM
        assert inc.distance_km <= c.delivery_radius_km
        assert req.max_distance_km is None or inc.distance_km <= req.max_distance_km
        assert not c.paused
        assert set(req.certifications_required) <= set(c.certifications)
        for s in req.steps:
            assert any(able(m, s) for m in c.machines)
        assert inc.capacity_units == expected_capacity(req, c, NOW)
        assert inc.capacity_units >= (1 if req.allow_split else req.quantity)
        assert 0 <= inc.components.distance <= 1
        assert 0 <= inc.components.slack <= 1
        assert 0 <= inc.components.on_time <= 1
        assert 0 < inc.components.fairness <= 1
        assert len(inc.reasons) == 4
    ranks = [i.rank for i in result.included]
    assert ranks == list(range(1, len(ranks) + 1))
    keys = [(-i.score, i.workshop_id) for i in result.included]
    assert keys == sorted(keys)


def _reason_holds(code: str, message: str, req: MatchRequest, c: Candidate) -> bool:
    """Is this reason true of the workshop? Checked from the spec, not from the engine."""
    d = haversine(req.delivery_lat, req.delivery_lon, c.lat, c.lon)
    if code == "paused":
        return c.paused
    if code == "certification_missing":
        return not set(req.certifications_required) <= set(c.certifications)
    if code == "out_of_radius":
        return d > c.delivery_radius_km - TOL_KM or (
            req.max_distance_km is not None and d > req.max_distance_km - TOL_KM
        )
    if code == "insufficient_capacity":
        return expected_capacity(req, c, NOW) < (1 if req.allow_split else req.quantity)
    # Step reasons name their step: "étape N (...)".
    step = req.steps[int(message.split()[1]) - 1]
    same = [m for m in c.machines if m.process == step.process]
    fitting = [m for m in same if fits(step.part_size_mm, m.envelope_mm)]
    if code == "process_missing":
        return not same
    if code == "part_too_large":
        return bool(same) and not fitting
    specs = [x for m in fitting for x in m.materials if x.material == step.material]
    if code == "material_unsupported":
        return bool(fitting) and not specs
    assert code == "too_thick"
    return bool(specs) and all(x.max_thickness_mm < step.thickness_mm for x in specs)


@FAST
@given(scenarios())
def test_every_excluded_workshop_has_a_true_reason(scenario: Scenario) -> None:
    req, cands = scenario
    result = match(req, cands, now=NOW, explain_limit=None)
    by_id = _by_id(cands)
    assert len(result.excluded) + result.eligible == len(cands)
    assert sum(result.exclusion_counts.values()) == len(result.excluded)
    for ex in result.excluded:
        assert ex.reasons, ex
        for r in ex.reasons:
            assert r.message
            assert _reason_holds(r.code, r.message, req, by_id[ex.workshop_id]), r
        # The first reason is the funnel stage that counted it: all its own step reasons are true,
        # so a workshop failing nothing would have been included.
    excluded_ids = {e.workshop_id for e in result.excluded}
    for c in cands:
        if c.workshop_id in excluded_ids:
            continue
        assert not any(_reason_holds(code, "étape 1", req, c) for code in ("paused", "certification_missing"))


@FAST
@given(scenarios(), st.integers(0, 6))
def test_vectorised_engine_agrees_with_plain_loop(scenario: Scenario, limit: int) -> None:
    req, cands = scenario
    fast = match(req, cands, now=NOW, explain_limit=None, limit=limit)
    slow = match_reference(req, cands, now=NOW, limit=limit)
    assert fast.eligible == slow.eligible
    assert fast.exclusion_counts == slow.exclusion_counts
    assert [i.workshop_id for i in fast.included] == [i.workshop_id for i in slow.included]
    for a, b in zip(fast.included, slow.included, strict=True):
        assert a.capacity_units == b.capacity_units
        assert math.isclose(a.score, b.score, rel_tol=1e-12)
    assert {e.workshop_id: [r.code for r in e.reasons] for e in fast.excluded} == {
        e.workshop_id: [r.code for r in e.reasons] for e in slow.excluded
    }
    assert [e.workshop_id for e in fast.excluded] == [e.workshop_id for e in slow.excluded]


@FAST
@given(scenarios(max_size=6))
def test_capacity_is_never_negative(scenario: Scenario) -> None:
    req, cands = scenario
    result = match_reference(req, cands, now=NOW)
    assert all(i.capacity_units >= 0 for i in result.included)
    for c in cands:
        assert expected_capacity(req, c, NOW) >= 0
