"""Hypothesis strategies and independent checks for the matching tests (written from the spec)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import msgspec
from hypothesis import strategies as st

from matching import Candidate, Machine, MatchRequest, MaterialSpec, Step
from matching.allocation import DeliveryPoint, Supply

PROCESSES = ("laser", "cnc", "print")
MATERIALS = ("steel", "alu", "pla")
CERTS = ("iso9001", "iso13485", "en1090")
SIZES = (40.0, 100.0, 300.0, 1000.0, 1200.0)
THICK = (1.0, 3.0, 6.0, 12.0)
NOW = datetime(2025, 3, 3, 9, 30, tzinfo=UTC)  # a Monday
CENTER = (45.76, 4.83)
BIG = (1200.0, 1200.0, 1200.0)
SMALL = (100.0, 100.0, 100.0)


def dims() -> st.SearchStrategy[tuple[float, float, float]]:
    return st.tuples(st.sampled_from(SIZES), st.sampled_from(SIZES), st.sampled_from(SIZES))


machines = st.builds(
    Machine,
    process=st.sampled_from(PROCESSES),
    envelope_mm=dims(),
    materials=st.lists(
        st.builds(MaterialSpec, material=st.sampled_from(MATERIALS), max_thickness_mm=st.sampled_from(THICK)),
        max_size=3,
    ).map(tuple),
    hours_per_week=st.sampled_from((0.0, 8.0, 35.0, 37.5, 80.0)),
)

coords = st.tuples(
    st.floats(CENTER[0] - 1.5, CENTER[0] + 1.5, allow_nan=False),
    st.floats(CENTER[1] - 2.0, CENTER[1] + 2.0, allow_nan=False),
)


@st.composite
def candidate_lists(draw: st.DrawFn, max_size: int = 12) -> list[Candidate]:
    n = draw(st.integers(0, max_size))
    ids = draw(st.lists(st.text("abcdefgh", min_size=1, max_size=3), min_size=n, max_size=n, unique=True))
    out = []
    for wid in ids:
        lat, lon = draw(st.one_of(coords, st.just(CENTER)))
        out.append(
            Candidate(
                workshop_id=wid,
                lat=lat,
                lon=lon,
                delivery_radius_km=draw(st.sampled_from((0.0, 20.0, 50.0, 120.0, 400.0))),
                machines=tuple(draw(st.lists(machines, max_size=4))),
                certifications=tuple(draw(st.lists(st.sampled_from(CERTS), max_size=3, unique=True))),
                paused=draw(st.booleans()),
                units_per_day=draw(st.sampled_from((None, None, 0.0, 2.0, 10.5))),
                reserved_units=draw(st.sampled_from((0, 0, 5, 200))),
                on_time_rate=draw(st.sampled_from((None, 0.0, 0.5, 0.97, 1.0))),
                recent_wins=draw(st.sampled_from((0, 1, 12, 0.0, 0.0027, 0.5, 2.4, 7.93))),
            )
        )
    return out


steps = st.builds(
    Step,
    process=st.sampled_from((*PROCESSES, "sewing")),
    material=st.sampled_from((*MATERIALS, "wood")),
    thickness_mm=st.sampled_from(THICK),
    part_size_mm=dims(),
    minutes_per_unit=st.sampled_from((1.0, 5.0, 30.0, 90.0)),
)


@st.composite
def requests(draw: st.DrawFn) -> MatchRequest:
    lat, lon = draw(st.one_of(coords, st.just(CENTER)))
    return MatchRequest(
        steps=tuple(draw(st.lists(steps, max_size=3))),
        quantity=draw(st.integers(1, 500)),
        deadline=NOW + timedelta(days=draw(st.integers(-1, 30)), hours=draw(st.integers(0, 23))),
        delivery_lat=lat,
        delivery_lon=lon,
        certifications_required=tuple(draw(st.lists(st.sampled_from(CERTS), max_size=2))),
        max_distance_km=draw(st.sampled_from((None, 10.0, 60.0, 150.0))),
        allow_split=draw(st.booleans()),
    )


# --- independent re-statements of the rules -------------------------------------------------


def haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


def weekdays(start: date, end: date) -> int:
    days, d = 0, start
    while d < end:
        days += d.weekday() < 5
        d += timedelta(days=1)
    return days


def fits(part: tuple[float, float, float], env: tuple[float, float, float]) -> bool:
    return all(p <= e for p, e in zip(sorted(part), sorted(env), strict=True))


def able(m: Machine, s: Step) -> bool:
    return (
        m.process == s.process
        and fits(s.part_size_mm, m.envelope_mm)
        and any(x.material == s.material and x.max_thickness_mm >= s.thickness_mm for x in m.materials)
    )


def hours(c: Candidate, s: Step) -> float:
    return sum(m.hours_per_week for m in c.machines if able(m, s))


def expected_capacity(req: MatchRequest, c: Candidate, now: datetime) -> int:
    days = weekdays(now.date(), req.deadline.date())
    if c.units_per_day is not None:
        raw = math.floor(c.units_per_day * days + 1e-9)
    elif not req.steps:
        raw = 0
    else:
        raw = min(
            math.floor(
                sum(m.hours_per_week for m in c.machines if able(m, s)) * days / 5 * 60 / s.minutes_per_unit + 1e-9
            )
            for s in req.steps
        )
    return max(0, raw - c.reserved_units)


supplies_points = st.tuples(
    st.lists(
        st.builds(
            Supply,
            workshop_id=st.text("abcdef", min_size=1, max_size=3),
            lat=coords.map(lambda c: c[0]),
            lon=coords.map(lambda c: c[1]),
            units=st.integers(0, 40),
            radius_km=st.sampled_from((0.0, 30.0, 80.0, 250.0)),
        ),
        max_size=8,
        unique_by=lambda s: s.workshop_id,
    ),
    st.lists(
        st.builds(
            DeliveryPoint,
            id=st.text("uvwxyz", min_size=1, max_size=3),
            lat=coords.map(lambda c: c[0]),
            lon=coords.map(lambda c: c[1]),
            units=st.integers(0, 60),
            priority=st.integers(1, 3),
        ),
        max_size=8,
        unique_by=lambda p: p.id,
    ),
    st.sampled_from((None, 40.0, 120.0)),
)


@st.composite
def scenarios(draw: st.DrawFn, max_size: int = 12) -> tuple[MatchRequest, list[Candidate]]:
    """A request and candidates of which many are tailored to it, so that some are eligible."""
    req = draw(requests())
    if draw(st.integers(0, 3)):
        req = msgspec.structs.replace(
            req, quantity=draw(st.integers(1, 60)), deadline=NOW + timedelta(days=draw(st.integers(3, 30)))
        )
    cands = draw(candidate_lists(max_size=max_size))
    out = []
    for c in cands:
        if not draw(st.booleans()):
            out.append(c)
            continue
        tailored = tuple(
            Machine(
                process=s.process if draw(st.integers(0, 9)) else "cnc",
                envelope_mm=draw(st.sampled_from((s.part_size_mm, (1200.0, 1200.0, 1200.0), (100.0, 100.0, 100.0)))),
                materials=(
                    MaterialSpec(
                        material=s.material if draw(st.integers(0, 9)) else "alu",
                        max_thickness_mm=draw(st.sampled_from((s.thickness_mm, 12.0, 1.0))),
                    ),
                ),
                hours_per_week=draw(st.sampled_from((35.0, 70.0, 2.0))),
            )
            for s in req.steps
        )
        out.append(
            msgspec.structs.replace(
                c,
                lat=req.delivery_lat + draw(st.floats(-0.3, 0.3)),
                lon=req.delivery_lon + draw(st.floats(-0.3, 0.3)),
                delivery_radius_km=draw(st.sampled_from((50.0, 100.0, c.delivery_radius_km))),
                machines=c.machines + tailored,
                certifications=tuple(req.certifications_required) + c.certifications
                if draw(st.integers(0, 4))
                else c.certifications,
                paused=c.paused and draw(st.booleans()),
                reserved_units=draw(st.sampled_from((0, c.reserved_units))),
            )
        )
    return req, out
