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
    pw /= pw.sum()
    lat, lon = communes.draw(rng, n)
    radius = rng.choice(RADII, size=n, p=RADIUS_P / RADIUS_P.sum())
    out: list[Candidate] = []
    for i in range(n):
        machines = []
        for _ in range(int(rng.integers(1, 5))):
            proc = names[int(rng.choice(len(names), p=pw))]
            _, (lo, hi), mats, thick = PROCESSES[proc]
            env = tuple(float(x) for x in rng.integers(lo // 4, hi, size=3))
            chosen = rng.choice(len(mats), size=int(rng.integers(1, len(mats) + 1)), replace=False)
            machines.append(
                Machine(
                    process=proc,
                    envelope_mm=(env[0], env[1], env[2]),
                    materials=tuple(
                        MaterialSpec(material=mats[int(k)], max_thickness_mm=float(rng.choice(thick))) for k in chosen
                    ),
                    hours_per_week=float(rng.choice([10, 20, 35, 40, 60, 80])),
                )
            )
        certs = tuple(c for c in CERTS if rng.random() < 0.15)
        declared = rng.random() < 0.3
        out.append(
            Candidate(
                workshop_id=f"ws-{i:06d}",
                lat=float(lat[i]),
                lon=float(lon[i]),
                delivery_radius_km=float(radius[i]),
                machines=tuple(machines),
                certifications=certs,
                paused=bool(rng.random() < 0.03),
                units_per_day=float(rng.integers(5, 200)) if declared else None,
                reserved_units=int(rng.integers(0, 50)),
                on_time_rate=None if rng.random() < 0.3 else float(rng.beta(8, 2)),
                recent_wins=int(rng.poisson(2)),
            )
        )
    return out


REQUEST_STEPS = (
    (Step(process="laser_cutting", material="steel", thickness_mm=3, part_size_mm=(400, 300, 3), minutes_per_unit=4),),
    (
        Step(process="laser_cutting", material="aluminium", thickness_mm=2, part_size_mm=(800, 400, 2), minutes_per_unit=6),
        Step(process="sheet_bending", material="aluminium", thickness_mm=2, part_size_mm=(800, 400, 60), minutes_per_unit=5),
    ),
    (Step(process="fdm_printing", material="petg", thickness_mm=20, part_size_mm=(120, 80, 20), minutes_per_unit=45),),
    (Step(process="cnc_milling", material="aluminium", thickness_mm=40, part_size_mm=(200, 150, 40), minutes_per_unit=30),),
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
        tracemalloc.start()
        build_s, index = timed(lambda cands=cands: CandidateIndex(cands))
        index_bytes = tracemalloc.get_traced_memory()[0]
        for local in (True, False):
            reqs = make_requests(rng, communes, reps, local=local)
            for r in reqs[:5]:  # warm-up
                match(r, index, now=NOW, limit=20)
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            lat = []
            eligible = []
            for r in reqs:
                dt, res = timed(lambda r=r: match(r, index, now=NOW, limit=20))
                lat.append(dt)
                eligible.append(res.eligible)
            match_peak = tracemalloc.get_traced_memory()[1] - base
            ref = []
            for r in reqs[:ref_reps]:
                dt, ref_res = timed(lambda r=r: match_reference(r, cands, now=NOW, limit=20))
                ref.append(dt)
                fast = match(r, index, now=NOW, limit=20)
                assert [i.workshop_id for i in fast.included] == [i.workshop_id for i in ref_res.included]
            results.append(
                {
                    "workshops": n,
                    "kind": "local" if local else "national",
                    "requests": reps,
                    "p50_ms": pct(lat, 50) * 1e3,
                    "p95_ms": pct(lat, 95) * 1e3,
                    "max_ms": max(lat) * 1e3,
                    "mean_eligible": statistics.fmean(eligible),
                    "index_build_s": build_s,
                    "index_mb": index_bytes / 1e6,
                    "match_peak_mb": match_peak / 1e6,
                    "python_loop_ms": statistics.median(ref) * 1e3 if ref else None,
                    "speedup_vs_loop": statistics.median(ref) / pct(lat, 50) if ref else None,
                }
            )
        tracemalloc.stop()
        del index, cands
        gc.collect()
    return results
