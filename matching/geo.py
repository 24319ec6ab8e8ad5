"""Great-circle geometry on unit vectors: the same chord formula serves KD-trees and distances."""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_KM: Final = 6371.0
#: Half the circumference: no two points are farther apart.
MAX_DISTANCE_KM: Final = math.pi * EARTH_RADIUS_KM

FloatArray = npt.NDArray[np.float64]


def unit_vector(lat: float, lon: float) -> tuple[float, float, float]:
    """Point on the unit sphere for a latitude and longitude in degrees."""
    la = math.radians(lat)
    lo = math.radians(lon)
    c = math.cos(la)
    return (c * math.cos(lo), c * math.sin(lo), math.sin(la))


def chord_to_km(chord: float) -> float:
    """Great-circle distance for a chord of the unit sphere (exact for near points, unlike acos)."""
    return 2.0 * EARTH_RADIUS_KM * math.asin(min(1.0, chord / 2.0))


def km_to_chord(km: float) -> float:
    """Chord of the unit sphere for a great-circle distance; 2 beyond the antipode."""
    if km >= MAX_DISTANCE_KM:
        return 2.0
    return 2.0 * math.sin(max(km, 0.0) / (2.0 * EARTH_RADIUS_KM))


def distance_km(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    """Great-circle distance between two unit vectors."""
    dx = a[0] - b[0]
    dy = a[1] - b[1]
    dz = a[2] - b[2]
    return chord_to_km(math.sqrt(dx * dx + dy * dy + dz * dz))


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two latitude/longitude points in degrees."""
    return distance_km(unit_vector(lat1, lon1), unit_vector(lat2, lon2))


def chords_to_km(chords: FloatArray) -> FloatArray:
    """Vectorised `chord_to_km`."""
    out: FloatArray = (2.0 * EARTH_RADIUS_KM) * np.arcsin(np.minimum(chords * 0.5, 1.0))
    return out


def squared_chords(x: FloatArray, y: FloatArray, z: FloatArray, point: tuple[float, float, float]) -> FloatArray:
    """Squared chords from `point` to each (x, y, z), in the same operation order as `distance_km`."""
    dx = x - point[0]
    dy = y - point[1]
    dz = z - point[2]
    dx *= dx
    dy *= dy
    dz *= dz
    dx += dy
    dx += dz
    return dx
