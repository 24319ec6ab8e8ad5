"""DECP (issue 17): the record of each award at or above the publication threshold, written with the
award, listed per year in the official JSON or XML form, watched until the buyer publishes it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import msgspec
from lxml import etree
from sqlalchemy.ext.asyncio import AsyncSession

from broker.db.decp import DecpRepository
from broker.db.fabrication import QuoteRepository
from broker.domain import procurement as law
from broker.domain.access import Principal
from broker.domain.cpv import DEFAULT_CPV
from broker.domain.decp import PROCEDURE_NAMES, DecpRecord, Marche, build_marche, published
from broker.domain.events import DecpRecordCreated, DecpRecordPublished
from broker.domain.fabrication import Order, Request
from broker.domain.lifecycle import QuoteStatus
from broker.errors import NotFound, Rejected
from broker.services.events import emit

#: The default of ``BROKER_DECP_THRESHOLD_EUR_HT``, in cents (article R.2196-1 of the code de la
#: commande publique: 40 000 € HT).
DEFAULT_THRESHOLD_CENTS = 40_000_00


def _procedure(request: Request) -> law.Procedure | None:
    """The request's procedure; a request made before the procedure was recorded gets the one its
    estimate (else its budget) called for on the day it was created. None when the broker does not
    run it (never for a request created since: a formalised procedure is refused then)."""
    given = request.procedure or request.procurement.procedure
    if given is not None:
        procedure = law.Procedure(given)
    else:
        estimate = request.estimated_cents or request.budget_cents or 0
        nature = law.Nature(request.nature or request.procurement.nature)
        try:
            procedure = law.decide(nature, estimate, law.paris_day(request.created_at)).procedure
        except law.NoRule:
            return None
    return procedure if procedure in PROCEDURE_NAMES else None


async def record_award(
    session: AsyncSession, *, request: Request, orders: Sequence[Order], now: datetime, threshold: int
) -> DecpRecord | None:
    """The DECP record of an award (one marché, its orders' workshops the titulaires) when its total
    HT reaches ``threshold`` (cents), with its ``decp.record_created`` event, in the award's
    transaction. None below the threshold, and for a request made before issue 17 recorded CPV codes
    and procedures when its CPV or its procedure cannot be known (the buyer declares those itself)."""
    amount = sum(o.quantity * o.unit_price_cents for o in orders)
    if not orders or amount < threshold:
        return None
    cpv = request.cpv or request.procurement.cpv or DEFAULT_CPV.get(request.item_slug or "")
    procedure = _procedure(request)
    if cpv is None or procedure is None:
        return None
    repo = DecpRepository(session)
    sirets = await repo.sirets([o.maker_org_id for o in orders])
    quotes = await QuoteRepository(session).for_request(request.id)
    notified = law.paris_day(now)
    ends = max([law.paris_day(request.deadline), *(o.delivery_date for o in orders)])
    marche = build_marche(
        request_id=request.id, buyer_siret=request.procurement.buyer_siret, name=request.name,
        quantity=sum(o.quantity for o in orders), cpv=cpv, procedure=procedure,
        delivery_insee=request.delivery_insee, notified_on=notified, ends_on=ends, amount_cents=amount,
        titulaire_sirets=[sirets[o.maker_org_id] for o in orders],
        offers_received=sum(1 for q in quotes if q.status != QuoteStatus.WITHDRAWN),
    )
    record = DecpRecord(
        id=marche.id, org_id=request.org_id, request_id=request.id, year=notified.year,
        amount_cents=amount, notified_on=notified, due_on=law.decp_deadline(notified), published_at=None,
        marche=marche, created_at=now,
    )
    repo.add(record, now=now)
    await emit(session, DecpRecordCreated(id=record.id, request_id=request.id, year=record.year, amount_cents=amount,
                                          notified_on=notified.isoformat(), due_on=record.due_on.isoformat(),
                                          marche=marche),
               org_id=request.org_id, resource_id=record.id, now=now, first=True)
    return record


def _scope(actor: Principal) -> str | None:
    return None if actor.is_admin else actor.org_id


async def of_year(
    session: AsyncSession, *, actor: Principal, year: int, after: tuple[datetime, str] | None, limit: int
) -> list[DecpRecord]:
    """The records notified in ``year``: the caller's organisation's, every one for an admin."""
    return await DecpRepository(session).of_year(year, scope_org_id=_scope(actor), after=after, limit=limit)


async def overdue(
    session: AsyncSession, *, actor: Principal, now: datetime, after: tuple[datetime, str] | None, limit: int
) -> list[DecpRecord]:
    """The records still unpublished after their ``due_on`` (today in Paris is past it)."""
    return await DecpRepository(session).overdue(law.paris_day(now), scope_org_id=_scope(actor), after=after,
                                                 limit=limit)


async def mark_published(
    session: AsyncSession, *, actor: Principal, record_id: str, published_on: date | None, now: datetime
) -> DecpRecord:
    """The buyer published the record on ``published_on`` (today in Paris by default): it becomes
    the marché's ``datePublicationDonnees`` and the record is no longer overdue. Marking a record
    already published changes nothing (the first date stands) and emits nothing."""
    repo = DecpRepository(session)
    record = await repo.get(record_id, scope_org_id=actor.org_id)
    if record is None:
        raise NotFound(f"aucun enregistrement DECP {record_id} pour votre organisation")
    if record.published_at is not None:
        return record
    today = law.paris_day(now)
    day = published_on or today
    if not record.notified_on <= day <= today:
        raise Rejected(f"la date de publication doit être comprise entre la notification du marché "
                       f"({record.notified_on.isoformat()}) et aujourd'hui ({today.isoformat()})",
                       pointer="/published_on", code="decp-published-on-invalid")
    marche = published(record.marche, day)
    if not await repo.mark_published(record.id, marche=marche, at=now):
        again = await repo.get(record_id, scope_org_id=actor.org_id)  # published meanwhile: the same answer
        assert again is not None
        return again
    await emit(session, DecpRecordPublished(id=record.id, request_id=record.request_id, published_on=day.isoformat()),
               org_id=record.org_id, resource_id=record.id, now=now)
    return msgspec.structs.replace(record, published_at=now, marche=marche)


# ---- the XML form (schema 2.0.2) -----------------------------------------------------------------


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _add(parent: Any, name: str, value: object) -> None:
    """``value`` of the JSON form as XML under ``parent``: an object becomes an element of its
    members; a list of values repeats the element (``technique``); a list of objects is the element
    of their members (``titulaires`` holding each ``titulaire``)."""
    if isinstance(value, dict):
        element = etree.SubElement(parent, name)
        for key, item in value.items():
            _add(element, key, item)
    elif isinstance(value, list):
        if all(isinstance(item, dict) for item in value):
            element = etree.SubElement(parent, name)
            for item in value:
                for key, sub in item.items():
                    _add(element, key, sub)
        else:
            for item in value:
                etree.SubElement(parent, name).text = _text(item)
    else:
        etree.SubElement(parent, name).text = _text(value)


def marches_xml(marches: Sequence[Marche]) -> bytes:
    """The official XML form (schema 2.0.2: ``<marches>`` holding one ``<marche>`` each), the same
    tree as the JSON form."""
    root = etree.Element("marches")
    for marche in marches:
        element = etree.SubElement(root, "marche")
        for key, value in msgspec.to_builtins(marche).items():
            _add(element, key, value)
    document: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return document
