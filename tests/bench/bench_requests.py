"""Request benchmark (issue 5): ``POST /v1/requests`` — store, match over 10,000 workshops, invite —
in requests per second and latency, next to the foundation benchmark's one-INSERT Litestar reference
(``ref_apps.insert_app``) measured in the same run on the same kind of database. Goal: ≥ 40 % of it.

Per database (SQLite always; PostgreSQL when ``BROKER_BENCH_DATABASE_URL`` or
``BROKER_TEST_DATABASE_URL`` is set, in a throw-away database created on that server):

1. migrate, admin key, then 10,000 manufactures with their workshop and machines bulk-inserted with
   SQLAlchemy Core: workshops on real communes (``adapters/geocoding/data/communes-fr.csv.gz``, drawn
   with probability proportional to population, jittered ~1 km), delivery radius 30–150 km, a mix of
   fab labs (laser-cut PETG, FDM PLA/PETG, assembly), wood shops (CNC routing of birch plywood,
   finishing, assembly) and both, shapes as in ``tests/factories.py``; some declare a capacity;
   one collectivité with a ``buyer`` key;
2. the broker served by granian exactly as in ``bench_http`` (1 worker); one request with httpx first
   (invited count and the matches endpoint's ``eligible`` printed and checked > 0), then wrk POSTing
   ``/v1/requests`` with unique ``Idempotency-Key``s: 3 in 4 ``face-visor`` × 200 (split allowed),
   1 in 4 ``france-services-desk`` × 12, delivered to one of the 20 most populous communes;
3. the one-INSERT reference app (``ref_apps``) on the same database kind.

Run: ``.venv/bin/python tests/bench/run.py [--quick] --only requests`` or this file directly;
``--profile`` instead profiles the request in-process (cProfile around AsyncTestClient POSTs).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gzip
import json
import math
import os
import platform
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
for _p in (str(ROOT), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from bench_http import (  # noqa: E402
    CONNECTIONS,
    HOST,
    LUA_COMMON,
    LUA_POST,
    SECRET,
    Load,
    Phases,
    _broker_env,
    _clean_env,
    _figures,
    _measure,
    _pg_url,
    _safe,
    _stop,
    _version,
    check_ref_pool,
    durations,
    granian,
    pg_database,
    prepare_broker_db,
    redis_url,
    siret_for,
)

GOAL_RATIO = 0.40
N_WORKSHOPS = 10_000
COMMUNES_CSV = ROOT / "adapters" / "geocoding" / "data" / "communes-fr.csv.gz"
BUYER_SIRET = "21350238800019"  # Ville de Rennes (passes siret_problem)
BUYER_COMMUNE = "35238"
N_DELIVERY = 20  # delivery points: the most populous communes
SEED = 20260501
BROKER_WINDOW_S = 30.0  # full run: longer than one request's latency under 32 connections

# ---- wrk scripts: the foundation's Lua, plus p95 ----------------------------------------------------

_P95_FMT = '"p90_us":%d,'
_P95_ARG = "latency:percentile(90),"
assert _P95_FMT in LUA_COMMON and _P95_ARG in LUA_COMMON, "bench_http.LUA_COMMON changed: update the p95 patch"
LUA_COMMON_P95 = LUA_COMMON.replace(_P95_FMT, _P95_FMT + '"p95_us":%d,').replace(
    _P95_ARG, _P95_ARG + " latency:percentile(95),")

LUA_REQUESTS = r"""
local counter = 0
local base, nthreads, run, auth = 0, 1, "run", nil
statuses = {}
first_error = nil
local threads = {}
local communes = {%(communes)s}
local deadline = "%(deadline)s"

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  base = tonumber(args[1])
  nthreads = tonumber(args[2])
  run = args[3]
  auth = args[4]
end

