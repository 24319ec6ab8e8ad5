"""Crisis domain rules: every (status, target) pair of both tables, delivery points, progress,
totals and the lag test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from broker.domain.crisis import (
    CALL_TRANSITIONS,
    COMMITMENT_TRANSITIONS,
    RATE_MIN_HOURS,
    CallStatus,
    CommitmentFigures,
    CommitmentStatus,
    NewPoint,
    check_call,
    check_commitment,
    check_points,
    check_progress,
    check_raise,
    lag,
    totals,
)
from broker.errors import InvalidTransition, Rejected

ALLOWED_COMMITMENT = {
    ("proposed", "accepted"), ("proposed", "declined"), ("proposed", "expired"), ("proposed", "cancelled"),
    ("accepted", "completed"), ("accepted", "cancelled"),
}


@pytest.mark.parametrize("current", list(CommitmentStatus))
@pytest.mark.parametrize("target", list(CommitmentStatus))
def test_every_commitment_pair(current, target):
    if (current.value, target.value) in ALLOWED_COMMITMENT:
        assert check_commitment(current, target) is target
    else:
        with pytest.raises(InvalidTransition, match=f"'{current}'"):
            check_commitment(current, target)
    assert set(COMMITMENT_TRANSITIONS) == set(CommitmentStatus)


@pytest.mark.parametrize("current", list(CallStatus))
@pytest.mark.parametrize("target", list(CallStatus))
def test_every_call_pair(current, target):
    if current is CallStatus.OPEN and target is not CallStatus.OPEN:
        assert check_call(current, target) is target
    else:
        with pytest.raises(InvalidTransition):
            check_call(current, target)
    assert set(CALL_TRANSITIONS) == set(CallStatus)


def _p(label="CHU de Rennes", insee="35238", quantity=10, priority=1):
    return NewPoint(label=label, commune_insee=insee, quantity=quantity, priority=priority)


@pytest.mark.parametrize(("points", "pointer"), [
    ([], "/delivery_points"),
    ([_p(quantity=0)], "/delivery_points/0/quantity"),
    ([_p(), _p(quantity=10_000_001, label="B")], "/delivery_points/1/quantity"),
    ([_p(priority=0)], "/delivery_points/0/priority"),
    ([_p(priority=6)], "/delivery_points/0/priority"),
    ([_p(label="  ")], "/delivery_points/0/label"),
    ([_p(label="EHPAD Les Tilleuls"), _p(label="ehpad les tilleuls ")], "/delivery_points/1/label"),
])
def test_bad_points(points, pointer):
    with pytest.raises(Rejected) as caught:
        check_points(points)
    assert caught.value.pointer == pointer


def test_quantity_only_rises():
    assert check_raise(10, 11) == 11
    for new in (10, 9, 10_000_001):
        with pytest.raises(Rejected):
            check_raise(10, new)


@pytest.mark.parametrize(("produced", "delivered", "pointer"), [
    (11, 0, "/units_produced"),  # beyond the commitment
    (5, 6, "/units_delivered"),  # delivered more than produced
    (3, 2, "/units_produced"),  # backwards
    (5, 1, "/units_delivered"),  # backwards
])
def test_bad_progress(produced, delivered, pointer):
    with pytest.raises(Rejected) as caught:
        check_progress(quantity=10, produced=4, delivered=2, new_produced=produced, new_delivered=delivered)
    assert caught.value.pointer == pointer


def test_totals_count_live_and_agreed_units():
    figures = [CommitmentFigures("proposed", 30, 0, 0), CommitmentFigures("accepted", 20, 12, 5),
               CommitmentFigures("completed", 10, 10, 10), CommitmentFigures("declined", 40, 0, 0),
               CommitmentFigures("expired", 5, 0, 0), CommitmentFigures("cancelled", 7, 0, 0)]
    t = totals(100, figures)
    assert (t.requested, t.committed, t.accepted, t.produced, t.delivered, t.unmet) == (100, 60, 30, 22, 15, 40)


NOW = datetime(2026, 3, 20, 12, tzinfo=UTC)


def _lag(**kw):
    args = {"quantity": 100, "produced": 0, "delivered": 0, "accepted_at": NOW - timedelta(hours=10),
            "last_report_at": None, "deadline": NOW + timedelta(hours=30), "now": NOW, "margin": 0.2,
            "silence_hours": 24.0} | kw
    return lag(**args)


def test_on_track_and_early_rates_are_not_lag():
    assert _lag() is None  # not reported yet, not silent for a day
    # 40 units in 8 h -> 5/h -> 40 + 150 by the deadline: on track
    assert _lag(produced=40, last_report_at=NOW - timedelta(hours=2)) is None
    # nothing made in the first hours says nothing yet
    early = NOW - timedelta(hours=RATE_MIN_HOURS - 1)
    assert _lag(accepted_at=early, last_report_at=NOW - timedelta(minutes=1)) is None
    assert _lag(produced=100, delivered=50) is None  # everything made
    assert _lag(deadline=NOW) is None  # too late to move anything


def test_a_slow_rate_keeps_its_projection():
    # 10 units in 8 h -> 1.25/h -> 10 + 37.5 = 47 < 80
    found = _lag(produced=10, delivered=4, last_report_at=NOW - timedelta(hours=2))
    assert found is not None and found.expected_units == 47 and "47 of 100" in found.reason


def test_silence_keeps_what_is_made():
    found = _lag(produced=12, delivered=12, accepted_at=NOW - timedelta(hours=40),
                 last_report_at=NOW - timedelta(hours=25))
    assert found is not None and found.expected_units == 12 and "25 h" in found.reason
    assert _lag(accepted_at=NOW - timedelta(hours=24)).expected_units == 0  # never reported at all
