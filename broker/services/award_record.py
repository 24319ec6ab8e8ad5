"""The award record of a request (issue 17, item 6): the « rapport de présentation / note de choix »
an auditor asks for — buyer, object, procedure and rule, who was invited and why, who quoted or
declined, every quote compared with its flags, the choice and its justifications.

Available at any status: before the award it is the file as it stands (choice and justifications
empty), so a buyer can read what the award page will weigh; after it, quotes are judged as they
stood at ``awarded_at``. Visible to the request's buyer organisation (its ``buyer`` and
``integration`` keys, as orders are) and to admins; anyone else gets a 404."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy.ext.asyncio import AsyncSession

from adapters.documents.award_pdf import AwardRecordPdf
from adapters.documents.base import (
    AwardRecord,
    RecordBuyer,
    RecordCumulative,
    RecordInvitation,
    RecordJustification,
    RecordObject,
    RecordOrder,
    RecordProcurement,
    RecordQuote,
    RecordRenderer,
)
from adapters.geocoding.base import Geocoder
from broker.db.fabrication import InvitationRepository, OrderRepository, QuoteRepository, WorkshopRepository
from broker.db.repositories import OrganisationRepository
from broker.domain import procurement as law
from broker.domain.access import Principal
from broker.domain.award_rules import is_valid, quote_flags
from broker.domain.cpv import cpv_label
from broker.domain.fabrication import Quote, Request, totals_cents
from broker.domain.lifecycle import InvitationStatus, QuoteStatus
from broker.errors import NotFound
from broker.services.requests import get_request
from matching.geo import haversine_km

#: The French wording of each rule a justification answers (the codes of the award's 409s).
JUSTIFICATION_LABELS: dict[str, str] = {
    "min-quotes-not-met": "moins d'offres que le minimum demandé",
    "not-lowest": "offre retenue qui n'est pas la moins-disante",
    "rotation": "même titulaire que lors de précédents achats",
    "invalid-quote": "offre hors délai ou partielle",
}
FREE_JUSTIFICATION = "justification de l'acheteur"

PDF: RecordRenderer = AwardRecordPdf()


def _cents(amount: str | None) -> int | None:
    """``"9000.00"`` → 900000; None for a missing or unreadable amount (older requests)."""
    if amount is None:
        return None
    try:
        return int(Decimal(amount) * 100)
    except InvalidOperation:
        return None


def _justifications(request: Request) -> tuple[RecordJustification, ...]:
    stored = request.award_justifications or ()
    if stored:
        return tuple(RecordJustification(code=j.code, label=JUSTIFICATION_LABELS.get(j.code, j.code), text=j.text)
                     for j in stored)
    # Awards made before issue 17 (or by a path that stored only the text): the buyer's words alone.
    text = (request.award_justification or "").strip()
    return (RecordJustification(code=None, label=FREE_JUSTIFICATION, text=text),) if text else ()


def _procurement(request: Request) -> RecordProcurement:
    p = request.procurement
    cumulative = p.cumulative
    estimated = request.estimated_cents if request.estimated_cents is not None else _cents(p.estimated_value_eur_ht)
    cpv = request.cpv or p.cpv
    procedure = request.procedure or p.procedure
    return RecordProcurement(
        nature=request.nature or p.nature,
        cpv=cpv,
        cpv_label=cpv_label(cpv) if cpv else None,
        estimated_cents=estimated,
        budget_cents=request.budget_cents,
        procedure=procedure,
        procedure_label=law.procedure_words(procedure),
        threshold_cents=_cents(p.threshold_eur_ht),
        rule=p.rule,
        cumulative=None if cumulative is None else RecordCumulative(
            year=cumulative.year, cpv_group=cumulative.cpv_group,
            awarded_cents=_cents(cumulative.awarded_eur_ht) or 0,
            open_estimates_cents=_cents(cumulative.open_estimates_eur_ht) or 0),
        warning=p.warning,
        publicity_reference=p.publicity_reference,
    )


def _quote_rows(
    request: Request, quotes: list[Quote], names: dict[str, str], distances: dict[str, float], *,
    at: datetime, awarded: bool,
) -> tuple[RecordQuote, ...]:
    judged = []
    for q in quotes:
        # The award moves every open quote to accepted or rejected: judge them as they stood then.
        status = QuoteStatus.SUBMITTED if awarded and q.status in (QuoteStatus.ACCEPTED, QuoteStatus.REJECTED) \
            else QuoteStatus(q.status)
        flags = quote_flags(status=status, valid_until=q.valid_until, delivery_date=q.delivery_date,
                            quantity=q.quantity, request_quantity=request.quantity,
                            request_deadline=request.deadline, allow_split=request.allow_split, now=at)
        judged.append((q, flags, is_valid(status, flags), totals_cents(q.unit_price_cents, q.quantity, q.vat_rate_bp)))
    valid_ttc = [totals[2] for _q, _f, valid, totals in judged if valid]
    lowest = min(valid_ttc) if valid_ttc else None
    rows = [
        RecordQuote(
            quote_id=q.id, workshop_id=q.workshop_id, workshop_name=names.get(q.workshop_id, q.workshop_id),
            status=q.status, quantity=q.quantity, unit_price_cents=q.unit_price_cents, vat_rate_bp=q.vat_rate_bp,
            ht_cents=ht, vat_cents=vat, ttc_cents=ttc, delivery_date=q.delivery_date, valid_until=q.valid_until,
            distance_km=distances.get(q.workshop_id), flags=flags, valid=valid,
            lowest=valid and ttc == lowest, chosen=q.status == QuoteStatus.ACCEPTED, note=q.note,
        )
        for q, flags, valid, (ht, vat, ttc) in judged
    ]
    # The comparison reads cheapest first; ties keep the order the quotes arrived in.
    return tuple(sorted(rows, key=lambda r: r.ttc_cents))


async def award_record(
    session: AsyncSession, *, actor: Principal, request_id: str, geocoder: Geocoder, now: datetime
) -> AwardRecord:
    """The record of ``request_id`` as the caller may read it (another organisation's: NotFound)."""
    request = await get_request(session, actor=actor, request_id=request_id)
    buyer = await OrganisationRepository(session).get(request.org_id, scope_org_id=None)
    if buyer is None:  # the foreign key makes this impossible
        raise NotFound(f"request {request_id} not found")
    invitations = await InvitationRepository(session).for_request(request_id)
    quotes = await QuoteRepository(session).for_request(request_id)
    orders = await OrderRepository(session).for_request(request_id)
    workshops = await WorkshopRepository(session).many(
        list(dict.fromkeys([i.workshop_id for i in invitations] + [q.workshop_id for q in quotes])))
    names = {k: w.name for k, w in workshops.items()}
    distances = {k: haversine_km(w.lat, w.lon, request.delivery_lat, request.delivery_lon)
                 for k, w in workshops.items()}
    distances.update({i.workshop_id: i.distance_km for i in invitations})
    awarded = bool(orders)
    at = request.awarded_at or (orders[0].created_at if orders else now)

    quoted = {q.workshop_id: q.status for q in quotes}
    invited = []
    for i in sorted(invitations, key=lambda i: (i.source != "matching", i.rank, i.created_at)):
        if i.status == InvitationStatus.DECLINED:
            answer = "declined"
        elif i.workshop_id not in quoted:
            answer = "none"
        else:
            answer = "withdrawn" if quoted[i.workshop_id] == QuoteStatus.WITHDRAWN else "quoted"
        invited.append(RecordInvitation(
            workshop_id=i.workshop_id, workshop_name=names.get(i.workshop_id, i.workshop_id), source=i.source,
            rank=i.rank, score=i.score, distance_km=i.distance_km, reasons=tuple(i.reasons), status=i.status,
            answer=answer, decline_reason=i.decline_reason))
    commune = geocoder.commune(request.delivery_insee)
    p = request.procurement
    return AwardRecord(
        request_id=request.id,
        reference=request.id[:8].upper(),
        status=request.status,
        generated_at=now,
        created_at=request.created_at,
        quote_deadline=request.quote_deadline,
        window_closed=request.window_closed,
        buyer=RecordBuyer(name=buyer.name, siret=buyer.siret, purchasing_siret=p.buyer_siret,
                          service_code=p.service_code, engagement_number=p.engagement_number),
        object=RecordObject(name=request.name, item_slug=request.item_slug, quantity=request.quantity,
                            deadline=request.deadline, delivery_insee=request.delivery_insee,
                            delivery_commune=None if commune is None else commune.name,
                            delivery_address=request.delivery_address, allow_split=request.allow_split,
                            min_quotes=request.min_quotes),
        procurement=_procurement(request),
        invitations=tuple(invited),
        quotes=_quote_rows(request, quotes, names, distances, at=at, awarded=awarded),
        orders=tuple(
            RecordOrder(order_id=o.id, number=o.number, quote_id=o.quote_id,
                        workshop_name=names.get(o.workshop_id, o.workshop_id), quantity=o.quantity,
                        ht_cents=totals_cents(o.unit_price_cents, o.quantity, o.vat_rate_bp)[0],
                        ttc_cents=totals_cents(o.unit_price_cents, o.quantity, o.vat_rate_bp)[2],
                        delivery_date=o.delivery_date, status=o.status)
            for o in orders),
        justifications=_justifications(request),
        awarded_at=request.awarded_at or (orders[0].created_at if orders else None),
        awarded_by=request.awarded_by,
    )


async def award_record_pdf(record: AwardRecord, *, renderer: RecordRenderer = PDF) -> bytes:
    """The record as PDF, rendered off the event loop (reportlab is CPU-bound, tens of ms)."""
    return await asyncio.to_thread(renderer.render, record)