function request()
  local seq = base + tid + counter * nthreads
  counter = counter + 1
  local insee = communes[(seq %% #communes) + 1]
  local item, quantity = "face-visor", 200
  if seq %% 4 == 3 then item, quantity = "france-services-desk", 12 end
  local body = string.format(
    '{"item":"%%s","quantity":%%d,"allow_split":true,"deadline":"%%s","delivery":{"commune_insee":"%%s"},'
    .. '"procurement":{"buyer_siret":"%(siret)s","estimated_value_eur_ht":"1.00"}}', item, quantity, deadline, insee)
  local headers = {["Content-Type"] = "application/json", ["Idempotency-Key"] = "breq-" .. run .. "-" .. seq,
                   ["Authorization"] = "Bearer " .. auth}
  return wrk.format("POST", nil, headers, body)
end
"""


class P95Load(Load):
    """bench_http's wrk runner with our own script and p95 read from the BENCH_JSON line."""

    def __init__(self, workdir: Path, run_id: str, post_script: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(workdir, run_id)
        if not self.wrk:
            raise RuntimeError("the requests bench needs wrk (scripts/install-wrk.sh); BENCH_LOADER=aiohttp "
                               "is not supported here")
        (workdir / "post.lua").write_text(post_script + LUA_COMMON_P95)

    def _wrk(self, port: int, method: str, path: str, seconds: float, base: int, token: str) -> dict[str, Any]:
        argv = [self.wrk or "wrk", f"-t{self.threads}", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s",
                "--timeout", "10s", "-s", str(self.workdir / "post.lua"), f"http://{HOST}:{port}{path}",
                "--", str(base), str(self.threads), self.run_id, token]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
        for line in proc.stdout.splitlines():
            if line.startswith("BENCH_JSON "):
                raw = json.loads(line[len("BENCH_JSON "):])
                return {**_figures(raw), "p95_ms": round(raw["p95_us"] / 1000, 3)}
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout[-2000:]} {proc.stderr[-2000:]}")


# ---- seeding ---------------------------------------------------------------------------------------

def read_communes() -> list[dict[str, Any]]:
    with gzip.open(COMMUNES_CSV, "rt", encoding="utf-8", newline="") as fh:
        return [{"insee": r["insee"], "name": r["name"], "population": int(r["population"] or 0),
                 "lat": float(r["lat"]), "lon": float(r["lon"])}
                for r in csv.DictReader(fh) if r["lat"] and r["lon"]]


def _hours(rng: random.Random, base: float) -> float:
    return float(max(4, round(base * rng.uniform(0.5, 1.5))))


def fab_lab(rng: random.Random) -> list[dict[str, Any]]:
    return [
        {"process": "laser_cutting", "envelope_mm": [rng.choice([600, 800, 1000, 1300]), 600, 50],
         "materials": [{"material": "petg", "max_thickness_mm": 3}, {"material": "pmma", "max_thickness_mm": 8}],
         "hours_per_week": _hours(rng, 20)},
        {"process": "fdm_printing", "envelope_mm": [rng.choice([220, 250, 300]), 210, 210],
         "materials": [{"material": "pla", "max_thickness_mm": 10}, {"material": "petg", "max_thickness_mm": 10}],
         "hours_per_week": _hours(rng, 60)},
        {"process": "assembly", "envelope_mm": [1000, 1000, 1000],
         "materials": [{"material": "petg", "max_thickness_mm": 5}, {"material": "pla", "max_thickness_mm": 5}],
         "hours_per_week": _hours(rng, 20)},
    ]


def wood_shop(rng: random.Random) -> list[dict[str, Any]]:
    return [
        {"process": "cnc_routing", "envelope_mm": [rng.choice([2500, 3050]), rng.choice([1250, 1530]), 100],
         "materials": [{"material": "birch_plywood", "max_thickness_mm": 30},
                       {"material": "mdf", "max_thickness_mm": 30}],
         "hours_per_week": _hours(rng, 35)},
        {"process": "finishing", "envelope_mm": [3000, 1500, 1000],
         "materials": [{"material": "birch_plywood", "max_thickness_mm": 50}], "hours_per_week": _hours(rng, 35)},
        {"process": "assembly", "envelope_mm": [3000, 2000, 2000],
         "materials": [{"material": "birch_plywood", "max_thickness_mm": 50}], "hours_per_week": _hours(rng, 35)},
    ]


def build_seed(communes: list[dict[str, Any]], n: int, now: datetime) -> dict[str, list[dict[str, Any]]]:
    """Rows for ``organization``, ``workshop``, ``machine`` and ``workshop_capacity``: 50 % fab labs,
    40 % wood shops, 10 % both; 3 % paused; 30 % declare a capacity for their catalogue item."""
    rng = random.Random(SEED)
    weights = [max(c["population"], 1) for c in communes]
    orgs, shops, machines, capacities = [], [], [], []
    for i, commune in enumerate(rng.choices(communes, weights=weights, k=n)):
        org_id, shop_id = str(uuid.uuid4()), str(uuid.uuid4())
        roll = rng.random()
        kind = "fab_lab" if roll < 0.5 else "wood_shop" if roll < 0.9 else "both"
        shop_machines = (fab_lab(rng) if kind != "wood_shop" else []) + (wood_shop(rng) if kind != "fab_lab" else [])
        lat = commune["lat"] + rng.uniform(-0.009, 0.009)
        lon = commune["lon"] + rng.uniform(-0.012, 0.012)
        name = f"Atelier {commune['name']} {i}"[:200]
        orgs.append({"id": org_id, "kind": "manufacture", "name": name, "siret": siret_for(1_000_000 + i),
                     "commune_insee": commune["insee"], "created_at": now})
        labels = ["manufacture-de-proximite"] if rng.random() < 0.6 else []
        shops.append({
            "id": shop_id, "org_id": org_id, "name": name, "commune_insee": commune["insee"], "lat": lat, "lon": lon,
            "delivery_radius_km": float(rng.randint(30, 150)),
            "trades": {"fab_lab": ["numerique"], "wood_shop": ["bois"], "both": ["numerique", "bois"]}[kind],
            "labels": labels, "certifications": [], "verified_labels": labels, "verified_certifications": [],
            "paused": rng.random() < 0.03, "reserved_units": 0, "orders_delivered": 0, "orders_on_time": 0,
            "recent_wins": 0, "created_at": now, "updated_at": now,
        })
        for m in shop_machines:
            machines.append({"id": str(uuid.uuid4()), "workshop_id": shop_id, "created_at": now, **m})
        if rng.random() < 0.3:
            slug, units = (("face-visor", float(rng.randint(20, 200))) if kind != "wood_shop"
                           else ("france-services-desk", float(rng.randint(1, 5))))
            capacities.append({"id": str(uuid.uuid4()), "workshop_id": shop_id, "item_slug": slug,
                               "units_per_day": units, "updated_at": now})
    return {"organization": orgs, "workshop": shops, "machine": machines, "workshop_capacity": capacities}


async def _seed(url: str, admin_token: str, rows: dict[str, list[dict[str, Any]]]) -> str:
    """Bulk-insert the workshops, then a collectivité and its buyer key (through the broker's service)."""
    from sqlalchemy import insert, text

    from broker.db.models import Base, OrganizationRow
    from broker.db.session import Database
    from broker.domain.access import Role
    from broker.services.access import authenticate, issue_api_key
    from broker.settings import load_settings

    settings = load_settings({"BROKER_DATABASE_URL": url, "BROKER_SECRET_KEY": SECRET})
    db = Database(settings.db)
    now = datetime.now(UTC)
    try:
        async with db.write_engine.begin() as conn:
            for table in ("organization", "workshop", "machine", "workshop_capacity"):
                batch = rows[table]
                for start in range(0, len(batch), 2000):
                    await conn.execute(insert(Base.metadata.tables[table]), batch[start:start + 2000])
            buyer_org = str(uuid.uuid4())
            await conn.execute(insert(OrganizationRow.__table__), [{
                "id": buyer_org, "kind": "collectivite", "name": "Ville de Rennes (bench)", "siret": BUYER_SIRET,
                "commune_insee": BUYER_COMMUNE, "created_at": now}])
        if not db.is_sqlite:  # what autovacuum would have done on a live server: the tables just
            # filled (an ANALYZE of the empty ones would record them as empty, which autovacuum does not)
            async with db.write_engine.begin() as conn:
                await conn.execute(text("ANALYZE organization, workshop, machine, workshop_capacity"))
        async with db.writer() as session:
            admin = await authenticate(session, token=admin_token)
            if admin is None:
                raise RuntimeError("the admin key does not authenticate")
            _key, token = await issue_api_key(session, actor=admin, org_id=buyer_org, role=Role.BUYER,
                                              label="bench buyer", now=now)
            await session.commit()
        return token
    finally:
        await db.dispose()


def seed(url: str, admin_token: str) -> tuple[str, dict[str, Any]]:
    started = time.monotonic()
    communes = read_communes()
    rows = build_seed(communes, N_WORKSHOPS, datetime.now(UTC))
    built = time.monotonic()
    token = asyncio.run(_seed(url, admin_token, rows))
    info = {"workshops": len(rows["workshop"]), "machines": len(rows["machine"]),
            "capacities": len(rows["workshop_capacity"]), "build_s": round(built - started, 2),
            "insert_s": round(time.monotonic() - built, 2)}
    return token, info


def delivery_communes() -> list[str]:
    return [c["insee"] for c in sorted(read_communes(), key=lambda c: -c["population"])[:N_DELIVERY]]


def request_body(item: str, quantity: int, insee: str, deadline: str) -> dict[str, Any]:
    return {"item": item, "quantity": quantity, "allow_split": True, "deadline": deadline,
            "delivery": {"commune_insee": insee}, "procurement": {"buyer_siret": BUYER_SIRET, "estimated_value_eur_ht": "1.00"}}


def count_rows(url: str) -> dict[str, int]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def go() -> dict[str, int]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                counts = {t: int((await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one())
                          for t in ("fab_request", "invitation", "outbox_event", "idempotency_record")}
                counts["match_pending"] = int((await conn.execute(
                    text("SELECT count(*) FROM fab_request WHERE match_state <> 'done'"))).scalar_one())
                return counts
        finally:
            await engine.dispose()

    return asyncio.run(go())


# ---- the benchmark ---------------------------------------------------------------------------------

@contextmanager
def worker(env: dict[str, str], workdir: Path, name: str) -> Iterator[subprocess.Popen[bytes]]:
    """The arq worker, as `broker worker` runs it (at its default nice, BROKER_WORKER_NICE=10: the
    API comes first on a shared machine): matching (the default mode) happens there."""
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "broker.cli", "worker"], env=_clean_env(env), cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        _stop(proc)


def _sample(port: int, token: str, deadline: str, communes: list[str]) -> list[dict[str, Any]]:
    """One visor and one desk request with httpx: their invited count and the matches' eligible."""
    import httpx

    out = []
    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        for item, quantity, insee in (("face-visor", 200, communes[0]), ("france-services-desk", 12, communes[1])):
            t0 = time.perf_counter()
            resp = client.post("/v1/requests", json=request_body(item, quantity, insee, deadline),
                               headers={"Idempotency-Key": f"sample-{secrets.token_hex(6)}"})
            ms = (time.perf_counter() - t0) * 1000
            if resp.status_code != 201:
                raise RuntimeError(f"sample POST /v1/requests: {resp.status_code} {resp.text[:500]}")
            created = resp.json()
            give_up = time.monotonic() + 30
            while (matches := client.get(f"/v1/requests/{created['id']}/matches").json())["state"] != "done":
                if time.monotonic() > give_up:
                    raise RuntimeError(f"request {created['id']} not matched after 30 s: is the worker running?")
                time.sleep(0.01)
            matched_ms = (time.perf_counter() - t0) * 1000
            invited = sum(1 for m in matches["included"] if m["invited"])
            if not invited:
                raise RuntimeError(f"sample {item}: nobody invited ({matches.get('exclusion_counts')})")
            out.append({"item": item, "commune": insee, "status": resp.status_code, "ms": round(ms, 1),
                        "matched_ms": round(matched_ms, 1), "invited": invited, "eligible": matches.get("eligible"),
                        "considered": matches.get("considered"),
                        "exclusion_counts": matches.get("exclusion_counts")})
            print(f"  sample {item} → {insee}: {resp.status_code} in {ms:.0f} ms, matched after {matched_ms:.0f} ms, "
                  f"invited {invited}, "
                  f"eligible {matches.get('eligible')} of {matches.get('considered')} considered", flush=True)
    return out


def _unloaded(port: int, token: str, deadline: str, communes: list[str], n: int) -> dict[str, Any]:
    """One client, one request at a time: the latency of a request when nothing else runs."""
    import httpx

    times, statuses = [], {}
    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        for i in range(n):
            item, qty = ("france-services-desk", 12) if i % 4 == 3 else ("face-visor", 200)
            t0 = time.perf_counter()
            resp = client.post("/v1/requests", json=request_body(item, qty, communes[i % len(communes)], deadline),
                               headers={"Idempotency-Key": f"unloaded-{secrets.token_hex(6)}"})
            times.append((time.perf_counter() - t0) * 1000)
            statuses[str(resp.status_code)] = statuses.get(str(resp.status_code), 0) + 1
    times.sort()

    def pct(p: float) -> float:
        return round(times[min(len(times) - 1, math.ceil(len(times) * p / 100) - 1)], 1)

    return {"requests": n, "statuses": statuses, "p50_ms": pct(50), "p95_ms": pct(95), "max_ms": round(times[-1], 1)}


def _bench_backend(backend: str, broker_url: str, ref_url: str, redis: str, workdir: Path, run_id: str,
                   quick: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from ref_apps import count_rows as count_ref_rows
    from ref_apps import create_ref_table

    t0 = time.monotonic()
    admin = prepare_broker_db(broker_url)
    buyer, seeded = seed(broker_url, admin)
    seeded["total_s"] = round(time.monotonic() - t0, 2)
    print(f"  {backend}: seeded {seeded['workshops']:,} workshops / {seeded['machines']:,} machines "
          f"in {seeded['total_s']} s", flush=True)
    create_ref_table(ref_url)
    communes = delivery_communes()
    deadline = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0).isoformat()
    script = LUA_REQUESTS % {"communes": ",".join(f'"{c}"' for c in communes), "deadline": deadline,
                             "siret": BUYER_SIRET}
    req_load = P95Load(workdir / f"load-requests-{backend}", run_id, script)
    ref_load = P95Load(workdir / f"load-ref-{backend}", run_id, LUA_POST)

    env = _broker_env(broker_url, redis, workdir)
    with granian("broker.app:app_factory", env, workdir, f"broker-{backend}") as port, \
            worker(env, workdir, f"worker-{backend}"):
        samples = _sample(port, buyer, deadline, communes)
        # before the load: requests wrk abandons at the end of a window still run on the server
        unloaded = _unloaded(port, buyer, deadline, communes, 6 if quick else 20)
        # bench_http._measure, split so that the rows committed during the measured window are counted
        # too: under 32 connections one request can take longer than the window, and wrk only counts
        # the responses that came back within it.
        warm, secs = durations(quick)
        secs = secs if quick else BROKER_WINDOW_S
        phases = Phases()
        req_load.run(port, "POST", "/v1/requests", warm, base=phases.take(), token=buyer)
        c0, t0 = count_rows(broker_url), time.monotonic()
        broker = req_load.run(port, "POST", "/v1/requests", secs, base=phases.take(), token=buyer)
        c1, t1 = count_rows(broker_url), time.monotonic()
        committed = c1["fab_request"] - c0["fab_request"]
        broker["committed_in_window"] = committed
        broker["committed_per_s"] = round(committed / (t1 - t0), 1)
        matched = (c1["fab_request"] - c1["match_pending"]) - (c0["fab_request"] - c0["match_pending"])
        broker["matched_per_s"] = round(matched / (t1 - t0), 1)
        broker["unloaded"] = unloaded
        # Matching runs in the worker (the default): how far behind the POSTs it is at the end of
        # the window, and how long it takes to catch up (every request matched and invited).
        broker["match_pending_at_end"] = c1["match_pending"]
        t_end, drained = time.monotonic(), c1["match_pending"] == 0
        while not drained and time.monotonic() - t_end < 600:
            time.sleep(0.5)
            drained = count_rows(broker_url)["match_pending"] == 0
        broker["match_drain_s"] = round(time.monotonic() - t_end, 1) if drained else None
    counts = count_rows(broker_url)
    with granian("ref_apps:insert_app", {"BENCH_REF_DATABASE_URL": ref_url}, workdir, f"ref-insert-{backend}") as port:
        ref = _measure(ref_load, port, "POST", "/v1/organizations", quick, Phases())
    rows = [
        {"endpoint": "POST /v1/requests", "backend": backend, "app": "broker", **broker, "rows_written": counts},
        {"endpoint": "POST /v1/organizations", "backend": backend, "app": "ref: 1 INSERT", **ref,
         "rows_written": {"bench_ref_organization": count_ref_rows(ref_url)}},
    ]
    return rows, {"backend": backend, "seed": seeded, "samples": samples, "load": req_load.name}


def run_bench(quick: bool) -> dict[str, Any]:
    check_ref_pool()
    started = time.monotonic()
    with suppress(ImportError):
        from run import ensure_wrk

        ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="broker-bench-requests-"))
    run_id = secrets.token_hex(4)
    rows: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    pg = _pg_url()
    redis_kind = "?"
    try:
        with redis_url(workdir) as (redis, redis_kind):
            r, d = _bench_backend("sqlite", f"sqlite+aiosqlite:///{workdir / 'broker.db'}",
                                  f"sqlite+aiosqlite:///{workdir / 'ref.db'}", redis, workdir, run_id, quick)
            rows += r
            details.append(d)
            if pg:
                with pg_database(pg) as url:
                    r, d = _bench_backend("postgresql", url, url, redis, workdir, run_id, quick)
                    rows += r
                    details.append(d)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    comparisons = []
    for backend in dict.fromkeys(r["backend"] for r in rows):
        b = next(r for r in rows if r["backend"] == backend and r["app"] == "broker")
        ref = next(r for r in rows if r["backend"] == backend and r["app"] != "broker")
        # the broker's throughput is what it committed in the window (>= what wrk saw come back)
        rps = max(b["rps"], b["committed_per_s"])
        ratio = rps / ref["rps"] if ref["rps"] else 0.0
        comparisons.append({"endpoint": b["endpoint"], "backend": backend, "broker_rps": rps, "wrk_rps": b["rps"],
                            "reference_rps": ref["rps"], "ratio": round(ratio, 3), "goal": GOAL_RATIO,
                            "goal_met": ratio >= GOAL_RATIO, "broker_p95_ms": b["p95_ms"],
                            "reference_p95_ms": ref["p95_ms"]})
    problems = [f"{r['app']} {r['endpoint']} {r['backend']}: {r['errors']} errors — statuses {r['statuses']}, "
                f"{r['socket_errors']} socket errors/timeouts (> 10 s) (first: {r['first_error']})"
                for r in rows if r["errors"]]
    problems += [f"{r['app']} {r['endpoint']} {r['backend']}: no request completed" for r in rows
                 if not r["requests"] and not r.get("committed_in_window")]
    problems += [f"broker unloaded {r['backend']}: statuses {r['unloaded']['statuses']}" for r in rows
                 if "unloaded" in r and set(r["unloaded"]["statuses"]) != {"201"}]
    problems += [f"sample {s['item']} on {d['backend']}: invited {s['invited']}" for d in details
                 for s in d["samples"] if not s["invited"]]
    warm, secs = durations(quick)
    return {
        "bench": "requests",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "ok": not problems,
        "problems": problems,
        "setup": {
            "server": "granian --interface asgi --factory --workers 1 (same for every app)",
            "worker": "python -m broker.cli worker, as deployed (nice 10, BROKER_WORKER_NICE)",
            "granian": _version("granian"), "litestar": _version("litestar"), "sqlalchemy": _version("sqlalchemy"),
            "python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine(),
            "load": (details[0]["load"] if details else "wrk") + " (separate process)", "connections": CONNECTIONS,
            "warmup_s": warm, "duration_s": secs, "redis": redis_kind, "workshops": N_WORKSHOPS,
            "body": "3/4 face-visor x200, 1/4 france-services-desk x12, allow_split, 20 biggest communes",
            "postgresql": _safe(pg) if pg else "not set (BROKER_BENCH_DATABASE_URL / BROKER_TEST_DATABASE_URL)",
            "wall_s": round(time.monotonic() - started, 1),
        },
        "rows": rows,
        "comparisons": comparisons,
        "details": details,
        "printed": True,
    }


