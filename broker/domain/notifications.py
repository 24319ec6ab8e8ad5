"""Who is told of which event, in one table: the in-app notifications (the header's counter and the
``/app/notifications`` page) and the e-mails. Both derive from the outbox: every event names its
tenant (``org_id``) and, when there is one, the other party (``partner_org_id``, the maker named
by ``maker_org_id``). A rule picks an event type, the party it reaches and, for the status events,
the target statuses that concern that party (``to``): the buyer hears of what the maker did, the
maker of what the buyer did. An order's cancellation or dispute may come from either side and its
event does not say which, so both parties are told (the author sees its own move too).

Left out on purpose: what the organisation did itself (a request created, a crisis call updated),
what repeats another notification (``order.created`` beside ``quote.accepted``, ``order.delivered``
beside its status change) and progress reports, which come too often to count."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum

import msgspec

from broker.domain.events import (
    CATALOGUE,
    CommitmentAccepted,
    CommitmentCancelled,
    CommitmentCompleted,
    CommitmentCreated,
    CommitmentDeclined,
    CommitmentExpired,
    CommitmentResized,
    CrisisCallAllocated,
    CrisisCallRebalanced,
    DecpRecordCreated,
    Event,
    InvitationCreated,
    InvitationDeclined,
    InvoiceIssued,
    InvoiceOverdue,
    InvoiceStatusChanged,
    OrderLate,
    OrderStatusChanged,
    QuoteAccepted,
    QuoteSubmitted,
    QuoteWithdrawn,
    RequestMatched,
    RequestWindowClosed,
    WebhookEndpointDisabled,
    WorkshopVerified,
    event_type,
)
from broker.domain.invoicing import InvoiceStatus
from broker.domain.lifecycle import ORDER_MOVERS, OrderStatus, Side


class Party(StrEnum):
    """Which organisation of an event a rule reaches."""

    TENANT = "tenant"  # the event's org_id
    PARTNER = "partner"  # the event's partner_org_id (the maker of a buyer's order, of a coordinator's commitment)


class Rule(msgspec.Struct, frozen=True):
    """Events of ``type`` reach ``party``; with ``to``, only those whose payload's ``to`` is one of them."""

    type: str
    party: Party
    to: frozenset[str] | None = None


def _rule(kind: type[Event], party: Party, to: frozenset[str] | None = None) -> Rule:
    return Rule(event_type(kind), party, to)


def _moved_by(side: Side) -> frozenset[str]:
    """The order statuses ``side`` may move an order to (`ORDER_MOVERS`)."""
    return frozenset(status.value for status, sides in ORDER_MOVERS.items() if side in sides)


#: The buyer hears of the maker's moves (confirmed … shipped), the maker of the buyer's (delivered,
#: closed); cancelled and disputed, which either side may ask for, are in both.
TO_BUYER = _moved_by(Side.MAKER)
TO_MAKER = _moved_by(Side.BUYER)
#: What Chorus Pro reports of a deposited invoice (the maker's own moves, deposit and credit notes, are not news).
INVOICE_NEWS = frozenset(s.value for s in InvoiceStatus) - {InvoiceStatus.ISSUED.value, InvoiceStatus.SUBMITTING.value,
                                                             InvoiceStatus.CREDITED.value}

_T, _P = Party.TENANT, Party.PARTNER

