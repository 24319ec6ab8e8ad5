"""The fairness input: the awards a workshop won in the last 12 months, each weighing less as it ages.

A workshop's `Candidate.recent_wins` is the sum, over its awards (orders) of the 365 days before the
reference instant, of ``1 − age / 365 days``: an award made today counts 1, one six months old ½,
one a year old 0 (and it leaves the window at that very moment).

Why linear rather than exponential (e.g. a six-month half-life):

- no cliff: the weight reaches 0 exactly when the award leaves the 12-month window, so a workshop's
  rank never jumps on the anniversary of an order (an exponential weight would still be ¼ there,
  then drop to 0);
- it reads plainly: « une commande de six mois compte pour moitié »;
- linear weights add up: Σ (1 − ageᵢ / 365 d) = n − Σ ageᵢ / 365 d, so one aggregate per workshop
  (how many awards, their total age) gives the exact figure, no per-order rows to load.

Ages are measured from `fairness_reference(now)`, the end of `now`'s calendar day: constant over a
day, so every process computes the same figure all day long and a cached figure only needs
recomputing when an award is made or cancelled, or when the day changes. Pure: the caller passes
`now` and the aggregates.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Final

#: How far back an award counts: 12 months.
FAIRNESS_WINDOW: Final = timedelta(days=365)
FAIRNESS_WINDOW_SECONDS: Final = FAIRNESS_WINDOW.total_seconds()


def fairness_reference(now: datetime) -> datetime:
    """The instant award ages are measured from: the next midnight after ``now``, in ``now``'s zone."""
    return datetime.combine(now.date() + timedelta(days=1), time(), tzinfo=now.tzinfo)


def award_weight(age: timedelta) -> float:
    """The weight of one award ``age`` old at the reference instant: 1 − age / 365 days within the
    window (0 < age < 365 days), else 0 (an award later than the reference instant does not count)."""
    if age <= timedelta(0) or age >= FAIRNESS_WINDOW:
        return 0.0
    return 1.0 - age / FAIRNESS_WINDOW


def decayed_awards(count: int, total_age_seconds: float) -> float:
    """Σ `award_weight` over ``count`` awards of the window whose ages add up to ``total_age_seconds``
    (the sum of linear weights is count − Σ age / window; never below 0)."""
    if count <= 0:
        return 0.0
    return max(0.0, count - total_age_seconds / FAIRNESS_WINDOW_SECONDS)
