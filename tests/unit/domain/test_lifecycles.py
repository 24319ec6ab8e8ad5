"""Every transition table, walked pair by pair: each allowed move passes `check`, every other one
raises InvalidTransition naming the current status and the allowed ones; every status has a row."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import pytest

from broker.domain.crisis import CALL, COMMITMENT, CallStatus, CommitmentStatus, check_call, check_commitment
from broker.domain.lifecycle import (
    DELIVERY,
    ENDPOINT,
    INVITATION,
    MATCH,
    ORDER,
    OUTBOX,
    QUOTE,
    REQUEST,
    DeliveryState,
    EndpointStatus,
    InvitationStatus,
    Lifecycle,
    MatchState,
    OrderStatus,
    OutboxState,
    QuoteStatus,
    RequestStatus,
    Side,
    allows,
    check,
    check_quote,
    check_request,
    transition_order,
)
from broker.errors import InvalidTransition

LIFECYCLES: list[tuple[Lifecycle[Any], type[StrEnum]]] = [
    (REQUEST, RequestStatus),
    (INVITATION, InvitationStatus),
    (QUOTE, QuoteStatus),
    (ORDER, OrderStatus),
    (CALL, CallStatus),
    (COMMITMENT, CommitmentStatus),
    (ENDPOINT, EndpointStatus),
    (DELIVERY, DeliveryState),
    (MATCH, MatchState),
    (OUTBOX, OutboxState),
]
PAIRS = [
    pytest.param(lifecycle, current, target, id=f"{lifecycle.noun}:{current}->{target}")
    for lifecycle, enum in LIFECYCLES
    for current in enum
    for target in enum
]


@pytest.mark.parametrize(("lifecycle", "enum"), LIFECYCLES, ids=[lc.noun for lc, _ in LIFECYCLES])
def test_every_status_has_a_row_and_moves_only_to_its_own_statuses(lifecycle: Lifecycle[Any],
                                                                   enum: type[StrEnum]) -> None:
    assert set(lifecycle.table) == set(enum)
    for targets in lifecycle.table.values():
        assert targets <= set(enum)


@pytest.mark.parametrize(("lifecycle", "current", "target"), PAIRS)
def test_every_pair(lifecycle: Lifecycle[Any], current: StrEnum, target: StrEnum) -> None:
    allowed = lifecycle.table[current]
    if target in allowed:
        assert allows(lifecycle, current, target)
        assert check(lifecycle, current, target) is target
        return
    assert not allows(lifecycle, current, target)
    with pytest.raises(InvalidTransition) as raised:
        check(lifecycle, current, target)
    names = ", ".join(sorted(s.value for s in allowed)) or "none (final state)"
    assert raised.value.detail == (
        f"the {lifecycle.noun} is '{current}'; it cannot become '{target}' (allowed: {names})"
    )
    assert raised.value.code == "invalid-state-transition"


def test_the_409_messages_stay_as_they_were() -> None:
    cases = [
        (lambda: check_request(RequestStatus.AWARDED, RequestStatus.CANCELLED),
         "the request is 'awarded'; it cannot become 'cancelled' (allowed: closed)"),
        (lambda: check_quote(QuoteStatus.ACCEPTED, QuoteStatus.WITHDRAWN),
         "the quote is 'accepted'; it cannot become 'withdrawn' (allowed: none (final state))"),
        (lambda: transition_order(OrderStatus.AWARDED, OrderStatus.SHIPPED, side=Side.MAKER),
         "the order is 'awarded'; it cannot become 'shipped' (allowed: cancelled, confirmed)"),
        (lambda: check_call(CallStatus.CLOSED, CallStatus.CANCELLED),
         "the crisis call is 'closed'; it cannot become 'cancelled' (allowed: none (final state))"),
        (lambda: check_commitment(CommitmentStatus.ACCEPTED, CommitmentStatus.DECLINED),
         "the commitment is 'accepted'; it cannot become 'declined' (allowed: cancelled, completed)"),
    ]
    for call, detail in cases:
        with pytest.raises(InvalidTransition) as raised:
            call()
        assert (raised.value.detail, raised.value.code) == (detail, "invalid-state-transition")
    with pytest.raises(InvalidTransition) as raised:
        transition_order(OrderStatus.SHIPPED, OrderStatus.DELIVERED, side=Side.MAKER)
    assert raised.value.code == "transition-not-yours"
