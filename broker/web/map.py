"""An offline map of a crisis call, drawn as SVG: the communes of the area as a faint backdrop
(from the shipped commune table: the shape of the land appears from its 35,000 town halls), the
delivery points, the workshops and a line for every live commitment. The projection is
equirectangular with longitudes scaled by the cosine of the middle latitude — at the scale of a
region its distortion is under a percent, and it needs no tiles and no library."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from functools import lru_cache

import msgspec

from adapters.geocoding.base import Geocoder

WIDTH = 720
PAD = 24
MIN_SPAN_DEG = 1.2  # never zoom closer than about 130 km north-south


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
            f'<path d="{backdrop(geocoder, box)}" fill="#dfe6dc"/></svg>')


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
