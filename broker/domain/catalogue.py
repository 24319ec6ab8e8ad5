"""Catalogue items: open designs with a bill of process steps, and the processes we know."""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Process(StrEnum):
    LASER_CUTTING = "laser_cutting"
    CNC_ROUTING = "cnc_routing"
    CNC_MILLING = "cnc_milling"
    FDM_PRINTING = "fdm_printing"
    SLA_PRINTING = "sla_printing"
    SEWING = "sewing"
    EMBROIDERY = "embroidery"
    WELDING = "welding"
    SHEET_METAL = "sheet_metal"
    WOODWORKING = "woodworking"
    FINISHING = "finishing"
    ASSEMBLY = "assembly"


class ProcessStep(msgspec.Struct, frozen=True, kw_only=True):
    """One step of a bill of process: what machine, which material, how big, how long per unit."""

    process: Process
    material: str
    thickness_mm: float
    part_size_mm: tuple[float, float, float]
    minutes_per_unit: float


class CatalogueItem(msgspec.Struct, frozen=True, kw_only=True):
    slug: str
    name: str
    description: str
    licence: str
    steps: tuple[ProcessStep, ...]
    certifications_required: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
