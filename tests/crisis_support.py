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


async def seed(
    db: Any, *, workshops_at: list[tuple[str, float, float]], coordinator: bool = True, admin_token: str | None = None
) -> dict[str, Any]:
    """An admin (``admin_token``'s, else a new one), one visor workshop per ``(insee, units_per_day,
    radius_km)`` (verified, declared capacity for face-visor), and a coordinator. Returns the keys
    and ids."""
    now = datetime.now(UTC)
    geocoder = load_communes()
    out: dict[str, Any] = {"makers": []}
    async with db.writer() as session:
        admin_token = admin_token or await access.ensure_admin(session, bootstrap_key=None, now=now)
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


def lp_optimum(
    supplies: list[tuple[str, float, float, int, float]],
    points: list[tuple[str, float, float, int, int]],
    *,
    max_distance_km: float | None = None,
    fixed: dict[tuple[str, str], int] | None = None,
) -> tuple[dict[int, float], float]:
    """The allocation problem as a linear programme solved by HiGHS (scipy.optimize.linprog), with
    nothing shared with the broker's solver but the distance formula: maximise the units covered
    at priority 1, then 2, … (each level's optimum kept as an equality), then minimise Σ units ×
    metres. ``fixed`` units on an edge are a lower bound (accepted commitments). Returns the units
    covered per priority and the minimal cost in unit·metres."""
    import numpy as np
    import scipy.sparse as sp
    from scipy.optimize import linprog

    from matching import haversine_km

    edges, cost = [], []
    for i, (wid, wlat, wlon, _units, radius) in enumerate(supplies):
        reach = radius if max_distance_km is None else min(radius, max_distance_km)
        for j, (pid, plat, plon, _demand, _prio) in enumerate(points):
            d = haversine_km(wlat, wlon, plat, plon)
            if d <= reach or (fixed or {}).get((wid, pid), 0) > 0:
                edges.append((i, j, wid, pid))
                cost.append(round(d * 1000.0))
    ne, ns = len(edges), len(supplies)
    rows = [i for i, _j, _w, _p in edges] + [ns + j for _i, j, _w, _p in edges]
    a_ub = sp.csr_matrix((np.ones(2 * ne), (rows, list(range(ne)) * 2)), shape=(ns + len(points), ne))
    b_ub = np.array([s[3] for s in supplies] + [p[3] for p in points], dtype=float)
    bounds = [((fixed or {}).get((w, p), 0), None) for _i, _j, w, p in edges]
    eq_rows: list[np.ndarray] = []
    eq_b: list[float] = []
    covered: dict[int, float] = {}
    for level in sorted({p[4] for p in points}):
        gain = np.array([-1.0 if points[j][4] == level else 0.0 for _i, j, _w, _p in edges])
        res = linprog(gain, A_ub=a_ub, b_ub=b_ub, A_eq=np.array(eq_rows) if eq_rows else None,
                      b_eq=eq_b or None, bounds=bounds, method="highs")
        assert res.status == 0, res.message
        covered[level] = -res.fun
        eq_rows.append(-gain)
        eq_b.append(-res.fun)
    res = linprog(np.array(cost, dtype=float), A_ub=a_ub, b_ub=b_ub, A_eq=np.array(eq_rows), b_eq=eq_b,
                  bounds=bounds, method="highs")
    assert res.status == 0, res.message
    return covered, float(res.fun)
