"""The award record as the renderers see it, and the ``RecordRenderer`` port.

Amounts are euro cents (HT, TVA, TTC as stored), instants are UTC; the renderer formats them (French
typography, Europe/Paris calendar). Every label a person reads that depends on the law (procedure,
justification codes) comes filled in by the service, so a renderer needs no table of its own but
the few words of its layout."""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol

import msgspec


class RecordBuyer(msgspec.Struct, frozen=True, kw_only=True):
    """The buying organisation; ``purchasing_siret`` is the SIRET the request was placed under (the
    service that orders, which may be an establishment of the organisation)."""

    name: str
    siret: str
    purchasing_siret: str
    service_code: str | None = None
    engagement_number: str | None = None


class RecordObject(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    item_slug: str | None
    quantity: int
    deadline: datetime
    delivery_insee: str
    delivery_commune: str | None
    delivery_address: str
    allow_split: bool
    min_quotes: int


class RecordCumulative(msgspec.Struct, frozen=True, kw_only=True):
    """The buyer's year for the CPV group when the request was created (R.2121-1 to R.2121-9)."""

    year: int
    cpv_group: str
    awarded_cents: int
    open_estimates_cents: int


class RecordProcurement(msgspec.Struct, frozen=True, kw_only=True):
    nature: str | None
    cpv: str | None
    cpv_label: str | None
    estimated_cents: int | None
    budget_cents: int | None
    procedure: str | None
    procedure_label: str | None
    threshold_cents: int | None  # the R.2122-8 threshold in force on the day of creation
    rule: str | None
    cumulative: RecordCumulative | None = None
    warning: str | None = None
    publicity_reference: str | None = None


class RecordInvitation(msgspec.Struct, frozen=True, kw_only=True):
    """A workshop asked to quote, why, and what it answered: ``answer`` is ``quoted``, ``declined``,
    ``withdrawn`` (its quote was withdrawn) or ``none``."""

    workshop_id: str
    workshop_name: str
    source: str  # matching, buyer, consultation
    rank: int
    score: float
    distance_km: float
    reasons: tuple[str, ...]
    status: str
    answer: str
    decline_reason: str | None = None


class RecordQuote(msgspec.Struct, frozen=True, kw_only=True):
    """One quote as it stood at the award (or now, before it): ``flags`` from
    ``broker.domain.award_rules.quote_flags``; ``lowest`` marks the valid quote(s) of lowest TTC."""

    quote_id: str
    workshop_id: str
    workshop_name: str
    status: str
    quantity: int
    unit_price_cents: int
    vat_rate_bp: int
    ht_cents: int
    vat_cents: int
    ttc_cents: int
    delivery_date: date
    valid_until: datetime
    distance_km: float | None
    flags: tuple[str, ...]
    valid: bool
    lowest: bool
    chosen: bool
    note: str = ""


class RecordOrder(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    number: str
    quote_id: str
    workshop_name: str
    quantity: int
    ht_cents: int
    ttc_cents: int
    delivery_date: date
    status: str


class RecordJustification(msgspec.Struct, frozen=True, kw_only=True):
    """``code`` is the rule departed from, ``label`` its French wording, ``text`` the buyer's words."""

    code: str | None
    label: str
    text: str


class AwardRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The « rapport de présentation / note de choix » of one request. Before the award ``orders``
    and ``justifications`` are empty and ``awarded_at`` is None."""

    request_id: str
    reference: str  # short, for file names and titles
    status: str
    generated_at: datetime
    created_at: datetime
    quote_deadline: datetime
    window_closed: bool
    buyer: RecordBuyer
    object: RecordObject
    procurement: RecordProcurement
    invitations: tuple[RecordInvitation, ...]
    quotes: tuple[RecordQuote, ...]
    orders: tuple[RecordOrder, ...]
    justifications: tuple[RecordJustification, ...]
    awarded_at: datetime | None = None
    awarded_by: str | None = None

    @property
    def awarded(self) -> bool:
        return bool(self.orders)


class RecordRenderer(Protocol):
    media_type: str

    def render(self, record: AwardRecord) -> bytes:
        """The record as a document of ``media_type``, deterministic for the same record."""
