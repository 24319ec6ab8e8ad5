"""Where statuses change, and only here: every lifecycle is a ``StrEnum`` with a literal transition
table (``table[s]`` is every status ``s`` may become; a final status maps to nothing), checked by
one pure function, `check`. Requests, invitations, quotes, orders and webhooks live here, crisis
calls and commitments in ``broker.domain.crisis``.

Persisting a change is one compare-and-set (``broker.db.status``: ``UPDATE … WHERE id = :id AND
status IN (:expected)``), which asks the same table again, so a lost race is a 409 and never a
double move."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Generic, TypeVar

import msgspec

from broker.errors import InvalidTransition

S = TypeVar("S", bound=StrEnum)


class Lifecycle(msgspec.Struct, Generic[S], frozen=True):
    """A status enum's transition table, and how a 409 names the thing that has the status."""

    noun: str  # "request", "crisis call"…
    table: Mapping[S, frozenset[S]]


def allows(lifecycle: Lifecycle[S], current: S, target: S) -> bool:
    return target in lifecycle.table[current]


def check(lifecycle: Lifecycle[S], current: S, target: S) -> S:
    """``target``, or InvalidTransition naming the current status and the allowed ones."""
    if not allows(lifecycle, current, target):
        names = sorted(s.value for s in lifecycle.table[current])
        raise InvalidTransition(
            f"the {lifecycle.noun} is '{current}'; it cannot become '{target}' (allowed: "
            f"{', '.join(names) if names else 'none (final state)'})",
            figures={"noun": lifecycle.noun, "current": current.value, "target": target.value},
        )
    return target


class RequestStatus(StrEnum):
    OPEN = "open"  # matched, invitations out, no quote yet
    QUOTING = "quoting"  # at least one quote received
    AWARDED = "awarded"  # orders created
    CLOSED = "closed"  # every order finished, or the window closed without any quote
    CANCELLED = "cancelled"


REQUEST_TRANSITIONS: Mapping[RequestStatus, frozenset[RequestStatus]] = {
    RequestStatus.OPEN: frozenset({RequestStatus.QUOTING, RequestStatus.CLOSED, RequestStatus.CANCELLED}),
    RequestStatus.QUOTING: frozenset({RequestStatus.AWARDED, RequestStatus.CANCELLED}),
    RequestStatus.AWARDED: frozenset({RequestStatus.CLOSED}),
    RequestStatus.CLOSED: frozenset(),
    RequestStatus.CANCELLED: frozenset(),
}
REQUEST = Lifecycle("request", REQUEST_TRANSITIONS)


class InvitationStatus(StrEnum):
    INVITED = "invited"  # a quote may be submitted
    DECLINED = "declined"


INVITATION_TRANSITIONS: Mapping[InvitationStatus, frozenset[InvitationStatus]] = {
    InvitationStatus.INVITED: frozenset({InvitationStatus.DECLINED}),
    InvitationStatus.DECLINED: frozenset(),
}
INVITATION = Lifecycle("invitation", INVITATION_TRANSITIONS)


class QuoteStatus(StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


QUOTE_TRANSITIONS: Mapping[QuoteStatus, frozenset[QuoteStatus]] = {
    QuoteStatus.SUBMITTED: frozenset(
        {QuoteStatus.ACCEPTED, QuoteStatus.REJECTED, QuoteStatus.WITHDRAWN, QuoteStatus.EXPIRED}
    ),
    QuoteStatus.ACCEPTED: frozenset(),
    QuoteStatus.REJECTED: frozenset(),
    QuoteStatus.WITHDRAWN: frozenset(),
    QuoteStatus.EXPIRED: frozenset(),
}
QUOTE = Lifecycle("quote", QUOTE_TRANSITIONS)


class OrderStatus(StrEnum):
    AWARDED = "awarded"
    CONFIRMED = "confirmed"
    IN_PRODUCTION = "in_production"
    READY = "ready"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    DISPUTED = "disputed"


class Side(StrEnum):
    MAKER = "maker"
    BUYER = "buyer"


ORDER_TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.AWARDED: frozenset({OrderStatus.CONFIRMED, OrderStatus.CANCELLED}),
    OrderStatus.CONFIRMED: frozenset({OrderStatus.IN_PRODUCTION, OrderStatus.CANCELLED}),
    OrderStatus.IN_PRODUCTION: frozenset({OrderStatus.READY, OrderStatus.CANCELLED, OrderStatus.DISPUTED}),
    OrderStatus.READY: frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED, OrderStatus.DISPUTED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED, OrderStatus.DISPUTED}),
    OrderStatus.DELIVERED: frozenset({OrderStatus.CLOSED, OrderStatus.DISPUTED}),
    OrderStatus.DISPUTED: frozenset({OrderStatus.CLOSED, OrderStatus.CANCELLED}),
    OrderStatus.CLOSED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}
