"""Invoices of an order and the legal payment clock, as dated data and pure functions (no I/O).

What sets the rules (code de la commande publique, CCP; code général des impôts, CGI):

- **When a supplier may invoice.** After the *service fait*: for the broker, the buyer confirmed
  delivery (the order became ``delivered``). Every invoice to a public buyer goes through Chorus Pro
  (ordonnance n° 2014-697 du 26 juin 2014; for every supplier since 1 January 2020), routed by the
  buyer's SIRET and service code, with the engagement number when the structure requires it.
- **Numbering.** Invoices, and credit notes, carry a number from one chronological series without gaps
  per seller (CGI, art. 242 nonies A, I-7°); the broker keeps two series per seller, ``F`` for
  invoices and ``AV`` for credit notes (*avoirs*).
- **VAT.** A seller under the *franchise en base* (CGI, art. 293 B) charges no VAT and writes « TVA non
  applicable, art. 293 B du CGI »; in EN 16931 its lines are category ``E`` (exempt) with that
  reason, never ``Z`` (zero-rated goods).
- **The payment delay** (R.2192-10 to R.2192-12 CCP): 30 days for the State, the collectivités
  territoriales and their public establishments; 50 days for public health establishments; 60 days
  for public undertakings. It runs from the day the buyer **receives the invoice** (its deposit on
  Chorus Pro), or from the *service fait* when that is later (R.2192-13).
- **Late payment** (R.2192-31, D.2192-35 CCP): from the day after the due date to the day of payment
  inclusive, *intérêts moratoires* at the ECB's main refinancing rate in force on the first day of
  the half-year in which they began to run, plus 8 points, on the amount TTC; and a flat 40 €
  *indemnité forfaitaire pour frais de recouvrement*, due once per late invoice.

Amounts are euro cents; rates are basis points (1 % = 100 bp)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

import msgspec

from broker.domain.lifecycle import Lifecycle


class VatRegime(StrEnum):
    NORMAL = "normal"
    FRANCHISE_EN_BASE = "franchise_en_base"  # CGI art. 293 B: no VAT charged, the mention is mandatory


FRANCHISE_MENTION = "TVA non applicable, art. 293 B du CGI"
#: The EN 16931 exemption reason code (VATEX list) of the franchise en base, beside the mention.
FRANCHISE_VATEX = "VATEX-FR-FRANCHISE"


class InvoiceKind(StrEnum):
    INVOICE = "invoice"  # UNTDID 1001 code 380
    CREDIT_NOTE = "credit_note"  # code 381


TYPE_CODE = {InvoiceKind.INVOICE: "380", InvoiceKind.CREDIT_NOTE: "381"}
SERIES = {InvoiceKind.INVOICE: "F", InvoiceKind.CREDIT_NOTE: "AV"}


def invoice_number(kind: InvoiceKind, sequence: int) -> str:
    """The seller's ``sequence``-th document of ``kind``: ``F-000042``, ``AV-000003``."""
    if sequence < 1:
        raise ValueError("a sequence starts at 1")
    return f"{SERIES[kind]}-{sequence:06d}"


class InvoiceStatus(StrEnum):
    """An invoice from its issue to its payment, with Chorus Pro's own statuses once deposited."""

    ISSUED = "issued"  # numbered, documents available; not sent yet
    SUBMITTING = "submitting"  # the maker asked to submit: the worker deposits it on Chorus Pro
    DEPOSEE = "deposee"  # Chorus Pro received it: the payment delay runs from today
    MISE_A_DISPOSITION = "mise_a_disposition"  # the buyer's services can see it
    SERVICE_FAIT = "service_fait"  # the buyer certified the service
    MANDATEE = "mandatee"  # the payment order is issued
    MISE_EN_PAIEMENT = "mise_en_paiement"  # paid: the clock stops
    SUSPENDUE = "suspendue"  # the buyer asks for something (a missing piece); the supplier completes it
    REJETEE = "rejetee"  # refused (unknown service, wrong engagement…): correct it by credit note
    CREDITED = "credited"  # wholly cancelled by credit notes


