"""The award rules (issue 17), pure: valid quotes, not-lowest, rotation, invalid quotes, minimum quotes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import msgspec
import pytest

from broker.domain import award_rules as rules
from broker.domain.fabrication import AwardJustification, Procurement, Quote, Request

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
NAMES = {"w-a": "Menuiserie A", "w-b": "Atelier B", "w-c": "Fab lab C", "w-d": "Ébénisterie D"}


BASE = Request(
    id="r-1", org_id="buyer", item_slug="france-services-desk", name="Bureau", steps=(),
    certifications_required=(), quantity=6, deadline=NOW + timedelta(days=30), delivery_insee="35238",
    delivery_address="", delivery_lat=48.1, delivery_lon=-1.7, budget_cents=900_000, min_quotes=1,
    quote_window_hours=72, quote_deadline=NOW + timedelta(days=3), window_closed=False, allow_split=False,
    max_distance_km=None, procurement=Procurement(buyer_siret="x"), status="quoting", match_state="done",
    award_justification=None, created_at=NOW - timedelta(days=1), cpv="39130000-2", cpv_group="391",
)


def request(**over: object) -> Request:
    return msgspec.structs.replace(BASE, **over)


def quote(qid: str, shop: str, unit_cents: int, *, quantity: int = 6, late: bool = False, status: str = "submitted",
          valid_days: int = 30, vat_bp: int = 2_000) -> Quote:
    deadline_day = (NOW + timedelta(days=30)).date()
    return Quote(id=qid, request_id="r-1", workshop_id=shop, unit_price_cents=unit_cents, vat_rate_bp=vat_bp,
                 quantity=quantity, delivery_date=deadline_day + timedelta(days=3 if late else -5),
                 valid_until=NOW + timedelta(days=valid_days), note="", status=status,
                 created_at=NOW - timedelta(hours=1))


def assess(req: Request, quotes: list[Quote], chosen: list[str],
           past: list[rules.PastAward] | None = None) -> list[rules.Breach]:
    return rules.assess(req, quotes, chosen, now=NOW, names=NAMES, past_awards=past)


def past(n: int, *shops: str) -> rules.PastAward:
    return rules.PastAward(request_id=f"old-{n}", awarded_at=NOW - timedelta(days=10 * n), workshop_ids=frozenset(shops))


# ---- validity ------------------------------------------------------------------------------------


def test_flags_of_a_quote():
    req = request()
    assert rules.flags_of(req, quote("q-1", "w-a", 100_00), now=NOW) == ()
    assert rules.flags_of(req, quote("q-1", "w-a", 100_00, late=True), now=NOW) == (rules.LATE,)
    assert rules.flags_of(req, quote("q-1", "w-a", 100_00, valid_days=-1), now=NOW) == (rules.EXPIRED,)
    assert rules.flags_of(req, quote("q-1", "w-a", 100_00, quantity=4), now=NOW) == (rules.PARTIAL,)
    assert rules.flags_of(request(allow_split=True), quote("q-1", "w-a", 100_00, quantity=4), now=NOW) == ()
    assert rules.is_valid("submitted", ()) and not rules.is_valid("withdrawn", ())
    assert not rules.is_valid("submitted", (rules.LATE,))


def test_the_deadline_is_a_paris_day():
    """A deadline at 23:30 UTC on 31 December is 1 January in Paris: delivering on 1 January is on time."""
    req = request(deadline=datetime(2026, 12, 31, 23, 30, tzinfo=UTC))
    on_time = msgspec_replace(quote("q-1", "w-a", 100_00), delivery_date=date(2027, 1, 1))
    late = msgspec_replace(quote("q-1", "w-a", 100_00), delivery_date=date(2027, 1, 2))
    assert rules.flags_of(req, on_time, now=NOW) == ()
    assert rules.flags_of(req, late, now=NOW) == (rules.LATE,)


def msgspec_replace(q: Quote, **changes: object) -> Quote:
    return msgspec.structs.replace(q, **changes)


def test_lowest_valid_skips_invalid_quotes():
    quotes = [quote("q-1", "w-a", 90_00, late=True), quote("q-2", "w-b", 95_00, valid_days=-1),
              quote("q-3", "w-c", 99_00), quote("q-4", "w-d", 99_50, status="withdrawn")]
    lowest = rules.lowest_valid(request(), quotes, now=NOW)
    assert lowest is not None and lowest.id == "q-3"
    assert rules.lowest_valid(request(), quotes[:2], now=NOW) is None


# ---- not-lowest ----------------------------------------------------------------------------------


def test_passing_over_a_cheaper_valid_quote_needs_a_justification():
    quotes = [quote("q-1", "w-a", 1_100_00), quote("q-2", "w-b", 1_090_00), quote("q-3", "w-c", 1_240_00)]
    (breach,) = assess(request(), quotes, ["q-1"])
    assert (breach.reason, breach.code, breach.quote_id, breach.workshop_id) == (
        "not-lowest", "justification-required", "q-2", "w-b")
    assert breach.total_eur_ttc == "7848.00"  # 6 × 1 090 € HT, 20 % VAT
    assert "«\u00a0Atelier B\u00a0»" in breach.detail and "7\u202f848,00\u00a0€ TTC" in breach.detail
    assert "7\u202f920,00\u00a0€ TTC" in breach.detail  # the chosen one's total
    assert assess(request(), quotes, ["q-2"]) == []


def test_an_equal_price_is_not_lower():
    quotes = [quote("q-1", "w-a", 1_100_00), quote("q-2", "w-b", 1_100_00)]
    assert assess(request(), quotes, ["q-2"]) == []


def test_a_cheaper_quote_that_is_not_valid_may_be_passed_over():
    quotes = [quote("q-1", "w-a", 1_100_00), quote("q-2", "w-b", 900_00, late=True),
              quote("q-3", "w-c", 800_00, valid_days=-1), quote("q-4", "w-d", 700_00, status="withdrawn")]
    assert assess(request(), quotes, ["q-1"]) == []


def test_the_comparison_is_on_totals_ttc_not_ht():
    """1 000 € HT at 20 % (1 200 TTC) against 1 050 € HT at 5,5 % (1 107,75 TTC): the second is cheaper."""
    quotes = [quote("q-1", "w-a", 1_000_00, quantity=1), quote("q-2", "w-b", 1_050_00, quantity=1, vat_bp=550)]
    (breach,) = assess(request(quantity=1), quotes, ["q-1"])
    assert breach.reason == "not-lowest" and breach.quote_id == "q-2"
    assert assess(request(quantity=1), quotes, ["q-2"]) == []


def test_a_split_award_compares_unit_prices_ttc():
    """Split: a valid quote left out is passed over when its unit price TTC is lower than the dearest
    chosen one's, whatever its quantity."""
    req = request(quantity=300, allow_split=True, min_quotes=2)
    a, b = quote("q-1", "w-a", 2_80, quantity=150), quote("q-2", "w-b", 2_80, quantity=150)
    assert assess(req, [a, b, quote("q-3", "w-c", 2_80, quantity=100)], ["q-1", "q-2"]) == []
    assert assess(req, [a, b, quote("q-3", "w-c", 2_90, quantity=300)], ["q-1", "q-2"]) == []
    (breach,) = assess(req, [a, b, quote("q-3", "w-c", 2_50, quantity=100)], ["q-1", "q-2"])
    assert breach.reason == "not-lowest" and breach.quote_id == "q-3"
    assert "l'unité" in breach.detail and "pour 100\u00a0unités" in breach.detail
    # One quote for the whole quantity while a cheaper partial one exists: passed over too.
    whole = quote("q-4", "w-d", 2_70, quantity=300)
    (breach,) = assess(req, [whole, quote("q-3", "w-c", 2_50, quantity=100)], ["q-4"])
    assert breach.quote_id == "q-3"


