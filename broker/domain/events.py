"""The event catalogue: every domain event the broker emits, one frozen Struct per type in one
tagged union (`AnyEvent`, ``type`` is the tag). The outbox row, the webhook body, `EVENT_TYPES`,
the OpenAPI ``webhooks`` section and ``docs/events.md`` all derive from it.

A payload's fields are exactly the keys of the webhook body's ``data`` (beside ``sequence``,
``resource_type`` and ``resource_id``, which the relay adds): renaming one breaks integrators.
Dates stay the ISO 8601 strings they always were (``isoformat()``: ``+00:00``, not ``Z``).

``python -m broker.domain.events`` prints ``docs/events.md``."""

from __future__ import annotations

import sys
from typing import Annotated, ClassVar, Literal, get_args

import msgspec
from msgspec import inspect

from broker.domain.access import OrgKind
from broker.domain.crisis import CallStatus, RebalanceReason
from broker.domain.decp import IsoDate, Marche
from broker.domain.invoicing import InvoiceKind, InvoiceStatus
from broker.domain.lifecycle import OrderStatus, RequestStatus

#: A date and time as ``datetime.isoformat()`` writes it (``2026-05-04T12:00:00+00:00``).
IsoDateTime = Annotated[str, msgspec.Meta(extra_json_schema={"format": "date-time"})]


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", forbid_unknown_fields=True):
    """A payload of the catalogue. Its docstring says when it is emitted; ``resource`` is the
    resource whose ``sequence`` it counts (``data.resource_type``), ``audience`` the organisation
    that receives it (the event's ``org_id``; a payload with ``maker_org_id`` also reaches that
    maker's organisation)."""

    resource: ClassVar[str]
    audience: ClassVar[str]


