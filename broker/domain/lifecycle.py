"""Where statuses change, and only here: requests, quotes and orders, each with a literal table.

``transition_order`` is pure; persisting it is one compare-and-set (``UPDATE … WHERE id = :id AND
status = :expected``) in the repository, so a lost race is a 409 and never a double move."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from broker.errors import InvalidTransition


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


def _allowed(table: Mapping[StrEnum, frozenset[StrEnum]], current: StrEnum) -> str:
    names = sorted(s.value for s in table[current])
    return ", ".join(names) if names else "none (final state)"


def check_request(current: RequestStatus, target: RequestStatus) -> RequestStatus:
    if target not in REQUEST_TRANSITIONS[current]:
        raise InvalidTransition(
            f"the request is '{current}'; it cannot become '{target}' (allowed: "
            f"{_allowed(REQUEST_TRANSITIONS, current)})"  # type: ignore[arg-type]
        )
    return target


def check_quote(current: QuoteStatus, target: QuoteStatus) -> QuoteStatus:
    if target not in QUOTE_TRANSITIONS[current]:
        raise InvalidTransition(
            f"the quote is '{current}'; it cannot become '{target}' (allowed: "
            f"{_allowed(QUOTE_TRANSITIONS, current)})"  # type: ignore[arg-type]
        )
    return target


def transition_order(current: OrderStatus, target: OrderStatus, *, side: Side) -> OrderStatus:
    """The new status, or InvalidTransition naming the current state and the allowed moves."""
    if target not in ORDER_TRANSITIONS[current]:
        raise InvalidTransition(
            f"the order is '{current}'; it cannot become '{target}' (allowed: "
            f"{_allowed(ORDER_TRANSITIONS, current)})"  # type: ignore[arg-type]
        )
    if side not in ORDER_MOVERS[target]:
        who = " or ".join(sorted(s.value for s in ORDER_MOVERS[target]))
        raise InvalidTransition(f"only the {who} may move an order to '{target}'", code="transition-not-yours")
    return target