ORDER = Lifecycle("order", ORDER_TRANSITIONS)

# Who may ask for each target status (either side may cancel or dispute; the maker moves
# production forward; the buyer confirms receipt and closes).
ORDER_MOVERS: Mapping[OrderStatus, frozenset[Side]] = {
    OrderStatus.CONFIRMED: frozenset({Side.MAKER}),
    OrderStatus.IN_PRODUCTION: frozenset({Side.MAKER}),
    OrderStatus.READY: frozenset({Side.MAKER}),
    OrderStatus.SHIPPED: frozenset({Side.MAKER}),
    OrderStatus.DELIVERED: frozenset({Side.BUYER}),
    OrderStatus.CLOSED: frozenset({Side.BUYER}),
    OrderStatus.CANCELLED: frozenset({Side.MAKER, Side.BUYER}),
    OrderStatus.DISPUTED: frozenset({Side.MAKER, Side.BUYER}),
    OrderStatus.AWARDED: frozenset(),
}

# Statuses in which an order holds workshop capacity (released once shipped, cancelled or disputed).
ORDER_ACTIVE: frozenset[OrderStatus] = frozenset(
    {OrderStatus.AWARDED, OrderStatus.CONFIRMED, OrderStatus.IN_PRODUCTION, OrderStatus.READY}
)


class EndpointStatus(StrEnum):
    ACTIVE = "active"  # receives its events
    DISABLED = "disabled"  # a 410, or RT-3's failing days; its pending retries became failed


ENDPOINT_TRANSITIONS: Mapping[EndpointStatus, frozenset[EndpointStatus]] = {
    EndpointStatus.ACTIVE: frozenset({EndpointStatus.DISABLED}),
    EndpointStatus.DISABLED: frozenset({EndpointStatus.ACTIVE}),  # enabled again by its owner
}
ENDPOINT = Lifecycle("webhook endpoint", ENDPOINT_TRANSITIONS)


class DeliveryState(StrEnum):
    PENDING = "pending"  # due at next_attempt_at (a retry stays pending)
    DELIVERED = "delivered"
    FAILED = "failed"  # no attempt left, a 410, or its endpoint disabled


DELIVERY_TRANSITIONS: Mapping[DeliveryState, frozenset[DeliveryState]] = {
    DeliveryState.PENDING: frozenset({DeliveryState.DELIVERED, DeliveryState.FAILED}),
    DeliveryState.DELIVERED: frozenset({DeliveryState.PENDING}),  # sent again on request (same webhook-id)
    DeliveryState.FAILED: frozenset({DeliveryState.PENDING}),  # retried or recovered
}
DELIVERY = Lifecycle("webhook delivery", DELIVERY_TRANSITIONS)


class MatchState(StrEnum):
    """Where a request's matching is (beside its status): the worker claims it, then stores the result."""

    PENDING = "pending"  # queued (or its job was lost: the sweep runs it again)
    RUNNING = "running"  # claimed by a worker's batch (SQLite; PostgreSQL claims and stores at once)
    DONE = "done"  # invitations written, the result stored


MATCH_TRANSITIONS: Mapping[MatchState, frozenset[MatchState]] = {
    MatchState.PENDING: frozenset({MatchState.RUNNING, MatchState.DONE}),
    MatchState.RUNNING: frozenset({MatchState.DONE}),
    # matched again at the buyer's request when nobody was invited (with splits allowed or a wider reach)
    MatchState.DONE: frozenset({MatchState.PENDING}),
}
MATCH = Lifecycle("request's matching", MATCH_TRANSITIONS)


class OutboxState(StrEnum):
    """An outbox event: written with its state change, then claimed once by a relay."""

    PENDING = "pending"
    RELAYED = "relayed"  # turned into its deliveries and notify jobs


OUTBOX_TRANSITIONS: Mapping[OutboxState, frozenset[OutboxState]] = {
    OutboxState.PENDING: frozenset({OutboxState.RELAYED}),
    OutboxState.RELAYED: frozenset(),
}
OUTBOX = Lifecycle("outbox event", OUTBOX_TRANSITIONS)


def check_request(current: RequestStatus, target: RequestStatus) -> RequestStatus:
    return check(REQUEST, current, target)


def check_quote(current: QuoteStatus, target: QuoteStatus) -> QuoteStatus:
    return check(QUOTE, current, target)


def transition_order(current: OrderStatus, target: OrderStatus, *, side: Side) -> OrderStatus:
    """The new status, or InvalidTransition naming the current state and the allowed moves."""
    check(ORDER, current, target)
    if side not in ORDER_MOVERS[target]:
        who = " or ".join(sorted(s.value for s in ORDER_MOVERS[target]))
        raise InvalidTransition(f"only the {who} may move an order to '{target}'", code="transition-not-yours")
    return target
