"""The thresholds table (issue 17): every example of the issue, no gap nor overlap, cumulative need."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from broker.domain import procurement as law
from broker.domain.procurement import Cumulative, Nature, Procedure, decide, decide_with_cumulative


@pytest.mark.parametrize(
    ("nature", "euros", "on", "procedure", "threshold"),
    [
        (Nature.FOURNITURES, 50_000, date(2026, 3, 31), Procedure.MAPA, 40_000),
        (Nature.FOURNITURES, 50_000, date(2026, 4, 1), Procedure.SANS_PUBLICITE, 60_000),
        (Nature.TRAVAUX, 90_000, date(2026, 6, 1), Procedure.SANS_PUBLICITE, 100_000),
        (Nature.FOURNITURES, 250_000, date(2026, 6, 1), Procedure.FORMALISEE, 60_000),
        (Nature.SERVICES, 39_999.99, date(2025, 6, 1), Procedure.SANS_PUBLICITE, 40_000),
        (Nature.SERVICES, 40_000, date(2025, 6, 1), Procedure.MAPA, 40_000),
        (Nature.FOURNITURES, 90_000, date(2026, 6, 1), Procedure.MAPA_PUBLICITE, 60_000),
        (Nature.FOURNITURES, 215_999.99, date(2026, 6, 1), Procedure.MAPA_PUBLICITE, 60_000),
        (Nature.FOURNITURES, 216_000, date(2026, 6, 1), Procedure.FORMALISEE, 60_000),
        (Nature.FOURNITURES, 216_000, date(2025, 6, 1), Procedure.MAPA_PUBLICITE, 40_000),  # EU 221 000 then
        (Nature.TRAVAUX, 40_000, date(2020, 6, 1), Procedure.MAPA, 40_000),  # before the loi ASAP
        (Nature.TRAVAUX, 99_000, date(2021, 6, 1), Procedure.SANS_PUBLICITE, 100_000),
        (Nature.TRAVAUX, 5_404_000, date(2026, 6, 1), Procedure.FORMALISEE, 100_000),
    ],
)
def test_the_procedure_of_an_estimate_on_a_day(nature, euros, on, procedure, threshold):
    decision = decide(nature, round(euros * 100), on)
    assert (decision.procedure, decision.threshold_cents) == (procedure, threshold * 100)
    assert decision.rule and "article" in decision.rule


def test_each_rule_cites_its_text():
    by_text = {t.text for t in law.THRESHOLDS}
    assert any("2025-1386" in text for text in by_text) and any("2019-1344" in text for text in by_text)
    assert any("2020-1525" in t.article for t in law.THRESHOLDS)


@pytest.mark.parametrize("kind", ["dispense", "publicite", "europeen"])
@pytest.mark.parametrize("nature", list(Nature))
@pytest.mark.parametrize("buyer", ["collectivite", "etat"])
def test_the_table_has_neither_gap_nor_overlap(kind, nature, buyer):
    day, last = date(2020, 1, 1), date(2027, 12, 31)
    while day <= last:
        rows = [t for t in law.THRESHOLDS if t.kind == kind and t.applies(nature, day, buyer)]
        assert len(rows) == 1, (kind, nature, buyer, day, rows)
        day += timedelta(days=1)


def test_no_rule_before_2020_nor_after_the_known_eu_thresholds():
    with pytest.raises(law.NoRule):
        decide(Nature.FOURNITURES, 1_000_00, date(2019, 12, 31))
    with pytest.raises(law.NoRule):
        decide(Nature.FOURNITURES, 1_000_00, date(2028, 1, 1))


def test_state_services_have_their_own_eu_threshold():
    assert decide(Nature.FOURNITURES, 150_000_00, date(2026, 6, 1), buyer="etat").procedure == Procedure.FORMALISEE
    assert decide(Nature.FOURNITURES, 150_000_00, date(2026, 6, 1)).procedure == Procedure.MAPA_PUBLICITE


def test_the_cumulative_need_upgrades_the_procedure_with_a_warning():
    year = Cumulative(year=2026, cpv_group="391", awarded_cents=40_000_00, open_estimates_cents=10_000_00)
    decision = decide_with_cumulative(Nature.FOURNITURES, 20_000_00, date(2026, 6, 1), year)
    assert decision.procedure == Procedure.MAPA and decision.cumulative == year
    assert decision.warning is not None and "70\u202f000,00\u00a0€" in decision.warning and "391" in decision.warning
    quiet = decide_with_cumulative(Nature.FOURNITURES, 20_000_00, date(2026, 6, 1),
                                   Cumulative(year=2026, cpv_group="391", awarded_cents=0, open_estimates_cents=0))
    assert quiet.procedure == Procedure.SANS_PUBLICITE and quiet.warning is None


def test_dates_and_money_in_french():
    assert law.format_euros(6_000_000) == "60\u202f000,00\u00a0€"
    assert law.decp_deadline(date(2026, 12, 31)) == date(2027, 2, 28)
    assert law.decp_deadline(date(2026, 3, 15)) == date(2026, 5, 15)
    start, end = law.civil_year_bounds(2026)
    assert (start.isoformat(), end.isoformat()) == ("2025-12-31T23:00:00+00:00", "2026-12-31T23:00:00+00:00")


def test_the_rules_doc_is_the_table():
    from pathlib import Path

    docs = Path(__file__).resolve().parents[3] / "docs" / "procurement.md"
    assert docs.read_text(encoding="utf-8") == law.markdown(), "run: python -m broker.domain.procurement > docs/procurement.md"
