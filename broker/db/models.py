"""ORM rows (suffix ``Row``); never returned from the API, mapped to domain Structs by repositories."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ColumnElement,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    literal_column,
    text,
)
from sqlalchemy.orm import Mapped, QueryableAttribute, mapped_column, relationship

from broker.db.base import Base, JSONType, UTCDateTime, new_id

BigIntId = BigInteger().with_variant(Integer(), "sqlite")


def is_pending(column: QueryableAttribute[str]) -> ColumnElement[bool]:
    """``column = 'pending'`` with the value written into the SQL, as the partial indexes' predicates
    are (``ix_fab_request_match_pending``, ``ix_outbox_event_pending``): PostgreSQL cannot prove a
    partial index's predicate from a parameter (``state = $1``), so a generic plan (made after five
    executions of a prepared statement) would not use the index, and read and sort every row instead."""
    return column == literal_column("'pending'")


class OrganizationRow(Base):
    __tablename__ = "organization"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    siret: Mapped[str] = mapped_column(String(14), unique=True)
    commune_insee: Mapped[str] = mapped_column(String(5))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Where notifications (new invitation, new quote, endpoint disabled) are e-mailed; none if unset.
    contact_email: Mapped[str | None] = mapped_column(String(254), nullable=True, default=None)
    # Invoicing (issue 23): the seller's VAT regime (CGI art. 293 B), the INSEE legal form (catégorie
    # juridique, level III: the buyer's payment delay), the seller's IBAN for credit transfers.
    vat_regime: Mapped[str] = mapped_column(String(20), default="normal", server_default="normal")
    legal_form: Mapped[str | None] = mapped_column(String(4), nullable=True, default=None)
    iban: Mapped[str | None] = mapped_column(String(34), nullable=True, default=None)


class ApiKeyRow(Base):
    __tablename__ = "api_key"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    organization: Mapped[OrganizationRow] = relationship(lazy="raise", viewonly=False)  # orders the INSERTs


class AuditLogRow(Base):
    """Append-only (triggers in the migration refuse UPDATE and DELETE on both engines)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    org_id: Mapped[str | None] = mapped_column(String(36), index=True, nullable=True)
    api_key_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    key_prefix: Mapped[str | None] = mapped_column(String(32), nullable=True)
    role: Mapped[str | None] = mapped_column(String(20), nullable=True)
    action: Mapped[str] = mapped_column(String(200))
    resource_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    resource_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    status_code: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[str] = mapped_column(String(36))
    detail: Mapped[dict[str, object] | None] = mapped_column(JSONType, nullable=True)


