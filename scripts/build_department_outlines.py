"""Build broker/web/data/departements.json.gz, the department outlines drawn behind the crisis map,
from the reference GeoJSON (``/work/shared/data/geo/departements-simplifies.geojson.gz``: IGN Admin
Express COG 2018 as simplified by the ``france-geojson`` project, Licence Ouverte / Etalab).

Each ring is simplified again with Douglas–Peucker (tolerance ``TOLERANCE_DEG``, about 300 m: under
a pixel at the national scale, a few pixels at the scale of a region) and its coordinates rounded to
3 decimals (about 100 m); rings that shrink to less than a triangle (small islands) are dropped. The
project then reads only its own copy: it runs without the reference data.

Run: ``.venv/bin/python scripts/build_department_outlines.py [SOURCE] [TARGET]``."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

SOURCE = Path("/work/shared/data/geo/departements-simplifies.geojson.gz")
TARGET = Path(__file__).resolve().parent.parent / "broker" / "web" / "data" / "departements.json.gz"
TOLERANCE_DEG = 0.003
DECIMALS = 3

Point = tuple[float, float]


def _distance(p: Point, a: Point, b: Point) -> float:
    """Distance from ``p`` to the segment ``a``–``b`` (degrees, flat: the tolerance is tiny)."""
    (px, py), (ax, ay), (bx, by) = p, a, b
    dx, dy = bx - ax, by - ay
    if dx == 0 and dy == 0:
        return float(((px - ax) ** 2 + (py - ay) ** 2) ** 0.5)
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    return float(((px - ax - t * dx) ** 2 + (py - ay - t * dy) ** 2) ** 0.5)


def douglas_peucker(points: list[Point], tolerance: float) -> list[Point]:
    """The points kept by Douglas–Peucker (iterative: a long coast does not exhaust the stack)."""
    if len(points) < 3:
        return points
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        first, last = stack.pop()
        worst, index = 0.0, -1
        for i in range(first + 1, last):
            d = _distance(points[i], points[first], points[last])
            if d > worst:
                worst, index = d, i
        if index >= 0 and worst > tolerance:
            keep[index] = True
            stack.extend(((first, index), (index, last)))
    return [p for p, kept in zip(points, keep, strict=True) if kept]


def simplify_ring(ring: list[list[float]]) -> list[list[float]] | None:
    """A closed ring simplified and rounded (its closing point dropped), or None if too small."""
    pts = [(float(x), float(y)) for x, y in ring]
    if pts[0] == pts[-1]:
        pts = pts[:-1]
    if len(pts) < 3:
        return None
    # Split at the point farthest from the first so that both ends of a closed ring are anchored.
    far = max(range(len(pts)), key=lambda i: (pts[i][0] - pts[0][0]) ** 2 + (pts[i][1] - pts[0][1]) ** 2)
    head = douglas_peucker(pts[: far + 1], TOLERANCE_DEG)[:-1]
    out = head + douglas_peucker([*pts[far:], pts[0]], TOLERANCE_DEG)[:-1]
    rounded: list[list[float]] = []
    for x, y in out:
        point = [round(x, DECIMALS), round(y, DECIMALS)]
        if not rounded or rounded[-1] != point:
            rounded.append(point)
    return rounded if len(rounded) >= 3 else None


def build(source: Path) -> dict[str, Any]:
    collection = json.loads(gzip.decompress(source.read_bytes()))
    departments = []
    for feature in collection["features"]:
        geometry = feature["geometry"]
        polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
        rings = [r for polygon in polygons for ring in polygon if (r := simplify_ring(ring)) is not None]
        departments.append({"code": feature["properties"]["code"], "nom": feature["properties"]["nom"],
                            "rings": rings})
    departments.sort(key=lambda d: str(d["code"]))
    return {
        "source": "IGN Admin Express COG 2018 (codes INSEE), simplifié par le projet france-geojson puis par "
                  f"Douglas-Peucker ({TOLERANCE_DEG}°) ; coordonnées WGS84 [longitude, latitude] à {DECIMALS} "
                  "décimales",
        "licence": "Licence Ouverte / Etalab 2.0",
        "departements": departments,
    }


def main(argv: list[str]) -> None:
    source = Path(argv[1]) if len(argv) > 1 else SOURCE
    target = Path(argv[2]) if len(argv) > 2 else TARGET
    data = json.dumps(build(source), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    points = sum(len(r) for d in json.loads(data)["departements"] for r in d["rings"])
    print(f"{target}: {points} points, {len(data)} bytes of JSON, {target.stat().st_size} bytes compressed")


if __name__ == "__main__":
    main(sys.argv)