class RequestSummary(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A request as its events show it (``item`` is null for a request with its own specification)."""

    id: str
    name: str
    item: str | None
    quantity: int
    deadline: IsoDateTime
    delivery_commune: str


class _Allocation(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    revision: int
    reason: RebalanceReason
    requested: int
    committed: int
    unmet: int
    units_moved: int
    commitments_created: int
    workshops_able: int


class _CommitmentProgress(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    call_id: str
    maker_org_id: str
    workshop_id: str
    delivery_point_id: str
    quantity: int
    units_produced: int
    units_delivered: int


_BUYER = "the buyer (the request's organisation)"
_COORDINATOR = "the coordinator (the crisis call's organisation)"


class OrganizationCreated(Event, tag="organization.created", kw_only=True, frozen=True):
    """An administrator created an organisation."""

    resource = "organization"
    audience = "the new organisation"
    id: str
    kind: OrgKind
    name: str
    created_by: str


class WorkshopVerified(Event, tag="workshop.verified", kw_only=True, frozen=True):
    """An administrator verified a workshop's declared labels and certifications."""

    resource = "workshop"
    audience = "the maker (the workshop's organisation)"
    workshop_id: str
    labels: list[str]
    certifications: list[str]
    by: str


class WebhookEndpointDisabled(Event, tag="webhook_endpoint.disabled", kw_only=True, frozen=True):
    """An endpoint was disabled: its receiver answered 410 Gone, or every delivery failed for five
    days. Also sent by e-mail to the organisation's contact address."""

    resource = "webhook_endpoint"
    audience = "the endpoint's organisation (its other endpoints)"
    id: str
    url: str
    reason: str
    failing_since: IsoDateTime | None


class RequestCreated(RequestSummary, Event, tag="request.created", kw_only=True, frozen=True):
    """A buyer published a request."""

    resource = "request"
    audience = _BUYER


class RequestMatched(Event, tag="request.matched", kw_only=True, frozen=True):
    """Matching ran for a request and its invitations went out."""

    resource = "request"
    audience = _BUYER
    id: str
    eligible: int
    invited: int
    exclusion_counts: dict[str, int]


class RequestCancelled(Event, tag="request.cancelled", kw_only=True, frozen=True):
    """The buyer cancelled a request."""

    resource = "request"
    audience = _BUYER
    id: str


class RequestWindowClosed(Event, tag="request.window_closed", kw_only=True, frozen=True):
    """A request's quote window closed: ``closed`` without any quote, else still ``quoting``
    (the buyer may now award below the minimum number of quotes)."""

    resource = "request"
    audience = _BUYER
    id: str
    status: RequestStatus


class InvitationCreated(Event, tag="invitation.created", kw_only=True, frozen=True):
    """Matching invited a workshop to quote. Also sent by e-mail to the maker's contact address."""

    resource = "invitation"
    audience = "the invited maker (the workshop's organisation)"
    id: str
    request: RequestSummary
    rank: int
    distance_km: float
    reasons: list[str]


class InvitationDeclined(Event, tag="invitation.declined", kw_only=True, frozen=True):
    """An invited workshop declined to quote."""

    resource = "invitation"
    audience = _BUYER
    id: str
    request_id: str
    workshop_id: str
    reason: str


class QuoteSubmitted(Event, tag="quote.submitted", kw_only=True, frozen=True):
    """A workshop submitted a quote. Also sent by e-mail to the buyer's contact address."""

    resource = "quote"
    audience = _BUYER
    id: str
    request_id: str
    workshop_id: str
    quantity: int
    unit_price_cents: int


class QuoteWithdrawn(Event, tag="quote.withdrawn", kw_only=True, frozen=True):
    """A workshop withdrew its quote before the award."""

    resource = "quote"
    audience = _BUYER
    id: str
    request_id: str


class QuoteAccepted(Event, tag="quote.accepted", kw_only=True, frozen=True):
    """The buyer awarded the quote: its order was created."""

    resource = "quote"
    audience = "the maker (the quoting workshop's organisation)"
    id: str
    request_id: str
    order_id: str


class Justification(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Why the buyer departed from an award rule: ``code`` is the rule (`min-quotes-not-met`,
    `not-lowest`, `rotation`, `invalid-quote`), ``text`` the buyer's words."""

    code: str
    text: str


class OrderCreated(Event, tag="order.created", kw_only=True, frozen=True, omit_defaults=True):
    """An award created the order of an accepted quote. ``justifications``: the award's written
    justifications, one per rule the buyer's choice departed from (issue 17)."""

    resource = "order"
    audience = _BUYER
    id: str
    number: str
    request_id: str
    workshop_id: str
    maker_org_id: str
    quantity: int
    justifications: list[Justification] | None = None


class OrderStatusChanged(Event, tag="order.status_changed", kw_only=True, frozen=True):
    """The maker or the buyer moved an order to its next status."""

    resource = "order"
    audience = _BUYER
    id: str
    number: str
    from_: OrderStatus = msgspec.field(name="from")
    to: OrderStatus
    note: str | None
    tracking: str | None
    maker_org_id: str


class OrderProgress(Event, tag="order.progress", kw_only=True, frozen=True):
    """The maker reported the units produced so far."""

    resource = "order"
    audience = _BUYER
    id: str
    units_done: int
    quantity: int


class OrderDelivered(Event, tag="order.delivered", kw_only=True, frozen=True):
    """An order was delivered (after its ``order.status_changed``)."""

    resource = "order"
    audience = _BUYER
    id: str
    number: str
    quantity: int
    maker_org_id: str


class OrderLate(Event, tag="order.late", kw_only=True, frozen=True):
    """The deadline watch found an order still open after its request's deadline (once per order)."""

    resource = "order"
    audience = _BUYER
    id: str
    number: str
    status: OrderStatus
    maker_org_id: str


class InvoiceIssued(Event, tag="invoice.issued", kw_only=True, frozen=True, omit_defaults=True):
    """The maker issued an invoice of a delivered order, or a credit note (``kind``) correcting one
    (``preceding_id``). ``due_on`` is provisional until Chorus Pro receives it."""

    resource = "invoice"
    audience = _BUYER
    id: str
    kind: InvoiceKind
    number: str
    order_id: str
    maker_org_id: str
    total_cents: int
    due_on: IsoDate | None = None
    preceding_id: str | None = None


class InvoiceStatusChanged(Event, tag="invoice.status_changed", kw_only=True, frozen=True, omit_defaults=True):
    """An invoice moved: submitted by its maker, then each status Chorus Pro reported (deposee,
    mise_a_disposition, service_fait, mandatee, mise_en_paiement; suspendue or rejetee with
    ``reason``), or wholly credited. ``due_on`` is the payment clock's due date once it runs."""

    resource = "invoice"
    audience = _BUYER
    id: str
    number: str
    order_id: str
    maker_org_id: str
    from_: InvoiceStatus = msgspec.field(name="from")
    to: InvoiceStatus
    reason: str | None = None
    due_on: IsoDate | None = None


class InvoiceOverdue(Event, tag="invoice.overdue", kw_only=True, frozen=True):
    """An invoice was not paid by its due date (emitted once, the day after): late-payment interest
    accrues from today at ``rate_bp`` (ECB rate + 8 points) and the 40 € indemnity is due."""

    resource = "invoice"
    audience = _BUYER
    id: str
    number: str
    order_id: str
    maker_org_id: str
    due_on: IsoDate
    total_cents: int
    rate_bp: int
    indemnity_cents: int


class DecpRecordCreated(Event, tag="decp.record_created", kw_only=True, frozen=True):
    """An award at or above the DECP threshold (`BROKER_DECP_THRESHOLD_EUR_HT`, 40 000 € HT by
    default) produced the record of its données essentielles, to publish within two months of the
    notification (by ``due_on``) on the portail national des données ouvertes, usually through the
    buyer's profil d'acheteur: ``marche`` is the record in the official JSON form (schema 2.0.3).
    ``GET /v1/decp?year=`` lists them."""

    resource = "decp_record"
    audience = _BUYER
    id: str
    request_id: str
    year: int
    amount_cents: int
    notified_on: IsoDate
    due_on: IsoDate
    marche: Marche


class DecpRecordPublished(Event, tag="decp.record_published", kw_only=True, frozen=True):
    """The buyer marked a DECP record published (``published_on`` became the marché's
    ``datePublicationDonnees``); it is no longer overdue."""

    resource = "decp_record"
    audience = _BUYER
    id: str
    request_id: str
    published_on: IsoDate


class CrisisCallCreated(Event, tag="crisis_call.created", kw_only=True, frozen=True):
    """A coordinator launched a crisis call (its allocation follows)."""

    resource = "crisis_call"
    audience = _COORDINATOR
    id: str
    item: str
    deadline: IsoDateTime
    priority: int
    delivery_points: int
    requested: int
    #: The call's name (its coordinator's, else the item and the day); empty in events from before names.
    name: str = ""


class CrisisCallAllocated(_Allocation, Event, tag="crisis_call.allocated", kw_only=True, frozen=True):
    """A crisis call's first allocation was written (its commitments are proposed)."""

    resource = "crisis_call"
    audience = _COORDINATOR


class CrisisCallRebalanced(_Allocation, Event, tag="crisis_call.rebalanced", kw_only=True, frozen=True):
    """What was left of a crisis call was allocated again (a decline, an expired proposal, a
    lagging commitment, new delivery points or a raised quantity)."""

    resource = "crisis_call"
    audience = _COORDINATOR


class CrisisCallProgress(_CommitmentProgress, Event, tag="crisis_call.progress", kw_only=True, frozen=True):
    """A maker reported progress on an accepted commitment."""

    resource = "commitment"
    audience = _COORDINATOR


class CrisisCallUpdated(Event, tag="crisis_call.updated", kw_only=True, frozen=True, omit_defaults=True):
    """The coordinator added delivery points (``points_added``: ``delivery_points`` and
    ``added_units``) or raised a point's quantity (``quantity_raised``: ``delivery_point``,
    ``previous_quantity`` and ``quantity``); the fields of the other change are absent."""

    resource = "crisis_call"
    audience = _COORDINATOR
    id: str
    change: Literal["points_added", "quantity_raised"]
    delivery_points: list[str] | None = None
    added_units: int | None = None
    delivery_point: str | None = None
    previous_quantity: int | None = None
    quantity: int | None = None


class CrisisCallClosed(Event, tag="crisis_call.closed", kw_only=True, frozen=True):
    """The coordinator closed or cancelled a crisis call (its proposals are cancelled)."""

    resource = "crisis_call"
    audience = _COORDINATOR
    id: str
    status: CallStatus
    released_units: int


class CommitmentCreated(Event, tag="commitment.created", kw_only=True, frozen=True):
    """An allocation proposed units to a workshop for a delivery point."""

    resource = "commitment"
    audience = _COORDINATOR
    id: str
    call_id: str
    item: str
    workshop_id: str
    maker_org_id: str
    delivery_point_id: str
    quantity: int
    distance_km: float
    deadline: IsoDateTime
    expires_at: IsoDateTime


class CommitmentAccepted(Event, tag="commitment.accepted", kw_only=True, frozen=True):
    """The maker accepted a proposed commitment."""

    resource = "commitment"
    audience = _COORDINATOR
    id: str
    call_id: str
    maker_org_id: str
    workshop_id: str
    delivery_point_id: str
    quantity: int


class CommitmentDeclined(Event, tag="commitment.declined", kw_only=True, frozen=True):
    """The maker declined a proposed commitment (a rebalance follows)."""

    resource = "commitment"
    audience = _COORDINATOR
    id: str
    call_id: str
    maker_org_id: str
    workshop_id: str
    delivery_point_id: str
    quantity: int
    reason: str


class CommitmentExpired(Event, tag="commitment.expired", kw_only=True, frozen=True):
    """A proposal was not answered in time (a rebalance follows)."""

    resource = "commitment"
    audience = _COORDINATOR
    id: str
    call_id: str
    maker_org_id: str
    quantity: int


class CommitmentCancelled(Event, tag="commitment.cancelled", kw_only=True, frozen=True, omit_defaults=True):
    """A commitment was cancelled: its call was closed or cancelled (no ``previous_quantity``), a
    rebalance took a proposal back, or a lagging accepted commitment was cut to nothing."""

    resource = "commitment"
    audience = _COORDINATOR
    id: str
    call_id: str
    maker_org_id: str
    quantity: int
    previous_quantity: int | None = None
    reason: str


class CommitmentResized(Event, tag="commitment.resized", kw_only=True, frozen=True):
    """A rebalance shrank a proposal, or cut a lagging accepted commitment to what it can deliver."""

    resource = "commitment"
    audience = _COORDINATOR
    id: str
    call_id: str
    maker_org_id: str
    quantity: int
    previous_quantity: int
    reason: str


class CommitmentCompleted(_CommitmentProgress, Event, tag="commitment.completed", kw_only=True, frozen=True):
    """A maker reported the last unit of a commitment delivered (after its ``crisis_call.progress``)."""

    resource = "commitment"
    audience = _COORDINATOR


#: Every event, in the catalogue's order (the order of `EVENT_TYPES` and of the docs).
AnyEvent = (
    OrganizationCreated | WorkshopVerified | WebhookEndpointDisabled
    | RequestCreated | RequestMatched | RequestCancelled | RequestWindowClosed
    | InvitationCreated | InvitationDeclined
    | QuoteSubmitted | QuoteWithdrawn | QuoteAccepted
    | OrderCreated | OrderStatusChanged | OrderProgress | OrderDelivered | OrderLate
    | InvoiceIssued | InvoiceStatusChanged | InvoiceOverdue
    | DecpRecordCreated | DecpRecordPublished
    | CrisisCallCreated | CrisisCallAllocated | CrisisCallRebalanced | CrisisCallProgress
    | CrisisCallUpdated | CrisisCallClosed
    | CommitmentCreated | CommitmentAccepted | CommitmentDeclined | CommitmentExpired
    | CommitmentCancelled | CommitmentResized | CommitmentCompleted
)
CATALOGUE: tuple[type[Event], ...] = get_args(AnyEvent)


def event_type(kind: type[Event]) -> str:
    """The public type of an event class (its tag: ``order.created``…)."""
    tag = kind.__struct_config__.tag
    assert isinstance(tag, str)  # every class of the catalogue names its tag
    return tag


#: Every event type the broker emits (endpoints subscribe to these; the OpenAPI ``webhooks`` lists them).
EVENT_TYPES: tuple[str, ...] = tuple(event_type(kind) for kind in CATALOGUE)


class DomainEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event as the outbox stores it (`recorded`): its type, tenant and resource, and its
    payload as JSON-ready builtins, encoded once; ``resource_id`` orders the sequence."""

    type: str
    org_id: str
    resource_type: str
    resource_id: str
    data: dict[str, object]


def recorded(event: Event, *, org_id: str, resource_id: str) -> DomainEvent:
    """``event`` for the outbox: ``org_id`` is the tenant it belongs to, ``resource_id`` the
    resource (of type ``event.resource``) whose sequence it counts."""
    data: dict[str, object] = msgspec.to_builtins(event)
    kind = data.pop("type")
    assert isinstance(kind, str)
    return DomainEvent(type=kind, org_id=org_id, resource_type=event.resource, resource_id=resource_id, data=data)


# ---- docs/events.md --------------------------------------------------------------------------------


def _type_name(info: inspect.Type) -> str:
    """A field's type as docs/events.md names it."""
    if isinstance(info, inspect.Metadata):
        fmt = (info.extra_json_schema or {}).get("format")
        return f"string ({fmt}, ISO 8601)" if fmt else _type_name(info.type)
    if isinstance(info, inspect.StrType):
        return "string"
    if isinstance(info, inspect.IntType):
        return "integer"
    if isinstance(info, inspect.FloatType):
        return "number"
    if isinstance(info, inspect.ListType):
        return f"array of {_type_name(info.item_type)}"
    if isinstance(info, inspect.DictType):
        return f"object of {_type_name(info.value_type)}"
    if isinstance(info, inspect.EnumType):
        return "one of " + ", ".join(f"`{member.value}`" for member in info.cls)
    if isinstance(info, inspect.LiteralType):
        return "one of " + ", ".join(f"`{value}`" for value in info.values)
    if isinstance(info, inspect.StructType):
        return f"object ({', '.join(f'`{f.encode_name}`' for f in info.fields)})"
    if isinstance(info, inspect.UnionType):
        kinds = [_type_name(t) for t in info.types if not isinstance(t, inspect.NoneType)]
        nullable = " or null" if any(isinstance(t, inspect.NoneType) for t in info.types) else ""
        return " or ".join(kinds) + nullable
    raise TypeError(f"no doc name for {info!r}")


def _section(kind: type[Event]) -> list[str]:
    info = inspect.type_info(kind)
    assert isinstance(info, inspect.StructType)
    fields = [f for f in info.fields if f.encode_name != "type"]
    audience = kind.audience
    if any(f.encode_name == "maker_org_id" for f in fields):
        audience += "; also the maker organisation named by `maker_org_id`"
    lines = [
        f"## `{event_type(kind)}`", "",
        " ".join((kind.__doc__ or "").split()), "",
        f"- resource: `{kind.resource}` (`data.resource_type`; `data.resource_id` is its id)",
        f"- received by: {audience}", "",
        "| field | type | presence |", "|---|---|---|",
    ]
    for f in fields:
        if f.required:
            lines.append(f"| `{f.encode_name}` | {_type_name(f.type)} | always |")
        else:  # an optional field is omitted, never null
            lines.append(f"| `{f.encode_name}` | {_type_name(f.type).removesuffix(' or null')} | when it applies |")
    return [*lines, ""]


def markdown() -> str:
    """docs/events.md: the envelope, then each event type of the catalogue."""
    lines = [
        "# Events", "",
        "<!-- Generated from broker/domain/events.py by `python -m broker.domain.events`; do not edit. -->", "",
        "Every change the broker makes is recorded as an event, in the same transaction as the change.",
        "Events reach integrators two ways: `GET /v1/events` (the organisation's events, oldest first) and",
        "webhooks (`POST` to each subscribed endpoint of each organisation that receives the event, signed",
        "per Standard Webhooks; deduplicate on the `webhook-id` header). The webhook body is:", "",
        "```json",
        '{"type": "order.created", "timestamp": "2026-05-04T12:00:00Z",',
        ' "data": {"id": "…", "…": "…", "sequence": 1, "resource_type": "order", "resource_id": "…"}}',
        "```", "",
        "`data` holds the event's fields below, plus `sequence` (per resource, strictly increasing: order",
        "by it), `resource_type` and `resource_id`. New fields may be added to an event: ignore the ones",
        "you do not know. The OpenAPI document (`/schema/openapi.json`, section `webhooks`) has the same",
        "schema for each type.", "",
        f"{len(CATALOGUE)} event types: " + ", ".join(f"`{t}`" for t in EVENT_TYPES) + ".", "",
    ]
    for kind in CATALOGUE:
        lines += _section(kind)
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