INVOICE_TRANSITIONS: Mapping[InvoiceStatus, frozenset[InvoiceStatus]] = {
    InvoiceStatus.ISSUED: frozenset({InvoiceStatus.SUBMITTING, InvoiceStatus.CREDITED}),
    InvoiceStatus.SUBMITTING: frozenset({InvoiceStatus.DEPOSEE, InvoiceStatus.REJETEE}),
    InvoiceStatus.DEPOSEE: frozenset({InvoiceStatus.MISE_A_DISPOSITION, InvoiceStatus.SERVICE_FAIT,
                                      InvoiceStatus.SUSPENDUE, InvoiceStatus.REJETEE}),
    InvoiceStatus.MISE_A_DISPOSITION: frozenset({InvoiceStatus.SERVICE_FAIT, InvoiceStatus.MANDATEE,
                                                 InvoiceStatus.SUSPENDUE, InvoiceStatus.REJETEE}),
    InvoiceStatus.SUSPENDUE: frozenset({InvoiceStatus.MISE_A_DISPOSITION, InvoiceStatus.SERVICE_FAIT,
                                        InvoiceStatus.REJETEE}),
    InvoiceStatus.SERVICE_FAIT: frozenset({InvoiceStatus.MANDATEE, InvoiceStatus.SUSPENDUE}),
    InvoiceStatus.MANDATEE: frozenset({InvoiceStatus.MISE_EN_PAIEMENT}),
    InvoiceStatus.MISE_EN_PAIEMENT: frozenset(),
    InvoiceStatus.REJETEE: frozenset({InvoiceStatus.CREDITED}),
    InvoiceStatus.CREDITED: frozenset(),
}
INVOICE = Lifecycle("invoice", INVOICE_TRANSITIONS)

#: Statuses Chorus Pro reports and the worker polls for (neither final nor before the deposit).
POLLED = frozenset({InvoiceStatus.DEPOSEE, InvoiceStatus.MISE_A_DISPOSITION, InvoiceStatus.SUSPENDUE,
                    InvoiceStatus.SERVICE_FAIT, InvoiceStatus.MANDATEE})
#: The order of the happy path, for a status to move forward along it (and for the pages).
PATH = (InvoiceStatus.ISSUED, InvoiceStatus.SUBMITTING, InvoiceStatus.DEPOSEE, InvoiceStatus.MISE_A_DISPOSITION,
        InvoiceStatus.SERVICE_FAIT, InvoiceStatus.MANDATEE, InvoiceStatus.MISE_EN_PAIEMENT)
#: Statuses in which the payment clock runs (the buyer holds the invoice and has not paid it).
CLOCK_RUNS = frozenset({InvoiceStatus.DEPOSEE, InvoiceStatus.MISE_A_DISPOSITION, InvoiceStatus.SUSPENDUE,
                        InvoiceStatus.SERVICE_FAIT, InvoiceStatus.MANDATEE})

def steps(current: InvoiceStatus, reported: InvoiceStatus) -> list[InvoiceStatus]:
    """The moves from ``current`` to the status Chorus Pro reports: itself when the table allows it,
    else the statuses of the happy path in between (an invoice polled late went through them: each is
    recorded, with its event); nothing when it is already there or the report goes backwards."""
    if reported == current:
        return []
    if reported in INVOICE_TRANSITIONS[current]:
        return [reported]
    if reported not in PATH:
        return []
    start = PATH.index(current) if current in PATH else PATH.index(InvoiceStatus.DEPOSEE)
    if PATH.index(reported) <= start:
        return []
    walk: list[InvoiceStatus] = []
    at = current
    for status in PATH[start + 1:PATH.index(reported) + 1]:
        if status not in INVOICE_TRANSITIONS[at]:
            if walk or at != current:
                return []
            continue
        walk.append(status)
        at = status
    return walk if walk and walk[-1] == reported else []


LABELS: Mapping[InvoiceStatus, str] = {
    InvoiceStatus.ISSUED: "émise, à déposer",
    InvoiceStatus.SUBMITTING: "en cours de dépôt sur Chorus Pro",
    InvoiceStatus.DEPOSEE: "déposée sur Chorus Pro",
    InvoiceStatus.MISE_A_DISPOSITION: "mise à disposition de l’acheteur",
    InvoiceStatus.SERVICE_FAIT: "service fait constaté",
    InvoiceStatus.MANDATEE: "mandatée",
    InvoiceStatus.MISE_EN_PAIEMENT: "mise en paiement",
    InvoiceStatus.SUSPENDUE: "suspendue",
    InvoiceStatus.REJETEE: "rejetée",
    InvoiceStatus.CREDITED: "annulée par avoir",
}


