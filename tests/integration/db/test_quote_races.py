"""A quote withdrawn, or a quote submitted, while the buyer awards the request.

The award counts the quotes received (the public-procurement rule: fewer than ``min_quotes`` while
the window is open needs a written justification) and rejects the quotes it did not choose. Both
read the request's quotes; a withdraw or a submit that commits after that read and before the
award's commit used to slip past it on PostgreSQL (READ COMMITTED: the award read the withdrawn
quote as still submitted, and its UPDATE rejecting the others never saw the new quote). Every
writer of a request's quotes now takes the request's row first, so they queue on it.

On SQLite the write lock already serialises whole transactions; the tests run there too (the same
answers) but only PostgreSQL can interleave them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from factories import make_siret
from sqlalchemy import text

import matching
from adapters.geocoding import load_communes
from broker.db.session import Database
from broker.domain.access import OrgKind, Principal, Role
from broker.domain.fabrication import MaterialLimit, Procurement
from broker.errors import Conflict
from broker.services import access, organisations, quotes, requests, workshops
from broker.settings import MatchingSettings


async def _setup(db: Database, *, makers: int, quoting: int, min_quotes: int) -> tuple[Principal, list[Principal],
                                                                                        str, list[str]]:
    """A buyer, ``makers`` workshops invited to one monitor-stand request (``min_quotes``), the
    first ``quoting`` of which quoted it."""
    now = datetime.now(UTC)
    deadline = now + timedelta(days=15)
    geo = load_communes()
    async with db.writer() as session:
        admin = await access.authenticate(session, token=await access.ensure_admin(session, bootstrap_key=None,
                                                                                    now=now))

        async def principal(kind: OrgKind, role: Role, name: str) -> Principal:
            org = await organisations.create_organisation(session, actor=admin, kind=kind, name=name,
                                                          siret=make_siret(), commune_insee="56178", geocoder=geo,
                                                          now=now)
            await session.flush()
            _key, token = await access.issue_api_key(session, actor=admin, org_id=org.id, role=role, label="race",
                                                     now=now)
            return await access.authenticate(session, token=token)

        buyer = await principal(OrgKind.COLLECTIVITE, Role.BUYER, "Commune de Pontivy")
        shops = []
        for i in range(makers):
            maker = await principal(OrgKind.MANUFACTURE, Role.MAKER, f"Atelier {i}")
            await workshops.save_my_workshop(session, actor=maker, commune_insee="56178", delivery_radius_km=80,
                                             trades=[], labels=[], certifications=[], paused=False, geocoder=geo,
                                             now=now)
            for process in ("cnc_routing", "finishing", "assembly"):
                await workshops.add_machine(session, actor=maker, process=process, envelope_mm=(2500, 1250, 1000),
                                            materials=[MaterialLimit(material="birch_plywood", max_thickness_mm=30)],
                                            hours_per_week=35, now=now)
            await workshops.declare_capacity(session, actor=maker, slug="monitor-stand",
                                             units_per_day=10 / matching.working_days(now, deadline), now=now)
            shops.append(maker)
        new = requests.NewRequest(
            item="monitor-stand", custom_name=None, custom_steps=(), custom_certifications=(), quantity=1,
            deadline=deadline, delivery_insee="56178", delivery_address="", budget_cents=100, min_quotes=min_quotes,
            quote_window_hours=72, allow_split=False, max_distance_km=None,
            procurement=Procurement(buyer_siret=make_siret()),
        )
        request, invited = await requests.create_request(session, actor=buyer, new=new, geocoder=geo,
                                                         settings=MatchingSettings(), now=now)
        assert invited == makers
        quote_ids = []
        for maker in shops[:quoting]:
            quote = await _quote(session, maker, request.id)
            quote_ids.append(quote.id)
        await session.commit()
    return buyer, shops, request.id, quote_ids


async def _quote(session: Any, maker: Principal, request_id: str) -> Any:
    return await quotes.submit_quote(session, actor=maker, request_id=request_id, unit_price_cents=9_000,
                                     vat_rate_bp=2_000, quantity=1, delivery_date=datetime.now(UTC).date() + timedelta(days=10),
                                     valid_until=None, note="", now=datetime.now(UTC))


async def _award(db: Database, buyer: Principal, request_id: str, quote_id: str) -> Any:
    async with db.writer() as session:
        try:
            orders = await quotes.award(session, actor=buyer, request_id=request_id, quote_ids=[quote_id],
                                        justification=None, now=datetime.now(UTC))
        except Conflict as exc:
            return exc
        await session.commit()
        return orders


async def _once_waiting(db: Database, task: asyncio.Future[Any]) -> None:
    """Return once ``task`` waits for a row lock or is done (PostgreSQL); on SQLite, once it had a
    moment to queue for the write lock (the outcome does not depend on it there)."""
    if db.is_sqlite:
        await asyncio.sleep(0.1)
        return
    for _ in range(400):
        async with db.reader() as session:
            waiting = (await session.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"))).scalar_one()
        if waiting or task.done():
            return
        await asyncio.sleep(0.025)
    pytest.fail("the second transaction neither waited nor finished")


async def test_a_quote_withdrawn_during_the_award_is_not_counted(db):
    """min_quotes 2, two quotes: the maker of the second withdraws it while the buyer awards the
    first without a justification. The award must see one quote left and refuse."""
    buyer, shops, request_id, (chosen, other) = await _setup(db, makers=2, quoting=2, min_quotes=2)
    async with db.writer() as withdraw:
        await quotes.withdraw_quote(withdraw, actor=shops[1], quote_id=other, now=datetime.now(UTC))
        award = asyncio.ensure_future(_award(db, buyer, request_id, chosen))
        await _once_waiting(db, award)
        await withdraw.commit()
    outcome = await award
    assert isinstance(outcome, Conflict) and outcome.code == "min-quotes-not-met", outcome
    async with db.reader() as session:
        statuses = dict((await session.execute(text("SELECT id, status FROM quote"))).all())
        request_status = (await session.execute(text("SELECT status FROM fab_request"))).scalar_one()
    assert statuses == {chosen: "submitted", other: "withdrawn"}
    assert request_status == "quoting"


async def test_a_quote_submitted_during_the_award_is_rejected_with_the_others(db):
    """A second workshop quotes while the buyer awards the first quote: its quote either goes in
    before the award (and is rejected with the others) or is refused; never left 'submitted' on an
    awarded request."""
    buyer, shops, request_id, (chosen,) = await _setup(db, makers=2, quoting=1, min_quotes=1)
    async with db.writer() as session:
        orders = await quotes.award(session, actor=buyer, request_id=request_id, quote_ids=[chosen],
                                    justification=None, now=datetime.now(UTC))
        assert len(orders) == 1

        async def submit() -> Any:
            async with db.writer() as other:
                try:
                    quote = await _quote(other, shops[1], request_id)
                except Conflict as exc:
                    return exc
                await other.commit()
                return quote

        late = asyncio.ensure_future(submit())
        await _once_waiting(db, late)
        await session.commit()
    outcome = await late
    assert isinstance(outcome, Conflict) and outcome.code == "quote-window-closed", outcome
    async with db.reader() as session:
        statuses = sorted((await session.execute(text("SELECT status FROM quote"))).scalars())
    assert statuses == ["accepted"]
