"""Crisis call benchmark (issue 7): creating and allocating a call of 5,000 workshops × 2,000
delivery points through the service layer (`broker.services.crisis.create_call`: validation,
geocoding, every workshop judged by the matching filters, the exact solver, one proposal, booking
and outbox event per commitment, commit), its time and peak Python memory (tracemalloc), and the
pure solver (`matching.allocate`) on the same supplies and points beside it.

Workshops are fab labs (laser, FDM, assembly) on real communes drawn by population, radius
30–150 km, 40 % with a declared visor capacity (20–200 a day), the others at their machine hours;
bulk-inserted with SQLAlchemy Core into a fresh SQLite database (the embedded default; PostgreSQL
too when ``BROKER_BENCH_DATABASE_URL`` is set). Delivery points are distinct communes drawn by
population, priorities 1/2/3, demand ≈ 80 % of the capacity.

Timed run and memory run are separate (tracemalloc slows Python 2–3×), each on its own copy of the
seeded database (a call books capacity).

    .venv/bin/python tests/bench/run.py --only crisis [--quick]
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import shutil
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SEED = 7
FULL = (5_000, 2_000)
QUICK = (1_000, 400)


def _siret(n: int) -> str:
    from broker.domain.identifiers import luhn_ok

    base = f"{(300000000 + n * 7919) % 10**8:08d}"
    siren = next(base + str(d) for d in range(10) if luhn_ok(base + str(d)))
    return next(siren + f"{t:05d}" for t in range(10**4, 10**5) if luhn_ok(siren + f"{t:05d}"))


def _communes() -> list[Any]:
    from adapters.geocoding import load_communes

    return [c for c in load_communes().all() if c.population]


def _rows(n: int, now: datetime) -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(SEED)
    communes = _communes()
    weights = [c.population for c in communes]
    orgs, shops, machines, capacities = [], [], [], []
    for i, c in enumerate(rng.choices(communes, weights=weights, k=n)):
        org_id, shop_id = str(uuid.uuid4()), str(uuid.uuid4())
        name = f"Fab lab {c.name} {i}"[:200]
        orgs.append({"id": org_id, "kind": "manufacture", "name": name, "siret": _siret(i),
                     "commune_insee": c.insee, "created_at": now})
        shops.append({"id": shop_id, "org_id": org_id, "name": name, "commune_insee": c.insee,
                      "lat": c.lat + rng.uniform(-0.009, 0.009), "lon": c.lon + rng.uniform(-0.012, 0.012),
                      "delivery_radius_km": float(rng.randint(30, 150)), "trades": ["numerique"],
                      "labels": ["fablab"], "certifications": [], "verified_labels": ["fablab"],
                      "verified_certifications": [], "paused": rng.random() < 0.03, "reserved_units": 0,
                      "orders_delivered": 0, "orders_on_time": 0, "recent_wins": 0, "created_at": now,
                      "updated_at": now})
        for process, envelope, materials, hours in (
            ("laser_cutting", [1000, 600, 50], [("petg", 3), ("pmma", 8)], 20),
            ("fdm_printing", [250, 210, 210], [("pla", 10), ("petg", 10)], 60),
            ("assembly", [1000, 1000, 1000], [("petg", 5), ("pla", 5)], 20),
        ):
            machines.append({"id": str(uuid.uuid4()), "workshop_id": shop_id, "process": process,
                             "envelope_mm": envelope, "hours_per_week": float(round(hours * rng.uniform(0.5, 1.5))),
                             "materials": [{"material": m, "max_thickness_mm": t} for m, t in materials],
                             "created_at": now})
        if rng.random() < 0.4:
            capacities.append({"id": str(uuid.uuid4()), "workshop_id": shop_id, "item_slug": "face-visor",
                               "units_per_day": float(rng.randint(20, 200)), "updated_at": now})
    coordination = {"id": str(uuid.uuid4()), "kind": "coordination", "name": "Cellule interministérielle de crise",
                    "siret": _siret(n + 1), "commune_insee": "75056", "created_at": now}
    return {"organization": [*orgs, coordination], "workshop": shops, "machine": machines,
            "workshop_capacity": capacities}


async def _seed(url: str, rows: dict[str, list[dict[str, Any]]]) -> None:
    from sqlalchemy import insert

    from broker.db.models import Base
    from broker.db.session import Database
    from broker.settings import DatabaseSettings

    db = Database(DatabaseSettings(url=url))
    try:
        async with db.write_engine.begin() as conn:
            for table in ("organization", "workshop", "machine", "workshop_capacity"):
                for start in range(0, len(rows[table]), 2000):
                    await conn.execute(insert(Base.metadata.tables[table]), rows[table][start:start + 2000])
    finally:
        await db.dispose()


def _points(m: int, capacity: int) -> list[Any]:
    from broker.domain.crisis import NewPoint

    rng = random.Random(SEED + 1)
    communes = _communes()
    cumulative = list(itertools.accumulate(c.population for c in communes))
    chosen: dict[str, Any] = {}
    while len(chosen) < m:
        for c in rng.choices(communes, cum_weights=cumulative, k=m - len(chosen)):
            if len(chosen) < m:
                chosen.setdefault(c.insee, c)
    shares = [rng.uniform(0.2, 1.8) for _ in range(m)]
    kinds = ("Centre hospitalier", "EHPAD", "Pharmacie", "Mairie", "Maison de santé")
    return [NewPoint(label=f"{kinds[i % 5]} de {c.name} ({c.insee})", commune_insee=c.insee,
                     quantity=max(1, int(0.8 * capacity * s / sum(shares))), priority=1 + rng.randrange(3))
            for i, (c, s) in enumerate(zip(chosen.values(), shares, strict=True))]


async def _run(url: str, m: int, deadline: datetime, *, memory: bool) -> dict[str, Any]:
    from sqlalchemy import select, text

    import matching
    from adapters.geocoding import load_communes
    from broker.db.models import OrganizationRow
    from broker.db.session import Database
    from broker.domain.access import Principal, Role
    from broker.services import crisis
    from broker.services.crisis_allocation import suppliers_for
    from broker.services.workshops import catalogue_item
    from broker.settings import CrisisSettings, DatabaseSettings

    db = Database(DatabaseSettings(url=url))
    geocoder = load_communes()
    try:
        async with db.reader() as session:
            org_id = (await session.execute(
                select(OrganizationRow.id).where(OrganizationRow.kind == "coordination"))).scalar_one()
            item = await catalogue_item(session, slug="face-visor")
            t0 = time.perf_counter()
            found = await suppliers_for(session, item, deadline=deadline, now=datetime.now(UTC))
            suppliers_s = time.perf_counter() - t0
        capacity = sum(s.gross for s in found.active)
        points = _points(m, capacity)
        actor = Principal(org_id=org_id, key_id="bench", key_prefix="bench", role=Role.COORDINATOR)
        new = crisis.NewCall(item="face-visor", deadline=deadline, priority=1, max_distance_km=None,
                             points=tuple(points))
        if memory:
            tracemalloc.start()
        t0 = time.perf_counter()
        async with db.writer() as session:
            call = await crisis.create_call(session, actor=actor, new=new, geocoder=geocoder,
                                            settings=CrisisSettings(), now=datetime.now(UTC))
            await session.commit()
        total_s = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] if memory else None
        if memory:
            tracemalloc.stop()
        async with db.reader() as session:
            commitments = int((await session.execute(text(
                "SELECT count(*) FROM commitment WHERE call_id = :c"), {"c": call.id})).scalar_one())
            committed = int((await session.execute(text(
                "SELECT coalesce(sum(quantity), 0) FROM commitment WHERE call_id = :c"), {"c": call.id})).scalar_one())
            events = int((await session.execute(text("SELECT count(*) FROM outbox_event"))).scalar_one())
        # The pure solver on the very supplies and points the service used.
        supplies = [matching.Supply(s.workshop.id, s.workshop.lat, s.workshop.lon, s.gross,
                                    s.workshop.delivery_radius_km) for s in found.active]
        demand = []
        for i, p in enumerate(points):
            commune = geocoder.commune(p.commune_insee)
            assert commune is not None
            demand.append(matching.DeliveryPoint(f"p{i:05d}", commune.lat, commune.lon, p.quantity, p.priority))
        t0 = time.perf_counter()
        solved = matching.allocate(supplies, demand)
        solver_s = time.perf_counter() - t0
        requested = sum(p.quantity for p in points)
        assert committed == requested - sum(solved.unmet.values()), (committed, requested, solved.unmet)
        return {"create_and_allocate_s": round(total_s, 3), "suppliers_s": round(suppliers_s, 3),
                "solver_s": round(solver_s, 3), "peak_mib": round(peak / 2**20, 1) if peak else None,
                "able_workshops": found.able, "active_workshops": len(found.active), "capacity": capacity,
                "requested": requested, "committed": committed, "commitments": commitments,
                "outbox_events": events, "solver_assignments": len(solved.assignments)}
    finally:
        await db.dispose()


def run_case(n: int, m: int, workdir: Path, pg_url: str | None = None) -> dict[str, Any]:
    from broker.db.migrate import upgrade

    now = datetime.now(UTC)
    deadline = now + timedelta(days=14)
    t0 = time.perf_counter()
    rows = _rows(n, now)
    if pg_url is None:
        template = workdir / "template.db"
        upgrade(f"sqlite+aiosqlite:///{template}")
        asyncio.run(_seed(f"sqlite+aiosqlite:///{template}", rows))
        seeded_s = time.perf_counter() - t0
        results = []
        for memory in (False, True):
            copy = workdir / f"run-{int(memory)}.db"
            shutil.copyfile(template, copy)
            results.append(asyncio.run(_run(f"sqlite+aiosqlite:///{copy}", m, deadline, memory=memory)))
        backend = "sqlite"
    else:
        from bench_http import pg_database

        results = []
        seeded_s = 0.0
        for memory in (False, True):
            with pg_database(pg_url) as url:
                upgrade(url)
                asyncio.run(_seed(url, rows))
                seeded_s = time.perf_counter() - t0
                results.append(asyncio.run(_run(url, m, deadline, memory=memory)))
        backend = "postgresql"
    timed, traced = results
    return {"backend": backend, "workshops": n, "points": m, "seed_s": round(seeded_s, 1), **timed,
            "peak_mib": traced["peak_mib"], "traced_s": traced["create_and_allocate_s"],
            "service_over_solver": round(timed["create_and_allocate_s"] / max(timed["solver_s"], 1e-9), 1)}


def main(quick: bool = False) -> dict[str, Any]:
    n, m = QUICK if quick else FULL
    workdir = Path(tempfile.mkdtemp(prefix="broker-bench-crisis-"))
    cases = []
    try:
        cases.append(run_case(n, m, workdir))
        pg = os.environ.get("BROKER_BENCH_DATABASE_URL")
        if pg:
            cases.append(run_case(n, m, workdir, pg))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("crisis call: create + allocate through the service layer (one transaction), pure solver beside it")
    header = f"{'backend':<10} {'W x P':>11} {'commitments':>11} {'service s':>9} {'solver s':>8} {'ratio':>6} " \
             f"{'filters s':>9} {'peak MiB':>8} {'unmet':>8}"
    print(header)
    for c in cases:
        print(f"{c['backend']:<10} {c['workshops']:>5}x{c['points']:<5} {c['commitments']:>11} "
              f"{c['create_and_allocate_s']:>9.2f} {c['solver_s']:>8.2f} {c['service_over_solver']:>6.1f} "
              f"{c['suppliers_s']:>9.2f} {c['peak_mib']:>8.1f} {c['requested'] - c['committed']:>8}")
    return {"quick": quick, "cases": cases}


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
