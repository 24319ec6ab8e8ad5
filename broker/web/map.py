"""An offline map of a crisis call, drawn as SVG: the communes of the area as a faint backdrop
(from the shipped commune table: the shape of the land appears from its 35,000 town halls) with the
department outlines over it (``data/departements.json.gz``, see its README), the delivery points,
the workshops and a line for every live commitment; labels that would overlap are moved or left
out (the tables under the map name every point). The projection is
equirectangular with longitudes scaled by the cosine of the middle latitude — at the scale of a
region its distortion is under a percent, and it needs no tiles and no library."""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Hashable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Literal

import msgspec

from adapters.geocoding.base import Geocoder

WIDTH = 720
PAD = 24
MIN_SPAN_DEG = 1.2  # never zoom closer than about 130 km north-south
OUTLINES = Path(__file__).parent / "data" / "departements.json.gz"
LABEL_FONT = 13  # px, as the template draws them
LABEL_MAX = 28  # characters: longer labels are cut with « … » (the full one is in the marker's title)


class Projection(msgspec.Struct, frozen=True):
    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float
    width: int
    height: int
    kx: float
    ky: float

    def xy(self, lat: float, lon: float) -> tuple[float, float]:
        return (round(PAD + (lon - self.lon_min) * self.kx, 1), round(PAD + (self.lat_max - lat) * self.ky, 1))


def projection(coords: Iterable[tuple[float, float]], *, width: int = WIDTH) -> Projection:
    pts = list(coords) or [(46.6, 2.4)]  # the middle of France when there is nothing yet
    lat_min, lat_max = min(p[0] for p in pts), max(p[0] for p in pts)
    lon_min, lon_max = min(p[1] for p in pts), max(p[1] for p in pts)
    mid = (lat_min + lat_max) / 2
    scale = math.cos(math.radians(mid))
    span_lat = max(lat_max - lat_min, MIN_SPAN_DEG) * 1.15
    span_lon = max((lon_max - lon_min) * scale, MIN_SPAN_DEG * 0.8) * 1.15
    # Round the box outwards (0.05°) so that the backdrop cache sees the same box on every refresh.
    c_lat, c_lon = (lat_min + lat_max) / 2, (lon_min + lon_max) / 2
    half_lat, half_lon = span_lat / 2, span_lon / scale / 2
    box = [math.floor((c_lat - half_lat) * 20) / 20, math.ceil((c_lat + half_lat) * 20) / 20,
           math.floor((c_lon - half_lon) * 20) / 20, math.ceil((c_lon + half_lon) * 20) / 20]
    inner = width - 2 * PAD
    kx = inner / (box[3] - box[2])
    ky = kx / scale
    height = round((box[1] - box[0]) * ky) + 2 * PAD
    if height > 900:  # a tall area: fit the height instead
        ky = (900 - 2 * PAD) / (box[1] - box[0])
        kx = ky * scale
        height = 900
    return Projection(lat_min=box[0], lat_max=box[1], lon_min=box[2], lon_max=box[3], width=width, height=height,
                      kx=kx, ky=ky)


@lru_cache(maxsize=64)
def _backdrop(geocoder: Geocoder, box: Projection) -> str:
    """The land as one SVG path: a disc around every commune's town hall, as wide as the mean
    spacing of the communes in view, so that the discs join up and the coast shows."""
    communes = getattr(geocoder, "all", None)
    if communes is None:
        return ""
    inside = [box.xy(c.lat, c.lon) for c in communes()
              if box.lat_min <= c.lat <= box.lat_max and box.lon_min <= c.lon <= box.lon_max]
    if not inside:
        return ""
    radius = max(2.0, min(40.0, 0.75 * math.sqrt(box.width * box.height / len(inside))))
    grid = max(3.0, radius / 2)  # one disc per cell is enough to fill (and bounds the size nationally)
    radius = max(radius, grid * 0.8)
    seen = sorted({(round(x / grid), round(y / grid)) for x, y in inside})
    r, d = f"{radius:.1f}".removesuffix(".0"), f"{2 * radius:.1f}".removesuffix(".0")
    return "".join(f"M{round(i * grid - radius)} {round(j * grid)}a{r} {r} 0 1 0 {d} 0a{r} {r} 0 1 0 -{d} 0z"
                   for i, j in seen)


def backdrop(geocoder: Geocoder, box: Projection) -> str:
    if not isinstance(geocoder, Hashable):  # an unhashable test double: nothing to cache it under
        return ""
    try:
        return _backdrop(geocoder, box)
    except TypeError:  # a test double whose hash fails
        return ""


def backdrop_svg(geocoder: Geocoder, box: Projection) -> str:
    """The backdrop as an SVG document of its own: the dashboard refers to it by URL, so the browser
    caches it while the live part around it refreshes."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {box.width} {box.height}">'
            f'<path d="{backdrop(geocoder, box)}" fill="#dfe6dc"/>'
            f'<path d="{outlines(box)}" fill="none" stroke="#8d99a6" stroke-width="1" stroke-linejoin="round"/>'
            '</svg>')


class Department(msgspec.Struct, frozen=True):
    """A department's outline: rings of (longitude, latitude) and their bounding box."""

    code: str
    name: str
    rings: tuple[tuple[tuple[float, float], ...], ...]
    lon_min: float
    lon_max: float
    lat_min: float
    lat_max: float


