"""The award rules of a purchase below the EU thresholds (issue 17), pure: which quotes are valid,
and when the buyer's choice needs a written justification.

R.2122-8 (marchés sans publicité ni mise en concurrence préalables) asks the buyer to "choisir une
offre pertinente, faire une bonne utilisation des deniers publics et ne pas contracter
systématiquement avec un même opérateur économique lorsqu'il existe une pluralité d'offres
susceptibles de répondre au besoin". The broker turns that into checks the buyer may override with
a written justification, kept in the award record."""

from __future__ import annotations

from datetime import date, datetime

from broker.domain.lifecycle import QuoteStatus
from broker.domain.procurement import paris_day

#: Flags of a quote that is not valid for the award (a quote may carry several).
LATE = "late"  # delivers after the request's deadline (Paris calendar day)
PARTIAL = "partial"  # fewer units than requested, on a request that may not be split
EXPIRED = "expired"  # past its validity date


def quote_flags(
    *, status: str, valid_until: datetime, delivery_date: date, quantity: int, request_quantity: int,
    request_deadline: datetime, allow_split: bool, now: datetime,
) -> tuple[str, ...]:
    """Why a quote is not valid for the award (empty: valid if still ``submitted``)."""
    flags = []
    if status == QuoteStatus.EXPIRED or (status == QuoteStatus.SUBMITTED and valid_until <= now):
        flags.append(EXPIRED)
    if delivery_date > paris_day(request_deadline):
        flags.append(LATE)
    if quantity < request_quantity and not allow_split:
        flags.append(PARTIAL)
    return tuple(flags)


def is_valid(status: str, flags: tuple[str, ...]) -> bool:
    """Open (``submitted``), not expired, on time and for the requested quantity."""
    return status == QuoteStatus.SUBMITTED and not flags
