"""Frozen input and output Structs of the matching engine."""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

import msgspec

ReasonCode = Literal[
    "process_missing",
    "part_too_large",
    "material_unsupported",
    "too_thick",
    "certification_missing",
    "out_of_radius",
    "paused",
    "insufficient_capacity",
]

#: Every reason code, in funnel order (the order used by `MatchResult.exclusion_counts`).
REASON_CODES: Final[tuple[ReasonCode, ...]] = (
    "process_missing",
    "part_too_large",
    "material_unsupported",
    "too_thick",
    "certification_missing",
    "out_of_radius",
    "paused",
    "insufficient_capacity",
)


class Step(msgspec.Struct, frozen=True, kw_only=True):
    """One manufacturing step of the requested item (e.g. laser cutting 3 mm steel)."""

    process: str
    material: str
    thickness_mm: float
    part_size_mm: tuple[float, float, float]
    minutes_per_unit: float


class MaterialSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A material a machine handles, up to a maximum thickness."""

    material: str
    max_thickness_mm: float


class Machine(msgspec.Struct, frozen=True, kw_only=True):
    """A machine of a workshop. The part may be rotated to fit the envelope."""

    process: str
    envelope_mm: tuple[float, float, float]
    materials: tuple[MaterialSpec, ...] = ()
    hours_per_week: float = 0.0


class MatchRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What must be made, how many, by when and where it is delivered."""

    steps: tuple[Step, ...]
    quantity: int
    deadline: datetime
    delivery_lat: float
    delivery_lon: float
    certifications_required: tuple[str, ...] = ()
    max_distance_km: float | None = None
    allow_split: bool = False
    item: str | None = None


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    """A workshop as seen by the matcher for one item.

    `units_per_day` is the workshop's declared capacity for the requested item (None when it
    declared none); `reserved_units` is what orders and commitments already book by the deadline;
    `recent_wins` is how much work it won lately, for fairness: the awards of the last 12 months,
    each weighing 1 − age / 365 days (`matching.fairness`; the caller computes it from `now`).
    """

    workshop_id: str
    lat: float
    lon: float
    delivery_radius_km: float
    machines: tuple[Machine, ...] = ()
    certifications: tuple[str, ...] = ()
    paused: bool = False
    units_per_day: float | None = None
    reserved_units: int = 0
    on_time_rate: float | None = None
    recent_wins: float = 0.0


class MatchWeights(msgspec.Struct, frozen=True, kw_only=True):
    """Score weights and scales (the `matching` settings group maps onto this).

    score = distance·proximity + slack·slack_ratio + on_time·punctuality + fairness·spread, where
    proximity = 1 / (1 + km / distance_scale_km); slack_ratio = min(1, capacity / (slack_target ×
    quantity)); punctuality = on-time rate, or `on_time_prior` when unknown; spread = 1 / (1 +
    recent_wins / fairness_scale). Every component lies in [0, 1].
    """

    distance: float = 0.4
    slack: float = 0.2
    on_time: float = 0.2
    fairness: float = 0.2
    distance_scale_km: float = 50.0
    slack_target: float = 2.0
    on_time_prior: float = 0.8
    fairness_scale: float = 5.0


class Reason(msgspec.Struct, frozen=True, kw_only=True):
    """Why a workshop was excluded: a stable code and a human-readable French message."""

    code: ReasonCode
    message: str


class ScoreComponents(msgspec.Struct, frozen=True, kw_only=True):
    """The score parts of an included workshop, each in [0, 1] before weighting."""

    distance: float
    slack: float
    on_time: float
    fairness: float


class Included(msgspec.Struct, frozen=True, kw_only=True):
    """A workshop that passes every hard filter, with its rank (1 = best) and explanation."""

    workshop_id: str
    rank: int
    score: float
    distance_km: float
    capacity_units: int
    components: ScoreComponents
    reasons: tuple[str, ...]


class Excluded(msgspec.Struct, frozen=True, kw_only=True):
    """A workshop that fails at least one hard filter, with every reason that is true."""

    workshop_id: str
    distance_km: float
    reasons: tuple[Reason, ...]


class MatchResult(msgspec.Struct, frozen=True, kw_only=True):
    """Ranked eligible workshops and explained exclusions.

    `included` holds the best `limit` eligible workshops (all when no limit); `eligible` counts them
    all. `excluded` details the `explain_limit` excluded workshops nearest to the delivery point
    (all when no limit), each with every true reason. `exclusion_counts` covers every excluded
    workshop of the registry: each is counted once, under the first filter it fails in funnel order
    (`REASON_CODES`, steps in request order).
    """

    included: tuple[Included, ...]
    excluded: tuple[Excluded, ...]
    eligible: int
    considered: int
    working_days: int
    exclusion_counts: dict[str, int]