@lru_cache(maxsize=1)
def departments() -> tuple[Department, ...]:
    """The shipped outlines of the 96 metropolitan departments, read once."""
    data = json.loads(gzip.decompress(OUTLINES.read_bytes()))
    out = []
    for d in data["departements"]:
        rings = tuple(tuple((float(x), float(y)) for x, y in ring) for ring in d["rings"])
        xs = [x for ring in rings for x, _ in ring]
        ys = [y for ring in rings for _, y in ring]
        out.append(Department(code=d["code"], name=d["nom"], rings=rings, lon_min=min(xs), lon_max=max(xs),
                              lat_min=min(ys), lat_max=max(ys)))
    return tuple(out)


@lru_cache(maxsize=64)
def outlines(box: Projection) -> str:
    """The outlines of the departments in view as one SVG path (whole pixels; a point that falls on
    the pixel of the one before is skipped, so a national map stays light)."""
    parts: list[str] = []
    for d in departments():
        if d.lon_max < box.lon_min or d.lon_min > box.lon_max or d.lat_max < box.lat_min or d.lat_min > box.lat_max:
            continue
        for ring in d.rings:
            pixels: list[tuple[int, int]] = []
            for lon, lat in ring:
                x, y = box.xy(lat, lon)
                pixel = (round(x), round(y))
                if not pixels or pixel != pixels[-1]:
                    pixels.append(pixel)
            if len(pixels) >= 3:
                parts.append("M" + "L".join(f"{x} {y}" for x, y in pixels) + "Z")
    return "".join(parts)


Coverage = Literal["covered", "proposed", "short"]


def coverage(*, requested: int, committed: int, accepted: int) -> Coverage:
    """A point is covered only by the units makers accepted; units merely proposed (waiting for an
    answer, which may be no) make it « proposed »; anything less is short."""
    if accepted >= requested:
        return "covered"
    if committed >= requested:
        return "proposed"
    return "short"


class Mark(msgspec.Struct, frozen=True):
    """Something drawn on the map: its centre, its half-size (px), and its label if it has one."""

    x: float
    y: float
    r: float
    text: str = ""


class Label(msgspec.Struct, frozen=True):
    """A label placed on the map: its anchor point, SVG text-anchor and (maybe shortened) text."""

    x: float
    y: float
    anchor: Literal["start", "end", "middle"]
    text: str


Box = tuple[float, float, float, float]  # x0, y0, x1, y1


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def shorten(text: str, limit: int = LABEL_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def place_labels(marks: Sequence[Mark], *, width: float, height: float, obstacles: Sequence[Mark] = (),
                 font: float = LABEL_FONT) -> list[Label | None]:
    """A label for each mark, placed greedily in the order given (put the most important first):
    to the right of its mark, else left, above or below; a label that would overlap one already
    placed, another mark or an obstacle (workshops), or leave the frame, is dropped (None).
    Text width is estimated (0.6 em a character): good enough to keep labels apart. A label's box is
    one em high with the baseline (its ``y``) at 0.8 em from the top."""
    drawn: list[Box] = [(m.x - m.r, m.y - m.r, m.x + m.r, m.y + m.r) for m in (*marks, *obstacles)]
    placed: list[Box] = []
    out: list[Label | None] = []
    for i, m in enumerate(marks):
        text = shorten(m.text)
        w, h, gap = 0.6 * font * len(text), font, 4.0
        candidates: list[tuple[Label, Box]] = [
            (Label(m.x + m.r + gap, m.y + h * 0.3, "start", text), (m.x + m.r + gap, m.y - h / 2, m.x + m.r + gap + w,
                                                                   m.y + h / 2)),
            (Label(m.x - m.r - gap, m.y + h * 0.3, "end", text), (m.x - m.r - gap - w, m.y - h / 2, m.x - m.r - gap,
                                                                 m.y + h / 2)),
            (Label(m.x, m.y - m.r - gap - h * 0.2, "middle", text), (m.x - w / 2, m.y - m.r - gap - h, m.x + w / 2,
                                                                     m.y - m.r - gap)),
            (Label(m.x, m.y + m.r + gap + h * 0.8, "middle", text), (m.x - w / 2, m.y + m.r + gap, m.x + w / 2,
                                                                     m.y + m.r + gap + h)),
        ]
        chosen: Label | None = None
        for label, box in candidates:
            if box[0] < 0 or box[1] < 0 or box[2] > width or box[3] > height:
                continue
            if any(_overlaps(box, other) for other in placed):
                continue
            if any(_overlaps(box, other) for j, other in enumerate(drawn) if j != i):
                continue
            chosen = label
            placed.append(box)
            break
        out.append(chosen)
    return out


def frame(box: Projection) -> str:
    """The box as a URL parameter (``lat_min,lat_max,lon_min,lon_max,width,height``)."""
    return ",".join(f"{v:g}" for v in (box.lat_min, box.lat_max, box.lon_min, box.lon_max, box.width, box.height))


def parse_frame(text: str) -> Projection | None:
    try:
        lat_min, lat_max, lon_min, lon_max, width, height = (float(v) for v in text.split(","))
    except ValueError:
        return None
    if not (-90 <= lat_min < lat_max <= 90 and -180 <= lon_min < lon_max <= 180
            and 100 <= width <= 2000 and 100 <= height <= 2000 and lat_max - lat_min <= 40):
        return None
    kx = (width - 2 * PAD) / (lon_max - lon_min)
    ky = (height - 2 * PAD) / (lat_max - lat_min)
    return Projection(lat_min=lat_min, lat_max=lat_max, lon_min=lon_min, lon_max=lon_max, width=int(width),
                      height=int(height), kx=kx, ky=ky)
