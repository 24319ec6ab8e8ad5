"""The fairness input: awards of the last 12 months, each weighing 1 − age / 365 days, measured from
the end of the day; the sum from (count, total age) equals the sum of the weights; the explanation
says what is measured."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from matching import (
    FAIRNESS_WINDOW,
    Candidate,
    Included,
    Machine,
    MatchRequest,
    MaterialSpec,
    Step,
    award_weight,
    decayed_awards,
    explain,
    fairness_reference,
    match,
)
from matching.scoring import wins_label

NOW = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
DAY = timedelta(days=1)


def test_an_award_counts_one_when_new_half_at_six_months_nothing_after_a_year() -> None:
    assert timedelta(days=365) == FAIRNESS_WINDOW
    assert award_weight(timedelta(hours=1)) == pytest.approx(1 - 1 / (365 * 24))
    assert award_weight(DAY) == pytest.approx(364 / 365)
    assert award_weight(timedelta(days=182, hours=12)) == pytest.approx(0.5)
    assert award_weight(timedelta(days=364)) == pytest.approx(1 / 365)
    assert award_weight(timedelta(days=365)) == 0.0  # left the window, with no jump: the weight was ~0
    assert award_weight(timedelta(days=396)) == 0.0  # 13 months
    assert award_weight(timedelta(0)) == 0.0 and award_weight(-DAY) == 0.0  # not before the reference


def test_the_weight_decreases_continuously_to_the_window_edge() -> None:
    ages = [timedelta(days=d) for d in range(1, 366)]
    weights = [award_weight(a) for a in ages]
    assert all(a > b for a, b in itertools.pairwise(weights))
    assert weights[-2] < 0.003 and weights[-1] == 0.0


@given(st.lists(st.integers(1, 365 * 86_400 - 1), max_size=40))
def test_count_and_total_age_give_the_sum_of_the_weights(ages: list[int]) -> None:
    expected = sum(award_weight(timedelta(seconds=a)) for a in ages)
    assert decayed_awards(len(ages), float(sum(ages))) == pytest.approx(expected, abs=1e-9)


def test_no_award_is_zero_and_the_sum_is_never_negative() -> None:
    assert decayed_awards(0, 0.0) == 0.0
    assert decayed_awards(1, FAIRNESS_WINDOW.total_seconds() * 1.5) == 0.0


def test_the_reference_is_the_end_of_the_day_so_the_figure_holds_all_day() -> None:
    assert fairness_reference(NOW) == datetime(2026, 12, 4, tzinfo=UTC)
    assert fairness_reference(datetime(2026, 12, 3, tzinfo=UTC)) == fairness_reference(NOW)
    assert fairness_reference(datetime(2026, 12, 3, 23, 59, 59, 999_999, tzinfo=UTC)) == fairness_reference(NOW)
    assert fairness_reference(datetime(2026, 12, 4, tzinfo=UTC)) == datetime(2026, 12, 5, tzinfo=UTC)
    paris = ZoneInfo("Europe/Paris")  # the day of the clock given, across a DST change too
    spring = fairness_reference(datetime(2026, 3, 28, 23, 0, tzinfo=paris))
    assert spring == datetime(2026, 3, 29, tzinfo=paris)


@pytest.mark.parametrize(
    ("wins", "text"),
    [
        (0, "aucune commande remportée sur les 12 derniers mois"),
        (0.0004, "moins de 0,001 commande remportée sur les 12 derniers mois (compte pondéré par l'ancienneté)"),
        (0.0027, "0,003 commande remportée sur les 12 derniers mois (compte pondéré par l'ancienneté)"),
        (0.5, "0,5 commande remportée sur les 12 derniers mois (compte pondéré par l'ancienneté)"),
        (1.94, "1,9 commande remportée sur les 12 derniers mois (compte pondéré par l'ancienneté)"),
        (1.96, "2 commandes remportées sur les 12 derniers mois (pondérées par leur ancienneté)"),
        (2.4, "2,4 commandes remportées sur les 12 derniers mois (pondérées par leur ancienneté)"),
    ],
)
def test_the_explanation_says_what_is_measured(wins: float, text: str) -> None:
    assert wins_label(wins) == text


LASER = Machine(
    process="laser",
    envelope_mm=(1000.0, 500.0, 20.0),
    materials=(MaterialSpec(material="steel", max_thickness_mm=6.0),),
    hours_per_week=35.0,
)
REQ = MatchRequest(
    steps=(Step(process="laser", material="steel", thickness_mm=3.0, part_size_mm=(300.0, 200.0, 3.0),
                minutes_per_unit=6.0),),
    quantity=100,
    deadline=NOW + timedelta(days=14),
    delivery_lat=45.764,
    delivery_lon=4.8357,
)


def shop(wid: str, ages_days: list[float]) -> Candidate:
    """A workshop whose awards are ``ages_days`` old at the reference instant."""
    ages = [timedelta(days=a).total_seconds() for a in ages_days if a < 365]
    return msgspec.convert(
        {"workshop_id": wid, "lat": 45.75, "lon": 4.85, "delivery_radius_km": 50.0, "machines": (LASER,),
         "recent_wins": decayed_awards(len(ages), sum(ages))},
        Candidate,
    )


def test_old_awards_weigh_less_so_ranking_follows_the_last_twelve_months() -> None:
    fresh = shop("a-fresh", [2.0, 10.0])  # two awards this month: ~1.97
    old = shop("b-old", [300.0, 320.0, 340.0, 360.0])  # four, all near a year old: 140/365 ≈ 0.38
    gone = shop("c-gone", [400.0] * 10)  # ten, over 13 months old: nothing
    ranked = [i.workshop_id for i in match(REQ, [fresh, old, gone], now=NOW).included]
    assert ranked == ["c-gone", "b-old", "a-fresh"]
    result = explain(REQ, old, now=NOW)
    assert isinstance(result, Included)
    assert result.reasons[3].startswith("0,4 commande remportée sur les 12 derniers mois (compte pondéré")
    assert result.components.fairness == pytest.approx(1 / (1 + old.recent_wins / 5))
