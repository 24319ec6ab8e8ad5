"""Columnar registry of candidates, built once per registry version and shared by many matches.

Rows are sorted by workshop id, so row order is the tie-break order. Machines are stored in one
table grouped by process (`ProcessSlice`): a step reads only the contiguous slice of its process,
with a dense thickness column per material, so capability is elementwise work on that slice.
Envelopes and thicknesses are also kept in float32 when that is exact (whole or half millimetres):
comparing them with a threshold rounded up to float32 gives the float64 answer at half the memory
traffic. Positions get a float32 copy for a conservative first distance test (`coarse`).

What a booking changes (reserved units, on-time rate, recent wins) is kept apart: `with_bookings`
swaps those columns into a copy that shares everything else, so an award costs no rebuild.
"""

from __future__ import annotations

import bisect
import copy
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence

import msgspec
import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from matching.constraints import sorted_dims
from matching.geo import EARTH_RADIUS_KM, MAX_DISTANCE_KM, FloatArray, unit_vector
from matching.model import Candidate, Machine

IntArray = npt.NDArray[np.int64]
I8Array = npt.NDArray[np.int8]
BoolArray = npt.NDArray[np.bool_]
U64Array = npt.NDArray[np.uint64]
F32Array = npt.NDArray[np.float32]
#: What a booking changes for one workshop: (reserved units, on-time rate or None, recent wins: the
#: awards of the last 12 months weighted by age, see `matching.fairness`).
Bookings = tuple[int, float | None, float]

#: Chord error bound of float32 unit vectors (3 components, half an ulp of 1 each, plus rounding).
COARSE_CHORD_SLACK = 2e-7
COARSE_RELATIVE_SLACK = 1e-6


def booking_columns(c: Candidate) -> tuple[float, float, float]:
    """A candidate's `reserved`, `on_time` (NaN when unknown) and `recent_wins` (clamped at 0) row."""
    return (c.reserved_units, math.nan if c.on_time_rate is None else c.on_time_rate, max(0.0, float(c.recent_wins)))


def ceil_f32(value: float) -> np.float32:
    """Smallest float32 >= value: for float32 x, x >= value iff x >= ceil_f32(value)."""
    f = np.float32(value)
    if float(f) < value:
        f = np.nextafter(f, np.float32(np.inf))
    return f


def ceil_f32_array(values: FloatArray) -> F32Array:
    """Elementwise `ceil_f32`."""
    low = values.astype(np.float32)
    bump = low.astype(np.float64) < values
    low[bump] = np.nextafter(low[bump], np.float32(np.inf))
    return low


def chords(km: FloatArray) -> FloatArray:
    """Vectorised `matching.geo.km_to_chord` (for bounds only: libm may differ by an ulp)."""
    out: FloatArray = 2.0 * np.sin(np.clip(km, 0.0, MAX_DISTANCE_KM) / (2.0 * EARTH_RADIUS_KM))
    return out


def coarse_limit(chord: FloatArray) -> FloatArray:
    """Squared chords beyond which the float32 test may reject safely (see COARSE_CHORD_SLACK)."""
    out: FloatArray = (chord + COARSE_CHORD_SLACK) ** 2 * (1 + COARSE_RELATIVE_SLACK) + 1e-12
    return out


def exact_f32(values: FloatArray) -> F32Array | None:
    """The float32 copy of `values` when it is exact (finite or infinite), else None."""
    low = values.astype(np.float32)
    return low if bool(np.array_equal(low.astype(np.float64), values)) else None


