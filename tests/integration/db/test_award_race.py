"""G6/G7: 200 concurrent awards against one workshop with room for 10, through two API processes'
worth of connections: exactly 10 succeed, 190 get 409 problem details, no 5xx, no "database is
locked", and reserved == awarded == 10. A read-then-write reservation fails this test."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from factories import bearer, make_siret
from sqlalchemy import text
from support_concurrency import ConcurrentClients

import matching
from adapters.geocoding import load_communes
from broker.domain.access import OrgKind, Role
from broker.domain.fabrication import MaterialLimit, Procurement
from broker.services import access, organisations, quotes, requests, workshops
from broker.settings import MatchingSettings

N, ROOM = 200, 10


async def _setup(db) -> tuple[str, list[tuple[str, str]], str]:
    """One workshop able to make ROOM monitor stands by the deadline, N requests quoted by it."""
    now = datetime.now(UTC)
    deadline = now + timedelta(days=15)
    geo = load_communes()
    async with db.writer() as session:
        admin_token = await access.ensure_admin(session, bootstrap_key=None, now=now)
        admin = await access.authenticate(session, token=admin_token)
        maker_org = await organisations.create_organisation(session, actor=admin, kind=OrgKind.MANUFACTURE,
                                                            name="Atelier du Blavet", siret=make_siret(),
                                                            commune_insee="56178", geocoder=geo, now=now)
        buyer_org = await organisations.create_organisation(session, actor=admin, kind=OrgKind.COLLECTIVITE,
                                                            name="Commune de Pontivy", siret=make_siret(),
                                                            commune_insee="56178", geocoder=geo, now=now)
        await session.flush()
        _k, maker_token = await access.issue_api_key(session, actor=admin, org_id=maker_org.id, role=Role.MAKER,
                                                     label="race", now=now)
        _k, buyer_token = await access.issue_api_key(session, actor=admin, org_id=buyer_org.id, role=Role.BUYER,
                                                     label="race", now=now)
        maker = await access.authenticate(session, token=maker_token)
        buyer = await access.authenticate(session, token=buyer_token)
        await workshops.save_my_workshop(session, actor=maker, commune_insee="56178", delivery_radius_km=80, trades=[],
                                         labels=[], certifications=[], paused=False, geocoder=geo, now=now)
        for process in ("cnc_routing", "finishing", "assembly"):
            await workshops.add_machine(session, actor=maker, process=process, envelope_mm=(2500, 1250, 1000),
                                        materials=[MaterialLimit(material="birch_plywood", max_thickness_mm=30)],
                                        hours_per_week=35, now=now)
        days = matching.working_days(now, deadline)
        await workshops.declare_capacity(session, actor=maker, slug="monitor-stand", units_per_day=ROOM / days,
                                         now=now)
        pairs = []
        for _ in range(N):
            # 90 € HT each: the N open estimates of the buyer's CPV group add up to 18 000 € HT, below
            # the threshold of a procedure without publicity (no 7-day MAPA window needed).
            new = requests.NewRequest(
                item="monitor-stand", custom_name=None, custom_steps=(), custom_certifications=(), quantity=1,
                deadline=deadline, delivery_insee="56178", delivery_address="", budget_cents=9_000, min_quotes=1,
                quote_window_hours=72, allow_split=False, max_distance_km=None,
                procurement=Procurement(buyer_siret=make_siret()),
            )
            request, invited = await requests.create_request(session, actor=buyer, new=new, geocoder=geo,
                                                             settings=MatchingSettings(), now=now)
            assert invited == 1
            quote = await quotes.submit_quote(session, actor=maker, request_id=request.id, unit_price_cents=9_000,
                                              vat_rate_bp=2_000, quantity=1, delivery_date=datetime.now(UTC).date() + timedelta(
                                                  days=10), valid_until=None, note="", now=now)
            pairs.append((request.id, quote.id))
        await session.commit()
    return buyer_token, pairs, maker.org_id


async def test_concurrent_awards_never_overbook(settings, db, redis_client):
    buyer, pairs, _maker_org = await _setup(db)
    # Two apps (two engines, so separate connections), called concurrently in this event loop.
    async with ConcurrentClients(settings, 2) as clients:

        async def award(i: int, request_id: str, quote_id: str):
            return await clients[i % 2].post(f"/v1/requests/{request_id}/award", json={"quote_ids": [quote_id]},
                                             headers={**bearer(buyer), "Idempotency-Key": str(uuid.uuid4())})

        responses = await asyncio.gather(*[award(i, r, q) for i, (r, q) in enumerate(pairs)])
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == ROOM, sorted(set(statuses))
    assert statuses.count(409) == N - ROOM
    refused = [r.json() for r in responses if r.status_code == 409]
    assert {p["code"] for p in refused} == {"capacity-exhausted"}
    assert all(r.headers["content-type"] == "application/problem+json" for r in responses if r.status_code == 409)
    async with db.reader() as session:
        reserved = (await session.execute(text("SELECT reserved_units FROM workshop"))).scalar_one()
        orders = (await session.execute(text("SELECT count(*) FROM fab_order"))).scalar_one()
        accepted = (await session.execute(text("SELECT count(*) FROM quote WHERE status = 'accepted'"))).scalar_one()
    assert reserved == orders == accepted == ROOM