# ---- invalid quote -------------------------------------------------------------------------------


def test_choosing_a_late_quote_needs_a_justification():
    quotes = [quote("q-1", "w-a", 1_000_00, late=True), quote("q-2", "w-b", 1_100_00)]
    breaches = assess(request(), quotes, ["q-1"])
    assert [b.reason for b in breaches] == ["invalid-quote"]
    (breach,) = breaches
    assert breach.code == "justification-required" and breach.flags == ["late"] and breach.quote_id == "q-1"
    assert "livraison le 5 janvier 2027, après l'échéance du 2 janvier 2027" in breach.detail


def test_choosing_the_late_one_when_a_valid_cheaper_exists_fires_both():
    quotes = [quote("q-1", "w-a", 1_000_00, late=True), quote("q-2", "w-b", 900_00)]
    breaches = assess(request(), quotes, ["q-1"])
    assert [b.reason for b in breaches] == ["invalid-quote", "not-lowest"]
    detail = rules.refusal_detail(breaches)
    assert detail.startswith(breaches[0].detail) and breaches[1].detail in detail
    assert detail.endswith("Une seule justification suffit pour l'ensemble.")
    stored = rules.justifications(breaches, "Seul atelier disponible")
    assert stored == (AwardJustification(code="invalid-quote", text="Seul atelier disponible"),
                      AwardJustification(code="not-lowest", text="Seul atelier disponible"))


# ---- rotation ------------------------------------------------------------------------------------


