"""Columnar registry of candidates, built once per registry version and shared by many matches.

Rows are sorted by workshop id, so row order is the tie-break order. Machines are stored in one
table sorted by (process, owner row): a step reads only the contiguous slice of its process, and
the materials handled by those machines are an inverted list per material, sorted by machine, so
the pairs (process p, material m) are again one contiguous slice found by binary search.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from matching.constraints import sorted_dims
from matching.geo import FloatArray, unit_vector
from matching.model import Candidate

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
U64Array = npt.NDArray[np.uint64]

_EMPTY: Final = (0, 0)


class ProcessSlice:
    """Machines of one process: rows [start, stop) of the machine table, grouped by owner."""

    __slots__ = ("group_owner", "group_start", "start", "stop")

    def __init__(self, start: int, stop: int, owners: IntArray) -> None:
        self.start = start
        self.stop = stop
        local = owners[start:stop]
        if stop > start:
            change = np.flatnonzero(local[1:] != local[:-1]) + 1
            self.group_start: IntArray = np.concatenate((np.zeros(1, np.int64), change)).astype(np.int64)
        else:
            self.group_start = np.zeros(0, np.int64)
        self.group_owner: IntArray = local[self.group_start].astype(np.int64)


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
        self.max_radius_km = float(self.radius_km.max()) if n else 0.0
        self.paused: BoolArray = np.array([c.paused for c in rows], dtype=np.bool_)
        self.units_per_day: FloatArray = np.array(
            [math.nan if c.units_per_day is None else c.units_per_day for c in rows], dtype=np.float64
        )
        self.reserved: FloatArray = np.array([c.reserved_units for c in rows], dtype=np.float64)
        self.on_time: FloatArray = np.array(
            [math.nan if c.on_time_rate is None else c.on_time_rate for c in rows], dtype=np.float64
        )
        self.recent_wins: FloatArray = np.array([max(0, c.recent_wins) for c in rows], dtype=np.float64)
        self._build_certifications(rows)
        self._build_machines(rows)
        self.tree = cKDTree(xyz) if n else None

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
        procs = sorted({m.process for c in rows for m in c.machines})
        pid = {p: i for i, p in enumerate(procs)}
        table = [(pid[m.process], r, k, m) for r, c in enumerate(rows) for k, m in enumerate(c.machines)]
        table.sort(key=lambda t: (t[0], t[1], t[2]))
        count = len(table)
        owners = np.array([t[1] for t in table], dtype=np.int64)
        env = np.array([sorted_dims(t[3].envelope_mm) for t in table], dtype=np.float64).reshape(count, 3)
        self.m_owner: IntArray = owners
        self.m_env0: FloatArray = np.ascontiguousarray(env[:, 0])
        self.m_env1: FloatArray = np.ascontiguousarray(env[:, 1])
        self.m_env2: FloatArray = np.ascontiguousarray(env[:, 2])
        self.m_hours: FloatArray = np.array([t[3].hours_per_week for t in table], dtype=np.float64)
        proc_ids = np.array([t[0] for t in table], dtype=np.int64)
        self.processes: dict[str, ProcessSlice] = {}
        for p, i in pid.items():
            start = int(np.searchsorted(proc_ids, i, side="left"))
            stop = int(np.searchsorted(proc_ids, i, side="right"))
            self.processes[p] = ProcessSlice(start, stop, owners)
        pairs: list[tuple[str, int, float]] = []
        for mi, t in enumerate(table):
            best: dict[str, float] = {}
            for spec in t[3].materials:
                best[spec.material] = max(best.get(spec.material, -math.inf), spec.max_thickness_mm)
            pairs.extend((mat, mi, thick) for mat, thick in best.items())
        pairs.sort(key=lambda p: (p[0], p[1]))
        self.pm_machine: IntArray = np.array([p[1] for p in pairs], dtype=np.int64)
        self.pm_thick: FloatArray = np.array([p[2] for p in pairs], dtype=np.float64)
        mats = [p[0] for p in pairs]
        self.materials: dict[str, tuple[int, int]] = {}
        start = 0
        for k in range(1, len(mats) + 1):
            if k == len(mats) or mats[k] != mats[start]:
                self.materials[mats[start]] = (start, k)
                start = k

    def material_slice(self, material: str, proc: ProcessSlice) -> tuple[int, int]:
        """Range of `pm_*` rows for machines of `proc` handling `material`."""
        lo, hi = self.materials.get(material, _EMPTY)
        if lo == hi:
            return _EMPTY
        machines = self.pm_machine[lo:hi]
        a = lo + int(np.searchsorted(machines, proc.start, side="left"))
        b = lo + int(np.searchsorted(machines, proc.stop, side="left"))
        return a, b

    def row_of(self, workshop_id: str) -> int:
        """Row of a workshop id; KeyError when unknown."""
        lo = bisect.bisect_left(self.ids, workshop_id)
        if lo < len(self.ids) and self.ids[lo] == workshop_id:
            return lo
        raise KeyError(workshop_id)