class IdempotencyRow(Base):
    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("org_id", "method", "route", "key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(String(36))
    method: Mapped[str] = mapped_column(String(10))
    route: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class OutboxRow(Base):
    """An event committed with its state change; the relay (workers) delivers it at least once."""

    __tablename__ = "outbox_event"
    __table_args__ = (
        UniqueConstraint("resource_type", "resource_id", "sequence"),
        # the relay's pending events in their order (migration 0010)
        Index("ix_outbox_event_pending", "created_at", "id", postgresql_where=text("state = 'pending'"),
              sqlite_where=text("state = 'pending'")),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    org_id: Mapped[str] = mapped_column(String(36), index=True)
    # The other party of the event, when there is one (the maker of an order): it sees the event too.
    partner_org_id: Mapped[str | None] = mapped_column(String(36), index=True, nullable=True)
    type: Mapped[str] = mapped_column(String(60))
    resource_type: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[str] = mapped_column(String(36))
    sequence: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict[str, object]] = mapped_column(JSONType)
    state: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


# ---- workshops and catalogue (issue 5) --------------------------------------------------------


class WorkshopRow(Base):
    """A manufacture's workshop profile (one per organisation of kind ``manufacture``).

    ``reserved_units`` is the capacity booked by active orders; awards raise it with a single
    conditional UPDATE so that no workshop is ever booked beyond its capacity."""

    __tablename__ = "workshop"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    commune_insee: Mapped[str] = mapped_column(String(5))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    delivery_radius_km: Mapped[float] = mapped_column(Float)
    trades: Mapped[list[str]] = mapped_column(JSONType, default=list)
    labels: Mapped[list[str]] = mapped_column(JSONType, default=list)
    certifications: Mapped[list[str]] = mapped_column(JSONType, default=list)
    verified_labels: Mapped[list[str]] = mapped_column(JSONType, default=list)
    verified_certifications: Mapped[list[str]] = mapped_column(JSONType, default=list)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    reserved_units: Mapped[int] = mapped_column(Integer, default=0)
    orders_delivered: Mapped[int] = mapped_column(Integer, default=0)
    orders_on_time: Mapped[int] = mapped_column(Integer, default=0)
    recent_wins: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    organization: Mapped[OrganizationRow] = relationship(lazy="raise", viewonly=False)  # orders the INSERTs


class MachineRow(Base):
    __tablename__ = "machine"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workshop_id: Mapped[str] = mapped_column(ForeignKey("workshop.id"), index=True)
    process: Mapped[str] = mapped_column(String(40))
    envelope_mm: Mapped[list[float]] = mapped_column(JSONType)
    materials: Mapped[list[dict[str, object]]] = mapped_column(JSONType)
    hours_per_week: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    workshop: Mapped[WorkshopRow] = relationship(lazy="raise", viewonly=False)  # orders the INSERTs


class WorkshopCapacityRow(Base):
    __tablename__ = "workshop_capacity"
    __table_args__ = (UniqueConstraint("workshop_id", "item_slug"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workshop_id: Mapped[str] = mapped_column(ForeignKey("workshop.id"), index=True)
    item_slug: Mapped[str] = mapped_column(ForeignKey("catalogue_item.slug"))
    units_per_day: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    workshop: Mapped[WorkshopRow] = relationship(lazy="raise", viewonly=False)  # orders the INSERTs


class CatalogueItemRow(Base):
    __tablename__ = "catalogue_item"

    slug: Mapped[str] = mapped_column(String(60), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    licence: Mapped[str] = mapped_column(String(100))
    steps: Mapped[list[dict[str, object]]] = mapped_column(JSONType)
    certifications_required: Mapped[list[str]] = mapped_column(JSONType, default=list)
    files: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


# ---- requests, invitations, quotes, orders (issue 5) ------------------------------------------


class RequestRow(Base):
    __tablename__ = "fab_request"
    __table_args__ = (
        # What the matching jobs look for: the few requests not matched yet, oldest first.
        Index(
            "ix_fab_request_match_pending",
            "created_at",
            postgresql_where=text("match_state = 'pending'"),
            sqlite_where=text("match_state = 'pending'"),
        ),
        # The cumulative need of a buyer for a CPV group in a civil year (issue 17).
        Index("ix_fab_request_org_cpv_group", "org_id", "cpv_group", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), index=True)
    item_slug: Mapped[str | None] = mapped_column(String(60), nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    steps: Mapped[list[dict[str, object]]] = mapped_column(JSONType)
    certifications_required: Mapped[list[str]] = mapped_column(JSONType, default=list)
    quantity: Mapped[int] = mapped_column(Integer)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    delivery_insee: Mapped[str] = mapped_column(String(5))
    delivery_address: Mapped[str] = mapped_column(String(300))
    delivery_lat: Mapped[float] = mapped_column(Float)
    delivery_lon: Mapped[float] = mapped_column(Float)
    budget_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    min_quotes: Mapped[int] = mapped_column(Integer)
    quote_window_hours: Mapped[int] = mapped_column(Integer)
    quote_deadline: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    window_closed: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_split: Mapped[bool] = mapped_column(Boolean, default=False)
    max_distance_km: Mapped[float | None] = mapped_column(Float, nullable=True)
    procurement: Mapped[dict[str, object]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(20), index=True)
    match_state: Mapped[str] = mapped_column(String(10))
    # json, not jsonb, on PostgreSQL: written whole once per request by the worker and read whole,
    # never queried inside; json stores the text as it comes (with lz4 where the server has it,
    # migration 0009), where jsonb parsed and pglz-compressed ~20 KB per request (~4x the CPU).
    match_result: Mapped[dict[str, object] | None] = mapped_column(JSON(), nullable=True)
    award_justification: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Public procurement (issue 17, migration 0011): what the procedure is decided on and summed by
    # (`broker.domain.procurement`); the decision itself is in ``procurement``. Null on older rows.
    nature: Mapped[str | None] = mapped_column(String(12), nullable=True)
    cpv: Mapped[str | None] = mapped_column(String(10), nullable=True)
    cpv_group: Mapped[str | None] = mapped_column(String(3), nullable=True)
    estimated_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    procedure: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # [{"code": "min-quotes-not-met" | "not-lowest" | "rotation" | "invalid-quote", "text": ...}], set by the award
    award_justifications: Mapped[list[dict[str, object]] | None] = mapped_column(JSONType, nullable=True)
    awarded_by: Mapped[str | None] = mapped_column(String(200), nullable=True)  # the deciding key's label
    awarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    organization: Mapped[OrganizationRow] = relationship(lazy="raise", viewonly=False)  # orders the INSERTs


class InvitationRow(Base):
    __tablename__ = "invitation"
    __table_args__ = (UniqueConstraint("request_id", "workshop_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # no index of its own: the unique (request_id, workshop_id) serves lookups by request
    request_id: Mapped[str] = mapped_column(ForeignKey("fab_request.id"))
    workshop_id: Mapped[str] = mapped_column(ForeignKey("workshop.id"), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    distance_km: Mapped[float] = mapped_column(Float)
    capacity_units: Mapped[int] = mapped_column(Integer)
    reasons: Mapped[list[str]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(12), default="invited")
    decline_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Why the workshop may quote: "matching" (chosen by the engine), "buyer" (added by the buyer, sans
    # publicité) or "consultation" (answered an open MAPA consultation).
    source: Mapped[str] = mapped_column(String(12), default="matching", server_default="matching")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    request: Mapped[RequestRow] = relationship(lazy="raise", viewonly=False)  # orders the INSERTs


class QuoteRow(Base):
    __tablename__ = "quote"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    request_id: Mapped[str] = mapped_column(ForeignKey("fab_request.id"), index=True)
    workshop_id: Mapped[str] = mapped_column(ForeignKey("workshop.id"), index=True)
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)
    vat_rate_bp: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(Integer)
    delivery_date: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime())
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    request: Mapped[RequestRow] = relationship(lazy="raise", viewonly=False)  # orders the INSERTs


class OrderRow(Base):
    __tablename__ = "fab_order"
    # A buyer's awards by date: the cumulative need and the rotation rule (issue 17); the day's awards
    # of every workshop: matching's fairness term over 12 months (`broker.services.matching`).
    __table_args__ = (Index("ix_fab_order_buyer_created", "buyer_org_id", "created_at"),
                      Index("ix_fab_order_created_at", "created_at"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    number: Mapped[str] = mapped_column(String(30), unique=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("fab_request.id"), index=True)
    quote_id: Mapped[str] = mapped_column(ForeignKey("quote.id"), unique=True)
    buyer_org_id: Mapped[str] = mapped_column(String(36), index=True)
    workshop_id: Mapped[str] = mapped_column(ForeignKey("workshop.id"), index=True)
    maker_org_id: Mapped[str] = mapped_column(String(36), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)
    vat_rate_bp: Mapped[int] = mapped_column(Integer)
    delivery_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), index=True)
    units_done: Mapped[int] = mapped_column(Integer, default=0)
    tracking: Mapped[str | None] = mapped_column(String(200), nullable=True)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    quote: Mapped[QuoteRow] = relationship(lazy="raise", viewonly=False)  # orders the INSERTs


class OrderEventRow(Base):
    """The order's history: every status change and progress report, append-only."""

    __tablename__ = "order_event"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("fab_order.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    units_done: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor_org_id: Mapped[str] = mapped_column(String(36))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    order: Mapped[OrderRow] = relationship(lazy="raise", viewonly=False)  # orders the INSERTs


# ---- webhooks (issue 6) ------------------------------------------------------------------------


class WebhookEndpointRow(Base):
    """A receiver of an organisation's events. Secrets are stored encrypted (Fernet, key derived
    from BROKER_SECRET_KEY); during a roll the previous secret signs too until ``previous_until``."""

    __tablename__ = "webhook_endpoint"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[list[str]] = mapped_column(JSONType, default=list)
    secret_enc: Mapped[str] = mapped_column(Text)
    previous_secret_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    previous_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    status: Mapped[str] = mapped_column(String(12), default="active")
    disabled_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # First failed attempt since the last success (RT-3: five days of failures disable the endpoint).
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    organization: Mapped[OrganizationRow] = relationship(lazy="raise")


class WebhookDeliveryRow(Base):
    """One event for one endpoint. ``payload`` is the exact bytes signed and sent on every attempt;
    ``webhook_id`` is the same on every attempt and replay (receivers deduplicate on it)."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "outbox_id"),
        Index("ix_webhook_delivery_state_next", "state", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoint.id"), index=True)
    outbox_id: Mapped[str] = mapped_column(ForeignKey("outbox_event.id"))
    org_id: Mapped[str] = mapped_column(String(36), index=True)
    webhook_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(60))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    endpoint: Mapped[WebhookEndpointRow] = relationship(lazy="raise")
    outbox: Mapped[OutboxRow] = relationship(lazy="raise")


class WebhookAttemptRow(Base):
    __tablename__ = "webhook_attempt"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_delivery.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float)
    response_excerpt: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    outcome: Mapped[str] = mapped_column(String(12))
    delivery: Mapped[WebhookDeliveryRow] = relationship(lazy="raise")


class DecpRecordRow(Base):
    """One DECP "marché" (données essentielles, arrêté du 22 décembre 2022) per award at or above
    the publication threshold; ``marche`` is the record in the official JSON form (schema 2.0.3).
    It must be published within two months of notification (``due_on``)."""

    __tablename__ = "decp_record"
    __table_args__ = (
        Index("ix_decp_record_org_year", "org_id", "year"),
        Index("ix_decp_record_due", "due_on", postgresql_where=text("published_at IS NULL"),
              sqlite_where=text("published_at IS NULL")),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organization.id"))
    request_id: Mapped[str] = mapped_column(ForeignKey("fab_request.id"), unique=True)
    year: Mapped[int] = mapped_column(Integer)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    notified_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    marche: Mapped[dict[str, object]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RegistryVersionRow(Base):
    """Counters bumped, in the same transaction, by every change that matching sees: ``workshops``
    for profiles, machines, capacities, verification and pauses; ``bookings`` for reservations and
    releases (awards, crisis commitments, deliveries, cancellations). Processes cache their candidate
    index per version: a new ``workshops`` rebuilds it, a new ``bookings`` only refreshes its reserved
    units, on-time rates and recent wins (~25 ms at 10,000 workshops instead of ~2 s: the booking
    columns, the count of cancelled orders, and the awards made since the day began, added to a
    daily sum of the 12-month window; `broker.services.matching.CandidateCache`)."""

    __tablename__ = "registry_version"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), default=0)


# ---- crisis calls (issue 7) --------------------------------------------------------------------


class CrisisCallRow(Base):
    """A coordinator's urgent batch call: one catalogue item, many delivery points.

    ``revision`` moves with every change of the allocation (creation, new points, raised
    quantities, rebalances); a rebalance is keyed by it, so a job that runs twice records one
    rebalance. ``rebalance_due_at`` is set by what calls for a rebalance (a decline, an expiry, a
    lag) and cleared by the rebalance; the worker's sweep picks the calls where it is set."""

    __tablename__ = "crisis_call"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), index=True)
    item_slug: Mapped[str] = mapped_column(ForeignKey("catalogue_item.slug"))
    name: Mapped[str] = mapped_column(String(200))
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    priority: Mapped[int] = mapped_column(Integer)
    max_distance_km: Mapped[float | None] = mapped_column(Float, nullable=True)
    status: Mapped[str] = mapped_column(String(12), index=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    rebalance_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True, nullable=True)
    rebalance_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    organization: Mapped[OrganizationRow] = relationship(lazy="raise", viewonly=False)  # orders the INSERTs


class DeliveryPointRow(Base):
    """Where units of a crisis call go (a hospital, an EHPAD, a town hall…).

    ``accepted_units`` sums the units of the accepted commitments to the point; accepting raises it
    with one conditional UPDATE (``accepted_units + n <= quantity``), so no point is ever promised
    more than it asked for, even under concurrent accepts."""

    __tablename__ = "delivery_point"
    __table_args__ = (
        CheckConstraint("accepted_units >= 0 AND accepted_units <= quantity", name="accepted_within_quantity"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    call_id: Mapped[str] = mapped_column(ForeignKey("crisis_call.id"), index=True)
    label: Mapped[str] = mapped_column(String(200))
    commune_insee: Mapped[str] = mapped_column(String(5))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    quantity: Mapped[int] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(Integer)
    accepted_units: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    call: Mapped[CrisisCallRow] = relationship(lazy="raise", viewonly=False)  # orders the INSERTs


class CommitmentRow(Base):
    """Units a workshop is asked to make for one delivery point of a crisis call.

    A proposed commitment books the workshop's capacity (``workshop.reserved_units``, the same
    conditional UPDATE as an award) until it is declined, expires, is cancelled or completed.
    ``produced`` and ``delivered`` only move forward: 0 <= delivered <= produced <= quantity."""

    __tablename__ = "commitment"
    __table_args__ = (
        CheckConstraint(
            "delivered >= 0 AND delivered <= produced AND produced <= quantity", name="progress_within_quantity"
        ),
        Index("ix_commitment_status_expires_at", "status", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    call_id: Mapped[str] = mapped_column(ForeignKey("crisis_call.id"), index=True)
    delivery_point_id: Mapped[str] = mapped_column(ForeignKey("delivery_point.id"), index=True)
    workshop_id: Mapped[str] = mapped_column(ForeignKey("workshop.id"), index=True)
    maker_org_id: Mapped[str] = mapped_column(String(36), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    distance_km: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(12))
    origin: Mapped[str] = mapped_column(String(12))
    revision: Mapped[int] = mapped_column(Integer)
    produced: Mapped[int] = mapped_column(Integer, default=0)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decline_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_report_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    call: Mapped[CrisisCallRow] = relationship(lazy="raise", viewonly=False)  # orders the INSERTs
    delivery_point: Mapped[DeliveryPointRow] = relationship(lazy="raise", viewonly=False)  # orders the INSERTs


class RebalanceRow(Base):
    """One re-allocation of a crisis call: why, what moved (JSON), and unmet units before and after.
    Unique per (call, revision): a rebalance job that runs twice records it once."""

    __tablename__ = "rebalance"
    __table_args__ = (UniqueConstraint("call_id", "revision"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    call_id: Mapped[str] = mapped_column(ForeignKey("crisis_call.id"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(40))
    moved: Mapped[dict[str, object]] = mapped_column(JSONType)
    units_moved: Mapped[int] = mapped_column(Integer)
    unmet_before: Mapped[int] = mapped_column(Integer)
    unmet_after: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    call: Mapped[CrisisCallRow] = relationship(lazy="raise", viewonly=False)  # orders the INSERTs


class InvoiceRow(Base):
    """An invoice (``kind`` invoice) or credit note (``credit_note``) of an order, issued by its maker.
    ``number`` is unique per seller (a gapless series, `InvoiceCounterRow`); ``lines`` are the
    domain's ``Line``s as JSON; amounts in cents. ``received_on`` is the deposit on Chorus Pro, from
    which (or from ``service_fait_on`` when later) ``delay_days`` run to ``due_on``."""

    __tablename__ = "invoice"
    __table_args__ = (UniqueConstraint("seller_org_id", "number", name="uq_invoice_seller_number"),
                      Index("ix_invoice_buyer_due", "buyer_org_id", "due_on"),
                      Index("ix_invoice_status", "status"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(12))
    number: Mapped[str] = mapped_column(String(20))
    order_id: Mapped[str] = mapped_column(ForeignKey("fab_order.id"), index=True)
    preceding_id: Mapped[str | None] = mapped_column(ForeignKey("invoice.id"), nullable=True, index=True)
    seller_org_id: Mapped[str] = mapped_column(String(36), index=True)
    buyer_org_id: Mapped[str] = mapped_column(String(36))
    issue_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))
    vat_regime: Mapped[str] = mapped_column(String(20))
    lines: Mapped[list[dict[str, object]]] = mapped_column(JSONType)
    quantity: Mapped[int] = mapped_column(Integer)
    net_cents: Mapped[int] = mapped_column(BigInteger)
    vat_cents: Mapped[int] = mapped_column(BigInteger)
    total_cents: Mapped[int] = mapped_column(BigInteger)
    credited_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    service_fait_on: Mapped[date] = mapped_column(Date)
    delay_days: Mapped[int] = mapped_column(Integer)
    received_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    due_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    paid_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    chorus_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    chorus_syntax: Mapped[str | None] = mapped_column(String(12), nullable=True)
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    status_on: Mapped[date] = mapped_column(Date)
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # last asked to Chorus Pro
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InvoiceCounterRow(Base):
    """The next number of a seller's series (``F`` invoices, ``AV`` credit notes), moved by
    compare-and-set in the transaction that writes the invoice: a rolled-back invoice leaves no gap."""

    __tablename__ = "invoice_counter"

    seller_org_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    series: Mapped[str] = mapped_column(String(4), primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class InvoiceEventRow(Base):
    """An invoice's history: issue, each status with its reason, append-only."""

    __tablename__ = "invoice_event"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoice.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    from_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


# ---- accounts for people (issue 21 item 7) ------------------------------------------------------


class AccountRow(Base):
    """A person of an organisation, signed in by e-mail and password (API keys stay for systems).
    ``email`` is stored in lower case (unique: one account per address); ``password_hash`` is an
    argon2id hash, none until the invitation is accepted. Sessions opened before
    ``password_changed_at`` end; a disabled account's end at their next request."""

    __tablename__ = "account"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_signin_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AccountTokenRow(Base):
    """A one-time link e-mailed to a person (``purpose`` invitation or reset), by the SHA-256 of its
    token (the token itself is in the e-mail only); ``used_at`` is set once, by compare-and-set."""

    __tablename__ = "account_token"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(12))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


# ---- in-app notifications (issue 21 item 8) -----------------------------------------------------


class NotificationSeenRow(Base):
    """How far an organisation has read its notifications: the last event it marked read, in the
    outbox's order (``created_at``, then ``id``). One row per organisation, only moved forward; the
    notifications themselves are the outbox events (`broker.domain.notifications`)."""

    __tablename__ = "notification_seen"

    org_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    seen_id: Mapped[str] = mapped_column(String(36))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


# An organisation's events in order, as the tenant and as the other party (migration 0014): the
# header's unread counter reads only the events after the organisation's watermark, and the
# notifications page and GET /v1/events walk them in order, instead of every event of the organisation.
Index("ix_outbox_event_org_feed", OutboxRow.org_id, OutboxRow.created_at, OutboxRow.id)
Index("ix_outbox_event_partner_feed", OutboxRow.partner_org_id, OutboxRow.created_at, OutboxRow.id)
