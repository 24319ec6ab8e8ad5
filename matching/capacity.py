"""Capacity by the deadline: declared units per day, else machine hours at the bottleneck step.

Formula (also in docs/matching.md):

    working_days = Mon–Fri dates d with now.date() <= d < deadline.date()   (deadline day = delivery)
    weeks        = working_days / 5
    declared     = floor(units_per_day × working_days)                      when the workshop declared one
    machine      = min over steps s of floor(H_s × 60 × weeks / minutes_per_unit_s)   otherwise
                   where H_s = Σ hours_per_week of the machines able to do step s (process, envelope,
                   material and thickness all fit); minutes_per_unit must be > 0; a request
                   without steps has no machine capacity (0)
    capacity     = max(0, raw − reserved_units)

Steps are bounded independently (a machine able to do two steps counts for both): the bottleneck
is an upper estimate, and reserved units cover what is already booked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Final

#: Guards floor() against binary rounding (e.g. 79.99999999 for an exact 80).
FLOOR_EPSILON: Final = 1e-9


def working_days(now: datetime, deadline: datetime) -> int:
    """Monday-to-Friday dates from today (included) to the deadline day (excluded).

    Both datetimes must be naive or both aware; an aware deadline is read in `now`'s time zone.
    """
    if (now.tzinfo is None) != (deadline.tzinfo is None):
        raise ValueError("now and deadline must both be naive or both be timezone-aware")
    if deadline.tzinfo is not None:
        deadline = deadline.astimezone(now.tzinfo)
    start = now.date()
    end = deadline.date()
    total = (end - start).days
    if total <= 0:
        return 0
    weeks, rest = divmod(total, 7)
    days = weeks * 5
    first = start.weekday()
    for offset in range(rest):
        if (first + offset) % 7 < 5:
            days += 1
    return days


def declared_units(units_per_day: float, days: int) -> float:
    """Units a declared daily capacity yields over `days` working days (before floor)."""
    return units_per_day * days + FLOOR_EPSILON


def step_units(hours_per_week: float, days: int, minutes_per_unit: float) -> float:
    """Units one step's machine hours yield over `days` working days (before floor)."""
    return hours_per_week * 60.0 * days / 5.0 / minutes_per_unit + FLOOR_EPSILON


def capacity_units(
    *,
    units_per_day: float | None,
    step_hours: Sequence[float],
    minutes_per_unit: Sequence[float],
    days: int,
    reserved_units: int,
) -> int:
    """Free units by the deadline (module docstring formula); never negative."""
    if units_per_day is not None:
        raw = declared_units(units_per_day, days)
    elif not step_hours:
        raw = 0.0
    else:
        raw = min(step_units(h, days, m) for h, m in zip(step_hours, minutes_per_unit, strict=True))
    return max(0, math.floor(max(raw, 0.0)) - reserved_units)
