"""The award rules of a purchase below the EU thresholds (issue 17), pure: which quotes are valid,
and when the buyer's choice needs a written justification.

R.2122-8 (marchés sans publicité ni mise en concurrence préalables) asks the buyer to "choisir une
offre pertinente, faire une bonne utilisation des deniers publics et ne pas contracter
systématiquement avec un même opérateur économique lorsqu'il existe une pluralité d'offres
susceptibles de répondre au besoin". The broker turns that into checks the buyer may override with
a written justification, kept in the award record. The same checks apply to an adapted procedure
(`mapa`, `mapa_publicite`): the buyer still chooses among the quotes received.

The rules (`assess`), each answered with a reason the UI can explain:

- ``invalid-quote``: a chosen quote is not valid (late, or partial where the request may not be
  split). An expired or withdrawn quote can never be chosen (409 ``quote-not-valid``, not here).
- ``not-lowest``: a valid quote that was not chosen is cheaper than a chosen one. Compared per unit
  TTC, which for a request that may not be split (every valid quote is for the whole quantity) is
  comparing the totals TTC; for a split award, a valid quote left out whose unit price TTC is lower
  than the dearest chosen quote's unit price TTC was passed over. Equal prices are not "lower".
- ``rotation``: a chosen workshop won at least `ROTATION_WINS` (2) of the buyer's last
  `ROTATION_AWARDS` (5) awards in the request's CPV group (first 3 digits) over the last
  `ROTATION_MONTHS` (24) months, while another valid quote (not chosen) exists. An award is an
  awarded request of the buyer's organisation, dated by its first order; its winners are its
  orders' workshops. An order cancelled afterwards still counts: the rule is about whom the buyer
  chose to contract with, and cancelling must not reset the count. A request without a CPV group
  (created before issue 17) neither counts nor is checked.
- ``min-quotes-not-met``: fewer quotes received than the request's ``min_quotes`` while its window is
  still open (the broker's good practice, not a law: "three quotes" is not in the code).

One justification answers every rule that fired; each is stored as ``{"code": reason, "text"}``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from fractions import Fraction

import msgspec

from broker.domain.fabrication import AwardJustification, Quote, Request, totals_cents
from broker.domain.lifecycle import QuoteStatus
from broker.domain.procurement import format_euros, paris_day

#: Flags of a quote that is not valid for the award (a quote may carry several).
LATE = "late"  # delivers after the request's deadline (Paris calendar day)
PARTIAL = "partial"  # fewer units than requested, on a request that may not be split
EXPIRED = "expired"  # past its validity date

#: The reasons a justification answers, in the order a refusal names them (the first one fired is
#: the problem's ``reason``; ``min-quotes-not-met`` last, so that alone it keeps its historic detail).
INVALID_QUOTE = "invalid-quote"
NOT_LOWEST = "not-lowest"
ROTATION = "rotation"
MIN_QUOTES = "min-quotes-not-met"
REASONS = (INVALID_QUOTE, NOT_LOWEST, ROTATION, MIN_QUOTES)

#: The problem code of each reason's refusal (409).
JUSTIFICATION_REQUIRED = "justification-required"
ROTATION_JUSTIFICATION_REQUIRED = "rotation-justification-required"
CODE_OF = {INVALID_QUOTE: JUSTIFICATION_REQUIRED, NOT_LOWEST: JUSTIFICATION_REQUIRED,
           ROTATION: ROTATION_JUSTIFICATION_REQUIRED, MIN_QUOTES: MIN_QUOTES}

ROTATION_AWARDS = 5  # the buyer's last awards looked at …
ROTATION_WINS = 2  # … of which a workshop may win this many before a justification is needed
ROTATION_MONTHS = 24  # … within this many months

_R2122_8 = "article R.2122-8 du code de la commande publique"
_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre")


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


def flags_of(request: Request, quote: Quote, *, now: datetime) -> tuple[str, ...]:
    """`quote_flags` of a quote of ``request``."""
    return quote_flags(status=quote.status, valid_until=quote.valid_until, delivery_date=quote.delivery_date,
                       quantity=quote.quantity, request_quantity=request.quantity,
                       request_deadline=request.deadline, allow_split=request.allow_split, now=now)


def ttc_cents(quote: Quote) -> int:
    return totals_cents(quote.unit_price_cents, quote.quantity, quote.vat_rate_bp)[2]


def unit_ttc_cents(quote: Quote) -> int:
    """The unit price TTC, rounded half up to the cent (for display; comparisons are exact)."""
    return (2 * ttc_cents(quote) + quote.quantity) // (2 * quote.quantity)


def unit_ttc(quote: Quote) -> Fraction:
    """The unit price TTC in cents, exactly."""
    return Fraction(ttc_cents(quote), quote.quantity)


def cheaper_per_unit(a: Quote, b: Quote) -> bool:
    """``a``'s unit price TTC is strictly lower than ``b``'s."""
    return unit_ttc(a) < unit_ttc(b)


class PastAward(msgspec.Struct, frozen=True, kw_only=True):
    """One of the buyer's earlier awards in a CPV group: the request, when (its first order) and
    the workshops its orders went to."""

    request_id: str
    awarded_at: datetime
    workshop_ids: frozenset[str]


def rotation_since(now: datetime) -> datetime:
    """The start of the rotation window: the same instant `ROTATION_MONTHS` months before ``now``
    (the last day of the month when that day does not exist, e.g. 29 February)."""
    months = now.year * 12 + now.month - 1 - ROTATION_MONTHS
    year, month = divmod(months, 12)
    for day in range(now.day, 0, -1):
        try:
            return now.replace(year=year, month=month + 1, day=day)
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def rotation_wins(workshop_id: str, awards: Sequence[PastAward]) -> tuple[int, int]:
    """(wins of ``workshop_id``, awards looked at) among the last `ROTATION_AWARDS` of ``awards``."""
    last = sorted(awards, key=lambda a: (a.awarded_at, a.request_id), reverse=True)[:ROTATION_AWARDS]
    return sum(1 for a in last if workshop_id in a.workshop_ids), len(last)


class Breach(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A rule the buyer's choice departs from: ``reason`` (one of `REASONS`), a French ``detail``
    with the figures, and what the UI needs to point at (the quote and workshop concerned)."""

    reason: str
    detail: str
    quote_id: str | None = None
    workshop_id: str | None = None
    workshop_name: str | None = None
    total_eur_ttc: str | None = None
    flags: list[str] | None = None
    wins: int | None = None
    awards: int | None = None

    @property
    def code(self) -> str:
        return CODE_OF[self.reason]


