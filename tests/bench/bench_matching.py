"""Benchmark of `matching.match` and `matching.allocate` on synthetic workshops over real communes.

    .venv/bin/python tests/bench/bench_matching.py [--quick] [--out bench/results/matching.json]

Workshops and delivery points sit on French communes (adapters/geocoding/data/communes-fr.csv.gz,
drawn with probability proportional to population, jittered by up to ~1 km). Prints a plain table and
writes JSON. Not a test: nothing here is asserted.
"""

from __future__ import annotations

import argparse
import csv
import gc
import gzip
import json
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import scipy.sparse as sp
from ortools.graph.python import max_flow, min_cost_flow
from scipy.optimize import linprog

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from matching import (  # noqa: E402
    Candidate,
    CandidateIndex,
    Machine,
    MatchRequest,
    MaterialSpec,
    Step,
    match,
)
from matching.allocation import (  # noqa: E402
    DeliveryPoint,
    Supply,
    allocate,
    candidate_edges,
)
from matching.reference import match_reference  # noqa: E402

COMMUNES = ROOT / "adapters" / "geocoding" / "data" / "communes-fr.csv.gz"
NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)

PROCESSES = {
    # process: (weight, envelope range mm, materials, max thickness choices)
    "laser_cutting": (10, (600, 3000), ("steel", "stainless", "aluminium", "plywood", "acrylic"), (3, 6, 10, 20)),
    "cnc_milling": (8, (200, 1500), ("aluminium", "steel", "brass", "hdpe", "wood"), (50, 100, 200)),
    "cnc_turning": (4, (100, 600), ("steel", "aluminium", "brass"), (100, 200)),
    "fdm_printing": (12, (150, 600), ("pla", "petg", "abs", "tpu"), (200, 400)),
    "sla_printing": (4, (100, 300), ("resin",), (150, 250)),
    "sheet_bending": (5, (500, 3000), ("steel", "stainless", "aluminium"), (2, 4, 8)),
    "welding": (6, (500, 4000), ("steel", "stainless", "aluminium"), (10, 20, 40)),
    "waterjet": (2, (1000, 3000), ("steel", "stone", "glass", "aluminium"), (50, 100, 150)),
    "injection_molding": (2, (50, 300), ("pp", "abs", "pa6"), (5, 10)),
    "sewing": (6, (500, 2000), ("cotton", "polyester", "canvas"), (3, 6)),
    "woodworking": (7, (500, 3000), ("wood", "plywood", "mdf"), (30, 80)),
    "laser_engraving": (4, (300, 1000), ("wood", "acrylic", "leather"), (10, 20)),
}
CERTS = ("iso9001", "iso13485", "en1090", "iso14001", "qualiopi", "ce_medical")
RADII = np.array([15, 20, 30, 50, 80, 100, 150, 200, 300, 600], dtype=float)
RADIUS_P = np.array([5, 8, 15, 20, 18, 12, 10, 6, 4, 2], dtype=float)


@dataclass(frozen=True)
class Communes:
    lat: np.ndarray
    lon: np.ndarray
    weight: np.ndarray

    def draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        idx = rng.choice(self.lat.size, size=n, p=self.weight)
        jitter = rng.uniform(-0.01, 0.01, size=(2, n))
        return self.lat[idx] + jitter[0], self.lon[idx] + jitter[1]


