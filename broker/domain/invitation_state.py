"""Where an invitation stands, as the maker and the buyer see it, derived from stored facts only: the
invitation's own status (invited or declined), the maker's quotes on the request and the request's
status. Nothing stores this state, so it cannot drift from the facts (issue 21: an invitation left
« À répondre » after quoting, after the award, beside « demande clôturée »)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from broker.domain.lifecycle import InvitationStatus, QuoteStatus, RequestStatus

# The request still takes quotes in these statuses (its window may have closed meanwhile).
_TAKING_QUOTES = frozenset({RequestStatus.OPEN, RequestStatus.QUOTING})


class InvitationState(StrEnum):
    TO_ANSWER = "to_answer"  # may quote or decline now (again, after a withdrawn or expired quote)
    QUOTED = "quoted"  # a quote waits for the buyer's decision
    DECLINED = "declined"  # the maker declined (the reason goes to the buyer)
    RETAINED = "retained"  # a quote of this maker was accepted
    NOT_RETAINED = "not_retained"  # its quote lost: another one won, it lapsed, or the request was cancelled
    CLOSED = "closed"  # the request no longer takes quotes and this maker has none in play


def invitation_state(
    *,
    invitation: InvitationStatus | str,
    quotes: Iterable[QuoteStatus | str],
    request: RequestStatus | str,
    window_closed: bool = False,
) -> InvitationState:
    """The state of one invitation, first rule that applies:

    1. a quote of this maker accepted → retained (whatever happened since: the order exists);
    2. the invitation declined → declined;
    3. a quote still submitted → quoted while the request takes quotes, else not retained;
    4. a quote rejected (another one won, or the request was cancelled), or expired once the request
       stopped taking quotes → not retained;
    5. the request awarded, closed or cancelled, or its quote window closed → closed (this maker
       never quoted, or withdrew);
    6. otherwise → to answer (an expired or withdrawn quote may be replaced while the window is open).

    ``invitation``, ``quotes`` and ``request`` take the stored status strings as well as the enums."""
    seen = {QuoteStatus(q) for q in quotes}
    taking = RequestStatus(request) in _TAKING_QUOTES
    if QuoteStatus.ACCEPTED in seen:
        return InvitationState.RETAINED
    if InvitationStatus(invitation) == InvitationStatus.DECLINED:
        return InvitationState.DECLINED
    if QuoteStatus.SUBMITTED in seen:
        return InvitationState.QUOTED if taking else InvitationState.NOT_RETAINED
    if QuoteStatus.REJECTED in seen or (QuoteStatus.EXPIRED in seen and not taking):
        return InvitationState.NOT_RETAINED
    if not taking or window_closed:
        return InvitationState.CLOSED
    return InvitationState.TO_ANSWER
