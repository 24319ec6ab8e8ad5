"""The payment rules as encoded (broker/domain/invoicing.py): delays, the ECB rate of the half-year,
interest to the cent, VAT under the franchise en base, the walk through Chorus Pro's statuses, numbers,
IBAN and VAT-number checks; docs/payment.md is the table's."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from broker.domain.identifiers import iban_problem
from broker.domain.invoicing import (
    ECB_MRO,
    INVOICE_TRANSITIONS,
    PATH,
    InvoiceKind,
    InvoiceStatus,
    Line,
    VatRegime,
    due_on,
    ecb_rate_bp,
    french_vat_number,
    invoice_number,
    late_charges,
    late_rate_bp,
    markdown,
    payment_delay,
    steps,
    totals,
)

DOCS = Path(__file__).resolve().parents[3] / "docs" / "payment.md"


def test_docs_are_the_table() -> None:
    assert DOCS.read_text(encoding="utf-8") == markdown(), "run: python -m broker.domain.invoicing > docs/payment.md"


@pytest.mark.parametrize(("legal_form", "category", "days"), [
    ("7210", None, 30), (None, None, 30), ("7364", None, 50), ("7365", None, 50), (None, "chu", 50),
    ("4110", None, 60),
])
def test_payment_delay_by_buyer(legal_form, category, days) -> None:
    assert payment_delay(legal_form, establishment_category=category).days == days


def test_the_delay_runs_from_receipt_or_from_the_service_fait_when_later() -> None:
    delay = payment_delay("7210")
    assert due_on(date(2026, 3, 2), date(2026, 2, 20), delay) == date(2026, 4, 1)
    assert due_on(date(2026, 3, 2), date(2026, 3, 10), delay) == date(2026, 4, 9)


def test_the_ecb_rate_table_is_ordered_and_read_by_date() -> None:
    assert [r.valid_from for r in ECB_MRO] == sorted(r.valid_from for r in ECB_MRO)
    assert ecb_rate_bp(date(2023, 9, 19)) == 425 and ecb_rate_bp(date(2023, 9, 20)) == 450
    with pytest.raises(ValueError, match="no ECB rate"):
        ecb_rate_bp(date(2010, 1, 1))


def test_the_rate_is_the_one_in_force_on_the_first_day_of_the_half_year() -> None:
    """Lateness starting 2024-07-15: the rate on 1 July 2024 (4.25 %, cut on 12 June) + 8 points, even
    though the ECB cut again to 3.65 % on 18 September; from 2024-01-10: 4.50 % + 8."""
    assert late_rate_bp(date(2024, 7, 15)) == 1225
    assert late_rate_bp(date(2024, 12, 31)) == 1225
    assert late_rate_bp(date(2024, 1, 10)) == 1250
    assert late_rate_bp(date(2025, 7, 1)) == 1015  # 2.15 % since 11 June 2025


def test_interest_to_the_cent() -> None:
    # 7 920,00 € TTC due 2026-07-10, paid 2026-07-20: 7 920 × 10,15 % × 10 / 365 = 22,0241… → 22,02 €
    charges = late_charges(792_000, date(2026, 7, 10), until=date(2026, 7, 20))
    assert (charges.days_late, charges.rate_bp, charges.interest_cents, charges.indemnity_cents) == (10, 1015, 2202,
                                                                                                     4000)
    # half-up: 1 000,00 € × 12,25 % × 1 / 365 = 0,3356… → 0,34 €
    assert late_charges(100_000, date(2024, 7, 14), until=date(2024, 7, 15)).interest_cents == 34
    on_time = late_charges(792_000, date(2026, 7, 10), until=date(2026, 7, 10))
    assert on_time.total_cents == 0 and on_time.rate_bp is None


def test_vat_per_rate_and_the_franchise_en_base() -> None:
    lines = [Line(name="Bureau France Services", quantity=6, unit_price_cents=110_000, vat_rate_bp=2000),
             Line(name="Repose-pieds", quantity=3, unit_price_cents=3_333, vat_rate_bp=550)]
    normal = totals(lines, VatRegime.NORMAL)
    assert [(v.category, v.rate_bp, v.basis_cents, v.amount_cents) for v in normal.vat] == [
        ("S", 550, 9_999, 550), ("S", 2000, 660_000, 132_000)]
    assert (normal.net_cents, normal.vat_cents, normal.total_cents) == (669_999, 132_550, 802_549)
    franchise = totals(lines, VatRegime.FRANCHISE_EN_BASE)
    [exempt] = franchise.vat
    assert (exempt.category, exempt.rate_bp, exempt.amount_cents) == ("E", 0, 0)
    assert exempt.exemption_reason == "TVA non applicable, art. 293 B du CGI"
    assert franchise.total_cents == franchise.net_cents == 669_999


def test_a_status_polled_late_walks_the_path_between() -> None:
    s = InvoiceStatus
    assert steps(s.DEPOSEE, s.MISE_EN_PAIEMENT) == [s.MISE_A_DISPOSITION, s.SERVICE_FAIT, s.MANDATEE,
                                                   s.MISE_EN_PAIEMENT]
    assert steps(s.SUSPENDUE, s.MANDATEE) == [s.MISE_A_DISPOSITION, s.SERVICE_FAIT, s.MANDATEE]
    assert steps(s.MISE_A_DISPOSITION, s.REJETEE) == [s.REJETEE]
    assert steps(s.MANDATEE, s.DEPOSEE) == [] and steps(s.DEPOSEE, s.DEPOSEE) == []
    for current in InvoiceStatus:  # every walk is made of allowed moves
        for reported in InvoiceStatus:
            at = current
            for step in steps(current, reported):
                assert step in INVOICE_TRANSITIONS[at], (current, reported)
                at = step
    assert PATH[-1] is s.MISE_EN_PAIEMENT and not INVOICE_TRANSITIONS[s.MISE_EN_PAIEMENT]


def test_numbers_identifiers() -> None:
    assert invoice_number(InvoiceKind.INVOICE, 42) == "F-000042"
    assert invoice_number(InvoiceKind.CREDIT_NOTE, 3) == "AV-000003"
    with pytest.raises(ValueError):
        invoice_number(InvoiceKind.INVOICE, 0)
    assert french_vat_number("404833048") == "FR83404833048"  # (12 + 3 × (404833048 mod 97)) mod 97 = 83
    assert iban_problem("FR76 3000 6000 0112 3456 7890 189") is None
    assert iban_problem("FR7630006000011234567890188") == "its check digits are wrong"
    assert iban_problem("FR76300060000112345678") == "a French IBAN has 27 characters"
    assert iban_problem("not an iban") is not None