# ---- the payment delay -------------------------------------------------------------------------------


class PaymentDelay(msgspec.Struct, frozen=True, kw_only=True):
    """A buyer category's maximum payment delay and the text that sets it."""

    category: str
    days: int
    text: str


STATE_AND_LOCAL = PaymentDelay(category="État, collectivités territoriales et leurs établissements publics",
                               days=30, text="art. R.2192-10 du code de la commande publique")
HEALTH = PaymentDelay(category="établissements publics de santé", days=50,
                      text="art. R.2192-11, 1° du code de la commande publique")
PUBLIC_UNDERTAKING = PaymentDelay(category="entreprises publiques", days=60,
                                  text="art. R.2192-11, 2° du code de la commande publique")

#: INSEE legal forms (catégories juridiques, level III) whose delay is not 30 days: public health
#: establishments (7364 établissement d'hospitalisation, 7365 syndicat inter-hospitalier) and
#: public undertakings (4110–4160 EPIC and public companies).
DELAY_BY_LEGAL_FORM: Mapping[str, PaymentDelay] = {
    "7364": HEALTH, "7365": HEALTH,
    "4110": PUBLIC_UNDERTAKING, "4120": PUBLIC_UNDERTAKING, "4140": PUBLIC_UNDERTAKING,
    "4150": PUBLIC_UNDERTAKING, "4160": PUBLIC_UNDERTAKING,
}
#: Establishment categories (issue 19's ``etablissement``) that are public health establishments.
HEALTH_CATEGORIES = frozenset({"chu", "ch"})


def payment_delay(legal_form: str | None, *, establishment_category: str | None = None) -> PaymentDelay:
    """The buyer's maximum payment delay: 50 days for a public health establishment (by its legal
    form, or its establishment category ``chu``/``ch``), 60 for a public undertaking, else 30."""
    if establishment_category in HEALTH_CATEGORIES:
        return HEALTH
    return DELAY_BY_LEGAL_FORM.get(legal_form or "", STATE_AND_LOCAL)


def delay_of(days: int) -> PaymentDelay:
    """The rule behind a stored delay (an invoice keeps the delay it was issued under)."""
    return next((d for d in (STATE_AND_LOCAL, HEALTH, PUBLIC_UNDERTAKING) if d.days == days), STATE_AND_LOCAL)


def clock_start(received_on: date, service_fait_on: date) -> date:
    """The delay runs from the receipt of the invoice, or from the service fait when it is later
    (R.2192-13)."""
    return max(received_on, service_fait_on)


def due_on(received_on: date, service_fait_on: date, delay: PaymentDelay) -> date:
    """The last day the buyer may pay without interest."""
    return clock_start(received_on, service_fait_on) + timedelta(days=delay.days)


# ---- the ECB rate and late-payment interest ----------------------------------------------------------


class EcbRate(msgspec.Struct, frozen=True, kw_only=True):
    """The rate of the Eurosystem's main refinancing operations from ``valid_from`` (the date the
    change took effect) in basis points."""

    valid_from: date
    rate_bp: int