def french_day(day: date) -> str:
    return f"{day.day}{'er' if day.day == 1 else ''} {_MONTHS[day.month - 1]} {day.year}"


def _name(names: Mapping[str, str], workshop_id: str) -> str:
    return f"«\u00a0{names.get(workshop_id, workshop_id)}\u00a0»"


def _euros(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def invalid_breach(request: Request, quote: Quote, flags: tuple[str, ...], names: Mapping[str, str]) -> Breach:
    why = []
    if LATE in flags:
        why.append(f"livraison le {french_day(quote.delivery_date)}, après l'échéance du "
                   f"{french_day(paris_day(request.deadline))}")
    if PARTIAL in flags:
        why.append(f"{quote.quantity}\u00a0unités sur les {request.quantity} demandées")
    return Breach(
        reason=INVALID_QUOTE, quote_id=quote.id, workshop_id=quote.workshop_id,
        workshop_name=names.get(quote.workshop_id), total_eur_ttc=_euros(ttc_cents(quote)), flags=list(flags),
        detail=f"Le devis de {_name(names, quote.workshop_id)} ne répond pas à la demande\u00a0: {' ; '.join(why)}. "
               "Le retenir demande une justification.",
    )


def not_lowest_breach(request: Request, cheaper: Quote, dearest: Quote, names: Mapping[str, str]) -> Breach:
    whole = cheaper.quantity == dearest.quantity == request.quantity
    if whole:
        figures = (f"{format_euros(ttc_cents(cheaper))} TTC contre {format_euros(ttc_cents(dearest))} TTC pour "
                   f"celui de {_name(names, dearest.workshop_id)}")
    else:
        figures = (f"{format_euros(unit_ttc_cents(cheaper))} TTC l'unité ({format_euros(ttc_cents(cheaper))} TTC "
                   f"pour {cheaper.quantity}\u00a0unités) contre {format_euros(unit_ttc_cents(dearest))} TTC "
                   f"l'unité pour celui de {_name(names, dearest.workshop_id)}")
    return Breach(
        reason=NOT_LOWEST, quote_id=cheaper.id, workshop_id=cheaper.workshop_id,
        workshop_name=names.get(cheaper.workshop_id), total_eur_ttc=_euros(ttc_cents(cheaper)),
        detail=f"Un devis valide moins cher n'est pas retenu\u00a0: celui de {_name(names, cheaper.workshop_id)}, "
               f"{figures}. Écarter l'offre la moins chère demande une justification (bonne utilisation des "
               f"deniers publics, {_R2122_8}).",
    )


def rotation_breach(request: Request, quote: Quote, wins: int, awards: int, names: Mapping[str, str]) -> Breach:
    return Breach(
        reason=ROTATION, quote_id=quote.id, workshop_id=quote.workshop_id, workshop_name=names.get(quote.workshop_id),
        total_eur_ttc=_euros(ttc_cents(quote)), wins=wins, awards=awards,
        detail=f"L'atelier {_name(names, quote.workshop_id)} a remporté {wins} des {awards} dernières attributions "
               f"de votre organisation pour le groupe CPV {request.cpv_group} (sur {ROTATION_MONTHS}\u00a0mois), "
               "alors que d'autres devis valides ont été reçus\u00a0: ne pas contracter systématiquement avec un même "
               f"opérateur économique ({_R2122_8}). Justifiez ce choix.",
    )


def min_quotes_breach(request: Request, received: int) -> Breach:
    return Breach(
        reason=MIN_QUOTES,
        detail=f"{received}\u00a0devis reçu{'s' if received > 1 else ''} sur les {request.min_quotes} attendus alors "
               f"que la consultation court jusqu'au {french_day(paris_day(request.quote_deadline))}\u00a0: "
               "attendez sa clôture, ou justifiez l'attribution.",
    )


def assess(
    request: Request, quotes: Sequence[Quote], chosen_ids: Sequence[str], *, now: datetime,
    names: Mapping[str, str], past_awards: Sequence[PastAward] | None,
) -> list[Breach]:
    """Every rule the choice of ``chosen_ids`` among ``quotes`` (all the request's quotes) departs
    from, in the order of `REASONS`. ``past_awards`` are the buyer's earlier awards in the request's
    CPV group over the rotation window (None: not looked up, no rotation check; see `needs_history`).
    The chosen quotes are assumed still open and unexpired (the caller refuses the others)."""
    order = {quote_id: i for i, quote_id in enumerate(chosen_ids)}
    chosen = sorted((q for q in quotes if q.id in order), key=lambda q: order[q.id])
    breaches = [invalid_breach(request, q, flags, names) for q in chosen if (flags := flags_of(request, q, now=now))]
    others = valid_others(request, quotes, chosen_ids, now=now)
    cheapest = lowest_valid(request, others, now=now)
    if cheapest is not None and chosen:
        dearest = max(chosen, key=lambda q: (unit_ttc(q), ttc_cents(q)))
        if cheaper_per_unit(cheapest, dearest):
            breaches.append(not_lowest_breach(request, cheapest, dearest, names))
    if others and past_awards is not None:
        for quote in chosen:
            wins, awards = rotation_wins(quote.workshop_id, past_awards)
            if wins >= ROTATION_WINS:
                breaches.append(rotation_breach(request, quote, wins, awards, names))
                break
    received = sum(1 for q in quotes if q.status in (QuoteStatus.SUBMITTED, QuoteStatus.ACCEPTED))
    if received < request.min_quotes and not request.window_closed:
        breaches.append(min_quotes_breach(request, received))
    return breaches


def valid_others(request: Request, quotes: Sequence[Quote], chosen_ids: Sequence[str], *, now: datetime) -> list[Quote]:
    """The valid quotes of ``quotes`` not chosen (from workshops other than the chosen ones')."""
    chosen = set(chosen_ids)
    chosen_shops = {q.workshop_id for q in quotes if q.id in chosen}
    return [q for q in quotes if q.id not in chosen and q.workshop_id not in chosen_shops
            and is_valid(q.status, flags_of(request, q, now=now))]


def lowest_valid(request: Request, quotes: Sequence[Quote], *, now: datetime) -> Quote | None:
    """The valid quote with the lowest unit price TTC (then total TTC, then the earliest)."""
    valid = [q for q in quotes if is_valid(q.status, flags_of(request, q, now=now))]
    return min(valid, key=lambda q: (unit_ttc(q), ttc_cents(q), q.created_at, q.id), default=None)


def needs_history(request: Request, quotes: Sequence[Quote], chosen_ids: Sequence[str], *, now: datetime) -> bool:
    """Whether the rotation rule may fire (so that the buyer's past awards are worth reading): the
    request has a CPV group and another valid quote exists."""
    return request.cpv_group is not None and bool(valid_others(request, quotes, chosen_ids, now=now))


def justifications(breaches: Sequence[Breach], text: str) -> tuple[AwardJustification, ...]:
    """What the award stores: one ``{code: reason, text}`` per rule that fired (once each)."""
    seen: list[str] = []
    for breach in breaches:
        if breach.reason not in seen:
            seen.append(breach.reason)
    return tuple(AwardJustification(code=reason, text=text) for reason in seen)


def refusal_detail(breaches: Sequence[Breach]) -> str:
    """The refusal's French detail: every rule that fired, the first one first."""
    return " ".join(b.detail for b in breaches) + (
        " Une seule justification suffit pour l'ensemble." if len({b.reason for b in breaches}) > 1 else "")