class ProcessSlice:
    """Machines of one process, laid out so that per-workshop reductions are mostly plain slices.

    Within the slice [start, stop) of the machine table, machines are ordered by (rank of the
    machine among its owner's machines of this process, owner row). The first `groups` machines
    are each owner's first machine, in owner order (`group_owner`); each `extra` column holds the
    next-ranked machines of the owners having that many, with their positions in the group order.
    `thickness[material]` gives, per machine of the slice, the largest thickness handled in that
    material, -inf when the machine does not handle it (`thickness32`: exact float32 copies).
    """

    __slots__ = (
        "extra",
        "extra_machine",
        "group_of_row",
        "group_owner",
        "groups",
        "start",
        "stop",
        "thickness",
        "thickness32",
    )

    def __init__(
        self,
        start: int,
        stop: int,
        group_owner: IntArray,
        extra: list[tuple[int, int, IntArray]],
        thickness: dict[str, FloatArray],
        rows: int,
    ) -> None:
        self.start = start
        self.stop = stop
        self.groups = int(group_owner.size)
        self.group_owner = group_owner
        self.extra = extra
        # Direct maps for capacity: row -> group position (-1 when the row lacks the process), and
        # per extra column, group position -> machine offset in the slice (-1 when absent).
        self.group_of_row: npt.NDArray[np.int32] = np.full(rows, -1, dtype=np.int32)
        self.group_of_row[group_owner] = np.arange(self.groups, dtype=np.int32)
        self.extra_machine: list[npt.NDArray[np.int32]] = []
        for lo, hi, pos in extra:
            offsets = np.full(self.groups, -1, dtype=np.int32)
            offsets[pos] = np.arange(lo - start, hi - start, dtype=np.int32)
            self.extra_machine.append(offsets)
        self.thickness = thickness
        self.thickness32: dict[str, F32Array] = {}
        for name, column in thickness.items():
            low = exact_f32(column)
            if low is not None:
                self.thickness32[name] = low


