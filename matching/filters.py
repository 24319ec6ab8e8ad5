"""The hard filters in bulk: numpy stages over shrinking row sets of a `CandidateIndex`.

Each stage takes sorted row indices and returns the survivors (still sorted). They compute exactly
what `matching.constraints` computes for one workshop, with the same floating-point operations in
the same order; `matching.engine` chains them and counts who falls at each stage.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from matching.capacity import FLOOR_EPSILON
from matching.constraints import ABLE, STEP_CODES, sorted_dims
from matching.geo import FloatArray, chords_to_km, km_to_chord, squared_chords
from matching.index import (
    BoolArray,
    CandidateIndex,
    I8Array,
    IntArray,
    ProcessSlice,
    ceil_f32,
    coarse_limit,
)
from matching.model import MatchRequest, Step

_ONE = np.int8(1)
#: Capability tables kept for capacity: the step's process slice and its per-machine levels.
StepTable = tuple[ProcessSlice, I8Array]


def _machine_levels(index: CandidateIndex, proc: ProcessSlice, step: Step) -> I8Array:
    """Capability level (matching.constraints.machine_level) of every machine of the slice."""
    a, b = proc.start, proc.stop
    dims = sorted_dims(step.part_size_mm)
    if index.m_env32 is not None:
        e0, e1, e2 = index.m_env32
        s0, s1, s2 = (ceil_f32(v) for v in dims)
        fit = (e0[a:b] >= s0) & (e1[a:b] >= s1) & (e2[a:b] >= s2)
    else:
        f0, f1, f2 = index.m_env
        fit = (f0[a:b] >= dims[0]) & (f1[a:b] >= dims[1]) & (f2[a:b] >= dims[2])
    level: I8Array = fit.view(np.int8) + _ONE
    if step.material in proc.thickness:
        # 1 + fit·(1 + handled + thick enough): the level chain, elementwise.
        low = proc.thickness32.get(step.material)
        if low is not None:
            enough = low >= ceil_f32(step.thickness_mm)
            handled = low > -np.inf
        else:
            column = proc.thickness[step.material]
            enough = column >= step.thickness_mm
            handled = column > -np.inf
        bonus = handled.view(np.int8) + enough.view(np.int8)
        bonus *= fit.view(np.int8)
        level += bonus
    return level


def _group_levels(proc: ProcessSlice, level: I8Array) -> I8Array:
    """Best level per owner (group order): the first column, raised by the extra columns."""
    group = level[: proc.groups]
    if proc.extra:
        group = group.copy()
        for lo, hi, pos in proc.extra:
            group[pos] = np.maximum(group[pos], level[lo - proc.start : hi - proc.start])
    return group


def lookup(owners: IntArray, rows: IntArray) -> tuple[IntArray, BoolArray]:
    """Positions of `rows` in the sorted `owners`, and whether each is present."""
    if owners.size == 0:
        return np.zeros(rows.size, np.int64), np.zeros(rows.size, np.bool_)
    pos = np.minimum(np.searchsorted(owners, rows), owners.size - 1)
    return pos, owners[pos] == rows


def capability(
    index: CandidateIndex, request: MatchRequest, counts: dict[str, int]
) -> tuple[IntArray, list[StepTable]]:
    """Rows able to do every step (counting the others at their first failing step)."""
    rows: IntArray | None = None
    tables: list[StepTable] = []
    for step in request.steps:
        proc = index.processes.get(step.process)
        if proc is None:
            counts["process_missing"] += index.size if rows is None else rows.size
            return np.zeros(0, np.int64), tables
        level = _machine_levels(index, proc, step)
        group = _group_levels(proc, level)
        if rows is None:
            counts["process_missing"] += index.size - proc.groups
            row_level = group
            rows = proc.group_owner[np.flatnonzero(group == ABLE)]
        else:
            pos, found = lookup(proc.group_owner, rows)
            row_level = np.where(found, group[pos], np.int8(0))
            counts["process_missing"] += int(rows.size - np.count_nonzero(row_level))
            rows = rows[np.flatnonzero(row_level == ABLE)]
        for lv in (1, 2, 3):
            counts[STEP_CODES[lv]] += int(np.count_nonzero(row_level == lv))
        tables.append((proc, level))
    if rows is None:
        rows = np.arange(index.size, dtype=np.int64)
    return rows, tables


def certified(index: CandidateIndex, request: MatchRequest, rows: IntArray) -> BoolArray:
    """Which rows hold every required certification."""
    required = set(request.certifications_required)
    if not required or rows.size == 0:
        return np.ones(rows.size, np.bool_)
    if any(c not in index.cert_bit for c in required):
        return np.zeros(rows.size, np.bool_)
    mask = np.zeros(index.cert_bits.shape[1], dtype=np.uint64)
    for c in required:
        i = index.cert_bit[c]
        mask[i // 64] |= np.uint64(1 << (i % 64))
    held = index.cert_bits[rows]
    ok: BoolArray = np.all((held & mask) == mask, axis=1)
    return ok


def within_reach(
    index: CandidateIndex, request: MatchRequest, point: tuple[float, float, float], rows: IntArray
) -> tuple[IntArray, FloatArray, BoolArray]:
    """Rows whose exact distance was computed, those distances, and which are within both radii.

    Rows left out fail a conservative float32 test (or lie outside the KD-tree ball): they are
    beyond reach whatever the rounding.
    """
    md = request.max_distance_km
    reach = index.max_radius_km if md is None else min(index.max_radius_km, md)
    if index.tree is not None and rows.size >= _TREE_MIN_ROWS and reach <= _TREE_MAX_REACH_KM:
        ball = index.tree.query_ball_point(point, km_to_chord(reach) * (1 + 1e-9) + 1e-15)
        near = np.zeros(index.size, np.bool_)
        near[np.asarray(ball, dtype=np.int64)] = True
        rows = rows[near[rows]]
    if rows.size:
        x, y, z, limit = index.coarse
        dx = x[rows] - np.float32(point[0])
        dy = y[rows] - np.float32(point[1])
        dz = z[rows] - np.float32(point[2])
        dx *= dx
        dy *= dy
        dz *= dz
        dx += dy
        dx += dz
        near = dx <= limit[rows]
        if md is not None:
            near &= dx <= ceil_f32(float(coarse_limit(np.asarray(km_to_chord(md)))))
        rows = rows[np.flatnonzero(near)]
    c2_exact = squared_chords(index.x[rows], index.y[rows], index.z[rows], point)
    dist = chords_to_km(np.sqrt(c2_exact))
    radius = index.radius_km[rows]
    ok = dist <= radius
    if md is not None:
        ok &= dist <= md
    return rows, dist, ok


#: Use the KD-tree ball first when this many rows are left and the reach is local.
_TREE_MIN_ROWS = 4096
_TREE_MAX_REACH_KM = 30.0


def _step_hours(index: CandidateIndex, table: StepTable, rows: IntArray) -> FloatArray:
    """Weekly hours of each row's machines able to do the step, summed in machine order.

    Every row passed here has the process (it passed the capability stage).
    """
    proc, level = table
    hours_slice = index.m_hours[proc.start : proc.stop]
    pos = proc.group_of_row[rows]
    hours: FloatArray = np.where(level[pos] == ABLE, hours_slice[pos], 0.0)
    for column in proc.extra_machine:
        k = column[pos]
        has = k >= 0
        if not has.any():
            continue
        k = np.where(has, k, 0)
        hours += np.where(has & (level[k] == ABLE), hours_slice[k], 0.0)
    return hours


def capacity(
    index: CandidateIndex, request: MatchRequest, rows: IntArray, tables: Sequence[StepTable], days: int
) -> FloatArray:
    """Vectorised `matching.capacity.capacity_units` (same operations, same order)."""
    if rows.size == 0:
        return np.zeros(0)
    machine = np.zeros(rows.size)
    for k, (table, step) in enumerate(zip(tables, request.steps, strict=True)):
        units = _step_hours(index, table, rows) * 60.0 * days / 5.0 / step.minutes_per_unit + FLOOR_EPSILON
        machine = units if k == 0 else np.minimum(machine, units)
    declared = index.units_per_day[rows]
    raw = np.where(np.isnan(declared), machine, declared * days + FLOOR_EPSILON)
    cap: FloatArray = np.maximum(0.0, np.floor(np.maximum(raw, 0.0)) - index.reserved[rows])
    return cap