#: The in-app notifications, in the catalogue's order.
IN_APP: tuple[Rule, ...] = (
    _rule(WorkshopVerified, _T),  # the maker
    _rule(WebhookEndpointDisabled, _T),
    _rule(RequestMatched, _T),  # the buyer: who was invited
    _rule(RequestWindowClosed, _T),
    _rule(InvitationCreated, _T),  # the invited maker (the invitation's tenant)
    _rule(InvitationDeclined, _T),  # the buyer, with the reason
    _rule(QuoteSubmitted, _T),
    _rule(QuoteWithdrawn, _T),
    _rule(QuoteAccepted, _T),  # the maker: retenu
    _rule(OrderStatusChanged, _T, TO_BUYER),
    _rule(OrderStatusChanged, _P, TO_MAKER),
    _rule(OrderLate, _T),
    _rule(OrderLate, _P),
    _rule(InvoiceIssued, _T),  # the buyer
    _rule(InvoiceStatusChanged, _P, INVOICE_NEWS),  # the maker
    _rule(InvoiceOverdue, _T),
    _rule(InvoiceOverdue, _P),
    _rule(DecpRecordCreated, _T),  # the buyer has two months to publish
    _rule(CrisisCallAllocated, _T),  # the coordinator
    _rule(CrisisCallRebalanced, _T),
    _rule(CommitmentCreated, _P),  # the maker: a proposal to accept before it expires
    _rule(CommitmentAccepted, _T),
    _rule(CommitmentDeclined, _T),
    _rule(CommitmentExpired, _T),
    _rule(CommitmentExpired, _P),
    _rule(CommitmentCancelled, _P),
    _rule(CommitmentResized, _P),
    _rule(CommitmentCompleted, _T),
)

#: The e-mails (to the contact address of the organisation reached): a new invitation, a new
#: quote, a disabled webhook endpoint, an award (to the maker), a crisis proposal (to the maker:
#: sent when it is made, with the time it expires, since it lives only
#: BROKER_CRISIS_COMMITMENT_EXPIRY_HOURS) and a shipment (to the buyer).
BY_EMAIL: tuple[Rule, ...] = (
    _rule(WebhookEndpointDisabled, _T),
    _rule(InvitationCreated, _T),
    _rule(QuoteSubmitted, _T),
    _rule(QuoteAccepted, _T),
    _rule(OrderStatusChanged, _T, frozenset({OrderStatus.SHIPPED.value})),
    _rule(CommitmentCreated, _P),
)
EMAILED_TYPES: frozenset[str] = frozenset(rule.type for rule in BY_EMAIL)


def rules_of(rules: Iterable[Rule], party: Party) -> tuple[Rule, ...]:
    return tuple(rule for rule in rules if rule.party == party)


def parties(rules: Iterable[Rule], kind: str, data: Mapping[str, object]) -> frozenset[Party]:
    """The parties an event of type ``kind`` with payload ``data`` reaches under ``rules``."""
    return frozenset(rule.party for rule in rules
                     if rule.type == kind and (rule.to is None or data.get("to") in rule.to))


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    """One event as a notification of the organisation it reaches as ``party``; ``unread``: after
    the organisation's watermark."""

    id: str
    at: datetime
    type: str
    party: Party
    data: dict[str, object]
    unread: bool


class Inbox(msgspec.Struct, frozen=True, kw_only=True):
    """A page of notifications, newest first, with the names of the objects they mention
    (``names[kind][id]``, kinds of `REFERENCES`) and the position a « mark all read » reaches."""

    items: list[Notification]
    names: dict[str, dict[str, str]]
    newest: tuple[datetime, str] | None


#: Payload fields that name another object, and its kind (``Inbox.names``).
REFERENCES: Mapping[str, str] = {
    "workshop_id": "workshop", "request_id": "request", "order_id": "order", "call_id": "call",
    "delivery_point_id": "point", "item": "item",
}
#: Events whose own ``id`` is a request or a crisis call (their resource), and its kind.
_OWN_ID: Mapping[str, str] = {"request": "request", "crisis_call": "call"}
_RESOURCE: Mapping[str, str] = {event_type(kind): kind.resource for kind in CATALOGUE}


def references(kind: str, data: Mapping[str, object]) -> list[tuple[str, str]]:
    """The (kind, id) of each object an event of type ``kind`` names, whose name a sentence shows."""
    found = [(REFERENCES[field], value) for field, value in data.items()
             if field in REFERENCES and isinstance(value, str)]
    own = _OWN_ID.get(_RESOURCE.get(kind, ""))
    if own is not None and isinstance(data.get("id"), str):
        found.append((own, str(data["id"])))
    return found
