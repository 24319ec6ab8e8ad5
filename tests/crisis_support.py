"""Seeding for the crisis tests: many visor workshops in real communes and a coordinator, created
through the services in one transaction (the HTTP path costs ~6 requests per workshop; these tests
are about what happens after), plus the invariants every crisis test checks in the database."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from factories import make_siret
from sqlalchemy import text

from adapters.geocoding import load_communes
from broker.domain.access import OrgKind, Role
from broker.domain.fabrication import MaterialLimit
from broker.services import access, organisations, workshops

VISOR_MACHINES = [
    ("laser_cutting", (1000.0, 600.0, 50.0), [("petg", 3.0), ("pmma", 8.0)], 20.0),
    ("fdm_printing", (250.0, 210.0, 210.0), [("pla", 10.0), ("petg", 10.0)], 60.0),
    ("assembly", (1000.0, 1000.0, 1000.0), [("petg", 5.0), ("pla", 5.0)], 20.0),
]


def region_communes(region: str, n: int, *, seed: int) -> list[Any]:
    """``n`` communes of the region (INSEE region code, "53" = Bretagne), drawn with a fixed seed: a mix
    of towns and villages."""
    pool = sorted((c for c in load_communes().all() if c.region == region), key=lambda c: c.insee)
    return random.Random(seed).sample(pool, n)


async def seed(db: Any, *, workshops_at: list[tuple[str, float, float]], coordinator: bool = True) -> dict[str, Any]:
    """An admin, one visor workshop per ``(insee, units_per_day, radius_km)`` (verified, declared
    capacity for face-visor), and a coordinator. Returns the keys and ids."""
    now = datetime.now(UTC)
    geocoder = load_communes()
    out: dict[str, Any] = {"makers": []}
    async with db.writer() as session:
        admin_token = await access.ensure_admin(session, bootstrap_key=None, now=now)
        assert admin_token
        admin = await access.authenticate(session, token=admin_token)
        assert admin is not None
        out["admin"] = admin_token
        for i, (insee, per_day, radius) in enumerate(workshops_at):
            org = await organisations.create_organisation(
                session, actor=admin, kind=OrgKind.MANUFACTURE, name=f"Atelier {i:03d} ({insee})", siret=make_siret(),
                commune_insee=insee, geocoder=geocoder, now=now)
            await session.flush()
            _key, token = await access.issue_api_key(session, actor=admin, org_id=org.id, role=Role.MAKER,
                                                     label="crisis test", now=now)
            maker = await access.authenticate(session, token=token)
            assert maker is not None
            shop = await workshops.save_my_workshop(
                session, actor=maker, commune_insee=insee, delivery_radius_km=radius, trades=["numerique"],
                labels=["fablab"], certifications=[], paused=False, geocoder=geocoder, now=now)
            for process, envelope, materials, hours in VISOR_MACHINES:
                await workshops.add_machine(
                    session, actor=maker, process=process, envelope_mm=envelope, hours_per_week=hours, now=now,
                    materials=[MaterialLimit(material=m, max_thickness_mm=t) for m, t in materials])
            await workshops.declare_capacity(session, actor=maker, slug="face-visor", units_per_day=per_day, now=now)
            await workshops.verify_workshop(session, actor=admin, workshop_id=shop.id, labels=["fablab"],
                                            certifications=[], now=now)
            out["makers"].append({"workshop_id": shop.id, "org_id": org.id, "key": token, "insee": insee,
                                  "per_day": per_day, "radius_km": radius})
        if coordinator:
            org = await organisations.create_organisation(
                session, actor=admin, kind=OrgKind.COORDINATION, name="ARS Bretagne - cellule de crise",
                siret=make_siret(), commune_insee="35238", geocoder=geocoder, now=now)
            await session.flush()
            _key, out["coordinator"] = await access.issue_api_key(
                session, actor=admin, org_id=org.id, role=Role.COORDINATOR, label="crisis test", now=now)
            out["coordinator_org"] = org.id
        await session.commit()
    return out


async def check_invariants(db: Any, call_id: str) -> dict[str, int]:
    """What must hold whatever the interleaving, read from the database itself:
    - a point never has more units promised (live) nor accepted than its quantity, and its
      accepted_units counter equals its accepted and completed commitments;
    - a workshop never has more booked than its capacity allows: reserved_units equals what its
      proposed and accepted commitments book;
    - progress stays within the commitment: 0 <= delivered <= produced <= quantity.
    Returns the call's totals."""
    async with db.reader() as session:
        points = (await session.execute(text(
            "SELECT id, quantity, accepted_units FROM delivery_point WHERE call_id = :c"), {"c": call_id})).all()
        rows = (await session.execute(text(
            "SELECT delivery_point_id, workshop_id, quantity, status, produced, delivered FROM commitment "
            "WHERE call_id = :c"), {"c": call_id})).all()
        reserved = dict((await session.execute(text("SELECT id, reserved_units FROM workshop"))).all())
        booked_all = dict((await session.execute(text(
            "SELECT workshop_id, sum(quantity) FROM commitment WHERE status IN ('proposed', 'accepted') "
            "GROUP BY workshop_id"))).all())
    live: dict[str, int] = {}
    agreed: dict[str, int] = {}
    for point_id, _w, quantity, status, produced, delivered in rows:
        assert 0 <= delivered <= produced <= quantity
        if status in ("proposed", "accepted", "completed"):
            live[point_id] = live.get(point_id, 0) + quantity
        if status in ("accepted", "completed"):
            agreed[point_id] = agreed.get(point_id, 0) + quantity
    for point_id, quantity, accepted_units in points:
        assert live.get(point_id, 0) <= quantity, (point_id, live.get(point_id), quantity)
        assert accepted_units == agreed.get(point_id, 0) <= quantity, (point_id, accepted_units, agreed.get(point_id))
    for workshop_id, units in reserved.items():
        assert units == int(booked_all.get(workshop_id) or 0), (workshop_id, units, booked_all.get(workshop_id))
    requested = sum(q for _p, q, _a in points)
    committed = sum(live.values())
    return {"requested": requested, "committed": committed, "accepted": sum(agreed.values()),
            "unmet": requested - committed}
