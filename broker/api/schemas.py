"""Request and response Structs of the HTTP API. Inputs forbid unknown fields and carry bounds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from broker.domain.access import ApiKey, Organisation, OrgKind, Role
from broker.domain.catalogue import Process
from broker.domain.fabrication import AwardJustification, Procurement
from broker.domain.invoicing import VatRegime
from broker.domain.lifecycle import OrderStatus
from broker.errors import Rejected

Name = Annotated[str, Meta(min_length=1, max_length=200)]
Siret = Annotated[str, Meta(min_length=14, max_length=14, pattern=r"^\d{14}$", description="14 digits, Luhn-checked")]
Insee = Annotated[
    str, Meta(min_length=5, max_length=5, pattern=r"^(\d{5}|2[ABab]\d{3})$", description="INSEE (COG) commune code")
]
Label = Annotated[str, Meta(max_length=200)]

#: Every date-time of a request body carries its UTC offset (``Z`` or ``+02:00``): one without is
#: refused (422) rather than guessed, and dates far from now are refused too (issue 18, F4).
_OFFSET_REQUIRED = "avec son décalage horaire (`Z` ou `+02:00`) ; sans décalage, elle est refusée (422)"
Deadline = Annotated[datetime, Meta(description=f"échéance, {_OFFSET_REQUIRED}, à moins de 5 ans d’aujourd’hui")]
ValidUntil = Annotated[datetime, Meta(description=f"fin de validité, {_OFFSET_REQUIRED}, à moins de 5 ans")]
Since = Annotated[datetime, Meta(description=f"renvoie les messages en échec créés à partir de cette date, "
                                             f"{_OFFSET_REQUIRED}, après le 1er janvier 2000")]
DATE_HORIZON = timedelta(days=5 * 366)
SINCE_FLOOR = datetime(2000, 1, 1, tzinfo=UTC)


def check_instant(value: datetime | None, pointer: str, *, floor: datetime | None = None) -> None:
    """Refuse (422, with the field's pointer) a date-time without offset, or one outside
    [``floor`` or now - 5 years, now + 5 years]. Compared as aware date-times: no conversion, so
    ``9999-12-31T23:59:59-14:00`` cannot overflow here."""
    if value is None:
        return
    if value.tzinfo is None or value.utcoffset() is None:
        raise Rejected(
            "la date n’indique pas de décalage horaire : ajoutez `Z` (UTC) ou `+02:00` (heure de Paris en été)",
            pointer=pointer,
        )
    now = datetime.now(UTC)
    low = floor if floor is not None else now - DATE_HORIZON
    if not low <= value <= now + DATE_HORIZON:
        bounds = "entre le 1er janvier 2000 et dans 5 ans" if floor is not None else "à moins de 5 ans d’aujourd’hui"
        raise Rejected(f"la date est hors de la plage acceptée\u202f: elle doit tomber {bounds}", pointer=pointer)


class Input(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every request body: unknown fields are an error (no mass assignment)."""


# ---- organisations and keys -------------------------------------------------------------------


class OrganizationKindIn(StrEnum):
    """The kinds an admin may create (the operator's own organisation is made at bootstrap)."""

    COLLECTIVITE = "collectivite"
    MANUFACTURE = "manufacture"
    COORDINATION = "coordination"
    INTEGRATOR = "integrator"


#: A plain address (no display name, no list): where notifications are e-mailed.
_EMAIL = r"^[^@\s<>,;\"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$"
Email = Annotated[str, Meta(max_length=254, pattern=_EMAIL,
                            description="notifications (new invitation, new quote, endpoint disabled) go here")]


VatRegimeIn = Annotated[VatRegime, Meta(description="normal, or franchise_en_base (CGI art. 293 B: invoices "
                                                     "without VAT, with the mention)")]
LegalForm = Annotated[str, Meta(pattern=r"^\d{4}$", description="INSEE catégorie juridique, level III (7210 commune, "
                                                                 "7364 établissement d'hospitalisation…): sets a "
                                                                 "buyer's payment delay")]
Iban = Annotated[str, Meta(min_length=15, max_length=42, pattern=r"^[A-Za-z]{2}[0-9]{2}[A-Za-z0-9 ]{11,38}$",
                           description="where the organisation is paid (ISO 13616, check digits verified)")]


class OrganizationIn(Input):
    kind: OrganizationKindIn
    name: Name
    siret: Siret
    commune_insee: Insee
    contact_email: Email | None = None
    vat_regime: VatRegimeIn = VatRegime.NORMAL
    legal_form: LegalForm | None = None
    iban: Iban | None = None


class OrganizationPatch(Input):
    """The fields to change; an absent field is kept, null clears an optional one."""

    contact_email: Email | msgspec.UnsetType | None = msgspec.UNSET
    vat_regime: VatRegimeIn | msgspec.UnsetType = msgspec.UNSET
    legal_form: LegalForm | msgspec.UnsetType | None = msgspec.UNSET
    iban: Iban | msgspec.UnsetType | None = msgspec.UNSET


class OrganizationOut(msgspec.Struct, kw_only=True):
    id: str
    kind: OrgKind
    name: str
    siret: str
    commune_insee: str
    contact_email: str | None = None
    vat_regime: VatRegime = VatRegime.NORMAL
    legal_form: str | None = None
    iban: str | None = None

    @classmethod
    def of(cls, org: Organisation) -> OrganizationOut:
        return cls(id=org.id, kind=org.kind, name=org.name, siret=org.siret, commune_insee=org.commune_insee,
                   contact_email=org.contact_email, vat_regime=VatRegime(org.vat_regime), legal_form=org.legal_form,
                   iban=org.iban)


class OrganizationPage(msgspec.Struct, kw_only=True):
    items: list[OrganizationOut]
    next_cursor: str | None


class ApiKeyIn(Input):
    role: Role
    label: Label = ""


class ApiKeyCreated(msgspec.Struct, kw_only=True):
    id: str
    key: str
    prefix: str
    role: Role
    label: str


class ApiKeyOut(msgspec.Struct, kw_only=True):
    id: str
    prefix: str
    role: Role
    label: str
    revoked: bool

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        return cls(id=key.id, prefix=key.prefix, role=key.role, label=key.label, revoked=key.revoked)


class ApiKeyList(msgspec.Struct, kw_only=True):
    items: list[ApiKeyOut]
    next_cursor: str | None = None


# ---- communes ---------------------------------------------------------------------------------


class CommuneOut(msgspec.Struct, kw_only=True):
    insee: str
    name: str
    department: str
    region: str
    population: int | None
    lat: float
    lon: float
    postcodes: list[str]


class CommuneList(msgspec.Struct, kw_only=True):
    items: list[CommuneOut]
    next_cursor: str | None = None


# ---- audit and health -------------------------------------------------------------------------


class AuditEntryOut(msgspec.Struct, kw_only=True):
    id: int
    at: datetime
    org_id: str | None
    key_prefix: str | None
    role: str | None
    action: str
    resource_type: str | None
    resource_id: str | None
    status_code: int
    request_id: str
    detail: dict[str, Any] | None = None  # e.g. an award's justifications: {"justifications": [...]}


class AuditPage(msgspec.Struct, kw_only=True):
    items: list[AuditEntryOut]
    next_cursor: str | None


class Health(msgspec.Struct, kw_only=True):
    status: str
    checks: dict[str, str]


# ---- workshops and catalogue ------------------------------------------------------------------

Slug = Annotated[str, Meta(min_length=1, max_length=60, pattern=r"^[a-z0-9][a-z0-9-]*$")]
Tag = Annotated[str, Meta(min_length=1, max_length=60, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
Mm = Annotated[float, Meta(gt=0, le=20_000)]
Thickness = Annotated[float, Meta(gt=0, le=500)]


class MaterialIn(Input):
    material: Tag
    max_thickness_mm: Thickness


class WorkshopIn(Input):
    commune_insee: Insee
    delivery_radius_km: Annotated[float, Meta(gt=0, le=1000)]
    trades: Annotated[list[Tag], Meta(max_length=20)] = []
    labels: Annotated[list[Tag], Meta(max_length=20)] = []
    certifications: Annotated[list[Tag], Meta(max_length=20)] = []
    paused: bool = False


class MachineIn(Input):
    process: Process
    envelope_mm: Annotated[list[Mm], Meta(min_length=3, max_length=3)]
    materials: Annotated[list[MaterialIn], Meta(min_length=1, max_length=30)]
    hours_per_week: Annotated[float, Meta(ge=0, le=168)]


class MaterialOut(msgspec.Struct, kw_only=True):
    material: str
    max_thickness_mm: float


class MachineOut(msgspec.Struct, kw_only=True):
    id: str
    process: str
    envelope_mm: list[float]
    materials: list[MaterialOut]
    hours_per_week: float


class CapacityIn(Input):
    units_per_day: Annotated[float, Meta(ge=0, le=1_000_000)]


class CapacityOut(msgspec.Struct, kw_only=True):
    workshop_id: str
    item: str
    units_per_day: float


class VerificationIn(Input):
    labels: Annotated[list[Tag], Meta(max_length=20)] = []
    certifications: Annotated[list[Tag], Meta(max_length=20)] = []


class WorkshopOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    org_id: str
    name: str
    commune_insee: str
    lat: float
    lon: float
    delivery_radius_km: float
    trades: list[str]
    labels: list[str]
    certifications: list[str]
    verified_labels: list[str]
    verified_certifications: list[str]
    paused: bool
    on_time_rate: float | None
    machines: list[MachineOut]
    capacities: dict[str, float] | None = None
    reserved_units: int | None = None


class WorkshopPage(msgspec.Struct, kw_only=True):
    items: list[WorkshopOut]
    next_cursor: str | None


class StepIO(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    process: Process
    material: Tag
    thickness_mm: Thickness
    part_size_mm: Annotated[list[Mm], Meta(min_length=3, max_length=3)]
    minutes_per_unit: Annotated[float, Meta(gt=0, le=100_000)]


class CatalogueItemIO(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    slug: Slug
    name: Name
    description: Annotated[str, Meta(max_length=4000)]
    licence: Annotated[str, Meta(min_length=1, max_length=100)]
    steps: Annotated[list[StepIO], Meta(min_length=1, max_length=20)]
    certifications_required: Annotated[list[Tag], Meta(max_length=10)] = []
    files: Annotated[list[Annotated[str, Meta(max_length=300)]], Meta(max_length=20)] = []


class CatalogueList(msgspec.Struct, kw_only=True):
    items: list[CatalogueItemIO]
    next_cursor: str | None = None


# ---- requests, invitations, quotes, orders -----------------------------------------------------

Money = Annotated[str, Meta(pattern=r"^\d{1,9}(\.\d{1,2})?$", description='euros, decimal string: "12.50"')]
VatRate = Annotated[str, Meta(pattern=r"^\d{1,2}(\.\d{1,2})?$", description='percent: "20", "5.5"')]
Quantity = Annotated[int, Meta(ge=1, le=10_000_000)]


class CustomSpecIn(Input):
    name: Name
    steps: Annotated[list[StepIO], Meta(min_length=1, max_length=20)]
    certifications_required: Annotated[list[Tag], Meta(max_length=10)] = []


class DeliveryIn(Input):
    commune_insee: Insee
    address: Annotated[str, Meta(max_length=300)] = ""


ChorusRequirementIn = Literal["none", "service", "engagement", "service_and_engagement", "service_or_engagement"]


NatureIn = Literal["fournitures", "services", "travaux"]
CpvIn = Annotated[str, Meta(min_length=1, max_length=12, description="CPV : 39130000-2")]


class ProcurementIn(Input):
    buyer_siret: Siret
    chorus_requirement: ChorusRequirementIn = "none"
    service_code: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    engagement_number: Annotated[str, Meta(min_length=1, max_length=50)] | None = None
    nature: NatureIn = "fournitures"
    cpv: CpvIn | None = None  # defaults to the catalogue item's CPV
    estimated_value_eur_ht: Money | None = None  # defaults to budget_eur_ht; one of them is required
    publicity_reference: Annotated[str, Meta(min_length=1, max_length=200)] | None = None


class RequestIn(Input):
    quantity: Quantity
    deadline: Deadline
    delivery: DeliveryIn
    procurement: ProcurementIn
    item: Slug | None = None
    custom: CustomSpecIn | None = None
    budget_eur_ht: Money | None = None
    min_quotes: Annotated[int, Meta(ge=1, le=20)] = 3
    quote_window_hours: Annotated[int, Meta(ge=1, le=24 * 60)] = 72
    allow_split: bool = False
    max_distance_km: Annotated[float, Meta(gt=0, le=2000)] | None = None

    def __post_init__(self) -> None:
        check_instant(self.deadline, "/deadline")


class RequestOut(msgspec.Struct, kw_only=True):
    id: str
    status: str
    item: str | None
    name: str
    quantity: int
    deadline: datetime
    delivery: dict[str, str]
    budget_eur_ht: str | None
    min_quotes: int
    quote_window_hours: int
    quote_deadline: datetime
    window_closed: bool
    allow_split: bool
    max_distance_km: float | None
    procurement: Procurement
    match_state: str
    steps: list[StepIO]
    certifications_required: list[str]
    award_justification: str | None
    created_at: datetime
    invited: int | None = None
    # The award record (issue 17): one justification per award rule the choice departed from
    # (`code`: min-quotes-not-met, not-lowest, rotation, invalid-quote), the deciding key's label.
    award_justifications: list[AwardJustification] | None = None
    awarded_by: str | None = None
    awarded_at: datetime | None = None


class RequestPage(msgspec.Struct, kw_only=True):
    items: list[RequestOut]
    next_cursor: str | None


class MatchReasonOut(msgspec.Struct, kw_only=True):
    code: str
    message: str


class MatchIncludedOut(msgspec.Struct, kw_only=True):
    workshop_id: str
    rank: int
    score: float
    distance_km: float
    capacity_units: int
    components: dict[str, float]
    reasons: list[str]
    invited: bool


class MatchExcludedOut(msgspec.Struct, kw_only=True):
    workshop_id: str
    distance_km: float
    reasons: list[MatchReasonOut]


class MatchesOut(msgspec.Struct, kw_only=True):
    state: str
    eligible: int
    considered: int
    working_days: int
    included: list[MatchIncludedOut]
    excluded: list[MatchExcludedOut]
    exclusion_counts: dict[str, int]


class InvitationOut(msgspec.Struct, kw_only=True):
    id: str
    request_id: str
    status: str
    rank: int
    score: float
    distance_km: float
    capacity_units: int
    reasons: list[str]
    request: dict[str, object]
    created_at: datetime
    # Why the workshop may quote: chosen by `matching`, added by the `buyer`, or answering an open
    # `consultation` (procédure adaptée).
    source: str = "matching"


class InvitationPage(msgspec.Struct, kw_only=True):
    items: list[InvitationOut]
    next_cursor: str | None


class DeclineIn(Input):
    reason: Annotated[str, Meta(min_length=1, max_length=1000)]


class QuoteIn(Input):
    unit_price_eur_ht: Money
    vat_rate: VatRate
    quantity: Quantity
    delivery_date: date
    valid_until: ValidUntil | None = None
    note: Annotated[str, Meta(max_length=2000)] = ""

    def __post_init__(self) -> None:
        check_instant(self.valid_until, "/valid_until")


class QuoteOut(msgspec.Struct, kw_only=True):
    id: str
    request_id: str
    workshop_id: str
    status: str
    unit_price_eur_ht: str
    vat_rate: str
    quantity: int
    delivery_date: date
    valid_until: datetime
    note: str
    total_eur_ht: str
    total_vat_eur: str
    total_eur_ttc: str
    created_at: datetime


class QuoteComparedOut(msgspec.Struct, kw_only=True):
    quote: QuoteOut
    workshop_name: str
    workshop_commune_insee: str
    distance_km: float | None
    on_time_rate: float | None
    orders_delivered: int
    # Why the quote is not valid for the award (`late`, `partial`, `expired`); `valid`: open
    # (`submitted`) and no flag. Awarding an invalid open quote needs a justification.
    flags: list[str]
    valid: bool


class QuoteList(msgspec.Struct, kw_only=True):
    items: list[QuoteComparedOut]
    next_cursor: str | None = None
    # The valid quote with the lowest unit price TTC (the lowest total TTC when the request may not
    # be split): passing it over needs a justification.
    lowest_valid_quote_id: str | None = None


class AwardIn(Input):
    quote_ids: Annotated[list[Annotated[str, Meta(max_length=64)]], Meta(min_length=1, max_length=50)]
    justification: Annotated[str, Meta(max_length=4000)] | None = None


class OrderHistoryOut(msgspec.Struct, kw_only=True):
    at: datetime
    kind: str
    from_status: str | None
    to_status: str | None
    units_done: int | None
    note: str | None


class OrderOut(msgspec.Struct, kw_only=True):
    id: str
    number: str
    request_id: str
    quote_id: str
    workshop_id: str
    buyer_org_id: str
    quantity: int
    unit_price_eur_ht: str
    vat_rate: str
    total_eur_ht: str
    total_eur_ttc: str
    delivery_date: date
    status: str
    units_done: int
    tracking: str | None
    late: bool
    created_at: datetime
    history: list[OrderHistoryOut]


class OrderPage(msgspec.Struct, kw_only=True):
    items: list[OrderOut]
    next_cursor: str | None


class AwardOut(msgspec.Struct, kw_only=True):
    request_id: str
    orders: list[OrderOut]


class TransitionIn(Input):
    to: OrderStatus
    note: Annotated[str, Meta(max_length=2000)] | None = None
    tracking: Annotated[str, Meta(max_length=200)] | None = None


class ProgressIn(Input):
    units_done: Annotated[int, Meta(ge=0, le=10_000_000)]


# ---- webhooks and events -----------------------------------------------------------------------


class WebhookEndpointIn(Input):
    url: Annotated[str, Meta(min_length=8, max_length=2000)]
    event_types: Annotated[list[Annotated[str, Meta(max_length=60)]], Meta(max_length=50)] = []


class WebhookEndpointOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    url: str
    event_types: list[str]
    status: str
    created_at: datetime
    secret: str | None = None
    disabled_reason: str | None = None  # when `status` is `disabled`: 410 Gone, or five failing days (RT-3)


class RecoverIn(Input):
    since: Since

    def __post_init__(self) -> None:
        check_instant(self.since, "/since", floor=SINCE_FLOOR)


class RecoverOut(msgspec.Struct, kw_only=True):
    endpoint_id: str
    since: datetime
    requeued: int


class WebhookEndpointList(msgspec.Struct, kw_only=True):
    items: list[WebhookEndpointOut]
    next_cursor: str | None = None


class SecretRollIn(Input):
    grace_hours: Annotated[int, Meta(ge=0, le=168)] = 24


class SecretOut(msgspec.Struct, kw_only=True):
    secret: str
    previous_valid_until: datetime | None


class WebhookAttemptOut(msgspec.Struct, kw_only=True):
    attempt: int
    at: datetime
    status_code: int | None
    latency_ms: float
    response_excerpt: str
    error: str | None
    outcome: str


class WebhookDeliveryOut(msgspec.Struct, kw_only=True):
    id: str
    webhook_id: str
    event_type: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    created_at: datetime
    history: list[WebhookAttemptOut]


class WebhookDeliveryList(msgspec.Struct, kw_only=True):
    items: list[WebhookDeliveryOut]
    next_cursor: str | None = None


class Accepted(msgspec.Struct, kw_only=True):
    id: str
    state: str


class EventOut(msgspec.Struct, kw_only=True):
    id: str
    type: str
    timestamp: datetime
    data: dict[str, object]


class EventPage(msgspec.Struct, kw_only=True):
    items: list[EventOut]
    next_cursor: str | None


# ---- open consultations and invitations added by the buyer (issue 17) ----------------------------


class ConsultationRequestOut(msgspec.Struct, kw_only=True):
    """The request of an open consultation, as a workshop sees it before quoting."""

    name: str
    item: str | None
    quantity: int
    allow_split: bool
    deadline: datetime
    delivery_commune_insee: str
    quote_deadline: datetime
    status: str
    procedure: str | None
    nature: str | None
    cpv: str | None
    cpv_label: str | None
    estimated_value_eur_ht: str | None
    publicity_reference: str | None


class ConsultationOut(msgspec.Struct, kw_only=True):
    """An open consultation (MAPA) the workshop may quote on (`POST /v1/requests/{id}/quotes`).
    ``invited``: it already holds an invitation (``invitation_id``) from matching, the buyer or an
    earlier quote; the figures and ``reasons`` (French) are the matching engine's."""

    request_id: str
    invited: bool
    invitation_id: str | None
    distance_km: float
    capacity_units: int
    score: float
    reasons: list[str]
    request: ConsultationRequestOut


class ConsultationPage(msgspec.Struct, kw_only=True):
    items: list[ConsultationOut]
    next_cursor: str | None


class InvitationAddIn(Input):
    workshop_id: Annotated[str, Meta(min_length=1, max_length=64)]


class AddedInvitationOut(msgspec.Struct, kw_only=True):
    """An invitation the buyer added: ``source`` is ``buyer``; rank 0 (outside matching's ranking)."""

    id: str
    request_id: str
    workshop_id: str
    workshop_name: str
    workshop_commune_insee: str
    source: str
    status: str
    rank: int
    score: float
    distance_km: float
    capacity_units: int
    reasons: list[str]
    created_at: datetime