#: The ECB's main refinancing operations rate, each change with the day it took effect (ECB press
#: releases, « Key ECB interest rates »). Last verified change: 11 June 2025 (2.15 %), held at every
#: meeting to the end of 2025; a later change must be added here, with its date.
ECB_MRO: tuple[EcbRate, ...] = (
    EcbRate(valid_from=date(2016, 3, 16), rate_bp=0),
    EcbRate(valid_from=date(2022, 7, 27), rate_bp=50),
    EcbRate(valid_from=date(2022, 9, 14), rate_bp=125),
    EcbRate(valid_from=date(2022, 11, 2), rate_bp=200),
    EcbRate(valid_from=date(2022, 12, 21), rate_bp=250),
    EcbRate(valid_from=date(2023, 2, 8), rate_bp=300),
    EcbRate(valid_from=date(2023, 3, 22), rate_bp=350),
    EcbRate(valid_from=date(2023, 5, 10), rate_bp=375),
    EcbRate(valid_from=date(2023, 6, 21), rate_bp=400),
    EcbRate(valid_from=date(2023, 8, 2), rate_bp=425),
    EcbRate(valid_from=date(2023, 9, 20), rate_bp=450),
    EcbRate(valid_from=date(2024, 6, 12), rate_bp=425),
    EcbRate(valid_from=date(2024, 9, 18), rate_bp=365),
    EcbRate(valid_from=date(2024, 10, 23), rate_bp=340),
    EcbRate(valid_from=date(2024, 12, 18), rate_bp=315),
    EcbRate(valid_from=date(2025, 2, 5), rate_bp=290),
    EcbRate(valid_from=date(2025, 3, 12), rate_bp=265),
    EcbRate(valid_from=date(2025, 4, 23), rate_bp=240),
    EcbRate(valid_from=date(2025, 6, 11), rate_bp=215),
)
MARGIN_BP = 800  # « majoré de huit points de pourcentage » (R.2192-31)
RECOVERY_INDEMNITY_CENTS = 4000  # D.2192-35: 40 €
INTEREST_TEXT = "art. R.2192-31 du code de la commande publique"
INDEMNITY_TEXT = "art. D.2192-35 du code de la commande publique"


def ecb_rate_bp(on: date, table: tuple[EcbRate, ...] = ECB_MRO) -> int:
    """The MRO rate in force on ``on``."""
    current = None
    for row in table:
        if row.valid_from <= on:
            current = row.rate_bp
    if current is None:
        raise ValueError(f"no ECB rate known on {on}")
    return current


def half_year_start(day: date) -> date:
    return date(day.year, 1 if day.month <= 6 else 7, 1)


def late_rate_bp(first_late_day: date, table: tuple[EcbRate, ...] = ECB_MRO) -> int:
    """The rate of the *intérêts moratoires* of an invoice late from ``first_late_day``: the MRO rate
    in force on the first day of that half-year, plus 8 points, for the whole period of lateness."""
    return ecb_rate_bp(half_year_start(first_late_day), table) + MARGIN_BP


class LateCharges(msgspec.Struct, frozen=True, kw_only=True):
    """What a late payment costs the buyer on ``on`` (or on the day it paid)."""

    days_late: int
    rate_bp: int | None  # None while on time
    interest_cents: int
    indemnity_cents: int

    @property
    def total_cents(self) -> int:
        return self.interest_cents + self.indemnity_cents


ON_TIME = LateCharges(days_late=0, rate_bp=None, interest_cents=0, indemnity_cents=0)


def late_charges(amount_ttc_cents: int, due: date, *, until: date,
                 table: tuple[EcbRate, ...] = ECB_MRO) -> LateCharges:
    """Interest from the day after ``due`` to ``until`` inclusive (the day of payment, or today while
    unpaid): amount TTC × rate × days / 365, rounded half-up to the cent; plus the 40 € indemnity."""
    days = (until - due).days
    if days <= 0 or amount_ttc_cents <= 0:
        return ON_TIME
    rate = late_rate_bp(due + timedelta(days=1), table)
    interest = (Decimal(amount_ttc_cents) * rate * days / (Decimal(10_000) * 365)).quantize(
        Decimal(1), rounding=ROUND_HALF_UP)
    return LateCharges(days_late=days, rate_bp=rate, interest_cents=int(interest),
                       indemnity_cents=RECOVERY_INDEMNITY_CENTS)


# ---- amounts ----------------------------------------------------------------------------------------


class Line(msgspec.Struct, frozen=True, kw_only=True):
    """One invoice line: ``quantity`` units at ``unit_price_cents`` HT, VAT ``vat_rate_bp`` (0 under the
    franchise en base)."""

    name: str
    quantity: int
    unit_price_cents: int
    vat_rate_bp: int
    item: str | None = None
    unit_code: str = "C62"  # UN/ECE Rec. 20 « one » (a piece)

    @property
    def net_cents(self) -> int:
        return self.quantity * self.unit_price_cents


class VatBreakdown(msgspec.Struct, frozen=True, kw_only=True):
    category: str  # EN 16931 (UNCL 5305): S standard, E exempt
    rate_bp: int
    basis_cents: int
    amount_cents: int
    exemption_reason: str | None = None
    exemption_code: str | None = None


