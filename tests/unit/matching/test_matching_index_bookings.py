"""`CandidateIndex.with_bookings`: new reserved units, on-time rates and recent wins swapped into a
copy of the index give exactly the result of an index rebuilt from the updated candidates."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matching_strategies import NOW, scenarios

from matching import Candidate, CandidateIndex, Machine, MatchRequest, MaterialSpec, Step, match
from matching.index import Bookings

LASER = Machine(
    process="laser",
    envelope_mm=(1000.0, 500.0, 20.0),
    materials=(MaterialSpec(material="steel", max_thickness_mm=6.0),),
    hours_per_week=35.0,
)
STEP = Step(process="laser", material="steel", thickness_mm=3.0, part_size_mm=(300.0, 200.0, 3.0), minutes_per_unit=6.0)
LYON = (45.7640, 4.8357)


def request(quantity: int, *, allow_split: bool = False) -> MatchRequest:
    return MatchRequest(
        steps=(STEP,),
        quantity=quantity,
        deadline=NOW + timedelta(days=14),  # 10 working days: 700 units per 35 h/week laser
        delivery_lat=LYON[0],
        delivery_lon=LYON[1],
        allow_split=allow_split,
    )


def shop(wid: str, km_east: float, **kw: object) -> Candidate:
    base = {"workshop_id": wid, "lat": LYON[0], "lon": LYON[1] + km_east / 78.0, "delivery_radius_km": 80.0,
            "machines": (LASER,)}
    return msgspec.convert({**base, **kw}, Candidate)


SHOPS = [
    shop("a", 1.0, reserved_units=0, on_time_rate=0.9, recent_wins=0),
    shop("b", 2.0, reserved_units=100, recent_wins=3),
    shop("c", 3.0, reserved_units=650, on_time_rate=0.5, recent_wins=1),
    shop("d", 4.0, units_per_day=20.0),  # declared 200 units by the deadline
    shop("e", 5.0, paused=True, reserved_units=10),
    shop("f", 6.0, machines=(msgspec.structs.replace(LASER, hours_per_week=8.0),)),  # 160 units
]
REQUESTS = [request(100), request(600), request(690), request(150), request(500, allow_split=True)]


def updated(candidates: list[Candidate], bookings: dict[str, Bookings]) -> list[Candidate]:
    return [
        msgspec.structs.replace(c, reserved_units=b[0], on_time_rate=b[1], recent_wins=b[2])
        if (b := bookings.get(c.workshop_id)) is not None
        else c
        for c in candidates
    ]


def assert_same(refreshed: CandidateIndex, rebuilt: CandidateIndex, requests: list[MatchRequest]) -> None:
    assert refreshed.candidates == rebuilt.candidates
    for name in ("reserved", "on_time", "recent_wins"):
        assert np.array_equal(getattr(refreshed, name), getattr(rebuilt, name), equal_nan=True), name
    for req in requests:
        expected = match(req, rebuilt, now=NOW, explain_limit=None)
        assert match(req, refreshed, now=NOW, explain_limit=None) == expected


def test_bookings_change_the_results_exactly_as_a_rebuild() -> None:
    index = CandidateIndex(SHOPS)
    before = {r.quantity: match(r, index, now=NOW, explain_limit=None) for r in REQUESTS}
    bookings: dict[str, Bookings] = {
        "a": (650, 0.9, 1),  # an award: only 50 units left
        "b": (0, 1.0, 3),  # released, delivered on time
        "c": (0, 0.5, 1),
        "d": (120, None, 2.4),  # 80 declared units left; awards of the last 12 months, decayed
        "zz": (5, None, 1),  # not in the index (a workshop created since): ignored
    }
    refreshed = index.with_bookings(bookings)
    assert_same(refreshed, CandidateIndex(updated(SHOPS, bookings)), REQUESTS)

    after = {r.quantity: match(r, refreshed, now=NOW, explain_limit=None) for r in REQUESTS}
    assert [i.workshop_id for i in before[600].included] == ["a", "b"]
    assert [i.workshop_id for i in after[600].included] == ["b", "c"]
    assert after[150].exclusion_counts["insufficient_capacity"] == 2  # a, d: reserved units matter
    short = next(e for e in after[150].excluded if e.workshop_id == "a")
    assert short.reasons[0].code == "insufficient_capacity" and "50 unités" in short.reasons[0].message
    split = {i.workshop_id: i.capacity_units for i in after[500].included}
    assert split["a"] == 50 and split["d"] == 80 and split["c"] == 700
    # The source index is untouched, and what bookings do not change is shared, not copied.
    assert match(REQUESTS[1], index, now=NOW, explain_limit=None) == before[600]
    assert refreshed.tree is index.tree and refreshed.processes is index.processes
    assert refreshed.m_env is index.m_env and refreshed.cert_bits is index.cert_bits


def test_nothing_changed_is_the_same_index() -> None:
    index = CandidateIndex(SHOPS)
    same = {c.workshop_id: (c.reserved_units, c.on_time_rate, c.recent_wins) for c in SHOPS}
    assert index.with_bookings(same) is index
    assert index.with_bookings({}) is index


def test_negative_recent_wins_are_clamped_as_in_a_rebuild() -> None:
    bookings: dict[str, Bookings] = {"a": (0, 0.0, -2), "b": (700, 1.0, 0)}
    refreshed = CandidateIndex(SHOPS).with_bookings(bookings)
    assert_same(refreshed, CandidateIndex(updated(SHOPS, bookings)), REQUESTS)


figures = st.tuples(
    st.sampled_from((0, 1, 5, 50, 200, 699, 10_000)),
    st.sampled_from((None, 0.0, 0.25, 2 / 3, 1.0)),
    st.one_of(st.integers(0, 20), st.floats(0.0, 20.0)),  # the fairness input is a decayed count
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.data())
def test_with_bookings_matches_a_rebuild(scenario: tuple[MatchRequest, list[Candidate]], data: st.DataObject) -> None:
    req, candidates = scenario
    chosen = data.draw(st.lists(st.sampled_from([c.workshop_id for c in candidates]), unique=True)
                       if candidates else st.just([]))
    bookings = {wid: data.draw(figures) for wid in chosen}
    refreshed = CandidateIndex(candidates).with_bookings(bookings)
    assert_same(refreshed, CandidateIndex(updated(candidates, bookings)), [req, msgspec.structs.replace(req, quantity=1)])