def print_report(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 140)
    s = result["setup"]
    table = Table(title=f"Requests bench{' (quick)' if result['quick'] else ''} — {s['workshops']:,} workshops; "
                        f"{s['server']}; load: {s['load']}, {s['warmup_s']:g} s warm-up + {s['duration_s']:g} s; "
                        f"{s['cpus']} CPUs")
    for col in ("endpoint", "db", "app", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "broker / ref", "goal"):
        table.add_column(col, justify="right" if col not in ("endpoint", "app", "db") else "left")
    comparisons = {c["backend"]: c for c in result["comparisons"]}
    for row in result["rows"]:
        ratio = goal = ""
        if row["app"] == "broker":
            c = comparisons[row["backend"]]
            ratio = f"{c['ratio']:.0%}"
            goal = f"≥ {c['goal']:.0%} " + ("[green]met[/]" if c["goal_met"] else "[red]MISSED[/]")
        errors = str(row["errors"]) if not row["errors"] else f"[red]{row['errors']}[/]"
        rps = comparisons[row["backend"]]["broker_rps"] if row["app"] == "broker" else row["rps"]
        table.add_row(row["endpoint"], row["backend"], row["app"], f"{rps:,.1f}", f"{row['p50_ms']:.2f}",
                      f"{row['p95_ms']:.2f}", f"{row['p99_ms']:.2f}", errors, ratio, goal)
    console.print(table)
    for d in result["details"]:
        written = next(r["rows_written"] for r in result["rows"] if r["backend"] == d["backend"] and r["app"] == "broker")
        per = written["invitation"] / written["fab_request"] if written.get("fab_request") else 0
        samples = "; ".join(f"{x['item']}→{x['commune']}: invited {x['invited']}, eligible {x['eligible']}/"
                            f"{x['considered']}" for x in d["samples"])
        row = next(r for r in result["rows"] if r["backend"] == d["backend"] and r["app"] == "broker")
        console.print(f"{d['backend']}: broker committed {row['committed_in_window']} requests in the measured window "
                      f"({row['committed_per_s']:g}/s; wrk counted {row['requests']} responses = {row['rps']:g}/s, "
                      f"its percentiles are over those); one client, one at a time: p50 {row['unloaded']['p50_ms']} ms, "
                      f"p95 {row['unloaded']['p95_ms']} ms")
        drain = f"caught up {row['match_drain_s']} s after the window" if row["match_drain_s"] is not None \
            else "[red]did not catch up within 600 s[/]"
        console.print(f"{d['backend']}: the worker matched {row['matched_per_s']:g} requests/s during the window "
                      f"(10,000 workshops each); {row['match_pending_at_end']} still pending at its end, {drain}; "
                      "first requests matched after "
                      + ", ".join(f"{x['matched_ms']:.0f} ms" for x in d["samples"]))
        console.print(f"{d['backend']}: seeded in {d['seed']['total_s']} s · {written['fab_request']:,} requests, "
                      f"{per:.1f} invitations each · {samples}")
    console.print(f"redis: {s['redis']} · postgresql: {s['postgresql']} · wall time {s['wall_s']} s")
    for problem in result["problems"]:
        console.print(f"[red]invalid measurement:[/] {problem}")


