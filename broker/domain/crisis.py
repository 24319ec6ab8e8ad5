"""Crisis calls and commitments: statuses with their literal transition tables, the rules on
delivery points, the totals of a call and the lag test. Pure: no I/O, no clock.

A call is ``open`` while it recruits (allocation, rebalancing, new points); ``closed`` stops that
(accepted commitments are still produced, reported and delivered) and ``cancelled`` is a call
withdrawn before any unit was accepted. A commitment is proposed to a workshop, which accepts or
declines it; a proposal unanswered in time expires (it then counts as a decline). An accepted
commitment is completed once every unit is delivered; a rebalance may cancel a proposal (moved
elsewhere) or trim a lagging accepted commitment down to what its workshop will make."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Final

import msgspec

from broker.domain.lifecycle import Lifecycle, check
from broker.errors import Rejected


class CallStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"


CALL_TRANSITIONS: Mapping[CallStatus, frozenset[CallStatus]] = {
    CallStatus.OPEN: frozenset({CallStatus.CLOSED, CallStatus.CANCELLED}),
    CallStatus.CLOSED: frozenset(),
    CallStatus.CANCELLED: frozenset(),
}
CALL = Lifecycle("crisis call", CALL_TRANSITIONS)


class CommitmentStatus(StrEnum):
    PROPOSED = "proposed"  # books the workshop's capacity, waits for its maker until expires_at
    ACCEPTED = "accepted"  # counted in the point's accepted units; progress is reported
    DECLINED = "declined"
    EXPIRED = "expired"  # not answered in time: a decline by silence
    CANCELLED = "cancelled"  # moved by a rebalance, the call closed, or a lagging workshop made nothing
    COMPLETED = "completed"  # every unit delivered


COMMITMENT_TRANSITIONS: Mapping[CommitmentStatus, frozenset[CommitmentStatus]] = {
    CommitmentStatus.PROPOSED: frozenset(
        {CommitmentStatus.ACCEPTED, CommitmentStatus.DECLINED, CommitmentStatus.EXPIRED, CommitmentStatus.CANCELLED}
    ),
    CommitmentStatus.ACCEPTED: frozenset({CommitmentStatus.COMPLETED, CommitmentStatus.CANCELLED}),
    CommitmentStatus.DECLINED: frozenset(),
    CommitmentStatus.EXPIRED: frozenset(),
    CommitmentStatus.CANCELLED: frozenset(),
    CommitmentStatus.COMPLETED: frozenset(),
}
COMMITMENT = Lifecycle("commitment", COMMITMENT_TRANSITIONS)

#: Statuses whose units are promised to the point (what the allocation must not exceed).
LIVE: Final = frozenset({CommitmentStatus.PROPOSED, CommitmentStatus.ACCEPTED, CommitmentStatus.COMPLETED})
#: Statuses whose units the maker agreed to make.
AGREED: Final = frozenset({CommitmentStatus.ACCEPTED, CommitmentStatus.COMPLETED})
#: Statuses that hold workshop capacity (released on decline, expiry, cancel, completion).
BOOKING: Final = frozenset({CommitmentStatus.PROPOSED, CommitmentStatus.ACCEPTED})


class RebalanceReason(StrEnum):
    ALLOCATION = "allocation"  # the first allocation of the call
    DECLINE = "decline"
    EXPIRY = "expiry"
    LAG = "lag"
    POINTS_ADDED = "points_added"
    QUANTITY_RAISED = "quantity_raised"


def check_call(current: CallStatus, target: CallStatus) -> CallStatus:
    return check(CALL, current, target)


def check_commitment(current: CommitmentStatus, target: CommitmentStatus) -> CommitmentStatus:
    return check(COMMITMENT, current, target)


class CrisisCall(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    org_id: str
    item_slug: str
    name: str
    deadline: datetime
    priority: int
    max_distance_km: float | None
    status: str
    revision: int
    rebalance_due_at: datetime | None
    rebalance_reason: str | None
    created_at: datetime
    closed_at: datetime | None


class DeliveryPoint(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    call_id: str
    label: str
    commune_insee: str
    lat: float
    lon: float
    quantity: int
    priority: int
    accepted_units: int
    created_at: datetime


class Commitment(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    call_id: str
    delivery_point_id: str
    workshop_id: str
    maker_org_id: str
    quantity: int
    distance_km: float
    status: str
    origin: str
    revision: int
    produced: int
    delivered: int
    expires_at: datetime
    accepted_at: datetime | None
    decided_at: datetime | None
    decline_reason: str | None
    last_report_at: datetime | None
    created_at: datetime


class Rebalance(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    call_id: str
    revision: int
    reason: str
    moved: dict[str, object]
    units_moved: int
    unmet_before: int
    unmet_after: int
    created_at: datetime


# ---- names -------------------------------------------------------------------------------------

MONTHS: Final = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
                 "novembre", "décembre")


def default_call_name(item_name: str, day: date) -> str:
    """The name of a call its coordinator did not name: the item and the day it was launched
    (« Visières — 3 décembre 2026 »), so that two calls for the same item stay apart in lists."""
    return f"{item_name} — {'1er' if day.day == 1 else day.day} {MONTHS[day.month - 1]} {day.year}"


# ---- delivery points ---------------------------------------------------------------------------

MAX_QUANTITY: Final = 10_000_000  # units for one point: more than France's whole 2020 visor output
PRIORITIES: Final = range(1, 6)  # 1 = most urgent


class NewPoint(msgspec.Struct, frozen=True, kw_only=True):
    """A delivery point as the coordinator gives it."""

    label: str
    commune_insee: str
    quantity: int
    priority: int


def check_points(points: Iterable[NewPoint], *, pointer: str = "/delivery_points") -> list[NewPoint]:
    """The points, or Rejected naming the first bad one (quantity 1..MAX_QUANTITY, priority 1..5,
    a label, no label twice in the call)."""
    out = list(points)
    if not out:
        raise Rejected("a crisis call needs at least one delivery point", pointer=pointer,
                       code="delivery-point-required")
    seen: set[str] = set()
    for i, p in enumerate(out):
        where = f"{pointer}/{i}"
        if not p.label.strip():
            raise Rejected(
                "a delivery point needs a label (e.g. 'CHU de Rennes, Pontchaillou')", pointer=f"{where}/label",
                code="delivery-point-label-required",
            )
        key = p.label.strip().casefold()
        if key in seen:
            raise Rejected(f"delivery point {p.label!r} is listed twice", pointer=f"{where}/label",
                           code="delivery-point-twice", figures={"label": p.label})
        seen.add(key)
        if not 1 <= p.quantity <= MAX_QUANTITY:
            raise Rejected(f"quantity must be between 1 and {MAX_QUANTITY}", pointer=f"{where}/quantity",
                           code="quantity-out-of-range", figures={"high": MAX_QUANTITY})
        if p.priority not in PRIORITIES:
            raise Rejected("priority must be 1 (most urgent) to 5", pointer=f"{where}/priority",
                           code="priority-out-of-range")
    return out


def check_raise(current: int, new: int, *, pointer: str = "/quantity") -> int:
    """A point's quantity may only grow mid-crisis (promised units are never taken back)."""
    if new > MAX_QUANTITY:
        raise Rejected(f"quantity must be at most {MAX_QUANTITY}", pointer=pointer, code="quantity-out-of-range",
                       figures={"high": MAX_QUANTITY})
    if new <= current:
        raise Rejected(f"the quantity can only be raised: it is {current}", pointer=pointer, code="quantity-not-raised",
                       figures={"current": current})
    return new