def load_communes() -> Communes:
    lat, lon, pop = [], [], []
    with gzip.open(COMMUNES, "rt", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if not row["lat"] or not row["lon"]:
                continue
            la, lo = float(row["lat"]), float(row["lon"])
            if not (41.0 <= la <= 51.5 and -5.5 <= lo <= 10.0):  # metropolitan France only
                continue
            lat.append(la)
            lon.append(lo)
            pop.append(max(1.0, float(row["population"] or 1)))
    w = np.sqrt(np.array(pop))  # cities get more workshops, rural areas still some
    return Communes(np.array(lat), np.array(lon), w / w.sum())


# --- synthetic workshops and requests ------------------------------------------------------------


def make_candidates(rng: np.random.Generator, communes: Communes, n: int) -> list[Candidate]:
    names = list(PROCESSES)
    pw = np.array([PROCESSES[p][0] for p in names], dtype=float)
    lat, lon = communes.draw(rng, n)
    radius = rng.choice(RADII, size=n, p=RADIUS_P / RADIUS_P.sum())
    n_machines = rng.integers(1, 5, size=n)
    total = int(n_machines.sum())
    proc_of = rng.choice(len(names), size=total, p=pw / pw.sum())
    env_u = rng.random((total, 3))
    mat_u = rng.random((total, 8))
    thick_u = rng.integers(0, 1 << 30, size=(total, 8))
    hours = rng.choice(np.array([10.0, 20.0, 35.0, 40.0, 60.0, 80.0]), size=total)
    cert_mask = rng.random((n, len(CERTS))) < 0.15
    flags = rng.random((n, 3))
    upd = rng.integers(5, 200, size=n)
    reserved = rng.integers(0, 50, size=n)
    on_time = rng.beta(8, 2, size=n)
    wins = rng.poisson(2, size=n)
    out: list[Candidate] = []
    k = 0
    for i in range(n):
        machines = []
        for _ in range(int(n_machines[i])):
            proc = names[int(proc_of[k])]
            _, (lo, hi), mats, thick = PROCESSES[proc]
            env = lo // 4 + np.floor(env_u[k] * (hi - lo // 4))
            # Materials: a random non-empty subset (first one always kept), random maximum thickness each.
            keep = [0] + [j for j in range(1, len(mats)) if mat_u[k, j] < 0.5]
            machines.append(
                Machine(
                    process=proc,
                    envelope_mm=(float(env[0]), float(env[1]), float(env[2])),
                    materials=tuple(
                        MaterialSpec(
                            material=mats[(j + int(thick_u[k, 7])) % len(mats)],
                            max_thickness_mm=float(thick[int(thick_u[k, j]) % len(thick)]),
                        )
                        for j in keep
                    ),
                    hours_per_week=float(hours[k]),
                )
            )
            k += 1
        out.append(
            Candidate(
                workshop_id=f"ws-{i:06d}",
                lat=float(lat[i]),
                lon=float(lon[i]),
                delivery_radius_km=float(radius[i]),
                machines=tuple(machines),
                certifications=tuple(c for c, held in zip(CERTS, cert_mask[i], strict=True) if held),
                paused=bool(flags[i, 0] < 0.03),
                units_per_day=float(upd[i]) if flags[i, 1] < 0.3 else None,
                reserved_units=int(reserved[i]),
                on_time_rate=None if flags[i, 2] < 0.3 else float(on_time[i]),
                recent_wins=int(wins[i]),
            )
        )
    return out


REQUEST_STEPS = (
    (Step(process="laser_cutting", material="steel", thickness_mm=3, part_size_mm=(400, 300, 3), minutes_per_unit=4),),
    (
        Step(
            process="laser_cutting",
            material="aluminium",
            thickness_mm=2,
            part_size_mm=(800, 400, 2),
            minutes_per_unit=6,
        ),
        Step(
            process="sheet_bending",
            material="aluminium",
            thickness_mm=2,
            part_size_mm=(800, 400, 60),
            minutes_per_unit=5,
        ),
    ),
    (Step(process="fdm_printing", material="petg", thickness_mm=20, part_size_mm=(120, 80, 20), minutes_per_unit=45),),
    (
        Step(
            process="cnc_milling",
            material="aluminium",
            thickness_mm=40,
            part_size_mm=(200, 150, 40),
            minutes_per_unit=30,
        ),
    ),
    (Step(process="sewing", material="cotton", thickness_mm=1, part_size_mm=(600, 400, 5), minutes_per_unit=12),),
)


def make_requests(rng: np.random.Generator, communes: Communes, count: int, *, local: bool) -> list[MatchRequest]:
    lat, lon = communes.draw(rng, count)
    out = []
    for i in range(count):
        steps = REQUEST_STEPS[int(rng.integers(len(REQUEST_STEPS)))]
        out.append(
            MatchRequest(
                steps=steps,
                quantity=int(rng.choice([10, 50, 100, 300])),
                deadline=NOW + timedelta(days=int(rng.integers(7, 35))),
                delivery_lat=float(lat[i]),
                delivery_lon=float(lon[i]),
                certifications_required=("iso9001",) if rng.random() < 0.2 else (),
                max_distance_km=float(rng.integers(5, 101)) if local else None,
                allow_split=bool(rng.random() < 0.5),
            )
        )
    return out


# --- helpers -------------------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in header], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    for k, r in enumerate(cells):
        print("  " + "  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
        if k == 0:
            print("  " + "  ".join("-" * w for w in widths))


# --- match -----------------------------------------------------------------------------------------


def bench_match(communes: Communes, sizes: Sequence[int], reps: int, ref_reps: int) -> list[dict[str, Any]]:
    results = []
    for n in sizes:
        rng = np.random.default_rng(n)
        cands = make_candidates(rng, communes, n)
        gc.collect()
        build_s, index = timed(lambda cands=cands: CandidateIndex(cands))
        index_mb = index_bytes(index) / 1e6
        cands_mb = structs_bytes(cands) / 1e6
        for local in (True, False):
            reqs = make_requests(rng, communes, reps, local=local)
            for r in reqs[:10]:  # warm-up
                match(r, index, now=NOW, limit=20)
            lat, eligible = [], []
            for r in reqs:
                dt, res = timed(lambda r=r, index=index: match(r, index, now=NOW, limit=20))
                lat.append(dt)
                eligible.append(res.eligible)
            lat_noexp = [
                timed(lambda r=r, index=index: match(r, index, now=NOW, limit=20, explain_limit=0))[0] for r in reqs
            ]
            tracemalloc.start()
            for r in reqs[:20]:
                match(r, index, now=NOW, limit=20)
            match_peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
            tracemalloc.stop()
            ref = []
            for r in reqs[:ref_reps]:
                dt, ref_res = timed(lambda r=r, cands=cands: match_reference(r, cands, now=NOW, limit=20))
                ref.append(dt)
                fast = match(r, index, now=NOW, limit=20)
                assert [i.workshop_id for i in fast.included] == [i.workshop_id for i in ref_res.included]
                assert fast.exclusion_counts == ref_res.exclusion_counts
            p50 = pct(lat, 50)
            results.append(
                {
                    "workshops": n,
                    "kind": "local" if local else "national",
                    "requests": reps,
                    "p50_ms": p50 * 1e3,
                    "p95_ms": pct(lat, 95) * 1e3,
                    "p50_no_excluded_detail_ms": pct(lat_noexp, 50) * 1e3,
                    "p95_no_excluded_detail_ms": pct(lat_noexp, 95) * 1e3,
                    "mean_eligible": statistics.fmean(eligible),
                    "index_build_s": build_s,
                    "index_mb": index_mb,
                    "candidates_mb": cands_mb,
                    "match_peak_mb": match_peak_mb,
                    "python_loop_ms": statistics.median(ref) * 1e3 if ref else None,
                    "loop_over_p50": statistics.median(ref) / p50 if ref else None,
                }
            )
        print(f"  match {n}: done", file=sys.stderr, flush=True)
        del index, cands
        gc.collect()
    return results


def index_bytes(index: CandidateIndex) -> int:
    """Bytes held by the index's arrays and KD-tree (the candidates themselves are counted apart)."""
    seen: set[int] = set()
    total = 0

    def add(obj: object) -> None:
        nonlocal total
        if isinstance(obj, np.ndarray) and id(obj) not in seen:
            seen.add(id(obj))
            total += obj.nbytes
        elif isinstance(obj, (tuple, list)):
            for x in obj:
                add(x)
        elif isinstance(obj, dict):
            for x in obj.values():
                add(x)

    for value in vars(index).values():
        add(value)
    for proc in index.processes.values():
        for name in proc.__slots__:
            add(getattr(proc, name))
    tree = index.tree
    if tree is not None:
        add(tree.data)
        add(tree.indices)
        total += tree.size * 64  # nodes, roughly
    return total


def structs_bytes(cands: Sequence[Candidate]) -> int:
    """Approximate bytes of the Candidate Structs (the registry the service holds anyway)."""
    sample = cands[: min(len(cands), 2000)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    copies = msgspec.convert(msgspec.to_builtins(sample), list[Candidate])
    size = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del copies
    return int(size * len(cands) / max(1, len(sample)))


def calibrate(communes: Communes, n: int = 100_000, reps: int = 200) -> dict[str, float]:
    """Machine speed: a plain numpy columnar scan (distance, 3 filters, score) over n rows."""
    rng = np.random.default_rng(0)
    lat, lon = communes.draw(rng, n)
    la, lo = np.radians(lat), np.radians(lon)
    radius = rng.choice(RADII, size=n)
    paused = rng.random(n) < 0.03
    cap = rng.integers(0, 500, size=n).astype(float)
    wins = rng.poisson(2, size=n).astype(float)
    times = []
    for k in range(reps):
        p_la, p_lo = la[k % n], lo[k % n]
        t0 = time.perf_counter()
        h = np.sin((la - p_la) / 2) ** 2 + np.cos(la) * np.cos(p_la) * np.sin((lo - p_lo) / 2) ** 2
        d = 2 * 6371.0 * np.arcsin(np.sqrt(h))
        ok = (d <= radius) & ~paused & (cap >= 50)
        score = 0.4 / (1 + d[ok] / 50) + 0.2 * np.minimum(1, cap[ok] / 100) + 0.2 / (1 + wins[ok] / 5)
        np.argsort(-score)[:20]
        times.append(time.perf_counter() - t0)
    return {"rows": n, "p50_ms": pct(times, 50) * 1e3, "p95_ms": pct(times, 95) * 1e3}


# --- allocate --------------------------------------------------------------------------------------


def make_allocation(
    rng: np.random.Generator, communes: Communes, ns: int, npts: int, *, shortage: bool
) -> tuple[list[Supply], list[DeliveryPoint]]:
    lat, lon = communes.draw(rng, ns)
    units = rng.integers(10, 200, size=ns)
    radius = rng.choice(np.array([40.0, 60.0, 80.0, 120.0]), size=ns)
    supplies = [Supply(f"ws-{i:05d}", float(lat[i]), float(lon[i]), int(units[i]), float(radius[i])) for i in range(ns)]
    plat, plon = communes.draw(rng, npts)
    share = rng.random(npts) + 0.2
    target = units.sum() * (2.0 if shortage else 0.6)
    demand = np.maximum(1, np.round(target * share / share.sum())).astype(int)
    prio = rng.choice(np.array([1, 2, 3]), size=npts, p=[0.2, 0.3, 0.5])
    points = [
        DeliveryPoint(f"pt-{j:05d}", float(plat[j]), float(plon[j]), int(demand[j]), int(prio[j])) for j in range(npts)
    ]
    return supplies, points


def ortools_staged(supplies, points, si, pj, dist) -> tuple[float, list[int], int]:
    """The same exact formulation written directly against OR-Tools; returns solve-only seconds."""
    ns, npts = len(supplies), len(points)
    sup = np.array([s.units for s in supplies], dtype=np.int64)
    dem = np.array([p.units for p in points], dtype=np.int64)
    levels = sorted({p.priority for p in points})
    lev = np.array([levels.index(p.priority) for p in points], dtype=np.int64)
    solve_s = 0.0
    prefix = []
    for k in range(len(levels)):
        mf = max_flow.SimpleMaxFlow()
        src, sink = ns + npts, ns + npts + 1
        tails = np.concatenate((np.full(ns, src), si, ns + np.arange(npts))).astype(np.int32)
        heads = np.concatenate((np.arange(ns), ns + pj, np.full(npts, sink))).astype(np.int32)
        caps = np.concatenate((sup, np.minimum(sup[si], dem[pj]), np.where(lev <= k, dem, 0))).astype(np.int64)
        mf.add_arcs_with_capacity(tails, heads, caps)
        t0 = time.perf_counter()
        assert mf.solve(src, sink) == mf.OPTIMAL
        solve_s += time.perf_counter() - t0
        prefix.append(mf.optimal_flow())
    covered = np.diff(np.array(prefix), prepend=0)
    mcf = min_cost_flow.SimpleMinCostFlow()
    nl = len(levels)
    sink = ns + npts + nl
    tails = np.concatenate((si, ns + np.arange(npts), np.arange(ns))).astype(np.int32)
    heads = np.concatenate((ns + pj, ns + npts + lev, np.full(ns, sink))).astype(np.int32)
    caps = np.concatenate((np.minimum(sup[si], dem[pj]), dem, sup)).astype(np.int64)
    costs = np.concatenate((np.rint(dist * 1000).astype(np.int64), np.zeros(npts + ns, np.int64)))
    mcf.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    bal = np.concatenate((sup, np.zeros(npts, np.int64), -covered, [covered.sum() - sup.sum()])).astype(np.int64)
    mcf.set_nodes_supplies(np.arange(sink + 1, dtype=np.int32), bal)
    t0 = time.perf_counter()
    assert mcf.solve() == mcf.OPTIMAL
    solve_s += time.perf_counter() - t0
    return solve_s, [int(c) for c in covered], int(mcf.optimal_cost())


HIGHS_TIME_LIMIT_S = 60.0


def highs_staged(supplies, points, si, pj, dist) -> tuple[float, list[float], float] | None:
    """Staged LP with scipy HiGHS on the same edges: max coverage per level, then min unit·metres.

    None when one of the LPs hits HIGHS_TIME_LIMIT_S.
    """
    ns, npts, ne = len(supplies), len(points), si.size
    a_ub = sp.coo_matrix(
        (np.ones(2 * ne), (np.concatenate((si, ns + pj)), np.concatenate((np.arange(ne), np.arange(ne))))),
        shape=(ns + npts, ne),
    ).tocsr()
    b_ub = np.array([s.units for s in supplies] + [p.units for p in points], dtype=float)
    prio = np.array([p.priority for p in points])[pj]
    eq_rows: list[np.ndarray] = []
    eq_b: list[float] = []
    covered = []
    solve_s = 0.0
    for level in sorted({p.priority for p in points}):
        gain = np.where(prio == level, -1.0, 0.0)
        t0 = time.perf_counter()
        res = linprog(
            gain,
            A_ub=a_ub,
            b_ub=b_ub,
            A_eq=sp.csr_matrix(np.array(eq_rows)) if eq_rows else None,
            b_eq=eq_b or None,
            method="highs",
            options={"time_limit": HIGHS_TIME_LIMIT_S},
        )
        solve_s += time.perf_counter() - t0
        if res.status != 0:
            return None
        covered.append(-res.fun)
        eq_rows.append(-gain)
        eq_b.append(-res.fun)
    t0 = time.perf_counter()
    res = linprog(
        np.rint(dist * 1000), A_ub=a_ub, b_ub=b_ub, A_eq=sp.csr_matrix(np.array(eq_rows)), b_eq=eq_b, method="highs"
    )
    solve_s += time.perf_counter() - t0
    return solve_s, covered, float(res.fun)


def bench_allocate(communes: Communes, sizes: Sequence[tuple[int, int]], highs_max: int) -> list[dict[str, Any]]:
    results = []
    for ns, npts in sizes:
        for shortage in (False, True):
            rng = np.random.default_rng(ns * 7 + npts + shortage)
            supplies, points = make_allocation(rng, communes, ns, npts, shortage=shortage)
            runs = [timed(lambda s=supplies, p=points: allocate(s, p)) for _ in range(3 if ns <= 1000 else 2)]
            e2e = min(t for t, _ in runs)
            alloc = runs[0][1]
            edge_s, (si, pj, dist) = timed(lambda s=supplies, p=points: candidate_edges(s, p, None))
            ort_s, ort_cov, ort_cost = min(
                (ortools_staged(supplies, points, si, pj, dist) for _ in range(2)), key=lambda r: r[0]
            )
            levels = sorted(alloc.covered_by_priority)
            ours_cov = [alloc.covered_by_priority[k] for k in levels]
            row: dict[str, Any] = {
                "workshops": ns,
                "points": npts,
                "case": "shortage" if shortage else "surplus",
                "edges": int(si.size),
                "supply": sum(s.units for s in supplies),
                "demand": sum(p.units for p in points),
                "covered_by_priority": ours_cov,
                "unit_km": alloc.unit_km,
                "allocate_s": e2e,
                "edges_s": edge_s,
                "ortools_solve_s": ort_s,
                "e2e_over_ortools": e2e / ort_s,
                "gap_vs_ortools": (alloc.unit_metres - ort_cost) / max(ort_cost, 1),
                "coverage_equal_ortools": ours_cov == ort_cov,
                "highs_s": None,
                "highs_over_e2e": None,
                "gap_vs_highs": None,
            }
            highs = highs_staged(supplies, points, si, pj, dist) if ns <= highs_max else None
            if ns <= highs_max and highs is None:
                row["highs_s"] = f"> {HIGHS_TIME_LIMIT_S:.0f} per LP"
            if highs is not None:
                highs_s, highs_cov, highs_cost = highs
                row.update(
                    highs_s=highs_s,
                    highs_over_e2e=highs_s / e2e,
                    gap_vs_highs=(alloc.unit_metres - highs_cost) / max(highs_cost, 1),
                    coverage_equal_highs=all(abs(a - b) < 1e-6 for a, b in zip(ours_cov, highs_cov, strict=True)),
                )
            results.append(row)
            print(f"  allocate {ns}x{npts} {row['case']}: {row['allocate_s']:.3f} s", file=sys.stderr, flush=True)
    return results


def fmt(x: object, spec: str = ".2f") -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "NO"
    if isinstance(x, float):
        return format(x, spec)
    return str(x)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run (< 1 minute)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "matching.json")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    communes = load_communes()
    calibration = calibrate(communes)
    print(
        f"calibration: plain numpy scan of {calibration['rows']:,} rows (haversine, 3 filters, score) "
        f"p50 {calibration['p50_ms']:.2f} ms, p95 {calibration['p95_ms']:.2f} ms"
    )
    if args.quick:
        match_rows = bench_match(communes, (1_000, 10_000, 100_000), reps=60, ref_reps=1)
        alloc_rows = bench_allocate(communes, ((100, 50), (1_000, 500), (5_000, 2_000)), highs_max=1_000)
    else:
        match_rows = bench_match(communes, (1_000, 10_000, 100_000), reps=300, ref_reps=3)
        alloc_rows = bench_allocate(communes, ((100, 50), (1_000, 500), (5_000, 2_000)), highs_max=5_000)

    table(
        "match (limit=20 included; default explain_limit=10 nearest exclusions detailed; ms)",
        ["workshops", "kind", "p50", "p95", "p50 no-detail", "p95 no-detail", "eligible", "build s",
         "index MB", "structs MB", "match MB", "py loop", "loop/p50"],
        [
            [r["workshops"], r["kind"], fmt(r["p50_ms"]), fmt(r["p95_ms"]), fmt(r["p50_no_excluded_detail_ms"]),
             fmt(r["p95_no_excluded_detail_ms"]), fmt(r["mean_eligible"], ".0f"), fmt(r["index_build_s"]),
             fmt(r["index_mb"], ".1f"), fmt(r["candidates_mb"], ".0f"), fmt(r["match_peak_mb"], ".1f"), fmt(r["python_loop_ms"], ".1f"),
             fmt(r["loop_over_p50"], ".0f")]
            for r in match_rows
        ],
    )  # fmt: skip
    table(
        "allocate (end to end: edges + exact staged flows; seconds)",
        ["W x P", "case", "edges", "supply", "demand", "covered p1/p2/p3", "allocate", "edges", "OR-Tools solve",
         "ratio", "gap OR", "HiGHS", "HiGHS/alloc", "gap HiGHS"],
        [
            [f"{r['workshops']}x{r['points']}", r["case"], r["edges"], r["supply"], r["demand"],
             "/".join(str(c) for c in r["covered_by_priority"]), fmt(r["allocate_s"], ".3f"), fmt(r["edges_s"], ".3f"),
             fmt(r["ortools_solve_s"], ".3f"), fmt(r["e2e_over_ortools"]), fmt(r["gap_vs_ortools"], ".1e"),
             fmt(r["highs_s"], ".3f"), fmt(r["highs_over_e2e"], ".1f"), fmt(r["gap_vs_highs"], ".1e")]
            for r in alloc_rows
        ],
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nmax RSS {rss_mb:.0f} MB; total {elapsed:.0f} s; python {platform.python_version()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "quick": args.quick,
                "python": platform.python_version(),
                "numpy": np.__version__,
                "cpus": len(__import__("os").sched_getaffinity(0)),
                "max_rss_mb": rss_mb,
                "calibration_numpy_scan": calibration,
                "elapsed_s": elapsed,
                "match": match_rows,
                "allocate": alloc_rows,
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
