"""Where an invitation stands (issue 21 item 2), the whole table: every invitation status, with no quote
or one quote in each status, on a request in each status, with the quote window open and closed; then
the cases where a maker sent several quotes."""

from __future__ import annotations

import pytest

from broker.domain.invitation_state import InvitationState, invitation_state
from broker.domain.lifecycle import InvitationStatus, QuoteStatus, RequestStatus

TO, QU, DE, RE, NR, CL = (InvitationState.TO_ANSWER, InvitationState.QUOTED, InvitationState.DECLINED,
                          InvitationState.RETAINED, InvitationState.NOT_RETAINED, InvitationState.CLOSED)
REQUESTS = (RequestStatus.OPEN, RequestStatus.QUOTING, RequestStatus.AWARDED, RequestStatus.CLOSED,
            RequestStatus.CANCELLED)

# (invitation, the maker's one quote or None) -> the state on a request open, quoting, awarded, closed, cancelled
# (quote window open).
TABLE: dict[tuple[InvitationStatus, QuoteStatus | None], tuple[InvitationState, ...]] = {
    (InvitationStatus.INVITED, None): (TO, TO, CL, CL, CL),
    (InvitationStatus.INVITED, QuoteStatus.SUBMITTED): (QU, QU, NR, NR, NR),
    (InvitationStatus.INVITED, QuoteStatus.ACCEPTED): (RE, RE, RE, RE, RE),
    (InvitationStatus.INVITED, QuoteStatus.REJECTED): (NR, NR, NR, NR, NR),
    (InvitationStatus.INVITED, QuoteStatus.WITHDRAWN): (TO, TO, CL, CL, CL),
    (InvitationStatus.INVITED, QuoteStatus.EXPIRED): (TO, TO, NR, NR, NR),
    (InvitationStatus.DECLINED, None): (DE, DE, DE, DE, DE),
    (InvitationStatus.DECLINED, QuoteStatus.SUBMITTED): (DE, DE, DE, DE, DE),
    (InvitationStatus.DECLINED, QuoteStatus.ACCEPTED): (RE, RE, RE, RE, RE),
    (InvitationStatus.DECLINED, QuoteStatus.REJECTED): (DE, DE, DE, DE, DE),
    (InvitationStatus.DECLINED, QuoteStatus.WITHDRAWN): (DE, DE, DE, DE, DE),
    (InvitationStatus.DECLINED, QuoteStatus.EXPIRED): (DE, DE, DE, DE, DE),
}
# The same rows once the quote window has closed, on a request still open or quoting (the other
# statuses do not take quotes whatever the window says: the table above holds for them).
WINDOW_CLOSED: dict[tuple[InvitationStatus, QuoteStatus | None], InvitationState] = {
    (InvitationStatus.INVITED, None): CL,
    (InvitationStatus.INVITED, QuoteStatus.SUBMITTED): QU,  # the buyer may still choose it
    (InvitationStatus.INVITED, QuoteStatus.ACCEPTED): RE,
    (InvitationStatus.INVITED, QuoteStatus.REJECTED): NR,
    (InvitationStatus.INVITED, QuoteStatus.WITHDRAWN): CL,
    (InvitationStatus.INVITED, QuoteStatus.EXPIRED): CL,
    (InvitationStatus.DECLINED, None): DE,
    (InvitationStatus.DECLINED, QuoteStatus.SUBMITTED): DE,
    (InvitationStatus.DECLINED, QuoteStatus.ACCEPTED): RE,
    (InvitationStatus.DECLINED, QuoteStatus.REJECTED): DE,
    (InvitationStatus.DECLINED, QuoteStatus.WITHDRAWN): DE,
    (InvitationStatus.DECLINED, QuoteStatus.EXPIRED): DE,
}


def test_the_table_covers_every_invitation_and_quote_status() -> None:
    rows = {(i, q) for i in InvitationStatus for q in (None, *QuoteStatus)}
    assert set(TABLE) == rows == set(WINDOW_CLOSED)
    assert tuple(RequestStatus) == REQUESTS


@pytest.mark.parametrize(("invitation", "quote"), list(TABLE))
@pytest.mark.parametrize("window_closed", [False, True])
def test_one_quote_or_none(invitation: InvitationStatus, quote: QuoteStatus | None, window_closed: bool) -> None:
    for request, expected in zip(REQUESTS, TABLE[invitation, quote], strict=True):
        if window_closed and request in (RequestStatus.OPEN, RequestStatus.QUOTING):
            expected = WINDOW_CLOSED[invitation, quote]
        quotes = [] if quote is None else [quote]
        got = invitation_state(invitation=invitation, quotes=quotes, request=request, window_closed=window_closed)
        assert got == expected, (invitation, quote, request, window_closed)
        # The stored strings give the same answer as the enums.
        assert invitation_state(invitation=invitation.value, quotes=[q.value for q in quotes], request=request.value,
                                window_closed=window_closed) == expected


@pytest.mark.parametrize(("quotes", "status", "expected"), [
    # withdrawn, then quoted again: the new quote is the one in play
    ([QuoteStatus.WITHDRAWN, QuoteStatus.SUBMITTED], RequestStatus.QUOTING, QU),
    ([QuoteStatus.WITHDRAWN, QuoteStatus.SUBMITTED], RequestStatus.AWARDED, NR),
    ([QuoteStatus.EXPIRED, QuoteStatus.SUBMITTED], RequestStatus.QUOTING, QU),
    # one quote of a split award accepted, another of the same maker not: the maker is retained
    ([QuoteStatus.REJECTED, QuoteStatus.ACCEPTED], RequestStatus.AWARDED, RE),
    ([QuoteStatus.ACCEPTED, QuoteStatus.WITHDRAWN], RequestStatus.CLOSED, RE),
    # a lapsed quote, then withdrew the next one: it competed, and lost
    ([QuoteStatus.EXPIRED, QuoteStatus.WITHDRAWN], RequestStatus.AWARDED, NR),
    ([QuoteStatus.EXPIRED, QuoteStatus.WITHDRAWN], RequestStatus.QUOTING, TO),
    ([QuoteStatus.WITHDRAWN, QuoteStatus.WITHDRAWN], RequestStatus.CANCELLED, CL),
    ([QuoteStatus.WITHDRAWN, QuoteStatus.REJECTED], RequestStatus.CANCELLED, NR),
])
def test_several_quotes(quotes: list[QuoteStatus], status: RequestStatus, expected: InvitationState) -> None:
    assert invitation_state(invitation=InvitationStatus.INVITED, quotes=quotes, request=status) == expected
    assert invitation_state(invitation=InvitationStatus.INVITED, quotes=reversed(quotes), request=status) == expected


def test_an_unknown_status_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError, match="'lost'"):
        invitation_state(invitation="invited", quotes=["lost"], request="open")
    with pytest.raises(ValueError, match="'archived'"):
        invitation_state(invitation="invited", quotes=[], request="archived")
