"""Examples for `match`, `explain`, capacity and working days: one per rule, with the figures shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from matching import (
    Candidate,
    CandidateIndex,
    Excluded,
    Included,
    Machine,
    MatchRequest,
    MatchWeights,
    MaterialSpec,
    Step,
    capacity_units,
    explain,
    haversine_km,
    match,
    working_days,
)
from matching.geo import chord_to_km, km_to_chord

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # Monday
LYON = (45.7640, 4.8357)
LASER = Machine(
    process="laser",
    envelope_mm=(1000.0, 500.0, 20.0),
    materials=(
        MaterialSpec(material="steel", max_thickness_mm=6.0),
        MaterialSpec(material="alu", max_thickness_mm=3.0),
    ),
    hours_per_week=35.0,
)
STEP = Step(process="laser", material="steel", thickness_mm=3.0, part_size_mm=(300.0, 200.0, 3.0), minutes_per_unit=6.0)
REQ = MatchRequest(
    steps=(STEP,),
    quantity=100,
    deadline=NOW + timedelta(days=14),
    delivery_lat=LYON[0],
    delivery_lon=LYON[1],
    max_distance_km=100.0,
)


def shop(wid: str, **kw: object) -> Candidate:
    base = {"workshop_id": wid, "lat": 45.75, "lon": 4.85, "delivery_radius_km": 50.0, "machines": (LASER,)}
    base.update(kw)
    return msgspec.convert(base, Candidate, from_attributes=False)


def only_reason(cand: Candidate, req: MatchRequest = REQ) -> tuple[str, str]:
    result = explain(req, cand, now=NOW)
    assert isinstance(result, Excluded)
    assert len(result.reasons) == 1, result.reasons
    return result.reasons[0].code, result.reasons[0].message


def test_eligible_workshop_is_explained() -> None:
    result = match(REQ, [shop("a", on_time_rate=0.9, recent_wins=2)], now=NOW)
    assert result.eligible == 1
    assert result.working_days == 10
    [inc] = result.included
    assert inc.rank == 1
    assert inc.capacity_units == 700  # 35 h/week × 2 weeks × 60 / 6 min
    assert inc.components.on_time == 0.9
    assert inc.reasons[0].startswith("à 1,9 km")
    assert "capacité de 700 unités" in inc.reasons[1]
    assert "90 %" in inc.reasons[2]
    assert inc.reasons[3].startswith(
        "2 commandes remportées sur les 12 derniers mois (pondérées par leur ancienneté)\u00a0: équité 0,71 × poids 0,2"
    )
    alone = explain(REQ, shop("a", on_time_rate=0.9, recent_wins=2), now=NOW)
    assert isinstance(alone, Included)
    assert alone.score == pytest.approx(inc.score)
    assert alone.rank == 0


@pytest.mark.parametrize(
    ("cand", "code", "words"),
    [
        (shop("p", machines=()), "process_missing", "aucune machine « laser »"),
        (
            shop("s", machines=(msgspec.structs.replace(LASER, envelope_mm=(100.0, 100.0, 100.0)),)),
            "part_too_large",
            "300×200×3 mm",
        ),
        (
            shop(
                "m",
                machines=(
                    msgspec.structs.replace(LASER, materials=(MaterialSpec(material="wood", max_thickness_mm=9.0),)),
                ),
            ),
            "material_unsupported",
            "matériaux : wood",
        ),
        (
            shop(
                "t",
                machines=(
                    msgspec.structs.replace(LASER, materials=(MaterialSpec(material="steel", max_thickness_mm=2.0),)),
                ),
            ),
            "too_thick",
            "épaisseur de 3 mm, au-delà du maximum de 2 mm",
        ),
        (shop("c"), "certification_missing", "iso13485"),
        (
            shop("f", lat=46.99, lon=4.85, delivery_radius_km=80.0),
            "out_of_radius",
            "au-delà de son rayon de livraison de 80 km",
        ),
        (shop("z", paused=True), "paused", "en pause"),
        (shop("k", reserved_units=650), "insufficient_capacity", "peut produire 50 unités"),
    ],
)
def test_each_reason_code(cand: Candidate, code: str, words: str) -> None:
    req = (
        REQ if code != "certification_missing" else msgspec.structs.replace(REQ, certifications_required=("iso13485",))
    )
    got_code, message = only_reason(cand, req)
    assert got_code == code
    assert words in message
    result = match(req, [cand], now=NOW)
    assert result.exclusion_counts[code] == 1
    assert result.excluded[0].reasons[0].code == code


def test_out_of_radius_names_both_limits() -> None:
    far = shop("f", lat=47.0, delivery_radius_km=100.0)
    req = msgspec.structs.replace(REQ, max_distance_km=50.0)
    code, message = only_reason(far, req)
    assert code == "out_of_radius"
    assert "au-delà de son rayon de livraison de 100 km et de la distance maximale demandée de 50 km" in message


def test_split_accepts_partial_capacity_and_explains_it() -> None:
    small = shop("k", reserved_units=650)
    req = msgspec.structs.replace(REQ, allow_split=True)
    [inc] = match(req, [small], now=NOW).included
    assert inc.capacity_units == 50
    assert "capacité partielle" in inc.reasons[1]
    code, message = only_reason(shop("k", reserved_units=700), req)
    assert code == "insufficient_capacity"
    assert "aucune unité disponible" in message
    assert "700 déjà réservées" in message


def test_several_reasons_and_steps_are_all_listed() -> None:
    bend = Step(
        process="bend", material="steel", thickness_mm=3.0, part_size_mm=(300.0, 200.0, 3.0), minutes_per_unit=1.0
    )
    req = msgspec.structs.replace(REQ, steps=(STEP, bend), certifications_required=("iso9001",))
    result = explain(req, shop("x", paused=True, lat=47.5), now=NOW)
    assert isinstance(result, Excluded)
    assert [r.code for r in result.reasons] == ["process_missing", "certification_missing", "out_of_radius", "paused"]
    assert result.reasons[0].message.startswith("étape 2 (bend")


def test_ranking_ties_broken_by_id_and_limits() -> None:
    cands = [shop(w) for w in ("d", "b", "c", "a")]
    result = match(REQ, cands, now=NOW, limit=2)
    assert [i.workshop_id for i in result.included] == ["a", "b"]
    assert result.eligible == 4
    assert match(REQ, cands, now=NOW, limit=0).included == ()
    near_first = match(REQ, [shop("near", lat=45.76), shop("far", lat=46.1)], now=NOW)
    assert [i.workshop_id for i in near_first.included] == ["near", "far"]


def test_fairness_spreads_work() -> None:
    busy = shop("busy", recent_wins=20)
    idle = shop("idle", recent_wins=0)
    assert [i.workshop_id for i in match(REQ, [busy, idle], now=NOW).included] == ["idle", "busy"]


def test_excluded_details_are_nearest_first_and_bounded() -> None:
    cands = [shop(f"x{i}", paused=True, lat=45.76 + i * 0.01) for i in range(30)] + [shop("ok")]
    index = CandidateIndex(cands)
    result = match(REQ, index, now=NOW, explain_limit=5)
    assert [e.workshop_id for e in result.excluded] == ["x0", "x1", "x2", "x3", "x4"]
    assert result.exclusion_counts["paused"] == 30
    assert match(REQ, index, now=NOW, explain_limit=0).excluded == ()
    assert len(match(REQ, index, now=NOW, explain_limit=None).excluded) == 30
    assert index.row_of("ok") == 0
    with pytest.raises(KeyError):
        index.row_of("missing")


def test_large_registry_uses_the_spatial_prefilter() -> None:
    # Enough rows and a short reach: the KD-tree ball runs before exact distances.
    cands = [shop(f"w{i:05d}", lat=44.0 + (i % 100) * 0.03, lon=3.0 + (i // 100) * 0.05) for i in range(5000)]
    req = msgspec.structs.replace(REQ, max_distance_km=20.0)
    result = match(req, cands, now=NOW, limit=3)
    assert result.eligible > 0
    for inc in result.included:
        assert inc.distance_km <= 20.0
    counted = sum(result.exclusion_counts.values())
    assert counted + result.eligible == 5000
    assert result.exclusion_counts["out_of_radius"] == counted


def test_declared_capacity_wins_over_machine_hours() -> None:
    [inc] = match(REQ, [shop("d", units_per_day=12.5, reserved_units=5)], now=NOW).included
    assert inc.capacity_units == 120  # floor(12.5 × 10) - 5


def test_unknown_names_and_empty_registries() -> None:
    req = msgspec.structs.replace(REQ, certifications_required=("nobody-has-it",))
    assert match(req, [shop("a")], now=NOW).exclusion_counts["certification_missing"] == 1
    empty = match(REQ, [], now=NOW)
    assert empty.included == ()
    assert empty.considered == 0
    no_steps = msgspec.structs.replace(REQ, steps=())
    assert [i.workshop_id for i in match(no_steps, [shop("d", units_per_day=20.0)], now=NOW).included] == ["d"]
    assert match(no_steps, [shop("n")], now=NOW).exclusion_counts["insufficient_capacity"] == 1


def test_float64_columns_when_float32_is_not_exact() -> None:
    odd = msgspec.structs.replace(
        LASER,
        envelope_mm=(300.1, 200.000001, 3.0000001),
        materials=(MaterialSpec(material="steel", max_thickness_mm=3.0000001),),
    )
    step = msgspec.structs.replace(STEP, part_size_mm=(300.1, 200.000001, 3.0000001), thickness_mm=3.0000001)
    req = msgspec.structs.replace(REQ, steps=(step,))
    assert match(req, [shop("a", machines=(odd,))], now=NOW).eligible == 1
    thicker = msgspec.structs.replace(step, thickness_mm=3.0000002)
    code, _ = only_reason(shop("a", machines=(odd,)), msgspec.structs.replace(REQ, steps=(thicker,)))
    assert code == "too_thick"


def test_invalid_requests_and_weights() -> None:
    with pytest.raises(ValueError, match="quantity"):
        match(msgspec.structs.replace(REQ, quantity=0), [], now=NOW)
    with pytest.raises(ValueError, match="minutes_per_unit"):
        match(msgspec.structs.replace(REQ, steps=(msgspec.structs.replace(STEP, minutes_per_unit=0.0),)), [], now=NOW)
    with pytest.raises(ValueError, match="NaN"):
        match(msgspec.structs.replace(REQ, max_distance_km=float("nan")), [], now=NOW)
    with pytest.raises(ValueError, match="> 0"):
        match(REQ, [], now=NOW, weights=MatchWeights(distance_scale_km=0.0))
    with pytest.raises(ValueError, match="finite"):
        match(REQ, [], now=NOW, weights=MatchWeights(slack=float("inf")))
    with pytest.raises(ValueError, match="duplicate"):
        CandidateIndex([shop("a"), shop("a")])
    with pytest.raises(ValueError, match="NaN"):
        CandidateIndex([shop("a", delivery_radius_km=float("nan"))])
    with pytest.raises(ValueError, match="NaN"):
        match(msgspec.structs.replace(REQ, delivery_lat=float("nan")), [], now=NOW)
    with pytest.raises(ValueError, match="naive"):
        match(msgspec.structs.replace(REQ, deadline=datetime(2025, 3, 20)), [], now=NOW)  # noqa: DTZ001


def test_working_days() -> None:
    mon = datetime(2025, 3, 3, 17, 0)  # noqa: DTZ001
    assert working_days(mon, mon + timedelta(days=1)) == 1
    assert working_days(mon, mon) == 0
    assert working_days(mon, mon - timedelta(days=3)) == 0
    assert working_days(mon, mon + timedelta(days=7)) == 5
    assert working_days(mon + timedelta(days=4), mon + timedelta(days=7)) == 1  # Friday to Monday
    assert working_days(mon + timedelta(days=5), mon + timedelta(days=7)) == 0  # Saturday to Monday
    paris = timezone(timedelta(hours=1))
    late = datetime(2025, 3, 3, 23, 30, tzinfo=paris)
    # 2025-03-05 00:30 in Paris is still 2025-03-04 in UTC: the deadline is read in now's zone.
    assert working_days(late, datetime(2025, 3, 4, 23, 30, tzinfo=UTC)) == 2


def test_capacity_formula() -> None:
    kw = {"step_hours": [35.0, 10.0], "minutes_per_unit": [6.0, 3.0], "days": 10}
    assert capacity_units(units_per_day=None, reserved_units=0, **kw) == 400  # bottleneck: 10 h × 2 × 60 / 3
    assert capacity_units(units_per_day=None, reserved_units=500, **kw) == 0
    assert capacity_units(units_per_day=7.0, reserved_units=20, **kw) == 50
    assert capacity_units(units_per_day=-3.0, reserved_units=0, **kw) == 0
    assert capacity_units(units_per_day=None, step_hours=[], minutes_per_unit=[], days=10, reserved_units=0) == 0


def test_geo_helpers() -> None:
    assert haversine_km(*LYON, *LYON) == 0.0
    assert haversine_km(48.8566, 2.3522, *LYON) == pytest.approx(392.0, abs=1.0)
    assert km_to_chord(1e9) == 2.0
    assert chord_to_km(km_to_chord(123.4)) == pytest.approx(123.4)