class CandidateIndex:
    """Immutable columnar view of candidates with a KD-tree over their unit vectors."""

    def __init__(self, candidates: Iterable[Candidate]) -> None:
        rows = sorted(candidates, key=lambda c: c.workshop_id)
        for a, b in itertools.pairwise(rows):
            if a.workshop_id == b.workshop_id:
                raise ValueError(f"duplicate workshop id {a.workshop_id!r}")
        self.candidates: tuple[Candidate, ...] = tuple(rows)
        self.ids: tuple[str, ...] = tuple(c.workshop_id for c in rows)
        n = len(rows)
        self.size = n
        xyz = np.array([unit_vector(c.lat, c.lon) for c in rows], dtype=np.float64).reshape(n, 3)
        self.x: FloatArray = np.ascontiguousarray(xyz[:, 0])
        self.y: FloatArray = np.ascontiguousarray(xyz[:, 1])
        self.z: FloatArray = np.ascontiguousarray(xyz[:, 2])
        self.radius_km: FloatArray = np.array([c.delivery_radius_km for c in rows], dtype=np.float64)
        if np.isnan(xyz).any() or np.isnan(self.radius_km).any():
            raise ValueError("candidate coordinates and delivery radii must not be NaN")
        self.max_radius_km = float(self.radius_km.max()) if n else 0.0
        # float32 x, y, z and the coarse squared-chord limit of each workshop's radius.
        self.coarse: tuple[F32Array, F32Array, F32Array, F32Array] = (
            self.x.astype(np.float32),
            self.y.astype(np.float32),
            self.z.astype(np.float32),
            ceil_f32_array(coarse_limit(chords(self.radius_km))),
        )
        self.paused: BoolArray = np.array([c.paused for c in rows], dtype=np.bool_)
        self.units_per_day: FloatArray = np.array(
            [math.nan if c.units_per_day is None else c.units_per_day for c in rows], dtype=np.float64
        )
        booked = np.array([booking_columns(c) for c in rows], dtype=np.float64).reshape(n, 3)
        self.reserved: FloatArray = np.ascontiguousarray(booked[:, 0])
        self.on_time: FloatArray = np.ascontiguousarray(booked[:, 1])
        self.recent_wins: FloatArray = np.ascontiguousarray(booked[:, 2])
        self._build_certifications(rows)
        self._build_machines(rows)
        self.tree = cKDTree(xyz) if n else None

    def with_bookings(self, bookings: Mapping[str, Bookings]) -> CandidateIndex:
        """This index with the given workshops' reserved units, on-time rates and recent wins (ids it
        does not hold are ignored, workshops not given keep theirs): the same as rebuilding it from
        the updated candidates, but only those three columns and the changed candidates are new;
        the positions, machines, certifications and tree are shared (none is ever mutated)."""
        rows = list(self.candidates)
        changed: list[int] = []
        for r, cand in enumerate(rows):
            new = bookings.get(cand.workshop_id)
            if new is not None and new != (cand.reserved_units, cand.on_time_rate, cand.recent_wins):
                rows[r] = msgspec.structs.replace(cand, reserved_units=new[0], on_time_rate=new[1], recent_wins=new[2])
                changed.append(r)
        if not changed:
            return self
        out = copy.copy(self)
        out.candidates = tuple(rows)
        out.reserved, out.on_time, out.recent_wins = self.reserved.copy(), self.on_time.copy(), self.recent_wins.copy()
        for r in changed:
            out.reserved[r], out.on_time[r], out.recent_wins[r] = booking_columns(rows[r])
        return out

    def _build_certifications(self, rows: Sequence[Candidate]) -> None:
        vocab = sorted({c for cand in rows for c in cand.certifications})
        self.cert_bit: dict[str, int] = {name: i for i, name in enumerate(vocab)}
        words = max(1, (len(vocab) + 63) // 64)
        bits = np.zeros((len(rows), words), dtype=np.uint64)
        for r, cand in enumerate(rows):
            for name in set(cand.certifications):
                i = self.cert_bit[name]
                bits[r, i // 64] |= np.uint64(1 << (i % 64))
        self.cert_bits: U64Array = bits

    def _build_machines(self, rows: Sequence[Candidate]) -> None:
        by_process: dict[str, list[tuple[int, int, Machine]]] = {}
        for r, cand in enumerate(rows):
            seen: dict[str, int] = {}
            for m in cand.machines:
                rank = seen.get(m.process, 0)
                seen[m.process] = rank + 1
                by_process.setdefault(m.process, []).append((rank, r, m))
        table: list[Machine] = []
        owners: list[int] = []
        self.processes: dict[str, ProcessSlice] = {}
        for proc in sorted(by_process):
            entries = sorted(by_process[proc], key=lambda e: (e[0], e[1]))
            start = len(table)
            table.extend(e[2] for e in entries)
            owners.extend(e[1] for e in entries)
            ranks = np.array([e[0] for e in entries], dtype=np.int64)
            local = np.array([e[1] for e in entries], dtype=np.int64)
            cuts = np.searchsorted(ranks, np.arange(int(ranks.max()) + 2))
            group_owner = local[: cuts[1]]
            extra = [
                (start + int(lo), start + int(hi), np.searchsorted(group_owner, local[lo:hi]).astype(np.int64))
                for lo, hi in itertools.pairwise(cuts[1:].tolist())
                if hi > lo
            ]
            names = sorted({spec.material for e in entries for spec in e[2].materials})
            thickness = {name: np.full(len(entries), -np.inf) for name in names}
            for k, e in enumerate(entries):
                for spec in e[2].materials:
                    column = thickness[spec.material]
                    column[k] = max(column[k], spec.max_thickness_mm)
            self.processes[proc] = ProcessSlice(start, len(table), group_owner, extra, thickness, len(rows))
        count = len(table)
        env = np.array([sorted_dims(m.envelope_mm) for m in table], dtype=np.float64).reshape(count, 3)
        self.m_owner: IntArray = np.array(owners, dtype=np.int64)
        self.m_env: tuple[FloatArray, FloatArray, FloatArray] = (
            np.ascontiguousarray(env[:, 0]),
            np.ascontiguousarray(env[:, 1]),
            np.ascontiguousarray(env[:, 2]),
        )
        low = [exact_f32(e) for e in self.m_env]
        self.m_env32: tuple[F32Array, F32Array, F32Array] | None = (
            (low[0], low[1], low[2]) if low[0] is not None and low[1] is not None and low[2] is not None else None
        )
        self.m_hours: FloatArray = np.array([m.hours_per_week for m in table], dtype=np.float64)

    def row_of(self, workshop_id: str) -> int:
        """Row of a workshop id; KeyError when unknown."""
        lo = bisect.bisect_left(self.ids, workshop_id)
        if lo < len(self.ids) and self.ids[lo] == workshop_id:
            return lo
        raise KeyError(workshop_id)