# ---- totals and progress -----------------------------------------------------------------------


class Totals(msgspec.Struct, frozen=True, kw_only=True):
    """requested ≥ committed ≥ accepted ≥ produced ≥ delivered, and unmet = requested − committed."""

    requested: int = 0
    committed: int = 0
    accepted: int = 0
    produced: int = 0
    delivered: int = 0
    unmet: int = 0


class CommitmentFigures(msgspec.Struct, frozen=True):
    status: str
    quantity: int
    produced: int
    delivered: int


def totals(requested: int, commitments: Iterable[CommitmentFigures]) -> Totals:
    committed = accepted = produced = delivered = 0
    for c in commitments:
        if c.status in LIVE:
            committed += c.quantity
        if c.status in AGREED:
            accepted += c.quantity
            produced += c.produced
            delivered += c.delivered
    return Totals(
        requested=requested,
        committed=committed,
        accepted=accepted,
        produced=produced,
        delivered=delivered,
        unmet=max(0, requested - committed),
    )


def check_progress(
    *, quantity: int, produced: int, delivered: int, new_produced: int, new_delivered: int
) -> None:
    """Progress only moves forward, never beyond the commitment, and nothing is delivered unmade."""
    if new_produced > quantity:
        raise Rejected(
            f"units_produced {new_produced} is more than the {quantity} units committed", pointer="/units_produced",
            code="produced-over-committed", figures={"produced": new_produced, "committed": quantity},
        )
    if new_delivered > new_produced:
        raise Rejected(
            f"units_delivered {new_delivered} is more than the {new_produced} units produced",
            pointer="/units_delivered", code="delivered-over-produced",
            figures={"delivered": new_delivered, "produced": new_produced},
        )
    if new_produced < produced:
        raise Rejected(
            f"progress only moves forward: {produced} units are already reported produced", pointer="/units_produced",
            code="progress-backwards", figures={"reported": produced},
        )
    if new_delivered < delivered:
        raise Rejected(
            f"progress only moves forward: {delivered} units are already reported delivered",
            pointer="/units_delivered", code="progress-backwards", figures={"reported": delivered},
        )


