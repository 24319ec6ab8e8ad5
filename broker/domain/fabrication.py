"""Workshops, requests, quotes and orders as the services see them (frozen, no ORM, no HTTP)."""

from __future__ import annotations

from datetime import date, datetime

import msgspec

from broker.domain.catalogue import ProcessStep


class MaterialLimit(msgspec.Struct, frozen=True, kw_only=True):
    material: str
    max_thickness_mm: float


class Machine(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    workshop_id: str
    process: str
    envelope_mm: tuple[float, float, float]
    materials: tuple[MaterialLimit, ...]
    hours_per_week: float


class Workshop(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    org_id: str
    name: str
    commune_insee: str
    lat: float
    lon: float
    delivery_radius_km: float
    trades: tuple[str, ...]
    labels: tuple[str, ...]
    certifications: tuple[str, ...]
    verified_labels: tuple[str, ...]
    verified_certifications: tuple[str, ...]
    paused: bool
    reserved_units: int
    orders_delivered: int
    orders_on_time: int
    recent_wins: int
    created_at: datetime

    @property
    def on_time_rate(self) -> float | None:
        return None if self.orders_delivered == 0 else self.orders_on_time / self.orders_delivered


class CumulativeOut(msgspec.Struct, frozen=True, kw_only=True):
    """The buyer's year for the request's CPV group when the request was created (euros HT)."""

    year: int
    cpv_group: str
    awarded_eur_ht: str
    open_estimates_eur_ht: str


class Procurement(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=False):
    """References a French public buyer's invoice must carry (Chorus Pro), and the procurement
    decision the request was created under (`broker.domain.procurement`, issue 17): what the buyer
    said (nature, CPV, estimate, publicity reference) and what the broker decided (procedure, the
    threshold and the rule, the cumulative need). Requests created before issue 17 have no decision."""

    buyer_siret: str
    service_code: str | None = None
    engagement_number: str | None = None
    # What the buyer's Chorus Pro structure requires: none, service, engagement,
    # service_and_engagement, service_or_engagement (INTEGRATION.md DOC-3).
    chorus_requirement: str = "none"
    nature: str = "fournitures"
    cpv: str | None = None
    estimated_value_eur_ht: str | None = None
    publicity_reference: str | None = None
    procedure: str | None = None
    threshold_eur_ht: str | None = None
    publicity_threshold_eur_ht: str | None = None
    eu_threshold_eur_ht: str | None = None
    rule: str | None = None
    cumulative: CumulativeOut | None = None
    warning: str | None = None


class Request(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    org_id: str
    item_slug: str | None
    name: str
    steps: tuple[ProcessStep, ...]
    certifications_required: tuple[str, ...]
    quantity: int
    deadline: datetime
    delivery_insee: str
    delivery_address: str
    delivery_lat: float
    delivery_lon: float
    budget_cents: int | None
    min_quotes: int
    quote_window_hours: int
    quote_deadline: datetime
    window_closed: bool
    allow_split: bool
    max_distance_km: float | None
    procurement: Procurement
    status: str
    match_state: str
    award_justification: str | None
    created_at: datetime
    nature: str | None = None
    cpv: str | None = None
    cpv_group: str | None = None
    estimated_cents: int | None = None
    procedure: str | None = None
    award_justifications: tuple[AwardJustification, ...] | None = None
    awarded_by: str | None = None
    awarded_at: datetime | None = None


class AwardJustification(msgspec.Struct, frozen=True, kw_only=True):
    """Why the buyer departed from a rule at the award: ``code`` is the refusal it answers
    (`min-quotes-not-met`, `not-lowest`, `rotation`, `invalid-quote`), ``text`` the buyer's words."""

    code: str
    text: str


class Invitation(msgspec.Struct, frozen=True, kw_only=True):
    """A workshop that matching asked to quote on a request, with why it was chosen."""

    id: str
    request_id: str
    workshop_id: str
    rank: int
    score: float
    distance_km: float
    capacity_units: int
    reasons: tuple[str, ...]
    status: str
    decline_reason: str | None
    created_at: datetime
    source: str = "matching"  # "matching", "buyer" (added by the buyer) or "consultation" (open MAPA)


class Quote(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    request_id: str
    workshop_id: str
    unit_price_cents: int
    vat_rate_bp: int
    quantity: int
    delivery_date: date
    valid_until: datetime
    note: str
    status: str
    created_at: datetime


class OrderEvent(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    kind: str
    from_status: str | None
    to_status: str | None
    units_done: int | None
    actor_org_id: str
    note: str | None


class Order(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    number: str
    request_id: str
    quote_id: str
    buyer_org_id: str
    workshop_id: str
    maker_org_id: str
    quantity: int
    unit_price_cents: int
    vat_rate_bp: int
    delivery_date: date
    status: str
    units_done: int
    tracking: str | None
    late: bool
    created_at: datetime


def totals_cents(unit_price_cents: int, quantity: int, vat_rate_bp: int) -> tuple[int, int, int]:
    """(HT, TVA, TTC) in cents; VAT rounded half-up to the cent on the line total."""
    ht = unit_price_cents * quantity
    vat = (ht * vat_rate_bp + 5_000) // 10_000
    return ht, vat, ht + vat


def euros(cents: int) -> str:
    """Cents as a decimal string in euros (``1250`` -> ``"12.50"``)."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"