class Totals(msgspec.Struct, frozen=True, kw_only=True):
    net_cents: int  # HT
    vat_cents: int
    total_cents: int  # TTC
    vat: tuple[VatBreakdown, ...]


def _round_div(numerator: int, denominator: int) -> int:
    return int((Decimal(numerator) / denominator).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def totals(lines: tuple[Line, ...] | list[Line], regime: VatRegime) -> Totals:
    """Net per line, VAT per rate (rounded once per rate on its basis), TTC. Under the franchise en
    base every line is category E at 0 % with the 293 B mention."""
    bases: dict[int, int] = {}
    for line in lines:
        rate = 0 if regime is VatRegime.FRANCHISE_EN_BASE else line.vat_rate_bp
        bases[rate] = bases.get(rate, 0) + line.net_cents
    breakdown: list[VatBreakdown] = []
    for rate, basis in sorted(bases.items()):
        if regime is VatRegime.FRANCHISE_EN_BASE:
            breakdown.append(VatBreakdown(category="E", rate_bp=0, basis_cents=basis, amount_cents=0,
                                          exemption_reason=FRANCHISE_MENTION, exemption_code=FRANCHISE_VATEX))
        else:
            breakdown.append(VatBreakdown(category="S" if rate else "Z", rate_bp=rate, basis_cents=basis,
                                          amount_cents=_round_div(basis * rate, 10_000)))
    net = sum(line.net_cents for line in lines)
    vat = sum(b.amount_cents for b in breakdown)
    return Totals(net_cents=net, vat_cents=vat, total_cents=net + vat, vat=tuple(breakdown))


class Invoice(msgspec.Struct, frozen=True, kw_only=True):
    """An invoice or credit note as stored (``broker.db.invoices``)."""

    id: str
    kind: InvoiceKind
    number: str
    order_id: str
    preceding_id: str | None
    seller_org_id: str
    buyer_org_id: str
    issue_date: date
    status: InvoiceStatus
    vat_regime: VatRegime
    lines: tuple[Line, ...]
    quantity: int
    net_cents: int
    vat_cents: int
    total_cents: int
    credited_cents: int
    reason: str | None
    service_fait_on: date
    delay_days: int
    received_on: date | None
    due_on: date | None
    paid_on: date | None
    chorus_id: str | None
    chorus_syntax: str | None
    status_reason: str | None
    status_on: date
    overdue_at: datetime | None
    created_at: datetime
    updated_at: datetime


class InvoiceEvent(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    from_status: InvoiceStatus | None
    to_status: InvoiceStatus
    reason: str | None


def french_vat_number(siren: str) -> str:
    """The intra-community VAT number of a French SIREN: FR, a two-digit key, the SIREN (key =
    (12 + 3 × (SIREN mod 97)) mod 97)."""
    if len(siren) != 9 or not siren.isdigit():
        raise ValueError("a SIREN is 9 digits")
    return f"FR{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}"


def markdown() -> str:
    """docs/payment.md: the delays, the ECB table and the interest formula, as encoded."""
    rows = [
        "# Invoices and the payment clock", "",
        "<!-- Generated from broker/domain/invoicing.py by `python -m broker.domain.invoicing`; do not edit. -->", "",
        "| buyer | delay | text |", "|---|---|---|",
        *(f"| {d.category} | {d.days} days | {d.text} |" for d in (STATE_AND_LOCAL, HEALTH, PUBLIC_UNDERTAKING)), "",
        "The delay runs from the day Chorus Pro receives the invoice, or from the service fait (the buyer",
        "confirmed delivery) when that is later (R.2192-13). From the day after the due date to the day of",
        "payment inclusive, interest accrues on the amount TTC at the ECB main refinancing rate in force on",
        "the first day of the half-year in which the lateness began, plus 8 points "
        f"({INTEREST_TEXT}): amount × rate × days / 365, rounded half-up to the cent; plus a flat 40 € "
        f"({INDEMNITY_TEXT}).", "",
        "| ECB MRO rate from | rate |", "|---|---|",
        *(f"| {r.valid_from.isoformat()} | {r.rate_bp / 100:.2f} % |" for r in ECB_MRO), "",
    ]
    return "\n".join(rows)


if __name__ == "__main__":
    sys.stdout.write(markdown())
