"""Hard filters for one workshop, in plain Python: each returns every true reason with its figures.

The vectorised engine decides in bulk; this module is the readable definition of each filter and
renders the French messages for the workshops shown to people (and `explain`).

Capability of a step, per machine, is a chain of levels: 0 = other process, 1 = process but the
part does not fit the envelope (rotations allowed: sorted part sides <= sorted envelope sides),
2 = fits but material not handled, 3 = material handled but too thin, 4 = able. A workshop's level
for the step is the best of its machines; below 4 it yields exactly one reason:
`process_missing`, `part_too_large`, `material_unsupported` or `too_thick`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec

from matching.capacity import capacity_units
from matching.model import Candidate, Machine, MatchRequest, Reason, ReasonCode, Step

STEP_CODES: tuple[ReasonCode, ...] = (
    "process_missing",
    "part_too_large",
    "material_unsupported",
    "too_thick",
)
ABLE = 4
PAUSED_MESSAGE = "atelier en pause : n'accepte pas de nouvelles commandes"


class Evaluation(msgspec.Struct, frozen=True, kw_only=True):
    """Outcome of every hard filter for one workshop; eligible when `reasons` is empty."""

    reasons: tuple[Reason, ...]
    distance_km: float
    capacity_units: int
    capable: bool


def sorted_dims(dims: Sequence[float]) -> tuple[float, float, float]:
    """Sides in increasing order (the comparison used for envelopes, rotations allowed)."""
    a, b, c = sorted(dims)
    return (a, b, c)


def fits(part: tuple[float, float, float], envelope: tuple[float, float, float]) -> bool:
    """True when the part fits the envelope in some axis-aligned orientation."""
    p = sorted_dims(part)
    e = sorted_dims(envelope)
    return p[0] <= e[0] and p[1] <= e[1] and p[2] <= e[2]


def machine_level(machine: Machine, step: Step) -> int:
    """Capability level (module docstring) of one machine for one step."""
    if machine.process != step.process:
        return 0
    if not fits(step.part_size_mm, machine.envelope_mm):
        return 1
    handled = [m.max_thickness_mm for m in machine.materials if m.material == step.material]
    if not handled:
        return 2
    return 4 if max(handled) >= step.thickness_mm else 3


def step_capability(candidate: Candidate, step: Step) -> tuple[int, float]:
    """Best machine level for the step, and the weekly hours of the machines able to do it."""
    level = 0
    hours = 0.0
    for machine in candidate.machines:
        lv = machine_level(machine, step)
        level = max(level, lv)
        if lv == ABLE:
            hours += machine.hours_per_week
    return level, hours


def fmt(x: float, decimals: int = 1) -> str:
    """French number: decimal comma, no trailing zeros."""
    text = f"{x:.{decimals}f}"
    if decimals:
        text = text.rstrip("0").rstrip(".")
    return text.replace(".", ",")


def fmt_pair(value: float, limit: float) -> tuple[str, str]:
    """Format two numbers with enough decimals that unequal values do not look equal."""
    for decimals in range(1, 7):
        a, b = fmt(value, decimals), fmt(limit, decimals)
        if a != b or value == limit:
            return a, b
    return repr(value), repr(limit)


def _dims(d: Sequence[float]) -> str:
    return "×".join(fmt(x) for x in d)


def step_reason(candidate: Candidate, step: Step, index: int, level: int) -> Reason:
    """The single reason of a step the workshop cannot do (level < 4)."""
    label = f"étape {index} ({step.process}, {step.material} {fmt(step.thickness_mm)} mm)"
    same = [m for m in candidate.machines if m.process == step.process]
    if level == 0:
        return Reason(code="process_missing", message=f"{label} : aucune machine « {step.process} »")
    if level == 1:
        biggest = max(same, key=lambda m: (math.prod(m.envelope_mm), sorted_dims(m.envelope_mm)))
        return Reason(
            code="part_too_large",
            message=f"{label} : pièce de {_dims(step.part_size_mm)} mm, plus grande que l'enveloppe "
            f"des machines « {step.process} » (la plus grande : {_dims(biggest.envelope_mm)} mm)",
        )
    fitting = [m for m in same if fits(step.part_size_mm, m.envelope_mm)]
    if level == 2:
        known = sorted({s.material for m in fitting for s in m.materials})
        listed = ", ".join(known) if known else "aucun"
        return Reason(
            code="material_unsupported",
            message=f"{label} : aucune machine « {step.process} » à la bonne taille ne travaille "
            f"« {step.material} » (matériaux : {listed})",
        )
    best = max(s.max_thickness_mm for m in fitting for s in m.materials if s.material == step.material)
    asked, limit = fmt_pair(step.thickness_mm, best)
    return Reason(
        code="too_thick",
        message=f"{label} : épaisseur de {asked} mm, au-delà du maximum de {limit} mm en « {step.material} »",
    )


def distance_reason(distance_km: float, radius_km: float, max_distance_km: float | None) -> Reason | None:
    """`out_of_radius` when beyond the workshop's radius or the request's maximum distance."""
    limits: list[tuple[str, float]] = []
    if distance_km > radius_km:
        limits.append(("son rayon de livraison", radius_km))
    if max_distance_km is not None and distance_km > max_distance_km:
        limits.append(("la distance maximale demandée", max_distance_km))
    if not limits:
        return None
    shown = [fmt_pair(distance_km, limit) for _, limit in limits]
    beyond = " et de ".join(f"{label} de {pair[1]} km" for (label, _), pair in zip(limits, shown, strict=True))
    return Reason(code="out_of_radius", message=f"à {shown[-1][0]} km, au-delà de {beyond}")


def capacity_reason(request: MatchRequest, capacity: int, days: int, reserved: int) -> Reason | None:
    """`insufficient_capacity` when it cannot make what is asked (one unit when splitting is allowed)."""
    needed = 1 if request.allow_split else request.quantity
    if capacity >= needed:
        return None
    booked = f", {reserved} déjà réservées" if reserved > 0 else ""
    if request.allow_split:
        text = f"aucune unité disponible d'ici l'échéance ({days} jours ouvrés{booked})"
    else:
        text = (
            f"peut produire {capacity} unités d'ici l'échéance ({days} jours ouvrés{booked}), "
            f"{request.quantity} demandées"
        )
    return Reason(code="insufficient_capacity", message=text)


def missing_certifications(request: MatchRequest, candidate: Candidate) -> tuple[str, ...]:
    """Required certifications the workshop does not hold, in request order."""
    held = set(candidate.certifications)
    return tuple(dict.fromkeys(c for c in request.certifications_required if c not in held))


def evaluate(
    request: MatchRequest,
    candidate: Candidate,
    *,
    days: int,
    distance_km: float,
    capacity: int | None = None,
) -> Evaluation:
    """Run every hard filter; `capacity` overrides the computed one (the engine passes its own)."""
    reasons: list[Reason] = []
    hours: list[float] = []
    for index, step in enumerate(request.steps, start=1):
        level, step_hours = step_capability(candidate, step)
        hours.append(step_hours)
        if level < ABLE:
            reasons.append(step_reason(candidate, step, index, level))
    capable = not reasons
    missing = missing_certifications(request, candidate)
    if missing:
        reasons.append(Reason(code="certification_missing", message="certification manquante : " + ", ".join(missing)))
    far = distance_reason(distance_km, candidate.delivery_radius_km, request.max_distance_km)
    if far is not None:
        reasons.append(far)
    if candidate.paused:
        reasons.append(Reason(code="paused", message=PAUSED_MESSAGE))
    if capacity is None:
        capacity = capacity_units(
            units_per_day=candidate.units_per_day,
            step_hours=hours,
            minutes_per_unit=[s.minutes_per_unit for s in request.steps],
            days=days,
            reserved_units=candidate.reserved_units,
        )
    if capable:
        # Machine capacity means nothing for a workshop unable to do a step: judged only when capable.
        short = capacity_reason(request, capacity, days, candidate.reserved_units)
        if short is not None:
            reasons.append(short)
    return Evaluation(reasons=tuple(reasons), distance_km=distance_km, capacity_units=capacity, capable=capable)