def main(quick: bool = False) -> dict[str, Any]:
    result = run_bench(quick)
    print_report(result)
    return result


# ---- in-process profile ----------------------------------------------------------------------------

def profile(n: int, top: int) -> None:
    """Seed a database like the bench (SQLite, or PostgreSQL when configured), then cProfile ``n``
    POST /v1/requests through litestar.testing.AsyncTestClient against broker.app.create_app."""
    import cProfile
    import pstats

    workdir = Path(tempfile.mkdtemp(prefix="broker-bench-requests-profile-"))
    pg = _pg_url() if os.environ.get("BENCH_PROFILE_PG") else None
    try:
        with redis_url(workdir) as (redis, _kind):
            if pg:
                with pg_database(pg) as url:
                    _profile_on(url, redis, workdir, n, top, cProfile, pstats)
            else:
                _profile_on(f"sqlite+aiosqlite:///{workdir / 'broker.db'}", redis, workdir, n, top, cProfile, pstats)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _profile_on(url: str, redis: str, workdir: Path, n: int, top: int, cProfile: Any, pstats: Any) -> None:
    from litestar.testing import AsyncTestClient

    from broker.app import create_app
    from broker.settings import load_settings

    admin = prepare_broker_db(url)
    buyer, _ = seed(url, admin)
    settings = load_settings(_broker_env(url, redis, workdir))
    communes = delivery_communes()
    deadline = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0).isoformat()

    def body(i: int) -> dict[str, Any]:
        item, qty = ("france-services-desk", 12) if i % 4 == 3 else ("face-visor", 200)
        return request_body(item, qty, communes[i % len(communes)], deadline)

    async def go() -> None:
        app = create_app(settings)
        async with AsyncTestClient(app, base_url=f"http://{HOST}") as client:
            headers = {"Authorization": f"Bearer {buyer}"}
            for i in range(5):
                r = await client.post("/v1/requests", json=body(i), headers={**headers, "Idempotency-Key": f"w{i}"})
                assert r.status_code == 201, r.text
            # The app runs in the client's portal thread: profile that thread, not this one.
            prof = cProfile.Profile()
            portal = client.blocking_portal
            t0 = time.perf_counter()
            portal.call(prof.enable)
            for i in range(n):
                r = await client.post("/v1/requests", json=body(i),
                                      headers={**headers, "Idempotency-Key": f"p{i}"})
                assert r.status_code == 201, r.text
            portal.call(prof.disable)
            wall = time.perf_counter() - t0
        print(f"{n} POST /v1/requests in-process: {wall / n * 1000:.1f} ms each (under cProfile)")
        stats = pstats.Stats(prof)
        stats.sort_stats("cumulative").print_stats(top)
        stats.sort_stats("tottime").print_stats(top)

    asyncio.run(go())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (under 90 s)")
    parser.add_argument("--profile", type=int, metavar="N", help="cProfile N requests in-process instead")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    if args.profile:
        profile(args.profile, args.top)
        raise SystemExit(0)
    res = main(args.quick)
    out = ROOT / "bench" / "results" / "requests.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, default=str) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    raise SystemExit(0 if res["ok"] else 1)