def test_rotation_after_two_wins_in_the_last_five_awards():
    quotes = [quote("q-1", "w-a", 1_000_00), quote("q-2", "w-b", 1_000_00)]
    one_win = [past(1, "w-a"), past(2, "w-b"), past(3, "w-c")]
    assert assess(request(), quotes, ["q-1"], one_win) == []
    two_wins = [past(1, "w-a"), past(2, "w-b"), past(3, "w-a", "w-c")]
    (breach,) = assess(request(), quotes, ["q-1"], two_wins)
    assert (breach.reason, breach.code, breach.wins, breach.awards) == (
        "rotation", "rotation-justification-required", 2, 3)
    assert breach.workshop_id == "w-a" and breach.quote_id == "q-1"
    assert "«\u00a0Menuiserie A\u00a0» a remporté 2 des 3 dernières attributions" in breach.detail
    assert "groupe CPV 391" in breach.detail


def test_rotation_counts_only_the_last_five_awards():
    quotes = [quote("q-1", "w-a", 1_000_00), quote("q-2", "w-b", 1_000_00)]
    older_win = [past(1, "w-b"), past(2, "w-c"), past(3, "w-d"), past(4, "w-b"), past(5, "w-a"), past(6, "w-a")]
    assert rules.rotation_wins("w-a", older_win) == (1, 5)
    assert assess(request(), quotes, ["q-1"], older_win) == []
    assert rules.rotation_wins("w-a", list(reversed(older_win))) == (1, 5)  # by date, not by the given order


def test_rotation_needs_another_valid_quote():
    two_wins = [past(1, "w-a"), past(2, "w-a")]
    alone = [quote("q-1", "w-a", 1_000_00)]
    assert assess(request(), alone, ["q-1"], two_wins) == []
    assert not rules.needs_history(request(), alone, ["q-1"], now=NOW)
    other_late = [*alone, quote("q-2", "w-b", 1_200_00, late=True)]
    assert assess(request(), other_late, ["q-1"], two_wins) == []
    with_other = [*alone, quote("q-2", "w-b", 1_200_00)]
    assert rules.needs_history(request(), with_other, ["q-1"], now=NOW)
    assert not rules.needs_history(request(cpv_group=None), with_other, ["q-1"], now=NOW)
    assert [b.reason for b in assess(request(), with_other, ["q-1"], two_wins)] == ["rotation"]
    assert assess(request(), with_other, ["q-1"], None) == []  # history not read: no rotation check


def test_a_split_award_checks_each_chosen_workshop():
    req = request(quantity=300, allow_split=True)
    quotes = [quote("q-1", "w-a", 2_80, quantity=150), quote("q-2", "w-b", 2_80, quantity=150),
              quote("q-3", "w-c", 2_90, quantity=150)]
    (breach,) = assess(req, quotes, ["q-1", "q-2"], [past(1, "w-b"), past(2, "w-b", "w-d")])
    assert breach.reason == "rotation" and breach.workshop_id == "w-b"


@pytest.mark.parametrize(("now", "since"), [
    (datetime(2026, 12, 3, 10, 0, tzinfo=UTC), datetime(2024, 12, 3, 10, 0, tzinfo=UTC)),
    (datetime(2028, 2, 29, 8, 0, tzinfo=UTC), datetime(2026, 2, 28, 8, 0, tzinfo=UTC)),
    (datetime(2026, 1, 31, tzinfo=UTC), datetime(2024, 1, 31, tzinfo=UTC)),
])
def test_the_rotation_window_is_24_months(now, since):
    assert rules.rotation_since(now) == since


# ---- minimum quotes, and several rules at once ------------------------------------------------------


def test_min_quotes_while_the_window_is_open():
    quotes = [quote("q-1", "w-a", 1_000_00), quote("q-2", "w-b", 1_100_00, status="withdrawn")]
    (breach,) = assess(request(min_quotes=3), quotes, ["q-1"])
    assert breach.reason == breach.code == "min-quotes-not-met"
    assert breach.detail.startswith("1\u00a0devis reçu sur les 3 attendus")
    assert assess(request(min_quotes=3, window_closed=True), quotes, ["q-1"]) == []


def test_every_rule_at_once_is_answered_by_one_text():
    quotes = [quote("q-1", "w-a", 1_000_00, late=True), quote("q-2", "w-b", 900_00)]
    breaches = assess(request(min_quotes=3), quotes, ["q-1"], [past(1, "w-a"), past(2, "w-a")])
    assert [b.reason for b in breaches] == ["invalid-quote", "not-lowest", "rotation", "min-quotes-not-met"]
    assert [j.code for j in rules.justifications(breaches, "t")] == list(rules.REASONS)
    assert rules.justifications([], "t") == ()