#: A rate observed over less than this says nothing yet (setting up, a night, a first batch).
RATE_MIN_HOURS: Final = 6.0


class Lag(msgspec.Struct, frozen=True, kw_only=True):
    """Why an accepted commitment lags, and the units its workshop is expected to make."""

    reason: str
    expected_units: int


def lag(
    *,
    quantity: int,
    produced: int,
    delivered: int,
    accepted_at: datetime,
    last_report_at: datetime | None,
    deadline: datetime,
    now: datetime,
    margin: float,
    silence_hours: float,
) -> Lag | None:
    """None when the commitment is on track. Otherwise what to keep: a workshop silent for
    ``silence_hours`` keeps what it has produced; one whose rate (units produced per hour from its
    acceptance to its last report, once that spans ``RATE_MIN_HOURS``) projects fewer than
    ``quantity × (1 − margin)`` units by the deadline keeps its projection. Never less than what is
    produced or delivered, and only if it is less than ``quantity``."""
    if produced >= quantity or now >= deadline:
        return None
    floor_units = max(produced, delivered)
    last = last_report_at or accepted_at
    if (now - last).total_seconds() >= silence_hours * 3600.0:
        hours = (now - last).total_seconds() / 3600.0
        return Lag(reason=f"no progress report for {hours:.0f} h", expected_units=floor_units)
    if last_report_at is None:
        return None  # no rate yet
    elapsed = (last_report_at - accepted_at).total_seconds() / 3600.0
    if elapsed < RATE_MIN_HOURS:
        return None
    rate = produced / elapsed
    left = (deadline - now).total_seconds() / 3600.0
    projected = produced + rate * left
    if projected >= quantity * (1.0 - margin):
        return None
    expected = max(floor_units, min(quantity - 1, math.floor(projected)))
    return Lag(
        reason=f"{rate:.1f} units/h projects {math.floor(projected)} of {quantity} units by the deadline",
        expected_units=expected,
    )
